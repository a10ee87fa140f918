"""Shared fixtures: data paths, pools that always close, process inspection helpers, and
the bench scripts as modules."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import vram_orchestrator as vo

DATA = Path(__file__).parent / "data" / "ocrset"
BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="session")
def ocrset() -> Path:
    return DATA


@pytest.fixture(scope="session")
def ground_truth() -> dict[str, list[str]]:
    return json.loads((DATA / "ground_truth.json").read_text())


@pytest.fixture
def make_pool() -> Iterator[Callable[..., vo.OcrPool]]:
    """Builds pools (CPU unless told otherwise) and closes every one after the test."""
    pools: list[vo.OcrPool] = []

    def make(**kwargs: object) -> vo.OcrPool:
        kwargs.setdefault("device", "cpu")
        pool = vo.OcrPool(**kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close(cancel_pending=True, timeout_s=30)


def children(pid: int | None = None, zombies: bool = True) -> list[int]:
    """Child processes of ``pid`` (default: this process), zombies included unless told:
    an unreaped child is a leak too."""
    parent = os.getpid() if pid is None else pid
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces) start after the last ')'.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and (zombies or state != "Z"):
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def worker_pids(pool: vo.OcrPool, state: str | None = None) -> list[int]:
    return [
        w["pid"] for w in pool.runtime_info()["workers"] if state is None or w["state"] == state
    ]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def load_bench(name: str) -> ModuleType:
    """bench/NAME.py as the module NAME (bench/ is not a package), imported once: the
    scripts it imports (they put bench/ on sys.path) are shared with it."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
