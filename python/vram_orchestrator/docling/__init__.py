"""docling integration: ``VramWorkerOrchestrator`` for docling-serve / docling-jobkit, a
torch-free conversion (PDFs and images → DoclingDocument), and a docling OCR engine plugin
(``vram_orchestrator.docling.plugin``) that sends docling's OCR crops to our workers.

Needs ``pip install 'vram-orchestrator[docling]'``. Names are imported lazily, so the plugin
module works where only docling is installed.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PIPELINE_ENV",
    "VramOrchestratorConfig",
    "VramWorkerOrchestrator",
    "pipeline_mode",
]

_LAZY = {
    "VramWorkerOrchestrator": ".orchestrator",
    "VramOrchestratorConfig": ".orchestrator",
    "PIPELINE_ENV": "._options",
    "pipeline_mode": "._options",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
