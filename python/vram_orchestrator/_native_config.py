"""The configuration the Python layer hands to the supervisor (``_native.NativePool``).

Each class mirrors one Rust struct of ``crates/supervisor`` field by field, with the same
names: the extension reads every field as the attribute of that name, so a missing or
mistyped field fails there naming it. Durations are seconds; paths are strings. Values are
validated before they get here (:class:`~vram_orchestrator.settings.Settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NativeGpuConfig", "NativeOcrOptions", "NativePoolConfig"]


@dataclass(frozen=True)
class NativeOcrOptions:
    """``OcrOptions``: how a task is read, and the limits of its input."""

    profile: str
    max_input_bytes: int
    max_pixels: int
    max_det_pixels: int


@dataclass(frozen=True)
class NativeGpuConfig:
    """``GpuConfig``: GPU memory settings (used with CUDA devices only)."""

    #: A scripted GPU file read instead of NVML (tests); None: NVML.
    source: str | None
    vram_margin_mb: float
    admission_timeout: float
    worker_vram_growth_mb: float
    peaks_dir: str | None


@dataclass(frozen=True)
class NativePoolConfig:
    """``PoolConfig``: everything a pool needs."""

    worker_bin: str
    model_set: str
    model_dir: str
    ort_dylib: str
    #: NVML indices of the GPUs workers may use; empty: the CPU.
    device: tuple[int, ...]
    #: The worker's whole environment (it starts from an empty one).
    worker_env: tuple[tuple[str, str], ...]
    max_workers: int
    queue_max: int
    #: Seconds before an idle worker exits; None: workers stay warm.
    idle_timeout: float | None
    task_timeout: float
    kill_grace: float
    startup_timeout: float
    max_tasks_per_worker: int
    worker_rss_limit_mb: int
    max_retries: int
    threads: int
    worker_vram_limit_mb: int | None
    #: Folder of graph-optimised models for CPU workers; None: off.
    graph_cache_dir: str | None
    cudnn_conv_algo: str
    cuda_defaults: tuple[str, ...]
    gpu: NativeGpuConfig
    standby: bool
    default_options: NativeOcrOptions
    max_frame_bytes: int
