"""``VRAM_ORCH_PIPELINE=docling``: docling's own pipeline (layout and tables on the CPU in
this process's threads) with OCR through :mod:`.plugin` into our workers. Needs torch."""

from __future__ import annotations

import io
import time
from typing import Any

from ..pool import OcrPool
from ._convert import ConvertedDocument
from ._sources import LoadedSource

__all__ = ["convert_with_docling"]


def _converter(orchestrator: Any, options: Any) -> Any:
    from docling.datamodel.base_models import InputFormat
    from docling.datamodel.pipeline_options import OcrMode, PdfPipelineOptions
    from docling.document_converter import DocumentConverter, ImageFormatOption, PdfFormatOption

    from .plugin import VramOcrOptions

    key = options.model_dump_json() if options is not None else ""
    cache = orchestrator._docling if isinstance(orchestrator._docling, dict) else {}
    if key in cache:
        return cache[key]
    forced = bool(getattr(options, "force_ocr", False))
    ocr = VramOcrOptions(mode=OcrMode.FULL_PAGE) if forced else VramOcrOptions()
    pipeline = PdfPipelineOptions(
        do_ocr=bool(getattr(options, "do_ocr", True)),
        do_table_structure=bool(getattr(options, "do_table_structure", True)),
        images_scale=float(getattr(options, "images_scale", 2.0) or 2.0),
        ocr_options=ocr,
        allow_external_plugins=True,
    )
    converter = DocumentConverter(
        format_options={
            InputFormat.PDF: PdfFormatOption(pipeline_options=pipeline),
            InputFormat.IMAGE: ImageFormatOption(pipeline_options=pipeline),
        }
    )
    cache[key] = converter
    orchestrator._docling = cache
    return converter


def convert_with_docling(
    orchestrator: Any, src: LoadedSource, options: Any, pool: OcrPool
) -> ConvertedDocument:
    """Converts one document with docling's pipeline (runs in a thread)."""
    from docling.datamodel.base_models import DocumentStream

    from .plugin import set_pool

    set_pool(pool)
    started = time.monotonic()
    result = _converter(orchestrator, options).convert(
        DocumentStream(name=src.name, stream=io.BytesIO(src.data)), raises_on_error=False
    )
    status = str(getattr(result.status, "value", result.status))
    errors = [(getattr(e, "page_no", None), e.error_message) for e in result.errors]
    ok = status in ("success", "partial_success")
    return ConvertedDocument(
        src.name,
        "docling",
        result.document if ok else None,
        status if ok else "failure",
        errors,
        time.monotonic() - started,
    )
