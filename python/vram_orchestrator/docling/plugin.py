"""A docling OCR engine whose OCR runs in vram-orchestrator's workers.

Registered through the ``docling`` entry point group (``ocr_engines()``), so docling's full
pipeline can use it with ``VramOcrOptions()`` as ``ocr_options`` (kind
``vram_orchestrator``; docling loads it when external plugins are allowed, e.g.
``DOCLING_SERVE_ALLOW_EXTERNAL_PLUGINS=true``). Follows docling 2.116+: OCR cells are merged
with the page's own cells by ``post_process_cells(cells, page, conv_res)``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from docling.datamodel.accelerator_options import AcceleratorOptions
from docling.datamodel.base_models import Page
from docling.datamodel.document import ConversionResult
from docling.datamodel.pipeline_options import OcrOptions
from docling.models.base_ocr_model import BaseOcrModel
from docling.utils.profiling import TimeRecorder
from docling_core.types.doc import BoundingBox, CoordOrigin
from docling_core.types.doc.page import BoundingRectangle, TextCell
from pydantic import Field

from ..pool import OcrPool

__all__ = ["VramOcrModel", "VramOcrOptions", "get_pool", "ocr_engines", "set_pool"]

log = logging.getLogger("vram_orchestrator.docling")

_pool: OcrPool | None = None
_pool_lock = threading.Lock()


def set_pool(pool: OcrPool | None) -> None:
    """Makes the plugin use ``pool`` (the orchestrator's); None = its own, made on demand."""
    global _pool
    with _pool_lock:
        _pool = pool


def get_pool() -> OcrPool:
    """The pool the plugin sends crops to (an ``OcrPool()`` from the environment by default)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.closed:
            _pool = OcrPool()
        return _pool


class VramOcrOptions(OcrOptions):
    """Options of the vram-orchestrator OCR engine (PP-OCRv4, English and Chinese)."""

    kind: ClassVar[Literal["vram_orchestrator"]] = "vram_orchestrator"
    # PP-OCRv4's own language set: the codes are passed through, not resolved by docling.
    canonicalize_lang: ClassVar[bool] = False
    lang: list[str] = Field(default_factory=lambda: ["en", "ch"])
    #: Render scale of the OCR crops (multiplier of 72 dpi).
    scale: float = 3.0
    #: Time limit of one crop's OCR, seconds (None = VRAM_ORCH_TASK_TIMEOUT_S).
    timeout_s: float | None = None


class VramOcrModel(BaseOcrModel):
    """docling OCR stage: each OCR rect of a page is rendered and OCRed in our workers."""

    def __init__(
        self,
        enabled: bool,
        artifacts_path: Path | None,
        options: VramOcrOptions,
        accelerator_options: AcceleratorOptions,
    ) -> None:
        super().__init__(
            enabled=enabled,
            artifacts_path=artifacts_path,
            options=options,
            accelerator_options=accelerator_options,
        )
        self.options: VramOcrOptions
        self.scale = float(options.scale)

    def ocr_rect_cells(self, page: Page, rects: list[BoundingBox]) -> list[TextCell]:
        """OCRs the rects of ``page`` (all submitted at once) into TextCells in page units."""
        assert page._backend is not None
        pool = get_pool()
        jobs = []
        for rect in rects:
            if rect.area() == 0:
                continue
            image = page._backend.get_page_image(scale=self.scale, cropbox=rect)
            array = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
            jobs.append((rect, pool.submit(array, timeout_s=self.options.timeout_s)))
        cells: list[TextCell] = []
        for rect, job in jobs:
            for line in job.result()["lines"]:
                xs = [p[0] for p in line["box"]]
                ys = [p[1] for p in line["box"]]
                box = BoundingBox.from_tuple(
                    coord=(
                        min(xs) / self.scale + rect.l,
                        min(ys) / self.scale + rect.t,
                        max(xs) / self.scale + rect.l,
                        max(ys) / self.scale + rect.t,
                    ),
                    origin=CoordOrigin.TOPLEFT,
                )
                cells.append(
                    TextCell(
                        index=len(cells),
                        text=line["text"],
                        orig=line["text"],
                        confidence=float(line["score"]),
                        from_ocr=True,
                        rect=BoundingRectangle.from_bounding_box(box),
                    )
                )
        return cells

    def __call__(self, conv_res: ConversionResult, page_batch: Iterable[Page]) -> Iterable[Page]:
        if not self.enabled:
            yield from page_batch
            return
        for page in page_batch:
            assert page._backend is not None
            if not page._backend.is_valid():
                yield page
                continue
            with TimeRecorder(conv_res, "ocr"):
                cells = self.ocr_rect_cells(page, self.get_ocr_rects(page))
                self.post_process_cells(cells, page, conv_res)
            yield page

    @classmethod
    def get_options_type(cls) -> type[OcrOptions]:
        return VramOcrOptions


def ocr_engines() -> dict[str, list[Any]]:
    """docling plugin hook (entry point group ``docling``)."""
    return {"ocr_engines": [VramOcrModel]}
