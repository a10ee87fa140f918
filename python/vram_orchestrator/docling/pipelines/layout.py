"""``VRAM_ORCH_PIPELINE=layout``: every page is analysed in our workers (layout regions,
table grids, and OCR where the page has no text layer) and assembled here into a
``DoclingDocument`` with headings, paragraphs, tables, pictures and furniture."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ._convert import (
    _PDFIUM,
    ConversionSettings,
    ConvertedDocument,
    convert_pages,
    page_pixels,
    page_text,
    pdf_pages,
)
from ._layout_document import AnalyzedPage, build_layout_document
from ._sources import LoadedSource

__all__ = ["AnalyzeCall", "convert_with_layout"]

#: An async page analysis: (image, text_cells or None) → the pool's analysis dict.
AnalyzeCall = Callable[[Any, "list[tuple[str, list[float]]] | None"], Awaitable[dict[str, Any]]]


def _render(pdf: Any, index: int, s: ConversionSettings) -> tuple[AnalyzedPage, Any, Any]:
    """The page rendered at ``images_scale`` and its text layer in image pixels (None when
    it has none, or OCR is forced), under the pdfium lock."""
    with _PDFIUM:
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


async def _analyze_pdf(
    src: LoadedSource, analyze: AnalyzeCall, s: ConversionSettings
) -> list[AnalyzedPage]:
    async def one(pdf: Any, index: int) -> AnalyzedPage:
        page, array, cells = await asyncio.to_thread(_render, pdf, index, s)
        if cells is None and not s.do_ocr:
            # No text layer and no OCR wanted: the layout alone, with no text.
            cells = []
        try:
            page.analysis = await analyze(array, cells)
        except Exception as e:
            if s.abort_on_error:
                raise
            page.error = f"page {page.page_no}: analysis failed: {e}"
        return page

    return await pdf_pages(src, s, one)


async def _analyze_image(
    src: LoadedSource, analyze: AnalyzeCall, s: ConversionSettings
) -> list[AnalyzedPage]:
    if not s.do_ocr:
        raise ValueError(f"{src.name}: an image has no text without OCR, and do_ocr is false")
    if s.page_range[0] > 1:
        return []
    result = await analyze(src.data, None)
    return [AnalyzedPage(1, float(result["width"]), float(result["height"]), 1.0, result)]


async def convert_with_layout(
    src: LoadedSource, analyze: AnalyzeCall, settings: ConversionSettings
) -> ConvertedDocument:
    """Converts one PDF or image through page analysis in our workers (``analyze``)."""

    async def read(kind: str) -> list[AnalyzedPage]:
        if kind == "pdf":
            return await _analyze_pdf(src, analyze, settings)
        return await _analyze_image(src, analyze, settings)

    def count(pages: list[AnalyzedPage]) -> str:
        return f"{sum(len(p.analysis['regions']) for p in pages if p.analysis)} region(s)"

    return await convert_pages(src, read, build_layout_document, count)


def pool_analyze(pool: Any) -> AnalyzeCall:
    """The ``AnalyzeCall`` of an ``OcrPool``."""

    async def call(image: Any, cells: list[tuple[str, list[float]]] | None) -> dict[str, Any]:
        return await pool.analyze_async(image, text_cells=cells)

    return call
