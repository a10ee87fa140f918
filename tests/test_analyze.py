"""Page analysis in the workers: regions, table grids, text cells, and hostile pages."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import vram_orchestrator as vo
from conftest import alive, wait_for

DOCUMENTS = Path(__file__).parent / "data" / "documents"
LABELS = {
    "text",
    "title",
    "figure",
    "figure_caption",
    "table",
    "table_caption",
    "header",
    "footer",
    "reference",
    "equation",
}


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def table_page(rows: int, cols: int, cell_w: int = 150, cell_h: int = 40) -> bytes:
    """A white page with a title, a paragraph and a ruled table of ``rows`` x ``cols``
    whose cells read ``r{row}c{col}``."""
    width = max(1240, cols * cell_w + 200)
    height = max(1754, rows * cell_h + 600)
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((100, 60), "Station network - annual report 2026", font=_font(18), fill="black")
    d.text((100, 160), "Quarterly results", font=_font(44), fill="black")
    body = _font(24)
    for i, line in enumerate(
        (
            "The table below lists the measured values for every station and",
            "quarter; the last column holds the yearly total of each row.",
        )
    ):
        d.text((100, 260 + 34 * i), line, font=body, fill="black")
    x0, y0 = 100, 400
    for r in range(rows + 1):
        d.line([(x0, y0 + r * cell_h), (x0 + cols * cell_w, y0 + r * cell_h)], fill="black")
    for c in range(cols + 1):
        d.line([(x0 + c * cell_w, y0), (x0 + c * cell_w, y0 + rows * cell_h)], fill="black")
    small = _font(max(10, min(22, cell_h - 16)))
    for r in range(rows):
        for c in range(cols):
            at = (x0 + c * cell_w + 10, y0 + r * cell_h + 8)
            d.text(at, f"r{r}c{c}", font=small, fill="black")
    return _png(img)


def _check_structure(result: dict) -> None:
    assert result["width"] > 0 and result["height"] > 0
    seen: list[int] = []
    line_ids = {id(line): i for i, line in enumerate(result["lines"])}
    for region in result["regions"]:
        assert region["label"] in LABELS, region["label"]
        left, top, right, bottom = region["box"]
        assert -1 <= left <= right <= result["width"] + 1, region
        assert -1 <= top <= bottom <= result["height"] + 1, region
        seen.extend(line_ids[id(line)] for line in region["lines"])
    assert sorted(seen) == list(range(len(result["lines"]))), "every line in exactly one region"


@pytest.fixture
def pool(make_pool):
    return make_pool(free_vram_on_idle=False, max_workers=1)


def test_a_scanned_report_gets_its_title_table_and_furniture(pool):
    name = "d01_storage_report"
    truth = json.loads((DOCUMENTS / f"{name}.json").read_text())
    result = pool.analyze(str(DOCUMENTS / f"{name}-scan.jpg"))
    _check_structure(result)
    by_label: dict[str, list[dict]] = {}
    for r in result["regions"]:
        by_label.setdefault(r["label"], []).append(r)
    [title] = by_label["title"][:1]
    want = next(b["text"] for b in truth["blocks"] if b["kind"] == "title")
    assert " ".join(line["text"] for line in title["lines"]) == want
    assert {"header", "footer", "table", "table_caption"} <= by_label.keys(), by_label.keys()
    [table] = by_label["table"]
    grid = table["table"]
    [truth_table] = [b["table"] for b in truth["blocks"] if b["kind"] == "table"]
    assert (grid["rows"], grid["cols"]) == (truth_table["rows"], truth_table["cols"])
    got = {(c["row"], c["col"]): c["text"] for c in grid["cells"]}
    right = sum(got.get((c["row"], c["col"])) == c["text"] for c in truth_table["cells"])
    assert right >= 0.9 * len(truth_table["cells"]), got
    assert result["timings_ms"]["layout"] > 0 and result["timings_ms"]["table"] > 0


def test_a_ruled_table_gets_its_grid(pool):
    result = pool.analyze(table_page(4, 3))
    _check_structure(result)
    [table] = [r["table"] for r in result["regions"] if r["label"] == "table"]
    assert table["rows"] == 4 and table["cols"] == 3, table
    texts = {(c["row"], c["col"]): c["text"] for c in table["cells"]}
    right = sum(texts.get((r, c)) == f"r{r}c{c}" for r in range(4) for c in range(3))
    assert right >= 10, texts


def test_tables_can_be_left_out(pool):
    result = pool.analyze(table_page(3, 3), tables=False)
    assert all(r["table"] is None for r in result["regions"])
    assert any(r["label"] == "table" for r in result["regions"])


def test_text_cells_replace_ocr(pool):
    page = table_page(2, 2)
    cells = [
        {"text": "Quarterly results", "box": (100, 80, 480, 130)},
        ("The table below lists", (100, 180, 700, 210)),
    ]
    result = pool.analyze(page, text_cells=cells)
    _check_structure(result)
    assert [line["text"] for line in result["lines"]] == [
        "Quarterly results",
        "The table below lists",
    ]
    assert result["timings_ms"]["det"] == 0.0, "no OCR ran"
    assert result["lines"][0]["box"][0] == [100.0, 80.0]


def test_bad_text_cells_are_invalid_input(pool):
    with pytest.raises(vo.InvalidInput, match=r"text_cells\[0\]"):
        pool.analyze(table_page(2, 2), text_cells=[{"text": "x"}])


@pytest.mark.parametrize(
    "name, image",
    [
        ("all white", np.full((1754, 1240, 3), 255, np.uint8)),
        ("all black", np.zeros((1754, 1240, 3), np.uint8)),
        ("one pixel high", np.full((1, 900, 3), 255, np.uint8)),
        ("one pixel", np.zeros((1, 1), np.uint8)),
        ("only a picture", (np.indices((800, 600)).sum(0) % 255).astype(np.uint8)),
    ],
)
def test_hostile_pages_give_a_result_and_the_worker_lives(pool, name, image):
    result = pool.analyze(image)
    _check_structure(result)
    pid = result["worker"]["pid"]
    again = pool.analyze(np.full((200, 200), 255, np.uint8))
    assert again["worker"]["pid"] == pid, f"{name}: the worker was replaced"


def test_a_400_cell_table_gives_a_grid_or_a_clear_error(pool):
    try:
        result = pool.analyze(table_page(40, 10, cell_w=110, cell_h=34), timeout_s=120)
    except vo.InvalidInput as e:
        assert "table" in str(e)
    else:
        _check_structure(result)
        tables = [r["table"] for r in result["regions"] if r["table"]]
        assert tables and max(t["rows"] * t["cols"] for t in tables) >= 100, tables
    assert pool.analyze(np.full((200, 200), 255, np.uint8))["regions"] == []


def test_empty_bytes_are_invalid_input(pool):
    with pytest.raises(vo.InvalidInput):
        pool.analyze(b"")


def test_analysis_runs_the_default_profile_in_a_reference_pool(make_pool):
    pool = make_pool(
        free_vram_on_idle=False, max_workers=1, ocr_profile="reference", model_set="ppocr-v4"
    )
    result = pool.analyze(table_page(4, 3))
    assert any(r["label"] == "table" for r in result["regions"])


def test_analyze_async_matches_analyze(pool):
    page = table_page(3, 2)
    a = asyncio.run(pool.analyze_async(page))
    b = pool.analyze(page)
    assert [r["label"] for r in a["regions"]] == [r["label"] for r in b["regions"]]


def test_release_idle_ends_the_workers_that_hold_the_document_models(pool):
    pid = pool.analyze(table_page(3, 3))["worker"]["pid"]
    assert alive(pid)
    pool.release_idle()
    assert wait_for(lambda: not alive(pid), 10), "the worker kept its models after release"
    # A fresh worker loads them again on the next analysis.
    again = pool.analyze(table_page(3, 3))
    assert again["worker"]["pid"] != pid
    assert any(r["table"] for r in again["regions"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e300])
def test_text_cells_with_boxes_that_are_no_pixels_are_invalid_input(pool, value):
    with pytest.raises(vo.InvalidInput, match=r"text_cells\[1\]"):
        pool.analyze(table_page(2, 2), text_cells=[("a", (0, 0, 9, 9)), ("b", (value, 0, 9, 9))])
    assert pool.analyze(np.full((200, 200), 255, np.uint8))["regions"] == []


@pytest.mark.parametrize("value", [0.0, -50.0, 1e7])
def test_text_cells_off_the_page_or_empty_are_read_as_given(pool, value):
    result = pool.analyze(table_page(2, 2), text_cells=[("edge", (value, value, value, value))])
    assert [line["text"] for line in result["lines"]] == ["edge"]
    held = [line["text"] for r in result["regions"] for line in r["lines"]]
    assert held == ["edge"], "the caller's line is in one region, where the caller put it"
