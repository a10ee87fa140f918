"""pytest fixtures for services built on vram-orchestrator (loaded automatically when the
package is installed; ``-p no:vram_orchestrator`` turns them off).

- ``vram_pool``: an ``OcrPool`` with test-friendly settings (CPU, short timeouts), closed
  after the test; the test fails if a worker process of it outlives the teardown. On a
  ``scripted_gpu`` or with a ``scripted_worker`` in the same test, it uses them. Override
  the ``vram_pool_settings`` fixture (a dict of ``OcrPool`` keywords) to change settings.
- ``scripted_gpu``: a :class:`~vram_orchestrator.testing.ScriptedGpu` (16 GiB, nothing held)
  that every pool created during the test reads instead of NVML, with its scripted worker.
- ``scripted_worker``: a :class:`~vram_orchestrator.testing.ScriptedWorker` that every pool
  created during the test runs (on the ``scripted_gpu`` when the test has one).
- ``no_cuda_in_process``: fails the test if, at its end, this process maps libcuda, the
  CUDA runtime, cuBLAS, cuDNN or ONNX Runtime.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..pool import OcrPool
from . import ScriptedGpu, ScriptedWorker, cuda_libraries_mapped

#: vram_pool's settings unless vram_pool_settings says otherwise.
TEST_SETTINGS: dict[str, Any] = {
    "device": "cpu",
    "max_workers": 2,
    "task_timeout_s": 5.0,
    "startup_timeout_s": 60.0,
    "kill_grace_s": 1.0,
    "admission_timeout_s": 1.0,
    "idle_timeout_s": 0.0,
    "standby": "off",
}
#: How long a closed pool's workers may take to be gone.
EXIT_GRACE_S = 5.0


@pytest.fixture
def scripted_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ScriptedGpu:
    """A scripted GPU every pool created in this test reads instead of NVML."""
    gpu = ScriptedGpu(tmp_path / "vram-orchestrator-gpu")
    for name, value in gpu.environ().items():
        monkeypatch.setenv(name, value)
    return gpu


@pytest.fixture
def scripted_worker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ScriptedWorker:
    """The scripted worker every pool created in this test runs."""
    if "scripted_gpu" in request.fixturenames:
        gpu: ScriptedGpu = request.getfixturevalue("scripted_gpu")
        return gpu.worker
    worker = ScriptedWorker(tmp_path / "vram-orchestrator-worker")
    monkeypatch.setenv("VRAM_ORCH_WORKER_BIN", str(worker.path))
    return worker


@pytest.fixture
def vram_pool_settings() -> dict[str, Any]:
    """Override to give ``vram_pool`` other ``OcrPool`` keywords (merged over the
    test-friendly defaults)."""
    return {}


@pytest.fixture
def vram_pool(
    request: pytest.FixtureRequest, vram_pool_settings: dict[str, Any]
) -> Iterator[OcrPool]:
    """An ``OcrPool`` for the test, closed after it; fails if a worker outlives it."""
    settings = dict(TEST_SETTINGS)
    if "scripted_gpu" in request.fixturenames:
        gpu: ScriptedGpu = request.getfixturevalue("scripted_gpu")
        settings.update(gpu.pool_settings())
    elif "scripted_worker" in request.fixturenames:
        worker: ScriptedWorker = request.getfixturevalue("scripted_worker")
        settings["worker_bin"] = str(worker.path)
    settings.update(vram_pool_settings)
    pool = OcrPool(**settings)
    try:
        yield pool
    finally:
        seen = {w["pid"] for w in pool.runtime_info().get("workers", [])}
        pool.close()
        deadline = time.monotonic() + EXIT_GRACE_S
        left = _running(seen)
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = _running(seen)
        if left:
            pytest.fail(f"worker process(es) {sorted(left)} outlived vram_pool's close()")


@pytest.fixture
def no_cuda_in_process() -> Iterator[None]:
    """Fails the test if this process maps CUDA or ONNX Runtime libraries at its end."""
    yield
    mapped = cuda_libraries_mapped()
    if mapped:
        pytest.fail(
            "this process loaded CUDA or ONNX Runtime (the models belong in the workers): "
            + ", ".join(mapped)
        )


def _running(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (zombies count as gone: they hold nothing)."""
    left = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            left.add(pid)
    return left
