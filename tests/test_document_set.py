"""The generated document set (tests/data/documents, made by bench/documents.py) and its
scorer (bench/document_score.py): the checked-in files agree with their ground truth, the
truth is well formed, and each metric reacts to exactly the damage it is meant to see.
Needs neither reportlab nor a worker; the PDF checks need pypdfium2."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import load_bench

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "tests" / "data" / "documents"
MAX_SET_BYTES = 3_000_000

ds = load_bench("document_score")

MANIFEST = json.loads((DOCS / "manifest.json").read_text())
NAMES = [d["name"] for d in MANIFEST["documents"]]
TRUTHS = {t.name: t for t in ds.load_set(DOCS)}
TWO_COLUMN = [n for n in NAMES if TRUTHS[n].two_column]


def metrics(score) -> dict[str, float | None]:
    d = score.as_dict()
    return {k: d[k] for k in ("headers_f1", "tables_f1", "cell_exactness", "reading_order")}


def perfect(score) -> dict[str, float | None]:
    """The metrics as they are when nothing is wrong (None where there is nothing to count)."""
    return {k: (None if v is None else 1.0) for k, v in metrics(score).items()}


# ---------------------------------------------------------------- files and sizes


def test_manifest_lists_existing_files_and_splits():
    assert len(NAMES) == len(set(NAMES)) >= 10
    for doc in MANIFEST["documents"]:
        for rel in (doc["truth"], *doc["files"].values()):
            assert (DOCS / rel).is_file(), rel
        assert TRUTHS[doc["name"]].split == doc["split"]
    heldout = [d for d in MANIFEST["documents"] if d["split"] == "heldout"]
    assert {d["split"] for d in MANIFEST["documents"]} == {"dev", "heldout"}
    assert 0.2 <= len(heldout) / len(NAMES) <= 0.4
    assert sorted(d["name"] for d in heldout) == sorted(MANIFEST["splits"]["heldout"])
    listed = {doc["truth"] for doc in MANIFEST["documents"]} | {
        f for doc in MANIFEST["documents"] for f in doc["files"].values()
    }
    on_disk = {p.name for p in DOCS.iterdir()} - {"manifest.json"}
    assert on_disk == listed, "files in the folder that the manifest does not list"


def test_set_is_small():
    total = sum(p.stat().st_size for p in DOCS.iterdir())
    assert total <= MAX_SET_BYTES, total


def test_manifest_counts_match_truth():
    for doc in MANIFEST["documents"]:
        blocks = TRUTHS[doc["name"]].blocks
        tables = [b.table for b in blocks if b.kind == "table"]
        assert doc["tables"] == len(tables)
        assert doc["cells"] == sum(len(t.cells) for t in tables)
        assert doc["headers"] == sum(b.kind in ds.HEADER_KINDS for b in blocks)
        assert doc["paragraphs"] == sum(b.kind == "paragraph" for b in blocks)


# ---------------------------------------------------------------- ground truth is well formed


@pytest.mark.parametrize("name", NAMES)
def test_truth_validates(name):
    truth = TRUTHS[name]
    raw = truth.raw
    assert raw["page"]["size"] in ("A4", "Letter")
    assert (truth.width, truth.height) in ((595.2756, 841.8898), (612.0, 792.0))
    kinds = [b.kind for b in truth.blocks]
    assert set(kinds) <= set(ds.KINDS)
    assert kinds[0] == "page_header" and kinds[-1] == "page_footer"
    assert kinds.count("title") == 1
    for b in truth.blocks:
        left, top, right, bottom = b.box
        assert 0 <= left < right <= truth.width and 0 <= top < bottom <= truth.height, b
        if b.kind in ("table", "figure"):
            assert b.text is None
        else:
            assert isinstance(b.text, str) and b.text == ds.normalise(b.text) and b.text
        assert (b.table is not None) == (b.kind == "table")
    for b in truth.blocks:
        if b.table is not None:
            check_table(b.table)
    for k, b in enumerate(truth.blocks):
        if b.kind == "caption" and b.text.startswith("Table"):
            assert truth.blocks[k + 1].kind == "table"  # table captions sit above
        if b.kind == "caption" and b.text.startswith("Figure"):
            assert truth.blocks[k - 1].kind == "figure"  # figure captions below
        if b.kind == "caption":
            assert re.match(r"(Table|Figure) \d+: \S", b.text)


def check_table(table):
    assert 3 <= table.rows <= 12 and 3 <= table.cols <= 7
    assert table.header_rows >= 1
    seen: set[tuple[int, int]] = set()
    for c in table.cells:
        assert c.row_span >= 1 and c.col_span >= 1
        assert 0 <= c.row and c.row + c.row_span <= table.rows
        assert 0 <= c.col and c.col + c.col_span <= table.cols
        area = {
            (r, k)
            for r in range(c.row, c.row + c.row_span)
            for k in range(c.col, c.col + c.col_span)
        }
        assert not area & seen, f"overlapping cell {c}"
        seen |= area
        assert c.text and c.text == ds.normalise(c.text)
    assert len(seen) == table.rows * table.cols, "grid not covered"
    header_cols = {
        k
        for c in table.cells
        if c.row < table.header_rows
        for k in range(c.col, c.col + c.col_span)
    }
    assert header_cols == set(range(table.cols)), "no full header row"


@pytest.mark.parametrize("name", TWO_COLUMN)
def test_two_column_order(name):
    """Full-width blocks first (and the footer last), then column 0, then column 1."""
    cols = [b.column for b in TRUTHS[name].blocks]
    assert set(cols) == {None, 0, 1}
    flowed = [c for c in cols if c is not None]
    assert flowed == sorted(flowed)
    first, last = cols.index(0), len(cols) - 1 - cols[::-1].index(1)
    assert all(c is not None for c in cols[first : last + 1])
    # column 1 lies right of column 0
    right0 = max(b.box[2] for b in TRUTHS[name].blocks if b.column == 0)
    left1 = min(b.box[0] for b in TRUTHS[name].blocks if b.column == 1)
    assert right0 < left1


def test_one_column_pages_have_no_columns():
    for name in NAMES:
        if not TRUTHS[name].two_column:
            assert all(b.column is None for b in TRUTHS[name].blocks)


def test_set_covers_the_structures():
    blocks = [b for t in TRUTHS.values() for b in t.blocks]
    tables = [b.table for b in blocks if b.kind == "table"]
    raw_tables = [b["table"] for t in TRUTHS.values() for b in t.raw["blocks"] if b.get("table")]
    assert len(tables) >= 8
    assert len(TWO_COLUMN) >= 3
    assert any(c.col_span == 2 and c.row < t.header_rows for t in tables for c in t.cells)
    assert any(c.row_span >= 2 for t in tables for c in t.cells)
    assert {t["rules"] for t in raw_tables} == {"grid", "horizontal"}
    assert sum(b.kind == "figure" for b in blocks) >= 3
    assert sum(b.kind == "formula" for b in blocks) >= 3
    assert sum(b.kind == "section_header" and b.text[0].isdigit() for b in blocks) >= 10
    assert sum(b.kind == "section_header" and not b.text[0].isdigit() for b in blocks) >= 5
    hyphenated = [b for t in TRUTHS.values() for b in t.raw["blocks"] if b.get("hyphens")]
    assert len(hyphenated) >= 10
    fonts = {f.split("-")[0] for t in TRUTHS.values() for f in t.raw["fonts"]}
    assert fonts == {"Helvetica", "Times", "Courier"}


# ---------------------------------------------------------------- files agree with the truth


@contextmanager
def pdf_page(path: Path) -> Iterator:
    """The only page of a one-page PDF (skips without pypdfium2)."""
    pdfium = pytest.importorskip("pypdfium2")
    pdf = pdfium.PdfDocument(str(path))
    try:
        assert len(pdf) == 1
        yield pdf[0]
    finally:
        pdf.close()


def pdf_text(path: Path) -> tuple[str, int]:
    with pdf_page(path) as page:
        textpage = page.get_textpage()
        return textpage.get_text_range(), textpage.count_chars()


def page_text_normalised(text: str) -> str:
    # pdfium reports a hyphen at a line end as U+FFFE and drops the line break after it
    text = text.replace("\ufffe", "").replace("-\r\n", "").replace("\r\n", " ")
    return ds.normalise(text)


@pytest.mark.parametrize("name", NAMES)
def test_pdf_text_layer_holds_every_block(name):
    truth = TRUTHS[name]
    text, _ = pdf_text(DOCS / truth.raw["files"]["pdf"])
    page = page_text_normalised(text)
    for b in truth.blocks:
        if b.text is not None:
            assert ds.normalise(b.text) in page, b.text
        if b.table is not None:
            for c in b.table.cells:
                assert c.text in page, c.text
    # and the hyphenated breaks are really there
    hyphens = sum(b.get("hyphens", 0) for b in truth.raw["blocks"])
    assert text.count("\ufffe") == hyphens


@pytest.mark.parametrize("name", NAMES)
def test_image_forms_match_the_pixel_scale(name):
    Image = pytest.importorskip("PIL.Image")
    truth = TRUTHS[name]
    image = truth.raw["image"]
    assert image["scale"] == pytest.approx(150 / 72) and truth.scale == image["scale"]
    assert abs(image["width"] - truth.width * truth.scale) <= 1
    assert abs(image["height"] - truth.height * truth.scale) <= 1
    with Image.open(DOCS / truth.raw["files"]["scan"]) as scan:
        assert scan.size == (image["width"], image["height"])
        assert scan.mode == "L"
    assert abs(image["scan_damage"]["rotate_deg"]) <= 0.5
    notext = DOCS / truth.raw["files"]["notext_pdf"]
    _, chars = pdf_text(notext)
    assert chars == 0, "the image-only PDF has a text layer"
    with pdf_page(notext) as page:
        assert page.get_size() == pytest.approx((truth.width, truth.height), abs=0.01)


# ---------------------------------------------------------------- scoring


@pytest.mark.parametrize("name", NAMES)
def test_truth_against_itself_is_perfect(name):
    truth = TRUTHS[name]
    score = ds.score_page(truth, truth.blocks)
    assert metrics(score) == perfect(score)
    assert score.headers.tp > 0 and score.headers.fp == score.headers.fn == 0
    assert score.order.correct
    if any(b.kind == "table" for b in truth.blocks):
        assert score.cells.value == 1.0 and score.tables.tp >= 1
    if truth.two_column:
        assert score.order.fraction == 1.0


def test_aggregate_of_truth_is_perfect():
    agg = ds.aggregate(ds.score_page(t, t.blocks) for t in TRUTHS.values())
    for key in ("headers_f1", "section_headers_f1", "tables_f1", "cell_exactness", "reading_order"):
        assert agg[key] == 1.0, key
    assert agg["reading_order_pages_correct"] == agg["two_column_pages"] == len(TWO_COLUMN)
    assert agg["counts"]["tables"]["tp"] >= 8


def score_change(truth, pred):
    """The score of ``pred`` and the metrics in which it differs from the truth's own."""
    base, score = metrics(ds.score_page(truth, truth.blocks)), ds.score_page(truth, pred)
    return score, {k for k, v in metrics(score).items() if v != base[k]}


@pytest.mark.parametrize("name", NAMES)
def test_dropping_a_header_lowers_only_header_f1(name):
    truth = TRUTHS[name]
    pred = list(truth.blocks)
    k = next(i for i, b in enumerate(pred) if b.kind == "section_header")
    del pred[k]
    score, changed = score_change(truth, pred)
    assert changed == {"headers_f1"}
    assert score.headers.fn == 1 and score.headers.fp == 0
    assert score.section_headers.f1 < 1.0


def test_title_counts_in_headers_but_not_in_section_headers():
    truth = TRUTHS[NAMES[0]]
    pred = [b for b in truth.blocks if b.kind != "title"]
    score = ds.score_page(truth, pred)
    assert score.headers.fn == 1 and score.section_headers.f1 == 1.0


def test_header_text_similarity_threshold():
    truth = TRUTHS[NAMES[0]]
    k = next(i for i, b in enumerate(truth.blocks) if b.kind == "section_header")
    header = truth.blocks[k].text
    for text, matches in (
        (header.upper() + "  ", True),  # case and spacing are normalised away
        (header[:-1] + "#", len(header) >= 5),  # one wrong character
        ("Completely different words", False),
    ):
        pred = list(truth.blocks)
        pred[k] = replace(pred[k], text=text)
        assert (ds.score_page(truth, pred).headers.f1 == 1.0) == matches, text


@pytest.mark.parametrize(
    "name", [n for n in NAMES if any(b.kind == "table" for b in TRUTHS[n].blocks)]
)
def test_changing_a_cell_lowers_only_cell_exactness(name):
    truth = TRUTHS[name]
    pred = copy.deepcopy(truth.blocks)
    table = next(b.table for b in pred if b.kind == "table")
    cell = table.cells[-1]
    table.cells[-1] = replace(cell, text=cell.text + "0")
    score, changed = score_change(truth, pred)
    assert changed == {"cell_exactness"}
    assert score.cells.hits == score.cells.total - 1
    # case counts, whitespace does not
    table.cells[-1] = replace(cell, text=" " + cell.text.upper().replace(" ", "  ") + " ")
    expect = score.cells.total - (cell.text.upper() != cell.text)
    assert ds.score_page(truth, pred).cells.hits == expect


def test_moving_a_table_lowers_table_f1_and_cells():
    truth = TRUTHS[NAMES[0]]
    pred = copy.deepcopy(truth.blocks)
    k = next(i for i, b in enumerate(pred) if b.kind == "table")
    left, top, right, bottom = pred[k].box
    h = bottom - top
    pred[k] = replace(pred[k], box=(left, top + 0.7 * h, right, bottom + 0.7 * h))  # IoU < 0.5
    score = ds.score_page(truth, pred)
    assert score.tables.tp == 0 and score.tables.fp == score.tables.fn == 1
    assert score.cells.value == 0.0
    pred[k] = replace(pred[k], box=(left, top + 0.2 * h, right, bottom + 0.2 * h))  # IoU 0.67
    assert ds.score_page(truth, pred).tables.f1 == 1.0


@pytest.mark.parametrize("name", TWO_COLUMN)
def test_swapping_two_paragraphs_lowers_only_reading_order(name):
    truth = TRUTHS[name]
    pred = list(truth.blocks)
    paras = [i for i, b in enumerate(pred) if b.kind == "paragraph"]
    i, j = paras[-2], paras[-1]
    pred[i], pred[j] = pred[j], pred[i]
    score, changed = score_change(truth, pred)
    assert changed == {"reading_order"}
    assert score.order.in_order == score.order.pairs - 1
    assert not score.order.correct


def test_reading_order_counts_missing_paragraphs():
    truth = TRUTHS[TWO_COLUMN[0]]
    k = next(i for i, b in enumerate(truth.blocks) if b.kind == "paragraph")
    pred = [b for i, b in enumerate(truth.blocks) if i != k]
    score = ds.score_page(truth, pred)
    assert score.order.missing == 1 and not score.order.correct
    assert score.order.fraction < 1.0


def test_merged_paragraphs_keep_their_order():
    truth = TRUTHS[TWO_COLUMN[0]]
    pred = list(truth.blocks)
    i, j = [k for k, b in enumerate(pred) if b.kind == "paragraph"][-2:]
    merged = replace(pred[i], text=f"{pred[i].text} {pred[j].text}")
    pred = [*pred[:i], merged, *pred[i + 1 : j], *pred[j + 1 :]]
    assert ds.score_page(truth, pred).order.correct
    swapped = replace(merged, text=f"{truth.blocks[j].text} {truth.blocks[i].text}")
    pred[i] = swapped
    assert not ds.score_page(truth, pred).order.correct


# ---------------------------------------------------------------- adapters


@pytest.mark.parametrize("name", NAMES)
def test_docling_round_trip_is_perfect(name, tmp_path):
    pytest.importorskip("docling_core")
    from docling_core.types.doc import DoclingDocument

    truth = TRUTHS[name]
    doc = ds.docling_from_blocks(truth.blocks, truth.width, truth.height)
    path = tmp_path / f"{name}.json"
    doc.save_as_json(path)
    blocks = ds.blocks_from_docling(DoclingDocument.load_from_json(path))
    assert [b.kind for b in blocks] == [b.kind for b in truth.blocks]
    for a, b in zip(blocks, truth.blocks):
        assert a.box == pytest.approx(b.box, abs=1e-6)
    score = ds.score_page(truth, blocks)
    assert metrics(score) == perfect(score)
    assert ds.blocks_from_docling(doc, page_no=2) == []


def analyze_result(truth, scale: float) -> dict:
    """The truth as the worker would report it: pixels, CDLA labels, top-to-bottom order."""
    labels = {v: k for k, v in ds.ANALYZE_KINDS.items() if k not in ("reference", "table_caption")}
    labels["title"] = "title"
    labels["caption"] = "figure_caption"
    regions = []
    for b in truth.blocks:
        px = [v * scale for v in b.box]
        region = {"label": labels[b.kind], "score": 0.9, "box": px, "lines": [], "table": None}
        if b.text:
            region["lines"] = [
                {"text": w, "score": 1.0, "box": [[0, 0]] * 4} for w in b.text.split(" ")
            ]
        if b.table is not None:
            region["table"] = {
                "rows": b.table.rows,
                "cols": b.table.cols,
                "cells": [
                    {
                        "row": c.row,
                        "col": c.col,
                        "row_span": c.row_span,
                        "col_span": c.col_span,
                        "box": px,
                        "text": c.text,
                    }
                    for c in b.table.cells
                ],
            }
        regions.append(region)
    regions.sort(key=lambda r: r["box"][1])
    return {"width": 0, "height": 0, "rotation": 0, "lines": [], "regions": regions}


def test_analyze_adapter_converts_pixels_and_keeps_worker_order():
    broken = 0
    for name in NAMES:
        truth = TRUTHS[name]
        result = analyze_result(truth, truth.scale)
        blocks = ds.blocks_from_analyze(result, truth.scale)
        boxes = sorted(tuple(round(v, 6) for v in b.box) for b in blocks)
        assert boxes == sorted(tuple(round(v, 6) for v in b.box) for b in truth.blocks)
        score = ds.score_page(truth, blocks)
        assert score.headers.f1 == 1.0 and score.tables.f1 == 1.0
        assert score.cells.value in (None, 1.0)
        if truth.two_column:
            broken += not score.order.correct
    # top-to-bottom is not the reading order of a two-column page
    assert broken == len(TWO_COLUMN)


def test_block_dict_round_trip():
    for truth in TRUTHS.values():
        for raw, block in zip(truth.raw["blocks"], truth.blocks):
            again = ds.block_from_dict(ds.block_to_dict(block))
            assert again == block
            assert ds.block_to_dict(block)["box"] == raw["box"]


def test_metric_helpers():
    assert ds.similarity("abcd", "abcd") == 1.0
    assert ds.similarity("abcd", "abce") == 0.75
    assert ds.box_iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(1 / 3)
    assert ds.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert (
        ds.PRF().f1 == 1.0
        and ds.PRF(0, 1, 0).f1 == 0.0
        and ds.PRF(1, 1, 0).f1 == pytest.approx(2 / 3)
    )
    assert ds.greedy_match([[0.9, 0.95], [0.96, 0.1]], 0.5) == [(0, 1), (1, 0)]


def test_cli_scores_truth_against_itself(tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert ds.main(["--json", str(out)]) == 0
    agg = json.loads(out.read_text())["truth against itself"]["aggregate"]
    assert agg["headers_f1"] == agg["tables_f1"] == agg["cell_exactness"] == 1.0
    assert agg["reading_order"] == 1.0
    assert "truth against itself" in capsys.readouterr().out


def test_cli_scores_docling_json(tmp_path, capsys):
    pytest.importorskip("docling_core")
    folder = tmp_path / "docling"
    assert ds.main(["--write-docling", str(folder), "--split", "heldout"]) == 0
    assert sorted(p.stem for p in folder.iterdir()) == sorted(MANIFEST["splits"]["heldout"])
    out = tmp_path / "scores.json"
    assert ds.main(["--docling", str(folder), "--json", str(out)]) == 0
    run = json.loads(out.read_text())[f"DoclingDocument JSON in {folder}"]
    assert run["aggregate"]["pages"] == len(MANIFEST["splits"]["heldout"])
    assert run["aggregate"]["headers_f1"] == 1.0
    assert sorted(run["missing"]) == sorted(set(NAMES) - set(MANIFEST["splits"]["heldout"]))
