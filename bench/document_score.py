"""Score a page analysis against the ground truth of the generated document set.

    python3 bench/document_score.py                      # truth against itself: every metric 1.0
    python3 bench/document_score.py --roundtrip          # truth -> DoclingDocument -> blocks
    python3 bench/document_score.py --write-docling DIR  # truth as DoclingDocument JSON files
    python3 bench/document_score.py --docling DIR        # DIR/NAME.json: DoclingDocument JSON
    python3 bench/document_score.py --analyze DIR        # DIR/NAME.json: raw analyze() dicts

A library first (the benchmark runner imports it); the command line is a small demo. The set
itself (``tests/data/documents``) is made by ``bench/documents.py``.

Everything is scored in a neutral format: a page is a list of ``Block`` in reading order,
boxes in PDF points with a top-left origin. Adapters turn predictions into it:
``blocks_from_docling`` (a docling-core ``DoclingDocument``) and ``blocks_from_analyze`` (the
worker's ``analyze`` dict, pixels divided by the image's pixels per point, regions kept in
worker order). Metrics, per page (``score_page``) and summed over pages (``aggregate``):

- headers: precision / recall / F1 of title and section headers together (``headers``) and
  of section headers alone (``section_headers``); a predicted header matches a truth header
  of the same group when the Levenshtein ratio of their normalised texts (whitespace
  collapsed, case folded) is >= 0.8; one-to-one, best ratio first.
- tables: precision / recall / F1; a predicted table matches a truth table when their boxes'
  IoU is >= 0.5; one-to-one, best IoU first.
- cells: the share of truth cells whose matched predicted table has a cell starting at the
  same (row, col) with the same whitespace-collapsed, case-sensitive text.
- reading order: of the consecutive pairs of truth paragraphs, the share whose two
  paragraphs come in the same order in the prediction; ``correct`` when all pairs do. A
  truth paragraph is located at the predicted text block that holds the largest share of
  its words (at least half; else it is missing and its pairs count as wrong), and inside
  that block at the first occurrence of its first five words (merged paragraphs keep their
  order). ``aggregate`` sums it over two-column pages only.

F1 is 2tp / (2tp + fp + fn), and 1.0 when there is nothing to find and nothing was found.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ocr_vs_rapidocr import levenshtein  # noqa: E402  (bench/ is not a package)

if TYPE_CHECKING:
    from docling_core.types.doc import DoclingDocument

DOCUMENTS = HERE.parent / "tests" / "data" / "documents"
KINDS = (
    "title",
    "section_header",
    "paragraph",
    "table",
    "figure",
    "caption",
    "page_header",
    "page_footer",
    "formula",
)
HEADER_KINDS = ("title", "section_header")
HEADER_SIMILARITY = 0.8
TABLE_IOU = 0.5
LOCATE_RECALL = 0.5  # share of a paragraph's words a predicted block must hold to locate it
LOCATE_PREFIX = 5  # words of a paragraph's start searched for inside its block

Box = tuple[float, float, float, float]  # l, t, r, b: PDF points, top-left origin


# ---------------------------------------------------------------- neutral format


@dataclass(frozen=True)
class Cell:
    """A table cell: top-left grid position, spans (>= 1) and text."""

    row: int
    col: int
    row_span: int = 1
    col_span: int = 1
    text: str = ""


@dataclass
class Table:
    """A table's grid; ``header_rows`` rows at the top are column headers."""

    rows: int
    cols: int
    cells: list[Cell] = field(default_factory=list)
    header_rows: int = 1


@dataclass
class Block:
    """One layout element. ``text`` is None for tables and figures; ``column`` is 0/1 on
    two-column pages (None for full-width blocks and on one-column pages)."""

    kind: str
    text: str | None
    box: Box
    column: int | None = None
    table: Table | None = None
    page: int = 1


@dataclass
class TruthPage:
    """One page of the document set: its size in points, its blocks in reading order, and
    the pixels per point of its image forms (``-notext.pdf``'s image and the scan)."""

    name: str
    width: float
    height: float
    blocks: list[Block]
    split: str = "dev"
    two_column: bool = False
    scale: float = 150 / 72
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def cells_from_dicts(cells: Iterable[dict[str, Any]]) -> list[Cell]:
    """Table cells of the JSON form: row and col, spans 1 and text "" when left out."""
    return [
        Cell(
            int(c["row"]),
            int(c["col"]),
            int(c.get("row_span", 1)),
            int(c.get("col_span", 1)),
            str(c.get("text", "")),
        )
        for c in cells
    ]


def block_from_dict(d: dict[str, Any]) -> Block:
    """A block of the ground-truth JSON form (also usable for predictions)."""
    table = None
    if d.get("table") is not None:
        t = d["table"]
        cells = cells_from_dicts(t["cells"])
        table = Table(int(t["rows"]), int(t["cols"]), cells, int(t.get("header_rows", 1)))
    box = d["box"]
    return Block(
        kind=str(d["kind"]),
        text=d.get("text"),
        box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        column=d.get("column"),
        table=table,
        page=int(d.get("page", 1)),
    )


def block_to_dict(b: Block) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": b.kind,
        "text": b.text,
        "box": [round(v, 2) for v in b.box],
        "column": b.column,
    }
    if b.table is not None:
        d["table"] = {
            "rows": b.table.rows,
            "cols": b.table.cols,
            "header_rows": b.table.header_rows,
            "cells": [
                {
                    "row": c.row,
                    "col": c.col,
                    "row_span": c.row_span,
                    "col_span": c.col_span,
                    "text": c.text,
                }
                for c in b.table.cells
            ],
        }
    return d


def truth_from_dict(d: dict[str, Any]) -> TruthPage:
    page = d["page"]
    return TruthPage(
        name=str(d["name"]),
        width=float(page["width"]),
        height=float(page["height"]),
        blocks=[block_from_dict(b) for b in d["blocks"]],
        split=str(d.get("split", "dev")),
        two_column=bool(d.get("two_column", False)),
        scale=float(d.get("image", {}).get("scale", 150 / 72)),
        raw=d,
    )


def load_truth(path: Path | str) -> TruthPage:
    return truth_from_dict(json.loads(Path(path).read_text()))


def load_set(folder: Path | str = DOCUMENTS, split: str | None = None) -> list[TruthPage]:
    """The pages listed in the folder's manifest.json (only ``split`` when given)."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    return [
        load_truth(folder / doc["truth"])
        for doc in manifest["documents"]
        if split is None or doc["split"] == split
    ]


# ---------------------------------------------------------------- adapters

# docling's DocItemLabel values -> neutral kinds (labels not listed are skipped)
DOCLING_KINDS = {
    "title": "title",
    "section_header": "section_header",
    "text": "paragraph",
    "paragraph": "paragraph",
    "list_item": "paragraph",
    "footnote": "paragraph",
    "reference": "paragraph",
    "code": "paragraph",
    "caption": "caption",
    "table": "table",
    "document_index": "table",
    "picture": "figure",
    "chart": "figure",
    "page_header": "page_header",
    "page_footer": "page_footer",
    "formula": "formula",
}

# layout labels of the worker's analyze() regions (CDLA classes) -> neutral kinds. CDLA's
# "title" marks headings of every level: it becomes a section header (the combined header
# F1 counts titles and section headers alike).
ANALYZE_KINDS = {
    "text": "paragraph",
    "title": "section_header",
    "figure": "figure",
    "figure_caption": "caption",
    "table": "table",
    "table_caption": "caption",
    "header": "page_header",
    "footer": "page_footer",
    "reference": "paragraph",
    "equation": "formula",
}


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def blocks_from_docling(doc: DoclingDocument, page_no: int = 1) -> list[Block]:
    """The items of one page of a DoclingDocument, in the document's order (body and
    furniture layers, pictures' children skipped). Boxes: the union of the item's
    provenance boxes on that page, turned to a top-left origin."""
    from docling_core.types.doc import ContentLayer, DocItem, TableItem, TextItem

    page = doc.pages.get(page_no)
    if page is None:
        return []
    height = float(page.size.height)
    blocks: list[Block] = []
    for item, _level in doc.iterate_items(included_content_layers=set(ContentLayer)):
        if not isinstance(item, DocItem):
            continue
        kind = DOCLING_KINDS.get(str(item.label.value))
        provs = [p for p in item.prov if p.page_no == page_no]
        if kind is None or not provs:
            continue
        boxes = []
        for prov in provs:
            bb = prov.bbox.to_top_left_origin(page_height=height)
            boxes.append((float(bb.l), float(bb.t), float(bb.r), float(bb.b)))
        box = _union(boxes)
        table = None
        text: str | None = None
        if isinstance(item, TableItem):
            data = item.data
            cells = [
                Cell(
                    c.start_row_offset_idx,
                    c.start_col_offset_idx,
                    max(1, c.end_row_offset_idx - c.start_row_offset_idx),
                    max(1, c.end_col_offset_idx - c.start_col_offset_idx),
                    c.text,
                )
                for c in data.table_cells
            ]
            header = [c.end_row_offset_idx for c in data.table_cells if c.column_header]
            table = Table(data.num_rows, data.num_cols, cells, max(header, default=0))
            kind = "table"
        elif isinstance(item, TextItem):
            text = item.text
        blocks.append(Block(kind, text, box, table=table, page=page_no))
    return blocks


def blocks_from_analyze(result: dict[str, Any], scale: float) -> list[Block]:
    """The regions of a worker ``analyze()`` result, in worker order (top to bottom, not a
    reading order). ``scale``: the image's pixels per PDF point (150 dpi: 150/72); boxes are
    divided by it. A region's text is its lines' texts joined by spaces."""

    def pts(box: Sequence[float]) -> Box:
        return (box[0] / scale, box[1] / scale, box[2] / scale, box[3] / scale)

    blocks: list[Block] = []
    for region in result.get("regions", []):
        kind = ANALYZE_KINDS.get(str(region.get("label")), "paragraph")
        table = None
        text: str | None = " ".join(str(line["text"]) for line in region.get("lines", []))
        if kind == "table":
            text = None
            t = region.get("table")
            if t is not None:
                cells = cells_from_dicts(t.get("cells", []))
                table = Table(int(t["rows"]), int(t["cols"]), cells)
        elif kind == "figure" and not text:
            text = None
        blocks.append(Block(kind, text, pts(region["box"]), table=table))
    return blocks


def docling_from_blocks(blocks: Sequence[Block], width: float, height: float) -> DoclingDocument:
    """A one-page DoclingDocument holding the blocks (page headers and footers in the
    furniture layer): a prediction in docling's form, e.g. the ground truth itself."""
    from docling_core.types.doc import (
        BoundingBox,
        ContentLayer,
        CoordOrigin,
        DocItemLabel,
        DoclingDocument,
        ProvenanceItem,
        Size,
        TableCell,
        TableData,
    )

    doc = DoclingDocument(name="page")
    doc.add_page(page_no=1, size=Size(width=width, height=height))
    labels = {
        "paragraph": DocItemLabel.TEXT,
        "caption": DocItemLabel.CAPTION,
        "formula": DocItemLabel.FORMULA,
        "page_header": DocItemLabel.PAGE_HEADER,
        "page_footer": DocItemLabel.PAGE_FOOTER,
    }
    for b in blocks:
        bbox = BoundingBox(
            l=b.box[0], t=b.box[1], r=b.box[2], b=b.box[3], coord_origin=CoordOrigin.TOPLEFT
        ).to_bottom_left_origin(page_height=height)
        prov = ProvenanceItem(page_no=1, bbox=bbox, charspan=(0, len(b.text or "")))
        if b.kind == "title":
            doc.add_title(text=b.text or "", prov=prov)
        elif b.kind == "section_header":
            doc.add_heading(text=b.text or "", prov=prov)
        elif b.kind == "table":
            t = b.table or Table(0, 0)
            cells = [
                TableCell(
                    text=c.text,
                    row_span=c.row_span,
                    col_span=c.col_span,
                    start_row_offset_idx=c.row,
                    end_row_offset_idx=c.row + c.row_span,
                    start_col_offset_idx=c.col,
                    end_col_offset_idx=c.col + c.col_span,
                    column_header=c.row < t.header_rows,
                )
                for c in t.cells
            ]
            doc.add_table(
                data=TableData(num_rows=t.rows, num_cols=t.cols, table_cells=cells), prov=prov
            )
        elif b.kind == "figure":
            doc.add_picture(prov=prov)
        else:
            furniture = b.kind in ("page_header", "page_footer")
            doc.add_text(
                label=labels.get(b.kind, DocItemLabel.TEXT),
                text=b.text or "",
                prov=prov,
                content_layer=ContentLayer.FURNITURE if furniture else ContentLayer.BODY,
            )
    return doc


# ---------------------------------------------------------------- metrics


def normalise(text: str | None) -> str:
    """Whitespace collapsed to single spaces, ends stripped (case kept)."""
    return " ".join((text or "").split())


def similarity(a: str, b: str) -> float:
    """Levenshtein ratio: 1 - distance / longer length (1.0 for two empty strings)."""
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def box_iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class PRF:
    """Matched (tp), predicted-only (fp), truth-only (fn) counts."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 1.0

    def __add__(self, other: PRF) -> PRF:
        return PRF(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


@dataclass
class Ratio:
    hits: int = 0
    total: int = 0

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(self.hits + other.hits, self.total + other.total)


@dataclass
class ReadingOrder:
    """Consecutive truth paragraph pairs, how many are in order, paragraphs not located."""

    pairs: int = 0
    in_order: int = 0
    missing: int = 0

    @property
    def fraction(self) -> float | None:
        return self.in_order / self.pairs if self.pairs else None

    @property
    def correct(self) -> bool:
        return self.in_order == self.pairs and self.missing == 0


def greedy_match(scores: Sequence[Sequence[float]], threshold: float) -> list[tuple[int, int]]:
    """One-to-one (truth, prediction) index pairs, best score first, score >= threshold."""
    cand = [(s, i, j) for i, row in enumerate(scores) for j, s in enumerate(row) if s >= threshold]
    cand.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_t: set[int] = set()
    used_p: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _s, i, j in cand:
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def _prf(pairs: int, n_truth: int, n_pred: int) -> PRF:
    return PRF(pairs, n_pred - pairs, n_truth - pairs)


def header_prf(
    truth: Sequence[Block],
    pred: Sequence[Block],
    include_title: bool = True,
    threshold: float = HEADER_SIMILARITY,
) -> PRF:
    """Header detection: title + section headers (or section headers alone), matched by the
    Levenshtein ratio of case-folded, whitespace-collapsed text >= threshold."""
    kinds = HEADER_KINDS if include_title else ("section_header",)
    t = [normalise(b.text).casefold() for b in truth if b.kind in kinds]
    p = [normalise(b.text).casefold() for b in pred if b.kind in kinds]
    scores = [[similarity(a, b) for b in p] for a in t]
    return _prf(len(greedy_match(scores, threshold)), len(t), len(p))


def match_tables(
    truth: Sequence[Block], pred: Sequence[Block], threshold: float = TABLE_IOU
) -> list[tuple[Block, Block]]:
    """Truth and predicted tables paired one-to-one by box IoU >= threshold."""
    t = [b for b in truth if b.kind == "table"]
    p = [b for b in pred if b.kind == "table"]
    scores = [[box_iou(a.box, b.box) for b in p] for a in t]
    return [(t[i], p[j]) for i, j in greedy_match(scores, threshold)]


def table_prf(truth: Sequence[Block], pred: Sequence[Block], threshold: float = TABLE_IOU) -> PRF:
    n_t = sum(b.kind == "table" for b in truth)
    n_p = sum(b.kind == "table" for b in pred)
    return _prf(len(match_tables(truth, pred, threshold)), n_t, n_p)


def cell_exactness(truth: Sequence[Block], pred: Sequence[Block]) -> Ratio:
    """Truth cells whose matched predicted table has a cell at the same (row, col) with the
    same whitespace-collapsed, case-sensitive text; cells of unmatched tables are misses."""
    total = sum(len(b.table.cells) for b in truth if b.kind == "table" and b.table)
    hits = 0
    for t, p in match_tables(truth, pred):
        if t.table is None or p.table is None:
            continue
        have = {(c.row, c.col): normalise(c.text) for c in p.table.cells}
        hits += sum(have.get((c.row, c.col)) == normalise(c.text) for c in t.table.cells)
    return Ratio(hits, total)


def _locate(words: list[str], blocks: list[list[str]]) -> tuple[int, int] | None:
    """(block index, word offset) of a paragraph's words in the predicted blocks' words."""
    if not words:
        return None
    need = Counter(words)
    best, best_recall = -1, 0.0
    for j, bw in enumerate(blocks):
        have = Counter(bw)
        recall = sum(min(n, have[w]) for w, n in need.items()) / len(words)
        if recall > best_recall:
            best, best_recall = j, recall
    if best < 0 or best_recall < LOCATE_RECALL:
        return None
    bw = blocks[best]
    prefix = words[:LOCATE_PREFIX]
    for k in range(len(bw) - len(prefix) + 1):
        if bw[k : k + len(prefix)] == prefix:
            return best, k
    return best, 0


def reading_order(truth: Sequence[Block], pred: Sequence[Block]) -> ReadingOrder:
    """Order of the truth paragraphs among the predicted text blocks (any kind with text)."""
    paras = [normalise(b.text).split() for b in truth if b.kind == "paragraph"]
    blocks = [normalise(b.text).split() for b in pred if b.text]
    pos = [_locate(words, blocks) for words in paras]
    pairs = max(0, len(paras) - 1)
    in_order = sum(1 for a, b in zip(pos, pos[1:]) if a is not None and b is not None and a < b)
    return ReadingOrder(pairs, in_order, sum(p is None for p in pos))


@dataclass
class PageScore:
    name: str
    two_column: bool
    headers: PRF
    section_headers: PRF
    tables: PRF
    cells: Ratio
    order: ReadingOrder

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "two_column": self.two_column,
            "headers_f1": self.headers.f1,
            "section_headers_f1": self.section_headers.f1,
            "tables_f1": self.tables.f1,
            "cell_exactness": self.cells.value,
            "reading_order": self.order.fraction,
            "reading_order_correct": self.order.correct,
            "counts": {
                "headers": vars(self.headers),
                "section_headers": vars(self.section_headers),
                "tables": vars(self.tables),
                "cells": vars(self.cells),
                "reading_order": vars(self.order),
            },
        }


def score_page(truth: TruthPage, pred: Sequence[Block], page_no: int = 1) -> PageScore:
    """Every metric for one page; predicted blocks of other pages are ignored."""
    p = [b for b in pred if b.page == page_no]
    t = truth.blocks
    return PageScore(
        name=truth.name,
        two_column=truth.two_column,
        headers=header_prf(t, p, include_title=True),
        section_headers=header_prf(t, p, include_title=False),
        tables=table_prf(t, p),
        cells=cell_exactness(t, p),
        order=reading_order(t, p),
    )


def aggregate(scores: Iterable[PageScore]) -> dict[str, Any]:
    """Micro-averaged metrics over pages; reading order over the two-column pages only."""
    scores = list(scores)
    headers = sum((s.headers for s in scores), PRF())
    sections = sum((s.section_headers for s in scores), PRF())
    tables = sum((s.tables for s in scores), PRF())
    cells = sum((s.cells for s in scores), Ratio())
    two = [s for s in scores if s.two_column]
    order = Ratio(sum(s.order.in_order for s in two), sum(s.order.pairs for s in two))
    return {
        "pages": len(scores),
        "headers_f1": headers.f1,
        "section_headers_f1": sections.f1,
        "tables_f1": tables.f1,
        "cell_exactness": cells.value,
        "reading_order": order.value,
        "reading_order_pages_correct": sum(s.order.correct for s in two),
        "two_column_pages": len(two),
        "counts": {
            "headers": vars(headers),
            "section_headers": vars(sections),
            "tables": vars(tables),
            "cells": vars(cells),
            "reading_order_pairs": vars(order),
        },
    }


# ---------------------------------------------------------------- command line


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def print_table(scores: Sequence[PageScore], title: str) -> None:
    print(f"\n{title}")
    print("| document | headers F1 | sections F1 | tables F1 | cells | order | order ok |")
    print("|---|--:|--:|--:|--:|--:|:-:|")
    for s in scores:
        ok = ("yes" if s.order.correct else "no") if s.two_column else "-"
        order = s.order.fraction if s.two_column else None
        print(
            f"| {s.name} | {s.headers.f1:.3f} | {s.section_headers.f1:.3f} | "
            f"{s.tables.f1:.3f} | {_fmt(s.cells.value)} | {_fmt(order)} | {ok} |"
        )
    a = aggregate(scores)
    print(
        f"| **all ({a['pages']})** | {a['headers_f1']:.3f} | {a['section_headers_f1']:.3f} | "
        f"{a['tables_f1']:.3f} | {_fmt(a['cell_exactness'])} | {_fmt(a['reading_order'])} | "
        f"{a['reading_order_pages_correct']}/{a['two_column_pages']} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", type=Path, default=DOCUMENTS, help="document set folder (%(default)s)")
    ap.add_argument("--split", choices=("all", "dev", "heldout"), default="all")
    ap.add_argument("--docling", type=Path, help="folder of DoclingDocument JSON files NAME.json")
    ap.add_argument("--analyze", type=Path, help="folder of analyze() result JSON files NAME.json")
    ap.add_argument(
        "--roundtrip", action="store_true", help="score truth -> DoclingDocument -> blocks"
    )
    ap.add_argument("--write-docling", type=Path, help="write the truth as DoclingDocument JSON")
    ap.add_argument("--json", type=Path, help="write per-page and aggregate scores here")
    args = ap.parse_args(argv)

    truths = load_set(args.set, None if args.split == "all" else args.split)
    results: dict[str, Any] = {}

    def run(title: str, preds: dict[str, list[Block]]) -> None:
        scores = [score_page(t, preds[t.name]) for t in truths if t.name in preds]
        missing = [t.name for t in truths if t.name not in preds]
        print_table(scores, title)
        if missing:
            print(f"no prediction for: {', '.join(missing)}")
        results[title] = {
            "pages": [s.as_dict() for s in scores],
            "aggregate": aggregate(scores),
            "missing": missing,
        }

    run("truth against itself", {t.name: t.blocks for t in truths})
    if args.roundtrip or args.write_docling:
        docs = {t.name: docling_from_blocks(t.blocks, t.width, t.height) for t in truths}
        if args.roundtrip:
            run(
                "truth -> DoclingDocument -> blocks",
                {n: blocks_from_docling(d) for n, d in docs.items()},
            )
        if args.write_docling:
            args.write_docling.mkdir(parents=True, exist_ok=True)
            for name, doc in docs.items():
                doc.save_as_json(args.write_docling / f"{name}.json")
            print(f"\nwrote {len(docs)} DoclingDocument JSON files to {args.write_docling}")
    if args.docling:
        from docling_core.types.doc import DoclingDocument

        preds = {}
        for t in truths:
            path = args.docling / f"{t.name}.json"
            if path.is_file():
                preds[t.name] = blocks_from_docling(DoclingDocument.load_from_json(path))
        run(f"DoclingDocument JSON in {args.docling}", preds)
    if args.analyze:
        preds = {}
        for t in truths:
            path = args.analyze / f"{t.name}.json"
            if path.is_file():
                preds[t.name] = blocks_from_analyze(json.loads(path.read_text()), t.scale)
        run(f"analyze() results in {args.analyze}", preds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
