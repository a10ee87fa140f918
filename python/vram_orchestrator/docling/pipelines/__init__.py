"""The conversion pipelines, one module each, all with the same entry point::

    async def convert(source: LoadedSource, workers: Workers,
                      settings: ConversionSettings) -> ConvertedDocument

``layout`` (every model in the workers: regions, tables, OCR where a page has no text layer),
``ocr`` (text lines only) and ``docling`` (docling's own pipeline on the CPU in this process,
OCR in the workers; needs torch, so imported only when chosen). ``VRAM_ORCH_PIPELINE``
names one.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable
from typing import Protocol

from .._pages import ConversionSettings, ConvertedDocument, Workers
from .._sources import LoadedSource

__all__ = ["NAMES", "Convert", "pipeline"]

#: The pipelines by the name ``VRAM_ORCH_PIPELINE`` gives them.
NAMES = ("layout", "ocr", "docling")


class Convert(Protocol):
    """A pipeline's entry point."""

    def __call__(
        self, source: LoadedSource, workers: Workers, settings: ConversionSettings
    ) -> Awaitable[ConvertedDocument]: ...


def pipeline(name: str) -> Convert:
    """The ``convert`` of the pipeline called ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"unknown pipeline {name!r}; expected one of {', '.join(NAMES)}")
    convert: Convert = importlib.import_module(f".{name}", __name__).convert
    return convert
