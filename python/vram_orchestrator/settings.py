"""Configuration: every environment variable declared once, parsed and validated.

Constructor keywords of :class:`~vram_orchestrator.OcrPool` use the same names in lower case
without the ``VRAM_ORCH_`` prefix and win over the environment. A bad value fails at start
with the variable's name, its value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from . import model_sets
from .errors import ConfigError

__all__ = ["ENV_VARS", "EnvVar", "Settings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(text: str) -> bool:
    """The boolean spellings every on/off variable accepts."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected an integer >= {minimum}") from None
        if value < minimum:
            raise ValueError(f"expected an integer >= {minimum}")
        return value

    return parse


def _seconds(allow_zero: bool = True) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("expected a number of seconds") from None
        if value != value or value < 0 or (value == 0 and not allow_zero):
            raise ValueError(
                "expected a number of seconds >= 0"
                if allow_zero
                else "expected a number of seconds > 0"
            )
        return value

    return parse


def _device(text: str) -> str:
    value = text.strip().lower()
    if value in {"auto", "cpu", "cuda"}:
        return value
    if value.startswith("cuda:") and value[5:].isdigit():
        return value
    raise ValueError("expected auto, cpu, cuda or cuda:N")


def _standby(text: str) -> str:
    value = text.strip().lower()
    if value == "auto":
        return value
    try:
        return "on" if parse_bool(value) else "off"
    except ValueError:
        raise ValueError("expected auto, on or off") from None


def _megabytes(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected a number of MB >= 0") from None
    if value != value or value < 0:
        raise ValueError("expected a number of MB >= 0")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting exactly ``allowed`` (any case, surrounding spaces ignored)."""
    expected = "expected " + ", ".join(allowed[:-1]) + " or " + allowed[-1]

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(expected)
        return value

    return parse


_profile = _choice("default", "reference")
_conv_algo = _choice("heuristic", "exhaustive", "default")
_model_set = _choice(*model_sets.names())
_pipeline = _choice("layout", "ocr", "docling", "auto")
_log_level = _choice("error", "warn", "info", "debug", "trace", "auto")


#: CUDA provider options the workers set, as ONNX Runtime names them; each can be left at
#: ONNX Runtime's default by VRAM_ORCH_CUDA_DEFAULTS (the worker checks the same names).
CUDA_OPTIONS = (
    "arena_extend_strategy",
    "gpu_mem_limit",
    "cudnn_conv_algo_search",
    "cudnn_conv_use_max_workspace",
    "memory.enable_memory_arena_shrinkage",
)


def _cuda_options(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CUDA_OPTIONS]
    if unknown:
        raise ValueError(
            f"unknown {', '.join(map(repr, unknown))}; expected some of {', '.join(CUDA_OPTIONS)}"
        )
    return names


def _path(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a path")
    return os.path.abspath(os.path.expanduser(text.strip()))


def _path_or_off(text: str) -> str:
    return "off" if text.strip().lower() == "off" else _path(text)


@dataclass(frozen=True)
class EnvVar:
    """One setting: its environment name, keyword, parser, default and meaning."""

    name: str
    keyword: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()


def _v(name: str, parse: Callable[[str], Any], default: Any, doc: str, *aliases: str) -> EnvVar:
    keyword = name.removeprefix("VRAM_ORCH_").lower()
    return EnvVar(name, keyword, parse, default, doc, aliases)


#: The whole configuration surface. The README's table is generated from it
#: (``python -m vram_orchestrator.settings``).
ENV_VARS: tuple[EnvVar, ...] = (
    _v(
        "FREE_VRAM_ON_IDLE",
        parse_bool,
        True,
        "Workers exit when idle so GPU memory returns to zero; off keeps them warm.",
        "DOCLING_SERVE_FREE_VRAM_ON_IDLE",
    ),
    _v(
        "VRAM_ORCH_IDLE_TIMEOUT_S",
        _seconds(),
        0.0,
        "Idle seconds before a worker exits (with FREE_VRAM_ON_IDLE). 0 = as soon as the queue is "
        "empty (after a 0.1 s grace so back-to-back calls reuse the worker).",
    ),
    _v(
        "VRAM_ORCH_DEVICE",
        _device,
        "auto",
        "auto (CUDA when NVML sees a GPU and ONNX Runtime has the CUDA provider), "
        "cpu, cuda, cuda:N.",
    ),
    _v("VRAM_ORCH_MAX_WORKERS", _int(1), 2, "Worker processes at most."),
    _v(
        "VRAM_ORCH_THREADS",
        _int(0),
        0,
        "ONNX Runtime threads per worker; 0 = CPU cores / MAX_WORKERS (at least 1).",
    ),
    _v("VRAM_ORCH_QUEUE_MAX", _int(1), 1024, "Tasks that may wait; more fail with QueueFull."),
    _v(
        "VRAM_ORCH_TASK_TIMEOUT_S",
        _seconds(False),
        600.0,
        "Time limit of one task; past it the worker is killed and the task fails with TaskTimeout.",
    ),
    _v("VRAM_ORCH_KILL_GRACE_S", _seconds(), 5.0, "Seconds between SIGTERM and SIGKILL."),
    _v(
        "VRAM_ORCH_STARTUP_TIMEOUT_S",
        _seconds(False),
        120.0,
        "A worker not ready (runtime and models loaded) by then is killed.",
    ),
    _v("VRAM_ORCH_MAX_TASKS_PER_WORKER", _int(0), 0, "Recycle a worker after N tasks (0 = never)."),
    _v(
        "VRAM_ORCH_WORKER_RSS_LIMIT_MB",
        _int(0),
        0,
        "Recycle a worker whose resident memory passes this, between tasks (0 = no limit).",
    ),
    _v(
        "VRAM_ORCH_WORKER_VRAM_LIMIT_MB",
        _int(0),
        0,
        "GPU memory limit per worker (0 = none): the CUDA arena's gpu_mem_limit, and a worker "
        "whose NVML reading passes it between tasks is recycled.",
    ),
    _v(
        "VRAM_ORCH_WORKER_VRAM_GROWTH_MB",
        _megabytes,
        512.0,
        "Recycle a worker whose GPU memory between tasks grew this much past its level after "
        "its first task.",
    ),
    _v(
        "VRAM_ORCH_VRAM_MARGIN_MB",
        _megabytes,
        256.0,
        "GPU memory admission leaves free on every device, beyond what admitted tasks reserve.",
    ),
    _v(
        "VRAM_ORCH_STANDBY",
        _standby,
        "auto",
        "Keep one standby worker while idle (ONNX Runtime and models loaded, no CUDA context, "
        "0 VRAM) when FREE_VRAM_ON_IDLE is on; auto = on for GPU pools.",
    ),
    _v(
        "VRAM_ORCH_CUDNN_CONV_ALGO",
        _conv_algo,
        "heuristic",
        "How CUDA workers pick cuDNN convolution algorithms for each new input shape: "
        "heuristic (cuDNN's heuristics, no trial runs), exhaustive (time every algorithm, "
        "slow on each new shape), default (a fixed algorithm).",
    ),
    _v(
        "VRAM_ORCH_CUDA_DEFAULTS",
        _cuda_options,
        (),
        "CUDA provider options to leave at ONNX Runtime's default instead of ours (comma list "
        f"of {', '.join(CUDA_OPTIONS)}): a way to retry a failing CUDA start without a rebuild.",
    ),
    _v(
        "VRAM_ORCH_ADMISSION_TIMEOUT_S",
        _seconds(),
        30.0,
        "How long a task may wait for enough free GPU memory.",
    ),
    _v(
        "VRAM_ORCH_MAX_RETRIES",
        _int(0),
        1,
        "Retries of a task whose worker crashed (never for an input that crashed one before).",
    ),
    _v(
        "VRAM_ORCH_OCR_MODELS",
        _model_set,
        model_sets.default_name(),
        "OCR model set: ppocr-v6-small (accurate), ppocr-v6-tiny (fast), ppocr-v4 (RapidOCR "
        "1.4.4's; the reference profile needs it). Each set's files and settings: "
        "model_sets.json.",
    ),
    _v(
        "VRAM_ORCH_OCR_PROFILE",
        _profile,
        "default",
        "default (fixes the reference's defects) or reference (RapidOCR 1.4.4 parity).",
    ),
    _v("VRAM_ORCH_MAX_INPUT_BYTES", _int(1), 64 << 20, "Largest encoded input, bytes."),
    _v(
        "VRAM_ORCH_MAX_PIXELS",
        _int(1),
        40_000_000,
        "Largest decoded image, width x height (checked from the header, before decoding).",
    ),
    _v("VRAM_ORCH_MAX_DET_PIXELS", _int(1), 4_000_000, "Largest detector input, width x height."),
    _v(
        "VRAM_ORCH_MODEL_DIR",
        _path,
        None,
        "Folder with the model set's files (names as in model_sets.json, each checked by "
        "sha256); default: the user cache, else downloaded into the cache.",
    ),
    _v(
        "VRAM_ORCH_ORT_DYLIB",
        _path,
        None,
        "libonnxruntime.so to load in workers; default: from the onnxruntime(-gpu) wheel.",
    ),
    _v(
        "VRAM_ORCH_PROFILE_DIR",
        _path,
        None,
        "Where learned per-task VRAM peaks are kept (peaks.json); default: the user cache.",
    ),
    _v(
        "VRAM_ORCH_GRAPH_CACHE_DIR",
        _path_or_off,
        None,
        "Where CPU workers keep graph-optimised copies of the models, so workers after the "
        "first start faster; 'off' disables it; default: the user cache.",
    ),
    _v("VRAM_ORCH_WORKER_BIN", _path, None, "Worker executable; default: the one in this package."),
    _v(
        "VRAM_ORCH_SCRIPTED_GPU",
        _path,
        None,
        "Testing only: a scripted GPU file read instead of NVML (vram_orchestrator.testing; "
        "docs/testing.md).",
    ),
    _v(
        "VRAM_ORCH_PIPELINE",
        _pipeline,
        "auto",
        "Pipeline of VramWorkerOrchestrator: layout (every model in the workers: layout "
        "regions, tables, OCR where a page has no text layer; headings, paragraphs, tables, "
        "pictures, reading order), ocr (text lines only: text layer or OCR in the workers), "
        "docling (docling's full pipeline, its layout and table models set to the CPU in the "
        "service, OCR in the workers; needs torch), auto (= layout).",
    ),
    _v(
        "VRAM_ORCH_WORKER_LOG",
        _log_level,
        "auto",
        "Worker log level; auto follows the 'vram_orchestrator.worker' logger.",
    ),
)

_BY_KEYWORD = {v.keyword: v for v in ENV_VARS}


@dataclass(frozen=True)
class Settings:
    """Validated settings of one pool (see :data:`ENV_VARS` for each field's meaning)."""

    free_vram_on_idle: bool = True
    idle_timeout_s: float = 0.0
    device: str = "auto"
    max_workers: int = 2
    threads: int = 0
    queue_max: int = 1024
    task_timeout_s: float = 600.0
    kill_grace_s: float = 5.0
    startup_timeout_s: float = 120.0
    max_tasks_per_worker: int = 0
    worker_rss_limit_mb: int = 0
    worker_vram_limit_mb: int = 0
    worker_vram_growth_mb: float = 512.0
    vram_margin_mb: float = 256.0
    standby: str = "auto"
    cudnn_conv_algo: str = "heuristic"
    cuda_defaults: tuple[str, ...] = ()
    admission_timeout_s: float = 30.0
    max_retries: int = 1
    ocr_models: str = model_sets.default_name()
    ocr_profile: str = "default"
    max_input_bytes: int = 64 << 20
    max_pixels: int = 40_000_000
    max_det_pixels: int = 4_000_000
    model_dir: str | None = None
    ort_dylib: str | None = None
    profile_dir: str | None = None
    graph_cache_dir: str | None = None
    worker_bin: str | None = None
    scripted_gpu: str | None = None
    pipeline: str = "auto"
    worker_log: str = "auto"
    #: Where each value came from ("default", "env NAME" or "argument"), for runtime_info.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Reads the environment, applies keyword overrides, validates everything."""
        env = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(_BY_KEYWORD))
        if unknown:
            allowed = ", ".join(sorted(_BY_KEYWORD))
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; allowed: {allowed}")
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for var in ENV_VARS:
            if var.keyword in overrides and overrides[var.keyword] is not None:
                raw = overrides[var.keyword]
                values[var.keyword] = _parse(
                    var, raw if isinstance(raw, str) else _to_text(raw), f"argument {var.keyword}"
                )
                sources[var.keyword] = "argument"
                continue
            for name in (var.name, *var.aliases):
                if name in env:
                    values[var.keyword] = _parse(var, env[name], name)
                    sources[var.keyword] = f"env {name}"
                    break
            else:
                values[var.keyword] = var.default
                sources[var.keyword] = "default"
        reference = model_sets.REFERENCE_SET
        if values["ocr_profile"] == "reference" and values["ocr_models"] != reference:
            raise ConfigError(
                f"VRAM_ORCH_OCR_PROFILE=reference reproduces RapidOCR 1.4.4 and needs "
                f"VRAM_ORCH_OCR_MODELS={model_sets.REFERENCE_SET}, not {values['ocr_models']!r}."
            )
        return cls(**values, sources=sources)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _parse(var: EnvVar, text: str, where: str) -> Any:
    try:
        return var.parse(text)
    except ValueError as e:
        raise ConfigError(f"{where}={text!r} is not allowed: {e}") from None


def markdown_table() -> str:
    """The configuration table of the README."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for var in ENV_VARS:
        name = var.name + "".join(f" (alias `{a}`)" for a in var.aliases)
        default = "—" if var.default in (None, ()) else f"`{_to_text(var.default)}`"
        rows.append(f"| `{name}` | {default} | {var.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
