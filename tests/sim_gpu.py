"""A scripted GPU machine for tests without a GPU: a JSON file the pool reads instead of
NVML (``OcrPool(_scripted_gpu=path)``), and the processes on it, ours and others.

Format: ``{"devices": [{"index", "uuid", "name", "total_mb", "processes": [{"pid",
"used_mb"}]}]}``; free memory is the total minus every process's use. Writers take a lock
and replace the file atomically, as the reader expects.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def create(path: Path, totals_mb: list[float], name: str = "Sim GPU") -> Path:
    devices = [
        {"index": i, "uuid": f"GPU-sim-{i}", "name": name, "total_mb": t, "processes": []}
        for i, t in enumerate(totals_mb)
    ]
    _write(path, {"devices": devices})
    return path


@contextmanager
def _locked(path: Path) -> Iterator[dict[str, Any]]:
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        yield state
        _write(path, state)


def _write(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def set_usage(path: Path, device: int | str, pid: int, used_mb: float) -> None:
    """Sets what ``pid`` uses on a device (by index or UUID); 0 removes it."""
    with _locked(path) as state:
        for d in state["devices"]:
            if device in (d["index"], d["uuid"]):
                d["processes"] = [p for p in d["processes"] if p["pid"] != pid]
                if used_mb > 0:
                    d["processes"].append({"pid": pid, "used_mb": used_mb})


def usage(path: Path) -> dict[int, dict[int, float]]:
    """device index → {pid: MB}."""
    state = json.loads(path.read_text())
    return {d["index"]: {p["pid"]: p["used_mb"] for p in d["processes"]} for d in state["devices"]}
