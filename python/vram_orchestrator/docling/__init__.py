"""docling integration: ``VramWorkerOrchestrator`` for docling-serve / docling-jobkit and the
``TaskConverter`` it shares with the RQ worker (:mod:`.rq`), the conversion pipelines
(:mod:`.pipelines`: PDFs and images → DoclingDocument, every model in our workers), and a
docling OCR engine plugin (:mod:`.plugin`) that sends docling's OCR crops to our workers.

Needs ``pip install 'vram-orchestrator[docling]'``. Names are imported lazily, so the plugin
module works where only docling is installed.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PIPELINE_ENV",
    "ConversionFailure",
    "TaskConverter",
    "VramOrchestratorConfig",
    "VramWorkerOrchestrator",
    "pipeline_mode",
]

_LAZY = {
    "VramWorkerOrchestrator": ".orchestrator",
    "VramOrchestratorConfig": ".converter",
    "TaskConverter": ".converter",
    "ConversionFailure": ".converter",
    "PIPELINE_ENV": "._options",
    "pipeline_mode": "._options",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
