"""Exceptions raised by vram_orchestrator; all derive from :class:`VramOrchestratorError`.

The classes are defined once, in the Rust extension (so errors raised by Rust code and by
Python code are the same classes), and re-exported here.
"""

from __future__ import annotations

from ._native import (
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

__all__ = [
    "ConfigError",
    "InferenceError",
    "InsufficientVram",
    "InvalidInput",
    "PoolClosed",
    "QueueFull",
    "SetupError",
    "TaskTimeout",
    "VramOrchestratorError",
    "WorkerCrashed",
]


class ConfigError(SetupError, ValueError):
    """A setting has a value that is not allowed (the message names it and what is)."""
