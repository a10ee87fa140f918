"""Configuration: every environment variable declared once, parsed and validated.

Constructor keywords of :class:`~vram_orchestrator.OcrPool` use the same names in lower case
without the ``VRAM_ORCH_`` prefix and win over the environment. A bad value fails at start
with the variable's name, its value and what is allowed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

from . import model_sets
from .errors import ConfigError

__all__ = ["ENV_VARS", "EnvVar", "Settings"]

log = logging.getLogger("vram_orchestrator")

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


#: The largest integer setting: every count, byte, pixel and MB setting fits the native
#: types (u32 at the smallest) below it, and none has a use beyond it.
INT_MAX = 2**31 - 1


def _int(minimum: int) -> Callable[[str], int]:
    expected = f"expected an integer from {minimum} to {INT_MAX}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(expected) from None
        if not minimum <= value <= INT_MAX:
            raise ValueError(expected)
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


_PREFIX = "VRAM_ORCH_"


@dataclass(frozen=True)
class EnvVar:
    """One setting: its environment name, keyword, parser, default and meaning."""

    name: str
    keyword: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()

    @property
    def keywords(self) -> tuple[str, ...]:
        """The keyword, then those of its ``VRAM_ORCH_`` aliases (earlier names)."""
        earlier = (_keyword(a) for a in self.aliases if a.startswith(_PREFIX))
        return (self.keyword, *earlier)


def _keyword(name: str) -> str:
    return name.removeprefix(_PREFIX).lower()


def _setting(
    default: Any,
    parse: Callable[[str], Any],
    doc: str,
    *,
    env: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Any:
    """A :class:`Settings` field with everything about it: its default, parser and meaning;
    its variable is ``VRAM_ORCH_`` + the field name in upper case unless ``env`` says
    otherwise, also read under ``aliases`` (the first name set wins)."""
    meta = {"parse": parse, "doc": doc, "env": env, "aliases": aliases}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Validated settings of one pool. Each field is declared once, here, with its default,
    parser and meaning; :data:`ENV_VARS` and the table in docs/configuration.md are read
    from these."""

    free_vram_on_idle: bool = _setting(
        True,
        parse_bool,
        "Workers exit when idle so GPU memory returns to zero; off keeps them warm.",
        env="FREE_VRAM_ON_IDLE",
        aliases=("DOCLING_SERVE_FREE_VRAM_ON_IDLE",),
    )
    idle_timeout_s: float = _setting(
        0.0,
        _seconds(),
        "Idle seconds before a worker exits (with FREE_VRAM_ON_IDLE). 0 = as soon as the queue is "
        "empty (after a 0.1 s grace so back-to-back calls reuse the worker).",
    )
    device: str = _setting(
        "auto",
        _device,
        "auto (CUDA when NVML sees a GPU and ONNX Runtime has the CUDA provider), "
        "cpu, cuda, cuda:N.",
    )
    max_workers: int = _setting(2, _int(1), "Worker processes at most.")
    threads: int = _setting(
        0, _int(0), "ONNX Runtime threads per worker; 0 = CPU cores / MAX_WORKERS (at least 1)."
    )
    queue_max: int = _setting(1024, _int(1), "Tasks that may wait; more fail with QueueFull.")
    task_timeout_s: float = _setting(
        600.0,
        _seconds(False),
        "Time limit of one task; past it the worker is killed and the task fails with TaskTimeout.",
    )
    kill_grace_s: float = _setting(5.0, _seconds(), "Seconds between SIGTERM and SIGKILL.")
    startup_timeout_s: float = _setting(
        120.0,
        _seconds(False),
        "A worker not ready (runtime and models loaded) by then is killed.",
    )
    max_tasks_per_worker: int = _setting(0, _int(0), "Recycle a worker after N tasks (0 = never).")
    worker_rss_limit_mb: int = _setting(
        0,
        _int(0),
        "Recycle a worker whose resident memory passes this, between tasks (0 = no limit).",
    )
    worker_vram_limit_mb: int = _setting(
        0,
        _int(0),
        "GPU memory limit per worker (0 = none): the CUDA arena's gpu_mem_limit, and a worker "
        "whose NVML reading passes it between tasks is recycled.",
    )
    worker_vram_growth_mb: float = _setting(
        512.0,
        _megabytes,
        "Recycle a worker whose GPU memory between tasks grew this much past its level after "
        "its first task.",
    )
    vram_margin_mb: float = _setting(
        256.0,
        _megabytes,
        "GPU memory admission leaves free on every device, beyond what admitted tasks reserve.",
    )
    standby: str = _setting(
        "auto",
        _standby,
        "Keep one standby worker while idle (ONNX Runtime and models loaded, no CUDA context, "
        "0 VRAM) when FREE_VRAM_ON_IDLE is on; auto = on for GPU pools.",
    )
    cudnn_conv_algo: str = _setting(
        "heuristic",
        _conv_algo,
        "How CUDA workers pick cuDNN convolution algorithms for each new input shape: "
        "heuristic (cuDNN's heuristics, no trial runs), exhaustive (time every algorithm, "
        "slow on each new shape), default (a fixed algorithm).",
    )
    cuda_defaults: tuple[str, ...] = _setting(
        (),
        _cuda_options,
        "CUDA provider options to leave at ONNX Runtime's default instead of ours (comma list "
        f"of {', '.join(CUDA_OPTIONS)}): a way to retry a failing CUDA start without a rebuild.",
    )
    admission_timeout_s: float = _setting(
        30.0, _seconds(), "How long a task may wait for enough free GPU memory."
    )
    max_retries: int = _setting(
        1,
        _int(0),
        "Retries of a task whose worker crashed (never for an input that crashed one before).",
    )
    model_set: str = _setting(
        model_sets.default_name(),
        _model_set,
        "Model set: ppocr-v6-small (accurate), ppocr-v6-tiny (fast), ppocr-v4 (RapidOCR "
        "1.4.4's; the reference profile needs it). Each set's files and settings: "
        "model_sets.json.",
        aliases=("VRAM_ORCH_OCR_MODELS",),
    )
    ocr_profile: str = _setting(
        "default",
        _profile,
        "default (fixes the reference's defects) or reference (RapidOCR 1.4.4 parity).",
    )
    max_input_bytes: int = _setting(64 << 20, _int(1), "Largest encoded input, bytes.")
    max_pixels: int = _setting(
        40_000_000,
        _int(1),
        "Largest decoded image, width x height (checked from the header, before decoding).",
    )
    max_det_pixels: int = _setting(4_000_000, _int(1), "Largest detector input, width x height.")
    model_dir: str | None = _setting(
        None,
        _path,
        "Folder with the model set's files (names as in model_sets.json, each checked by "
        "sha256); default: the user cache, else downloaded into the cache.",
    )
    ort_dylib: str | None = _setting(
        None,
        _path,
        "libonnxruntime.so to load in workers; default: from the onnxruntime(-gpu) wheel.",
    )
    peaks_dir: str | None = _setting(
        None,
        _path,
        "Where learned per-task VRAM peaks are kept (peaks.json); default: the user cache.",
        aliases=("VRAM_ORCH_PROFILE_DIR",),
    )
    graph_cache_dir: str | None = _setting(
        None,
        _path_or_off,
        "Where CPU workers keep graph-optimised copies of the models, so workers after the "
        "first start faster; 'off' disables it; default: the user cache.",
    )
    worker_bin: str | None = _setting(
        None, _path, "Worker executable; default: the one in this package."
    )
    scripted_gpu: str | None = _setting(
        None,
        _path,
        "Testing only: a scripted GPU file read instead of NVML (vram_orchestrator.testing; "
        "docs/testing.md).",
    )
    pipeline: str = _setting(
        "auto",
        _pipeline,
        "Pipeline of VramWorkerOrchestrator: layout (every model in the workers: layout "
        "regions, tables, OCR where a page has no text layer; headings, paragraphs, tables, "
        "pictures, reading order), ocr (text lines only: text layer or OCR in the workers), "
        "docling (docling's full pipeline, its layout and table models set to the CPU in the "
        "service, OCR in the workers; needs torch), auto (= layout).",
    )
    worker_log: str = _setting(
        "auto",
        _log_level,
        "Worker log level; auto follows the 'vram_orchestrator.worker' logger.",
    )
    #: Where each value came from ("default", "env NAME" or "argument"), for runtime_info.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Reads the environment, applies keyword overrides, validates everything. A setting
        given under two of its names takes the first (the current name); a different value
        under another name is ignored with a warning."""
        env = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(_BY_KEYWORD))
        if unknown:
            allowed = ", ".join(v.keyword for v in ENV_VARS)
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; allowed: {allowed}")
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for var in ENV_VARS:
            given = [
                (f"argument {k}", raw if isinstance(raw, str) else _to_text(raw))
                for k in var.keywords
                if (raw := overrides.get(k)) is not None
            ]
            source = "argument"
            if not given:
                given = [(name, env[name]) for name in (var.name, *var.aliases) if name in env]
                source = f"env {given[0][0]}" if given else "default"
            if not given:
                values[var.keyword] = var.default
            else:
                where, text = given[0]
                values[var.keyword] = _parse(var, text, where)
                for other, other_text in given[1:]:
                    _warn_if_ignored(var, (where, text), (other, other_text), values[var.keyword])
            sources[var.keyword] = source
        reference = model_sets.REFERENCE_SET
        if values["ocr_profile"] == "reference" and values["model_set"] != reference:
            raise ConfigError(
                f"VRAM_ORCH_OCR_PROFILE=reference reproduces RapidOCR 1.4.4 and needs "
                f"VRAM_ORCH_MODEL_SET={model_sets.REFERENCE_SET}, not {values['model_set']!r}."
            )
        return cls(**values, sources=sources)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}


def _env_var(f: Field[Any]) -> EnvVar:
    meta = f.metadata
    name = meta["env"] or _PREFIX + f.name.upper()
    return EnvVar(name, f.name, meta["parse"], f.default, meta["doc"], meta["aliases"])


#: The whole configuration surface, read from :class:`Settings`. The table in
#: docs/configuration.md is generated from it (``python -m vram_orchestrator.settings``).
ENV_VARS: tuple[EnvVar, ...] = tuple(_env_var(f) for f in fields(Settings) if "parse" in f.metadata)

_BY_KEYWORD = {k: v for v in ENV_VARS for k in v.keywords}


def _warn_if_ignored(
    var: EnvVar, used: tuple[str, str], ignored: tuple[str, str], value: Any
) -> None:
    try:
        same = var.parse(ignored[1]) == value
    except ValueError:
        same = False
    if not same:
        log.warning(
            "%s=%r is ignored: %s=%r is given too and takes precedence",
            ignored[0].removeprefix("argument "),
            ignored[1],
            used[0].removeprefix("argument "),
            used[1],
        )


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
    """The configuration table of docs/configuration.md."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for var in ENV_VARS:
        name = f"`{var.name}`" + "".join(f" (alias `{a}`)" for a in var.aliases)
        default = "—" if var.default in (None, ()) else f"`{_to_text(var.default)}`"
        rows.append(f"| {name} | {default} | {var.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
