"""``VRAM_ORCH_PIPELINE=ocr``: text lines only. Each PDF page's text layer, or OCR of the
page in our workers, becomes a ``DoclingDocument`` with one text item per line, in reading
order, with its provenance box."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ...results import OcrResult
from .._pages import (
    PDFIUM_LOCK,
    ConversionSettings,
    ConvertedDocument,
    PageLine,
    Workers,
    convert_pages,
    document_origin,
    page_pixels,
    page_step,
    page_text,
    pdf_pages,
)
from .._sources import LoadedSource

__all__ = ["build_document", "convert"]


@dataclass
class _Page:
    page_no: int
    width: float
    height: float
    lines: list[PageLine] = field(default_factory=list)
    error: str | None = None


def _ocr_lines(result: OcrResult, scale: float) -> list[PageLine]:
    lines = []
    for line in result["lines"]:
        xs = [p[0] for p in line["box"]]
        ys = [p[1] for p in line["box"]]
        box = (min(xs) / scale, min(ys) / scale, max(xs) / scale, max(ys) / scale)
        lines.append(PageLine(line["text"], box, float(line["score"]), True))
    return lines


def _load_page(pdf: Any, index: int, s: ConversionSettings) -> tuple[_Page, Any]:
    """Text layer lines, or the page rendered at ``images_scale`` for OCR (under the lock)."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            width, height = page.get_size()
            out = _Page(index + 1, float(width), float(height))
            lines = page_text(page, height, s)
            if lines is not None:
                out.lines = lines
                return out, None
            if not s.do_ocr:
                return out, None
            return out, page_pixels(page, s)
        finally:
            page.close()


async def _read_pdf(src: LoadedSource, workers: Workers, s: ConversionSettings) -> list[_Page]:
    async def one(pdf: Any, index: int) -> _Page:
        page, array = await asyncio.to_thread(_load_page, pdf, index, s)
        if array is not None:
            result = await page_step(page, "OCR", workers.ocr_async(array), s)
            if result is not None:
                page.lines = _ocr_lines(result, s.images_scale)
        return page

    return await pdf_pages(src, s, one)


async def _read_image(src: LoadedSource, workers: Workers, s: ConversionSettings) -> list[_Page]:
    result = await workers.ocr_async(src.data)
    page = _Page(1, float(result["width"]), float(result["height"]))
    page.lines = _ocr_lines(result, 1.0)
    return [page]


def build_document(name: str, kind: str, data: bytes, pages: list[_Page]) -> Any:
    """A ``DoclingDocument``: the pages with their sizes and one text item per line."""
    from docling_core.types.doc import (
        BoundingBox,
        CoordOrigin,
        DocItemLabel,
        DoclingDocument,
        ProvenanceItem,
        Size,
    )

    doc = DoclingDocument(
        name=PurePosixPath(name).stem or "document", origin=document_origin(name, kind, data)
    )
    for page in pages:
        doc.add_page(page_no=page.page_no, size=Size(width=page.width, height=page.height))
        for line in page.lines:
            left, top, right, bottom = line.box
            bbox = BoundingBox(
                l=left, t=top, r=right, b=bottom, coord_origin=CoordOrigin.TOPLEFT
            ).to_bottom_left_origin(page_height=page.height)
            prov = ProvenanceItem(page_no=page.page_no, bbox=bbox, charspan=(0, len(line.text)))
            doc.add_text(label=DocItemLabel.TEXT, text=line.text, orig=line.text, prov=prov)
    return doc


async def convert(
    src: LoadedSource, workers: Workers, settings: ConversionSettings
) -> ConvertedDocument:
    """Converts one PDF or image: its text layer, or OCR in ``workers``."""
    return await convert_pages(
        src, workers, settings, pdf=_read_pdf, image=_read_image, build=build_document, count=_count
    )


def _count(pages: list[_Page]) -> str:
    return f"{sum(len(p.lines) for p in pages)} line(s)"
