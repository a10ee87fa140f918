"""vram-orchestrator: OCR in Rust worker processes that give GPU memory back when idle.

>>> import vram_orchestrator as vo
>>> with vo.OcrPool() as pool:
...     result = pool.ocr("page.png")

The Python process never loads ONNX Runtime or CUDA: the models run in worker processes
that exit when the pool is idle (``FREE_VRAM_ON_IDLE``), so their memory returns.
"""

from __future__ import annotations

from ._native import __version__
from .errors import (
    ConfigError,
    InferenceError,
    InsufficientVram,
    InvalidInput,
    PoolClosed,
    QueueFull,
    SetupError,
    TaskTimeout,
    VramOrchestratorError,
    WorkerCrashed,
)
from .pool import OcrPool, gpu_report
from .readiness import cuda_report
from .results import AnalysisResult, OcrResult
from .settings import ENV_VARS, Settings

__all__ = [
    "ENV_VARS",
    "AnalysisResult",
    "ConfigError",
    "InferenceError",
    "InsufficientVram",
    "InvalidInput",
    "OcrPool",
    "OcrResult",
    "PoolClosed",
    "QueueFull",
    "Settings",
    "SetupError",
    "TaskTimeout",
    "VramOrchestratorError",
    "WorkerCrashed",
    "__version__",
    "cuda_report",
    "gpu_report",
]
