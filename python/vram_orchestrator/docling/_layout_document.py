"""Page analyses (layout regions, their text lines and table grids, as returned by
``pool.analyze()``) → a ``DoclingDocument``: title, section headers, paragraphs, lists,
tables, pictures, captions, formulas and page headers/footers, in column-aware reading order,
every item with its provenance box in page units.

Region labels are the CDLA classes of the layout model: ``text``, ``title``, ``figure``,
``figure_caption``, ``table``, ``table_caption``, ``header``, ``footer``, ``reference``,
``equation``. How each becomes an item:

* ``title``: the first one (in reading order) on the document's first page is the document
  title, unless it starts with a section number ("1 Introduction" is a section header, not a
  document title); every other one is a section header whose level is the number of dotted
  parts of a leading section number ("2.3 Methods" → 2), else 1.
* ``text``: a paragraph, or list items when its first line starts with a bullet ("•", "-",
  ...) or an enumeration ("1.", "a)", "(iv)"); consecutive list regions share one list group.
* ``reference``: a paragraph labelled ``reference``.
* ``table``: a table from the region's grid (row 0 cells are column headers). A table region
  without a grid (table recognition off or failed) becomes a one-column table with one row
  per text line, so that its text stays in the table's place and in table exports.
* ``table_caption`` / ``figure_caption``: the caption of the nearest table / figure on the
  page in the same column (horizontal overlap of at least half the narrower box), above or
  below, with no other region between them; a caption without one stays a free-standing
  caption item in the body.
* ``figure``: a picture; its text lines become text items inside the picture, as docling's
  own pipeline does.
* ``equation``: a formula item with the OCR text.
* ``header`` / ``footer``: page header / page footer items in the furniture content layer,
  so that the default exports (body layer only) leave them out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

# The same origin (mimetype, hash, file name) as the text-lines conversion records.
from ..results import AnalysisResult, Region
from ._pages import document_origin

if TYPE_CHECKING:
    from docling_core.types.doc import (
        DocItemLabel,
        DoclingDocument,
        FloatingItem,
        ListGroup,
        ProvenanceItem,
        TableData,
    )
    from docling_core.types.doc.document import DocumentOrigin

__all__ = [
    "AnalyzedPage",
    "build_layout_document",
    "document_origin",
    "join_lines",
    "reading_order",
]

#: A box (left, top, right, bottom), top-left origin.
Box = tuple[float, float, float, float]

# A list item starts with a bullet symbol or an enumeration, then whitespace. The hyphen
# needs the whitespace too, so "-5 °C" stays text; the em dash is left out (dialogue, quotes).
# \u2043 is the hyphen bullet, \u2013 the en dash.
_BULLET = re.compile(r"^([•◦▪▫●○■□‣\u2043∙·*\-\u2013➢►▶✓✔])\s+(\S.*)$")
_ENUMERATION = re.compile(r"^(\(?(?:\d{1,3}|[a-z]|[ivxlc]{1,5})[.)])\s+(\S.*)$")
# "2.3 Methods", "2.3. Methods", "4 Results": a section number, then a space (or the end).
_SECTION_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?(?:\s|$)")
# A word split at the line end: a letter, then a hyphen.
_SPLIT_WORD = re.compile(r"[^\W\d_]-$")
_MAX_HEADING_LEVEL = 100  # docling-core's LevelNumber bound
# Detected boxes of vertically adjacent regions often overlap by a few pixels; for finding
# the gaps between them each box counts this fraction of its height shorter at both ends.
_Y_SHRINK = 0.1
_SAME_LINE_OVERLAP = 0.5
_MAX_DEPTH = 200  # recursion depth of the XY cut, far below Python's limit
_CAPTION_OVERLAP = 0.5


@dataclass
class AnalyzedPage:
    """One page of a document and its analysis.

    ``width``/``height`` are the page size in page units: points for a PDF page, pixels for
    an image (then ``scale`` is 1). ``scale`` is image pixels per page unit: the analysis
    boxes are in pixels of the analysed image. ``analysis`` is the ``pool.analyze()`` result
    dict, ``None`` when the page failed (``error`` then says why); a failed page is still a
    page of the document, without items.
    """

    page_no: int
    width: float
    height: float
    scale: float
    analysis: AnalysisResult | None
    error: str | None = None

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"page {self.page_no}: scale must be positive, not {self.scale}")


# ---------------------------------------------------------------------------------------
# Reading order


def _split(boxes: Sequence[Box], ids: list[int], lo: int, hi: int) -> list[list[int]]:
    """``ids`` in groups separated by gaps along one axis (``lo``/``hi``: the indices of the
    start and end coordinate in a box) that no box crosses, in increasing coordinate."""
    ordered = sorted(ids, key=lambda i: (boxes[i][lo], boxes[i][hi]))
    groups = [[ordered[0]]]
    reach = boxes[ordered[0]][hi]
    for i in ordered[1:]:
        if boxes[i][lo] >= reach:
            groups.append([i])
        else:
            groups[-1].append(i)
        reach = max(reach, boxes[i][hi])
    return groups


def _order(boxes: Sequence[Box], ids: list[int], depth: int = 0) -> list[int]:
    if len(ids) <= 1:
        return list(ids)
    if depth > _MAX_DEPTH:  # a pathological staircase of boxes: stop cutting
        return sorted(ids, key=lambda i: (boxes[i][1], boxes[i][0]))
    # Columns first: where a vertical gap runs through the whole block, read each column
    # in full, left to right.
    columns = _split(boxes, ids, 0, 2)
    if len(columns) > 1:
        return [i for column in columns for i in _order(boxes, column, depth + 1)]
    rows = _split(boxes, ids, 1, 3)
    if len(rows) == 1:
        # Overlapping boxes: nothing to cut, top to bottom then left to right.
        return sorted(ids, key=lambda i: (boxes[i][1], boxes[i][0]))
    # Horizontal bands, but a band is not cut from the one above while the two together
    # still have a vertical gap: they are parts of the same columns (a cut across both
    # columns there would interleave them). A band that closes the gap, a region spanning
    # the columns, starts a new block. The bands can't all merge (the whole block had no
    # vertical gap), so every block is smaller than ``ids``.
    blocks = [rows[0]]
    for row in rows[1:]:
        if len(_split(boxes, blocks[-1] + row, 0, 2)) > 1:
            blocks[-1] = blocks[-1] + row
        else:
            blocks.append(row)
    return [i for block in blocks for i in _order(boxes, block, depth + 1)]


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """The reading order of layout boxes (l, t, r, b; top-left origin) as indices into
    ``boxes``: a recursive XY cut that prefers columns.

    A block of boxes with a vertical gap that no box crosses is read column by column, left
    to right. Otherwise it is cut into horizontal bands, and consecutive bands that share a
    vertical gap stay one block; so regions spanning the columns (a title, a full-width table)
    separate blocks read top to bottom, and between two of them the left column is read top
    to bottom before the right one. Boxes that overlap with no gap at all are read top to
    bottom, then left to right.
    """
    shrunk = [
        (left, top + _Y_SHRINK * (bottom - top), right, bottom - _Y_SHRINK * (bottom - top))
        for left, top, right, bottom in boxes
    ]
    return _order(shrunk, list(range(len(shrunk))))


# ---------------------------------------------------------------------------------------
# Text of a region


@dataclass(frozen=True)
class _Line:
    text: str
    box: Box  # image pixels


def _lines(region: Region) -> list[_Line]:
    """The region's non-empty lines with their boxes (4 corner points) as (l, t, r, b)."""
    out = []
    for line in region.get("lines") or []:
        text = str(line.get("text", "")).strip()
        points = line.get("box") or []
        if not text or not points:
            continue
        if isinstance(points[0], (int, float)):  # a plain [l, t, r, b] box
            out.append(_Line(text, _region_box({"box": points})))
            continue
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        out.append(_Line(text, (min(xs), min(ys), max(xs), max(ys))))
    return out


def _visual_rows(lines: list[_Line]) -> list[list[_Line]]:
    """Lines grouped into rows, top to bottom, each row left to right. A line joins the row
    above when it overlaps that row's first line vertically by more than half of the smaller
    height (OCR may cut one printed line into several boxes)."""
    rows: list[list[_Line]] = []
    for line in sorted(lines, key=lambda item: (item.box[1], item.box[0])):
        if rows:
            ref = rows[-1][0].box
            overlap = min(ref[3], line.box[3]) - max(ref[1], line.box[1])
            smaller = min(ref[3] - ref[1], line.box[3] - line.box[1])
            if overlap > _SAME_LINE_OVERLAP * smaller:
                rows[-1].append(line)
                continue
        rows.append([line])
    for row in rows:
        row.sort(key=lambda item: item.box[0])
    return rows


def join_lines(texts: Sequence[str]) -> str:
    """Lines of a paragraph as one text, joined by spaces; a word split at a line end ("docu-"
    then "ment", or a soft hyphen) is joined back without the hyphen and the space."""
    out = ""
    for raw in texts:
        text = raw.strip()
        if not text:
            continue
        if not out:
            out = text
        elif out.endswith("\u00ad") or (_SPLIT_WORD.search(out) and text[0].islower()):
            out = out[:-1] + text
        else:
            out = f"{out} {text}"
    return out


def _row_text(row: list[_Line]) -> str:
    return " ".join(line.text for line in row)


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _list_marker(text: str) -> tuple[str, bool, str] | None:
    """(marker, enumerated, text after the marker) if ``text`` starts a list item."""
    match = _BULLET.match(text)
    if match:
        return match.group(1), False, match.group(2)
    match = _ENUMERATION.match(text)
    if match:
        return match.group(1), True, match.group(2)
    return None


def _list_items(rows: list[list[_Line]]) -> list[tuple[str, bool, str, Box]] | None:
    """The list items of a region whose first row starts with a list marker: (marker,
    enumerated, text, box in pixels) per item, a new item at every row that starts with a
    marker, the rows between continuing the item. ``None`` if the first row has no marker."""
    if not rows or _list_marker(_row_text(rows[0])) is None:
        return None
    items: list[tuple[str, bool, list[str], list[Box]]] = []
    for row in rows:
        text = _row_text(row)
        boxes = [line.box for line in row]
        found = _list_marker(text)
        if found is not None:
            marker, enumerated, rest = found
            items.append((marker, enumerated, [rest], boxes))
        else:
            items[-1][2].append(text)
            items[-1][3].extend(boxes)
    return [(m, e, join_lines(texts), _union(boxes)) for m, e, texts, boxes in items]


def _heading_level(text: str) -> int:
    match = _SECTION_NUMBER.match(text)
    if match is None:
        return 1
    return min(len(match.group(1).split(".")), _MAX_HEADING_LEVEL)


# ---------------------------------------------------------------------------------------
# Captions


def _box(values: Sequence[float]) -> Box:
    """(l, t, r, b) with l <= r and t <= b, whichever way round the corners came."""
    left, top, right, bottom = (float(v) for v in values)
    return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))


def _region_box(region: Region) -> Box:
    return _box(region["box"])


_CAPTION_TARGETS = {"table_caption": "table", "figure_caption": "figure"}
_FURNITURE = {"header", "footer"}
_CAPTION_START = re.compile(r"^(?:(Table)|Figure|Fig\.)\s+\d+(?:\.\d+)*[.:]")
#: A numbered line longer than this is a paragraph or list item, not a heading.
_HEADING_MAX_WORDS = 12


#: A "figure" this much covered by its lines is text: the layout model boxes an image that
#: is nothing but a line or a block of text (a crop, a label) as a figure. Charts and
#: drawings carry a few short labels. (On the structured set's scans the true figures carry
#: no text; the one "figure" that held text, 42 % covered, was a block of text.)
_FIGURE_MAX_TEXT_COVER = 0.35


def _text_cover(region: Region) -> float:
    left, top, right, bottom = _region_box(region)
    area = max(right - left, 0.0) * max(bottom - top, 0.0)
    if area <= 0:
        return 0.0
    covered = sum(
        max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0) for b in (line.box for line in _lines(region))
    )
    return covered / area


#: An unnumbered one-line text region of at most this many words whose line is at least
#: ``_HEADING_HEIGHT`` times the page's median line height is a heading ("Requirements").
_SHORT_HEADING_WORDS = 6
_HEADING_HEIGHT = 1.12
_FORMULA = re.compile(r"\S\s*=\s*\S")


def median_line_height(regions: Sequence[Region]) -> float:
    """The median height of the page's lines (0 when it has none): the body text's size."""
    heights = sorted(line.box[3] - line.box[1] for region in regions for line in _lines(region))
    return heights[len(heights) // 2] if heights else 0.0


def refined_label(region: Region, body_height: float = 0.0) -> str:
    """The layout model's label, corrected where the text says otherwise. The model often
    boxes a short heading ("2 Method", "Requirements") as text, a caption set apart from its
    table or figure as text, an equation as a title, and an image of nothing but text as a
    figure; all are plain to see in the words and their boxes. ``body_height`` is the page's
    :func:`median_line_height` (0: unknown, no unnumbered headings are found)."""
    label = str(region.get("label", "text")).lower()
    if label == "figure":
        return "text" if _text_cover(region) > _FIGURE_MAX_TEXT_COVER else label
    if label not in ("text", "title"):
        return label
    rows = _visual_rows(_lines(region))
    if not rows:
        return label
    first = _row_text(rows[0])
    caption = _CAPTION_START.match(first)
    if caption is not None:
        return "table_caption" if caption.group(1) else "figure_caption"
    text = join_lines([_row_text(row) for row in rows])
    if len(rows) == 1 and _FORMULA.search(text) and not text.endswith("."):
        return "equation"
    words = text.split()
    height = max(line.box[3] - line.box[1] for line in rows[0])
    if (
        label == "text"
        and len(rows) == 1
        and body_height > 0
        and height >= _HEADING_HEIGHT * body_height
        and len(words) <= _SHORT_HEADING_WORDS
        and text[:1].isupper()
        and not text.rstrip().endswith((".", ",", ";", ":"))
    ):
        return "title"
    number = _SECTION_NUMBER.match(text)
    if (
        label == "text"
        and len(rows) == 1
        and number is not None
        and 1 < len(text.split()) <= _HEADING_MAX_WORDS
        and not text.rstrip().endswith((".", ",", ";", ":"))
        and text[number.end() :][:1].isupper()
    ):
        return "title"
    return label


def _overlap_x(a: Box, b: Box) -> float:
    return min(a[2], b[2]) - max(a[0], b[0])


def _caption_targets(labels: list[str], boxes: list[Box]) -> dict[int, int]:
    """Caption region index → index of the table/figure region it belongs to: the nearest
    one vertically (above or below) among those in the same column (overlapping the caption
    horizontally by at least half of the narrower of the two) with no other region between
    them (captions aside: a table may have two). A caption with no such region is not in
    the result."""
    blockers = [
        j
        for j, label in enumerate(labels)
        if label not in _CAPTION_TARGETS and label not in _FURNITURE
    ]
    targets: dict[int, int] = {}
    for c, label in enumerate(labels):
        wanted = _CAPTION_TARGETS.get(label)
        if wanted is None:
            continue
        cap = boxes[c]
        best: tuple[float, float, int] | None = None
        for k, other in enumerate(labels):
            if other != wanted:
                continue
            box = boxes[k]
            overlap = _overlap_x(cap, box)
            if overlap <= 0 or overlap < _CAPTION_OVERLAP * min(cap[2] - cap[0], box[2] - box[0]):
                continue
            # The vertical span between the two (empty when they overlap).
            low, high = (cap[3], box[1]) if box[1] >= cap[3] else (box[3], cap[1])
            if any(
                j != k
                and _overlap_x(cap, boxes[j]) > 0
                and low < (boxes[j][1] + boxes[j][3]) / 2 < high
                for j in blockers
            ):
                continue
            gap = max(0.0, high - low)
            centres = abs((box[1] + box[3]) - (cap[1] + cap[3])) / 2
            if best is None or (gap, centres) < best[:2]:
                best = (gap, centres, k)
        if best is not None:
            targets[c] = best[2]
    return targets


# ---------------------------------------------------------------------------------------
# Document


class _PageBuilder:
    """Adds one analysed page's regions to the document."""

    def __init__(self, doc: DoclingDocument, page: AnalyzedPage, state: _State) -> None:
        self.doc = doc
        self.page = page
        self.state = state

    def page_box(self, box: Box) -> Box:
        """A pixel box in page units (top-left origin), clamped to the page."""
        s, w, h = self.page.scale, self.page.width, self.page.height
        left, top, right, bottom = box
        return (
            min(max(left / s, 0.0), w),
            min(max(top / s, 0.0), h),
            min(max(right / s, 0.0), w),
            min(max(bottom / s, 0.0), h),
        )

    def prov(self, box: Box, text: str) -> ProvenanceItem:
        """Provenance of an item: its box in page units, bottom-left origin (as docling)."""
        from docling_core.types.doc import BoundingBox, CoordOrigin, ProvenanceItem

        left, top, right, bottom = self.page_box(box)
        bbox = BoundingBox(
            l=left, t=top, r=right, b=bottom, coord_origin=CoordOrigin.TOPLEFT
        ).to_bottom_left_origin(page_height=self.page.height)
        return ProvenanceItem(page_no=self.page.page_no, bbox=bbox, charspan=(0, len(text)))

    def table_data(self, region: Region, rows: list[list[_Line]]) -> TableData:
        """The region's grid as ``TableData``; without a grid, one column with a row per
        text line. Cell boxes are in page units with a top-left origin, as docling's table
        model gives them."""
        from docling_core.types.doc import BoundingBox, CoordOrigin, TableCell, TableData

        def bbox(box: Any) -> BoundingBox | None:
            if not box:
                return None
            left, top, right, bottom = self.page_box(_box(box))
            return BoundingBox(l=left, t=top, r=right, b=bottom, coord_origin=CoordOrigin.TOPLEFT)

        grid = region.get("table")
        n_rows = int(grid.get("rows", 0)) if grid else 0
        n_cols = int(grid.get("cols", 0)) if grid else 0
        cells = []
        if grid and n_rows > 0 and n_cols > 0:
            for cell in grid.get("cells") or []:
                row, col = int(cell["row"]), int(cell["col"])
                if not (0 <= row < n_rows and 0 <= col < n_cols):
                    continue  # outside the grid it claims: nothing to place it in
                end_row = min(row + max(int(cell.get("row_span", 1)), 1), n_rows)
                end_col = min(col + max(int(cell.get("col_span", 1)), 1), n_cols)
                cells.append(
                    TableCell(
                        text=str(cell.get("text", "")).strip(),
                        start_row_offset_idx=row,
                        end_row_offset_idx=end_row,
                        start_col_offset_idx=col,
                        end_col_offset_idx=end_col,
                        row_span=end_row - row,
                        col_span=end_col - col,
                        column_header=row == 0,
                        bbox=bbox(cell.get("box")),
                    )
                )
            return TableData(num_rows=n_rows, num_cols=n_cols, table_cells=cells)
        for i, row_lines in enumerate(rows):
            cells.append(
                TableCell(
                    text=_row_text(row_lines),
                    start_row_offset_idx=i,
                    end_row_offset_idx=i + 1,
                    start_col_offset_idx=0,
                    end_col_offset_idx=1,
                    bbox=bbox(_union([line.box for line in row_lines])),
                )
            )
        return TableData(num_rows=len(rows), num_cols=1 if rows else 0, table_cells=cells)

    def add(self) -> None:
        from docling_core.types.doc import DocItemLabel

        analysis = self.page.analysis
        regions = [r for r in (analysis.get("regions") or [] if analysis else []) if r.get("box")]
        body_height = median_line_height(regions)
        labels = [refined_label(r, body_height) for r in regions]
        boxes = [_region_box(r) for r in regions]
        body = [i for i, label in enumerate(labels) if label not in _FURNITURE]
        headers = [i for i, label in enumerate(labels) if label == "header"]
        footers = [i for i, label in enumerate(labels) if label == "footer"]

        def ordered(ids: list[int]) -> list[int]:
            return [ids[k] for k in reading_order([boxes[i] for i in ids])]

        captions = _caption_targets(labels, boxes)
        captions_of: dict[int, list[int]] = {}
        body_order = ordered(body)
        for i in body_order:
            if i in captions:
                captions_of.setdefault(captions[i], []).append(i)

        for i in ordered(headers):
            self.add_furniture(regions[i], boxes[i], DocItemLabel.PAGE_HEADER)
        for i in body_order:
            if i in captions:
                continue  # added with its table or figure
            self.add_region(regions[i], labels[i], boxes[i], captions_of.get(i, []), regions)
        for i in ordered(footers):
            self.add_furniture(regions[i], boxes[i], DocItemLabel.PAGE_FOOTER)

    def add_furniture(self, region: Region, box: Box, label: DocItemLabel) -> None:
        from docling_core.types.doc import ContentLayer

        text = join_lines([_row_text(row) for row in _visual_rows(_lines(region))])
        if text:
            self.doc.add_text(
                label=label,
                text=text,
                prov=self.prov(box, text),
                content_layer=ContentLayer.FURNITURE,
            )

    def add_captions(
        self, target: FloatingItem, caption_ids: list[int], regions: list[Region]
    ) -> None:
        from docling_core.types.doc import DocItemLabel

        for c in caption_ids:
            text = join_lines([_row_text(row) for row in _visual_rows(_lines(regions[c]))])
            if not text:
                continue
            item = self.doc.add_text(
                label=DocItemLabel.CAPTION,
                text=text,
                prov=self.prov(_region_box(regions[c]), text),
                parent=target,
            )
            target.captions.append(item.get_ref())

    def add_region(
        self,
        region: Region,
        label: str,
        box: Box,
        caption_ids: list[int],
        regions: list[Region],
    ) -> None:
        from docling_core.types.doc import DocItemLabel

        doc, state = self.doc, self.state
        rows = _visual_rows(_lines(region))
        text = join_lines([_row_text(row) for row in rows])

        if label == "text":
            items = _list_items(rows)
            if items is not None:
                if state.list_group is None:
                    state.list_group = doc.add_list_group()
                for marker, enumerated, item_text, item_box in items:
                    doc.add_list_item(
                        text=item_text,
                        enumerated=enumerated,
                        marker=marker,
                        prov=self.prov(item_box, item_text),
                        parent=state.list_group,
                    )
                return
        if not text and label not in ("table", "figure", "equation"):
            return  # a region without text makes no item
        state.list_group = None  # any other body item ends a list

        if label == "title":
            if state.title_pending and _SECTION_NUMBER.match(text) is None:
                doc.add_title(text=text, prov=self.prov(box, text))
            else:
                doc.add_heading(text=text, level=_heading_level(text), prov=self.prov(box, text))
            state.title_pending = False
        elif label == "table":
            table = doc.add_table(data=self.table_data(region, rows), prov=self.prov(box, ""))
            self.add_captions(table, caption_ids, regions)
        elif label == "figure":
            picture = doc.add_picture(prov=self.prov(box, ""))
            self.add_captions(picture, caption_ids, regions)
            # The text drawn in the figure, one item per row, inside the picture.
            for row in rows:
                row_text = _row_text(row)
                doc.add_text(
                    label=DocItemLabel.TEXT,
                    text=row_text,
                    prov=self.prov(_union([line.box for line in row]), row_text),
                    parent=picture,
                )
        elif label == "equation":
            doc.add_formula(text=text, prov=self.prov(box, text))
        elif label in ("table_caption", "figure_caption"):
            doc.add_text(label=DocItemLabel.CAPTION, text=text, prov=self.prov(box, text))
        elif label == "reference":
            doc.add_text(label=DocItemLabel.REFERENCE, text=text, prov=self.prov(box, text))
        else:  # "text" and any label the layout model may add later
            doc.add_text(label=DocItemLabel.TEXT, text=text, prov=self.prov(box, text))


@dataclass
class _State:
    """What carries over from region to region and page to page."""

    title_pending: bool = True  # the first page's first title region is not yet seen
    list_group: ListGroup | None = None  # the list that list items continue


def build_layout_document(
    name: str,
    kind: str,
    data: bytes,
    pages: list[AnalyzedPage],
    *,
    origin: DocumentOrigin | None = None,
) -> DoclingDocument:
    """A ``DoclingDocument`` from analysed pages (see the module docstring for the rules).

    ``kind`` is ``"pdf"`` or ``"image"``; ``origin`` defaults to ``document_origin(name,
    kind, data)``. Every page is added with its size, failed ones too (without items); pages
    go in page number order. Within a page: headers first, then the body regions in
    ``reading_order``, footers last. Every item has one provenance with its box in page
    units (the pixel box divided by ``scale``, clamped to the page, bottom-left origin) and
    the character span of its text.
    """
    from docling_core.types.doc import DoclingDocument, Size

    doc = DoclingDocument(
        name=PurePosixPath(name).stem or "document",
        origin=origin if origin is not None else document_origin(name, kind, data),
    )
    state = _State()
    for index, page in enumerate(sorted(pages, key=lambda p: p.page_no)):
        doc.add_page(page_no=page.page_no, size=Size(width=page.width, height=page.height))
        if page.analysis is not None:
            _PageBuilder(doc, page, state).add()
        if index == 0:
            state.title_pending = False  # only the first page has the document title
    return doc
