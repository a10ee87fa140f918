"""What every pipeline shares: the conversion settings, PDF page reading (pdfium: text
layer, rendering, pages in parallel), the frame of a conversion and its outcome."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Optional, Protocol, TypeVar

from ..results import AnalysisResult, OcrResult
from ._sources import LoadedSource, detect_kind

__all__ = [
    "PDFIUM_LOCK",
    "ConversionSettings",
    "ConvertedDocument",
    "PageLine",
    "TextCells",
    "Workers",
    "convert_pages",
    "document_origin",
    "page_pixels",
    "page_step",
    "page_text",
    "pdf_pages",
]

log = logging.getLogger("vram_orchestrator.docling")

#: A page's own text as (text, [left, top, right, bottom]) in image pixels.
TextCells = Optional[list[tuple[str, list[float]]]]


class Workers(Protocol):
    """Where a pipeline's models run: an :class:`~vram_orchestrator.OcrPool`, or a wrapper
    around one (the CLI counts pages, the benchmarks time them)."""

    async def ocr_async(self, image: Any) -> OcrResult: ...

    async def analyze_async(
        self, image: Any, *, text_cells: TextCells = None
    ) -> AnalysisResult: ...


# pdfium is not thread-safe: every call into it holds this lock.
PDFIUM_LOCK = threading.Lock()
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
    #: The request's ``ConvertDocumentsOptions`` as given (None: docling's defaults), for a
    #: pipeline that hands them on (docling's own).
    request: Any = None

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
            request=options,
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
class ConvertedDocument:
    """One converted document: the document (None if it failed), its status and errors."""

    name: str
    kind: str
    document: Any
    status: str  # success | partial_success | failure
    errors: list[tuple[int | None, str]] = field(default_factory=list)
    seconds: float = 0.0


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


T = TypeVar("T")


async def pdf_pages(
    src: LoadedSource, s: ConversionSettings, one: Callable[[Any, int], Awaitable[T]]
) -> list[T]:
    """Runs ``one(pdf, index)`` for every page in ``s.page_range``, at most
    ``s.pages_in_flight`` at once, and returns their results in page order."""
    import pypdfium2 as pdfium

    def open_pdf() -> tuple[Any, int]:
        with PDFIUM_LOCK:
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
            with PDFIUM_LOCK:
                pdf.close()

        await asyncio.to_thread(close)


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


P = TypeVar("P", bound="_PageLike")
R = TypeVar("R")


class _PageLike(Protocol):
    page_no: int
    error: str | None


async def page_step(
    page: _PageLike, what: str, call: Awaitable[R], s: ConversionSettings
) -> R | None:
    """``call``'s result for one page of a PDF. If it fails, the page carries the error and
    this returns None, so the other pages go on; with ``abort_on_error`` it raises."""
    try:
        return await call
    except Exception as e:
        if s.abort_on_error:
            raise
        page.error = f"page {page.page_no}: {what} failed: {e}"
        return None


async def convert_pages(
    src: LoadedSource,
    workers: Workers,
    settings: ConversionSettings,
    *,
    pdf: Callable[[LoadedSource, Workers, ConversionSettings], Awaitable[list[P]]],
    image: Callable[[LoadedSource, Workers, ConversionSettings], Awaitable[list[P]]],
    build: Callable[[str, str, bytes, list[P]], Any],
    count: Callable[[list[P]], str],
) -> ConvertedDocument:
    """The frame of a pipeline's conversion: read the pages (``pdf`` or ``image``, by what
    the bytes are), ``build`` the document (in a thread), collect the pages' errors, log
    what ``count`` says of the pages. An image is one page, read only with OCR."""
    started = time.monotonic()
    kind = detect_kind(src.name, src.data)
    if kind == "pdf":
        pages = await pdf(src, workers, settings)
    elif not settings.do_ocr:
        raise ValueError(f"{src.name}: an image has no text without OCR, and do_ocr is false")
    elif settings.page_range[0] > 1:
        pages = []
    else:
        pages = await image(src, workers, settings)
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
