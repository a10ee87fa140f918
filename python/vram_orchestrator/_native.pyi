"""Type stubs of the Rust extension module ``vram_orchestrator._native``."""

from collections.abc import Callable
from typing import Any, final

from vram_orchestrator._native_config import NativeOcrOptions, NativePoolConfig

__all__ = [
    "PROTOCOL_VERSION",
    "InferenceError",
    "InsufficientVram",
    "InvalidInput",
    "NativePool",
    "PoolClosed",
    "QueueFull",
    "SetupError",
    "TaskTimeout",
    "VramOrchestratorError",
    "WorkerCrashed",
    "__version__",
    "gpu_probe_json",
]

__version__: str
PROTOCOL_VERSION: int

class VramOrchestratorError(Exception):
    """Base class of every error raised by vram_orchestrator."""

class InsufficientVram(VramOrchestratorError):
    """Not enough free GPU memory for the task within the admission timeout."""

    required_mb: float
    available_mb: float
    device: str

class TaskTimeout(VramOrchestratorError):
    """The task ran past its time limit; its worker was killed and replaced."""

    limit_s: float

class WorkerCrashed(VramOrchestratorError):
    """The worker process died while running the task."""

    exit_code: int | None
    signal: int | None
    stderr_tail: str
    attempts: int

class InvalidInput(VramOrchestratorError):
    """The input cannot be OCRed (unreadable, too large, unsupported layout)."""

class QueueFull(VramOrchestratorError):
    """Too many tasks are waiting (VRAM_ORCH_QUEUE_MAX)."""

    limit: int

class PoolClosed(VramOrchestratorError):
    """The pool was closed before the task could run."""

class SetupError(VramOrchestratorError):
    """The pool or its workers cannot be set up; the message says what to fix."""

class InferenceError(VramOrchestratorError):
    """A model run failed inside the worker."""

def gpu_probe_json(scripted: str | None = None) -> str:
    """NVML's view of the GPUs as JSON (or a scripted device file's)."""

@final
class NativePool:
    """The supervisor: queue, workers, timers (all in Rust threads)."""

    def __new__(
        cls,
        config: NativePoolConfig,
        on_done: Callable[[int, dict[str, Any] | None, BaseException | None], None],
    ) -> NativePool: ...
    def submit(
        self,
        image: Any,
        options: NativeOcrOptions | None = None,
        timeout_s: float | None = None,
        queue_timeout_s: float | None = None,
        analyze: dict[str, Any] | None = None,
    ) -> int: ...
    def cancel(self, task_id: int) -> None: ...
    def warm_up(self, count: int) -> None: ...
    def release_idle(self) -> None: ...
    def snapshot_json(self) -> str | None: ...
    def is_closed(self) -> bool: ...
    def close(self, cancel_pending: bool = False, timeout_s: float | None = None) -> bool: ...
