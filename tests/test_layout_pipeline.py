"""The layout pipeline end to end: the structured document set through our workers into
DoclingDocuments, scored against its ground truth, and through VramWorkerOrchestrator."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import pytest

pytest.importorskip("docling_core")

from test_docling_orchestrator import (
    IGNORE_DOCLING_DEPRECATED,
    fetch,
    md_options,
    serve_enqueue,
    serving,
    wait_complete,
)
from vram_orchestrator.docling._pages import ConversionSettings
from vram_orchestrator.docling._sources import LoadedSource
from vram_orchestrator.docling.pipelines import layout

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import document_score as ds

DOCUMENTS = Path(__file__).parent / "data" / "documents"

#: The floors the product promises on the structured set (docs/benchmarks.md, documents).
FLOORS = {
    ".pdf": {"headers_f1": 0.9, "tables_f1": 0.9, "cell_exactness": 0.9},
    "-notext.pdf": {"headers_f1": 0.9, "tables_f1": 0.9, "cell_exactness": 0.85},
    "-scan.jpg": {"headers_f1": 0.9, "tables_f1": 0.9, "cell_exactness": 0.85},
}


def _scaled(box, k):
    return tuple(v * k for v in box)


def _scores(pool, form: str) -> dict:
    scores = []
    for truth in ds.load_set(DOCUMENTS):
        path = DOCUMENTS / f"{truth.name}{form}"
        source = LoadedSource(path.name, path.read_bytes())
        converted = asyncio.run(layout.convert(source, pool, ConversionSettings()))
        assert converted.status == "success", converted.errors
        pred = ds.blocks_from_docling(converted.document)
        if form.endswith(".jpg"):  # an image's page units are its pixels
            pred = [dataclasses.replace(b, box=_scaled(b.box, 1 / truth.scale)) for b in pred]
        scores.append(ds.score_page(truth, pred))
    return ds.aggregate(scores)


# Every page of the structured set through layout, tables and OCR: about 60 s per form.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("form", list(FLOORS))
def test_structured_set_meets_its_floors(make_pool, form):
    pool = make_pool(free_vram_on_idle=False, max_workers=1)
    got = _scores(pool, form)
    for metric, floor in FLOORS[form].items():
        assert got[metric] >= floor, (metric, got)
    assert got["reading_order_pages_correct"] == got["two_column_pages"] == 4, got


@pytest.mark.filterwarnings(IGNORE_DOCLING_DEPRECATED)
def test_service_converts_a_pdf_to_markdown_with_a_real_table():
    pdf = (DOCUMENTS / "d05_benchmark_twocol.pdf").read_bytes()

    async def main() -> None:
        async with serving(pipeline="layout") as orch:
            task = await serve_enqueue(orch, [("bench.pdf", pdf)], md_options("md", "json"))
            done = await wait_complete(orch, task.task_id)
            assert done.task_status.value == "success", done.error_message
            result, _ = await fetch(orch, task.task_id)
            md = result.result.document.md_content
            assert "# Scaling a Query Engine on One Machine" in md
            assert "## 2 Results" in md
            header = next(line for line in md.splitlines() if "Threads" in line)
            assert header.startswith("|") and "Queries/s" in header, header
            assert "Benchmark Notes, Volume 3" not in md, "the page header is furniture"
            doc = result.result.document.json_content
            assert len(doc.tables) == 2 and len(doc.pictures) == 1

    asyncio.run(main())
