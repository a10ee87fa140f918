"""Testing tools for services built on vram-orchestrator, for CI machines without a GPU.

- :class:`ScriptedGpu`: a GPU that pools read instead of NVML (name, total memory, what
  other processes hold, changeable during a test). Pools on it run the same admission,
  placement and recycling code as on a real GPU.
- :class:`ScriptedWorker`: a worker process that needs no models and does what the test
  says per input: return given lines, take N seconds, book N MiB on the scripted GPU, crash
  with a signal, exit, hang, write garbage, fail to start. Every error path of a pool
  (``InsufficientVram``, ``WorkerCrashed``, ``TaskTimeout``, ``QueueFull``, ...) is reached
  in milliseconds.
- :func:`cuda_libraries_mapped`: the CUDA and ONNX Runtime libraries mapped into this
  process (there should be none: the models run in the workers).

With pytest these come as fixtures (``vram_pool``, ``scripted_gpu``, ``scripted_worker``,
``no_cuda_in_process``; :mod:`vram_orchestrator.testing.plugin`, loaded automatically when
the package is installed, ``-p no:vram_orchestrator`` turns it off). docs/testing.md has a
worked example.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _child

__all__ = ["ScriptedGpu", "ScriptedWorker", "cuda_libraries_mapped"]

#: What a scripted worker answers when told nothing else.
_DEFAULT_LINES = ["scripted"]

#: Pids of "other processes" on a scripted GPU: above Linux's pid limit (2**22), so never a
#: real process of this machine.
_OTHER_PIDS = 1 << 22


class ScriptedGpu:
    """A scripted GPU: a JSON file a pool reads instead of NVML.

    A pool reads it when created with ``scripted_gpu=gpu.path`` (or with
    ``VRAM_ORCH_SCRIPTED_GPU`` set, as the ``scripted_gpu`` fixture does). Its workers must
    book memory on it: use :attr:`worker` (a :class:`ScriptedWorker` on this GPU) as the
    pool's ``worker_bin``.

    >>> gpu = ScriptedGpu(tmp_path, total_mb=16384)
    >>> gpu.fill(0.95)                       # another process holds 95 %
    >>> pool = OcrPool(**gpu.pool_settings())
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        total_mb: float | Sequence[float] = 16384,
        name: str = "Scripted GPU",
        *,
        context_mb: float = 300,
        task_mb: float = 200,
        growth_mb: float = 0,
        pid_offset: int = 0,
    ) -> None:
        """``total_mb``: one device, or one total per device. The other keywords shape
        :attr:`worker`'s memory (see :class:`ScriptedWorker`)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "scripted-gpu.json"
        totals = [float(total_mb)] if isinstance(total_mb, (int, float)) else list(total_mb)
        devices = [
            {"index": i, "uuid": f"GPU-scripted-{i}", "name": name, "total_mb": t, "processes": []}
            for i, t in enumerate(totals)
        ]
        _child.write_json(self.path, {"devices": devices})
        self._next_other = _OTHER_PIDS
        self.worker = ScriptedWorker(
            self.folder / "worker",
            gpu=self,
            context_mb=context_mb,
            task_mb=task_mb,
            growth_mb=growth_mb,
            pid_offset=pid_offset,
        )

    def pool_settings(self) -> dict[str, Any]:
        """Keywords for an ``OcrPool`` on this GPU with its scripted worker. Peaks learned on
        it stay in its folder, never in the user's cache (where they would change what a
        later test's pool admits)."""
        return {
            "scripted_gpu": str(self.path),
            "worker_bin": str(self.worker.path),
            "device": "cuda",
            "peaks_dir": str(self.folder / "peaks"),
        }

    def environ(self) -> dict[str, str]:
        """The same as environment variables: every pool created with them set uses this GPU."""
        return {f"VRAM_ORCH_{k.upper()}": v for k, v in self.pool_settings().items()}

    def hold(self, mb: float, *, pid: int | None = None, device: int = 0) -> int:
        """Another process holds ``mb`` MiB on ``device`` (0 releases it). Returns its pid
        (a new one unless given): error messages name it."""
        if pid is None:
            self._next_other += 1
            pid = self._next_other
        _child.book(self.path, device, pid, mb)
        return pid

    def fill(self, fraction: float, *, device: int = 0) -> int:
        """Another process holds ``fraction`` of the device's total. Returns its pid."""
        total = self.devices()[device]["total_mb"]
        return self.hold(total * fraction, device=device)

    def release(self, pid: int, *, device: int = 0) -> None:
        """The process ``pid`` gives its memory back."""
        _child.book(self.path, device, pid, 0)

    def devices(self) -> list[dict[str, Any]]:
        """Each device as the file holds it, with ``used_mb`` and ``free_mb`` added."""
        state = json.loads(self.path.read_text())
        for d in state["devices"]:
            d["used_mb"] = sum(p["used_mb"] for p in d["processes"] if _alive(p))
            d["free_mb"] = max(d["total_mb"] - d["used_mb"], 0.0)
        devices: list[dict[str, Any]] = state["devices"]
        return devices

    def usage(self, device: int = 0) -> dict[int, float]:
        """pid -> MiB on ``device`` now (processes that are gone hold nothing)."""
        return {p["pid"]: p["used_mb"] for p in self.devices()[device]["processes"] if _alive(p)}


def _alive(entry: dict[str, Any]) -> bool:
    owner = entry.get("owner")
    return owner is None or os.path.exists(f"/proc/{owner}")


class ScriptedWorker:
    """A worker executable (:attr:`path`, for a pool's ``worker_bin``) that speaks the
    worker protocol without models and does per input what the rules say.

    A rule matches an input whose file name is ``match``, or whose bytes contain it (so
    ``pool.ocr(b"crash")`` reaches a rule ``match="crash"``); the first rule with uses left
    wins, else the default. Rules are read at every task: change them at any time.

    >>> worker = ScriptedWorker(tmp_path)
    >>> worker.on("boom", crash=signal.SIGSEGV)
    >>> worker.on("slow", seconds=5)
    >>> pool = OcrPool(worker_bin=str(worker.path), device="cpu")
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        gpu: ScriptedGpu | None = None,
        context_mb: float = 300,
        task_mb: float = 200,
        growth_mb: float = 0,
        pid_offset: int = 0,
    ) -> None:
        """``gpu``: book memory there (``context_mb`` from start, ``task_mb`` more while a
        task runs, ``growth_mb`` more after each task). ``pid_offset``: book under pids that
        are not the workers' own, as NVML in a sandbox that does not translate pids."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "scripted-worker"
        self._config: dict[str, Any] = {
            "gpu": str(gpu.path) if gpu else None,
            "context_mb": context_mb,
            "task_mb": task_mb,
            "growth_mb": growth_mb,
            "pid_offset": pid_offset,
            "startup": {},
        }
        _child.write_json(self.folder / "config.json", self._config)
        self._rules: list[dict[str, Any]] = []
        self.default()
        self.path.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{Path(_child.__file__)}" "{self.folder}" "$@"\n'
        )
        self.path.chmod(0o755)

    def on(self, match: str, *, times: int | None = None, **behaviour: Any) -> ScriptedWorker:
        """What to do with inputs matching ``match`` (for the first ``times`` matching
        tasks only, across workers, when given). Returns self. The behaviour keywords:

        - ``lines`` (list of str): the text lines to answer with (default none);
        - ``seconds`` (float): how long the task takes;
        - ``book_mb`` (float): GPU memory held meanwhile, above the worker's own;
        - ``crash`` (signal): the worker kills itself with it;
        - ``exit`` (int): the worker exits with this code;
        - ``hang`` (bool): the worker never answers;
        - ``garbage`` (bool): the worker writes bytes that are not a frame;
        - ``error`` ((kind, message)): an error answer; kind ``invalid_input``,
          ``inference`` or ``setup``.
        """
        self._rules.append({"match": match, "times": times, **_rule(**behaviour)})
        self._save_rules()
        return self

    def default(self, **behaviour: Any) -> ScriptedWorker:
        """What to do with inputs no rule matches (the keywords of :meth:`on`; at first:
        answer one line, "scripted")."""
        self._default = _rule(**{"lines": _DEFAULT_LINES, **behaviour})
        self._save_rules()
        return self

    def on_start(self, *, fail: str | None = None, seconds: float = 0) -> ScriptedWorker:
        """Workers started from now on take ``seconds`` to start, or fail to start with the
        setup error ``fail``."""
        self._config["startup"] = {"fail": fail, "seconds": _amount(seconds, "seconds")}
        _child.write_json(self.folder / "config.json", self._config)
        return self

    def clear(self) -> ScriptedWorker:
        """No rules, the first default, counts reset."""
        self._rules = []
        (self.folder / "counts.json").unlink(missing_ok=True)
        self.default()
        return self

    def calls(self) -> list[dict[str, Any]]:
        """Every task a worker received, in order: ``pid``, ``input`` (file name, or "" for
        bytes and arrays) and ``rule`` (the rule used, or "default")."""
        log = self.folder / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line]

    def _save_rules(self) -> None:
        _child.write_json(
            self.folder / "rules.json", {"rules": self._rules, "default": self._default}
        )


def _rule(
    *,
    lines: Sequence[str] | None = None,
    seconds: float = 0,
    book_mb: float | None = None,
    crash: int | signal.Signals | None = None,
    exit: int | None = None,
    hang: bool = False,
    garbage: bool = False,
    error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """One behaviour as the worker reads it (see ScriptedWorker.on); a wrong keyword is a
    TypeError here, in the test, not in the worker."""
    rule: dict[str, Any] = {"lines": list(lines or []), "seconds": _amount(seconds, "seconds")}
    if book_mb is not None:
        rule["book_mb"] = _amount(book_mb, "book_mb")
    if crash is not None:
        rule["crash"] = int(crash)
    if exit is not None:
        rule["exit"] = exit
    if hang:
        rule["hang"] = True
    if garbage:
        rule["garbage"] = True
    if error is not None:
        rule["error"] = list(error)
    return rule


def _amount(value: float, name: str) -> float:
    """A number of seconds or MiB for the worker: finite and >= 0, else a ValueError here,
    in the test (the worker would fail on it in the middle of a task)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        hint = " (hang=True for a task that never answers)" if name == "seconds" else ""
        raise ValueError(f"{name}={value!r}: expected a finite number >= 0{hint}")
    return float(value)


#: Library names that mean CUDA or ONNX Runtime is loaded in a process.
_CUDA_LIBRARIES = ("libcuda.so", "libcudart", "libcublas", "libcudnn", "libonnxruntime")


def cuda_libraries_mapped(pid: int | str = "self") -> list[str]:
    """The CUDA and ONNX Runtime libraries mapped into process ``pid`` (default: this one):
    empty for a service that keeps its models in workers."""
    with open(f"/proc/{pid}/maps") as f:
        paths = {line.split(maxsplit=5)[-1].strip() for line in f if "/" in line}
    return sorted(p for p in paths if any(n in os.path.basename(p) for n in _CUDA_LIBRARIES))
