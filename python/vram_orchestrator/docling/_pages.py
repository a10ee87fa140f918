"""Torch-free conversion: PDF pages and images → text lines (text layer or OCR in our workers)
→ a ``DoclingDocument`` with pages, text items in reading order and provenance boxes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol, TypeVar

from ._sources import LoadedSource, detect_kind

__all__ = [
    "ConversionSettings",
    "ConvertedDocument",
    "PageLine",
    "convert_document",
    "convert_pages",
    "document_origin",
    "page_pixels",
    "page_text",
    "pdf_pages",
]

log = logging.getLogger("vram_orchestrator.docling")

#: An async OCR call: image (bytes or numpy uint8 array) → the pool's result dict.
OcrCall = Callable[[Any], Awaitable[dict[str, Any]]]

# pdfium is not thread-safe: every call into it holds this lock.
_PDFIUM = threading.Lock()
_MIMETYPES = {"pdf": "application/pdf", "image": "image/png"}


@dataclass(frozen=True)
class ConversionSettings:
    """What the conversion honours of docling's ``ConvertDocumentsOptions``."""

    images_scale: float = 2.0
    do_ocr: bool = True
    force_ocr: bool = False
    page_range: tuple[int, int] = (1, 2**63 - 1)
    abort_on_error: bool = False
    max_num_pages: int = 2**63 - 1
    pages_in_flight: int = 4

    @classmethod
    def from_options(cls, options: Any, **limits: Any) -> ConversionSettings:
        """Reads the options (``None`` = docling's defaults) plus orchestrator limits."""
        if options is None:
            return cls(**limits)
        first, last = tuple(getattr(options, "page_range", (1, 2**63 - 1)))
        return cls(
            images_scale=float(getattr(options, "images_scale", 2.0) or 2.0),
            do_ocr=bool(getattr(options, "do_ocr", True)),
            force_ocr=bool(getattr(options, "force_ocr", False)),
            page_range=(int(first), int(last)),
            abort_on_error=bool(getattr(options, "abort_on_error", False)),
            **limits,
        )


@dataclass(frozen=True)
class PageLine:
    """One line of text with its box in page units, top-left origin (l, t, r, b)."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float = 1.0
    from_ocr: bool = True


@dataclass
class _Page:
    page_no: int
    width: float
    height: float
    lines: list[PageLine] = field(default_factory=list)
    error: str | None = None


@dataclass
class ConvertedDocument:
    """One converted document: the document (None if it failed), its status and errors."""

    name: str
    kind: str
    document: Any
    status: str  # success | partial_success | failure
    errors: list[tuple[int | None, str]] = field(default_factory=list)
    seconds: float = 0.0


def _ocr_lines(result: dict[str, Any], scale: float) -> list[PageLine]:
    lines = []
    for line in result.get("lines", []):
        xs = [p[0] for p in line["box"]]
        ys = [p[1] for p in line["box"]]
        box = (min(xs) / scale, min(ys) / scale, max(xs) / scale, max(ys) / scale)
        lines.append(PageLine(line["text"], box, float(line.get("score", 1.0)), True))
    return lines


def _text_layer(textpage: Any, height: float) -> list[PageLine]:
    lines = []
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        text = textpage.get_text_bounded(left, bottom, right, top).strip()
        if text:
            lines.append(PageLine(text, (left, height - top, right, height - bottom), 1.0, False))
    return lines


def page_text(page: Any, height: float, s: ConversionSettings) -> list[PageLine] | None:
    """A pdfium page's text layer lines; None when it has none or OCR is forced. Call
    under the pdfium lock."""
    if s.force_ocr:
        return None
    textpage = page.get_textpage()
    try:
        if textpage.get_text_range().strip():
            return _text_layer(textpage, height)
        return None
    finally:
        textpage.close()


def page_pixels(page: Any, s: ConversionSettings) -> Any:
    """A pdfium page rendered at ``images_scale`` (numpy, RGB). Call under the pdfium lock."""
    bitmap = page.render(scale=s.images_scale, rev_byteorder=True)
    try:
        return bitmap.to_numpy().copy()
    finally:
        bitmap.close()


def _load_page(pdf: Any, index: int, s: ConversionSettings) -> tuple[_Page, Any]:
    """Text layer lines, or the page rendered at ``images_scale`` for OCR (under the lock)."""
    with _PDFIUM:
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


T = TypeVar("T")


async def pdf_pages(
    src: LoadedSource, s: ConversionSettings, one: Callable[[Any, int], Awaitable[T]]
) -> list[T]:
    """Runs ``one(pdf, index)`` for every page in ``s.page_range``, at most
    ``s.pages_in_flight`` at once, and returns their results in page order."""
    import pypdfium2 as pdfium

    def open_pdf() -> tuple[Any, int]:
        with _PDFIUM:
            pdf = pdfium.PdfDocument(src.data)
            return pdf, len(pdf)

    try:
        pdf, count = await asyncio.to_thread(open_pdf)
    except pdfium.PdfiumError as e:
        raise ValueError(f"{src.name}: not a readable PDF ({e})") from e
    try:
        first = max(1, s.page_range[0])
        last = min(count, s.page_range[1])
        indices = list(range(first - 1, last))
        if len(indices) > s.max_num_pages:
            raise ValueError(
                f"{src.name}: {len(indices)} pages, more than the limit of {s.max_num_pages} "
                "(max_num_pages)"
            )
        gate = asyncio.Semaphore(s.pages_in_flight)

        async def gated(index: int) -> T:
            async with gate:
                return await one(pdf, index)

        return list(await asyncio.gather(*(gated(i) for i in indices)))
    finally:

        def close() -> None:
            with _PDFIUM:
                pdf.close()

        await asyncio.to_thread(close)


async def _convert_pdf(src: LoadedSource, ocr: OcrCall, s: ConversionSettings) -> list[_Page]:
    async def one(pdf: Any, index: int) -> _Page:
        page, array = await asyncio.to_thread(_load_page, pdf, index, s)
        if array is not None:
            try:
                page.lines = _ocr_lines(await ocr(array), s.images_scale)
            except Exception as e:
                if s.abort_on_error:
                    raise
                page.error = f"page {page.page_no}: OCR failed: {e}"
        return page

    return await pdf_pages(src, s, one)


async def _convert_image(src: LoadedSource, ocr: OcrCall, s: ConversionSettings) -> list[_Page]:
    if not s.do_ocr:
        raise ValueError(f"{src.name}: an image has no text without OCR, and do_ocr is false")
    if s.page_range[0] > 1:
        return []
    result = await ocr(src.data)
    page = _Page(1, float(result["width"]), float(result["height"]))
    page.lines = _ocr_lines(result, 1.0)
    return [page]


def document_origin(name: str, kind: str, data: bytes) -> Any:
    """The ``DocumentOrigin`` of a source: its name, mimetype and a hash of its bytes."""
    from docling_core.types.doc.document import DocumentOrigin

    suffix = PurePosixPath(name).suffix.lower()
    mimetype = _MIMETYPES[kind]
    if kind == "image" and suffix in (".jpg", ".jpeg"):
        mimetype = "image/jpeg"
    return DocumentOrigin(
        mimetype=mimetype,
        binary_hash=int.from_bytes(hashlib.sha256(data).digest()[:8], "big"),
        filename=name,
    )


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


P = TypeVar("P", bound="_PageLike")


class _PageLike(Protocol):
    page_no: int
    error: str | None


async def convert_pages(
    src: LoadedSource,
    read: Callable[[str], Awaitable[list[P]]],
    build: Callable[[str, str, bytes, list[P]], Any],
    count: Callable[[list[P]], str],
) -> ConvertedDocument:
    """The frame of a conversion: ``read(kind)`` the pages, ``build`` the document (in a
    thread), collect the pages' errors, log what ``count`` says of the pages."""
    started = time.monotonic()
    kind = detect_kind(src.name, src.data)
    pages = await read(kind)
    errors: list[tuple[int | None, str]] = [(p.page_no, p.error) for p in pages if p.error]
    document = await asyncio.to_thread(build, src.name, kind, src.data, pages)
    status = "partial_success" if errors else "success"
    seconds = time.monotonic() - started
    log.info(
        "converted %s (%s, %d page(s), %s) in %.2f s",
        src.name,
        kind,
        len(pages),
        count(pages),
        seconds,
    )
    return ConvertedDocument(src.name, kind, document, status, errors, seconds)


async def convert_document(
    src: LoadedSource, ocr: OcrCall, settings: ConversionSettings
) -> ConvertedDocument:
    """Converts one PDF or image; OCR goes through ``ocr`` (our worker pool)."""

    async def read(kind: str) -> list[_Page]:
        if kind == "pdf":
            return await _convert_pdf(src, ocr, settings)
        return await _convert_image(src, ocr, settings)

    def count(pages: list[_Page]) -> str:
        return f"{sum(len(p.lines) for p in pages)} line(s)"

    return await convert_pages(src, read, build_document, count)
