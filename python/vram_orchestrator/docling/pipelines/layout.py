"""``VRAM_ORCH_PIPELINE=layout``: every page is analysed in our workers (layout regions,
table grids, and OCR where the page has no text layer) and assembled here into a
``DoclingDocument`` with headings, paragraphs, tables, pictures and furniture."""

from __future__ import annotations

import asyncio
from typing import Any

from .._layout_document import AnalyzedPage, build_layout_document
from .._pages import (
    PDFIUM_LOCK,
    ConversionSettings,
    ConvertedDocument,
    TextCells,
    Workers,
    convert_pages,
    page_pixels,
    page_step,
    page_text,
    pdf_pages,
)
from .._sources import LoadedSource

__all__ = ["convert"]


def _render(pdf: Any, index: int, s: ConversionSettings) -> tuple[AnalyzedPage, Any, TextCells]:
    """The page rendered at ``images_scale`` and its text layer in image pixels (None when
    it has none, or OCR is forced), under the pdfium lock."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            width, height = page.get_size()
            out = AnalyzedPage(index + 1, float(width), float(height), s.images_scale, None)
            lines = page_text(page, height, s)
            k = s.images_scale
            cells = None if lines is None else [(ln.text, [v * k for v in ln.box]) for ln in lines]
            return out, page_pixels(page, s), cells
        finally:
            page.close()


async def _read_pdf(
    src: LoadedSource, workers: Workers, s: ConversionSettings
) -> list[AnalyzedPage]:
    async def one(pdf: Any, index: int) -> AnalyzedPage:
        page, array, cells = await asyncio.to_thread(_render, pdf, index, s)
        if cells is None and not s.do_ocr:
            # No text layer and no OCR wanted: the layout alone, with no text.
            cells = []
        call = workers.analyze_async(array, text_cells=cells)
        page.analysis = await page_step(page, "analysis", call, s)
        return page

    return await pdf_pages(src, s, one)


async def _read_image(
    src: LoadedSource, workers: Workers, s: ConversionSettings
) -> list[AnalyzedPage]:
    result = await workers.analyze_async(src.data)
    return [AnalyzedPage(1, float(result["width"]), float(result["height"]), 1.0, result)]


async def convert(
    src: LoadedSource, workers: Workers, settings: ConversionSettings
) -> ConvertedDocument:
    """Converts one PDF or image through page analysis in ``workers``."""
    return await convert_pages(
        src,
        workers,
        settings,
        pdf=_read_pdf,
        image=_read_image,
        build=build_layout_document,
        count=_count,
    )


def _count(pages: list[AnalyzedPage]) -> str:
    return f"{sum(len(p.analysis['regions']) for p in pages if p.analysis)} region(s)"
