"""``VRAM_ORCH_PIPELINE=docling``: docling's own pipeline (layout and tables on the CPU in
this process's threads) with OCR through :mod:`.plugin` into our workers. Needs torch.

docling's models pick their device with ``AcceleratorDevice.AUTO`` (or ``DOCLING_DEVICE``)
unless told: on a GPU host that is CUDA, and torch would make a CUDA context in the service
process. :func:`pipeline_options` sets the device to the CPU and leaves off the enrichment
models (picture classification and description, code, formulas, charts), whose engines can
choose a device of their own; ``tests/test_service_cuda_free.py`` checks it."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from typing import Any

from ...pool import OcrPool
from .._pages import ConversionSettings, ConvertedDocument, Workers
from .._sources import LoadedSource

__all__ = ["clear_converters", "convert", "converter_for", "pipeline_options"]

#: docling converters by the request options they were built for (building one loads
#: docling's models: worth keeping while the options repeat). A few option sets at most.
_CONVERTERS: dict[str, Any] = {}
_CONVERTERS_MAX = 4
_CONVERTERS_LOCK = threading.Lock()


def pipeline_options(options: Any) -> Any:
    """docling's ``PdfPipelineOptions`` for a request's ``ConvertDocumentsOptions`` (or None).

    Every model runs on the CPU: the device is set here, not left to docling's ``auto``
    (CUDA where torch sees a GPU) or ``DOCLING_DEVICE``. The thread count stays docling's
    (``DOCLING_NUM_THREADS``, else ``OMP_NUM_THREADS``, else 4).
    """
    from docling.datamodel.accelerator_options import AcceleratorDevice, AcceleratorOptions
    from docling.datamodel.pipeline_options import OcrMode, PdfPipelineOptions

    from ..plugin import VramOcrOptions

    forced = bool(getattr(options, "force_ocr", False))
    ocr = VramOcrOptions(mode=OcrMode.FULL_PAGE) if forced else VramOcrOptions()
    return PdfPipelineOptions(
        do_ocr=bool(getattr(options, "do_ocr", True)),
        do_table_structure=bool(getattr(options, "do_table_structure", True)),
        images_scale=float(getattr(options, "images_scale", 2.0) or 2.0),
        ocr_options=ocr,
        allow_external_plugins=True,
        accelerator_options=AcceleratorOptions(device=AcceleratorDevice.CPU),
        # Off (docling's defaults, stated): their VLM engines may carry a device of their own.
        do_picture_classification=False,
        do_picture_description=False,
        do_code_enrichment=False,
        do_formula_enrichment=False,
        do_chart_extraction=False,
    )


def converter_for(options: Any) -> Any:
    """docling's ``DocumentConverter`` for the request ``options`` (kept for reuse)."""
    from docling.datamodel.base_models import InputFormat
    from docling.document_converter import DocumentConverter, ImageFormatOption, PdfFormatOption

    # docling asks torch.cuda.is_available() even for CPU models; torch answers by
    # initialising the CUDA driver (libcuda mapped into this process) unless it may ask NVML.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    key = options.model_dump_json() if options is not None else ""
    with _CONVERTERS_LOCK:
        if key in _CONVERTERS:
            return _CONVERTERS[key]
    pipeline = pipeline_options(options)
    converter = DocumentConverter(
        format_options={
            InputFormat.PDF: PdfFormatOption(pipeline_options=pipeline),
            InputFormat.IMAGE: ImageFormatOption(pipeline_options=pipeline),
        }
    )
    with _CONVERTERS_LOCK:
        while len(_CONVERTERS) >= _CONVERTERS_MAX:
            _CONVERTERS.pop(next(iter(_CONVERTERS)))  # the oldest
        _CONVERTERS[key] = converter
    return converter


def clear_converters() -> None:
    """Forgets the kept converters (and so docling's models)."""
    with _CONVERTERS_LOCK:
        _CONVERTERS.clear()


def _convert_now(src: LoadedSource, pool: OcrPool, options: Any) -> ConvertedDocument:
    from docling.datamodel.base_models import DocumentStream

    from ..plugin import set_pool

    set_pool(pool)
    started = time.monotonic()
    result = converter_for(options).convert(
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


async def convert(
    src: LoadedSource, workers: Workers, settings: ConversionSettings
) -> ConvertedDocument:
    """Converts one document with docling's pipeline (in a thread), OCR in ``workers``."""
    if not isinstance(workers, OcrPool):
        raise TypeError("docling's pipeline sends its OCR to an OcrPool, not a wrapper")
    return await asyncio.to_thread(_convert_now, src, workers, settings.request)
