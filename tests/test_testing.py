"""vram_orchestrator.testing: the pytest plugin as a user's fresh project gets it (installed
package only, no file of ours), the worked FastAPI example, and each scripted behaviour."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vram_orchestrator as vo
from conftest import wait_for
from vram_orchestrator import resources
from vram_orchestrator.testing import ScriptedGpu, ScriptedWorker, cuda_libraries_mapped

ROOT = Path(__file__).parent.parent

FRESH_PROJECT_TESTS = """
import signal
import pytest
import vram_orchestrator as vo

def test_a_result_from_vram_pool(vram_pool, tmp_path):
    from PIL import Image, ImageDraw
    image = Image.new("L", (360, 60), 255)
    ImageDraw.Draw(image).text((10, 20), "HELLO WORLD", fill=0)
    path = tmp_path / "hello.png"
    image.resize((720, 120)).save(path)
    result = vram_pool.ocr(path)
    assert result["worker"]["device"] == "cpu" and result["width"] == 720

def test_a_full_gpu_names_the_other_process(scripted_gpu, vram_pool):
    other = scripted_gpu.fill(0.95)
    with pytest.raises(vo.InsufficientVram) as info:
        vram_pool.ocr(b"page")
    assert f"pid {other}" in str(info.value)

def test_a_crash_names_the_signal(scripted_worker, vram_pool):
    scripted_worker.on("boom", crash=signal.SIGSEGV)
    with pytest.raises(vo.WorkerCrashed) as info:
        vram_pool.ocr(b"boom")
    assert info.value.signal == signal.SIGSEGV and "SIGSEGV" in str(info.value)

def test_a_hang_times_out(scripted_worker, vram_pool):
    scripted_worker.on("stuck", hang=True)
    with pytest.raises(vo.TaskTimeout):
        vram_pool.ocr(b"stuck", timeout_s=0.5)

def test_the_service_process_holds_no_cuda(vram_pool, scripted_worker, no_cuda_in_process):
    assert vram_pool.ocr(b"page")["lines"][0]["text"] == "scripted"
"""


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in ``folder`` as a project of its own: no conftest, rootdir or path of ours."""
    env = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("VRAM_ORCH_")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_fresh_project_reaches_every_path_with_the_installed_fixtures(tmp_path):
    (tmp_path / "test_service.py").write_text(FRESH_PROJECT_TESTS)
    started = time.monotonic()
    run = _pytest(tmp_path, "--durations=0")
    took = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "5 passed" in run.stdout
    print(f"fresh project: 5 tests in {took:.1f} s (pytest's own start included)")
    off = _pytest(tmp_path, "-p", "no:vram_orchestrator")
    assert off.returncode != 0 and "fixture 'vram_pool' not found" in off.stdout


def test_the_worked_fastapi_example_passes(tmp_path):
    for name in ("fastapi_app.py", "test_fastapi_app.py"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    run = _pytest(tmp_path, "-W", "ignore::DeprecationWarning")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout


def test_the_fixtures_fail_a_test_that_breaks_their_promise(tmp_path):
    dylib = resources.ort_dylib(None)
    (tmp_path / "test_broken.py").write_text(
        f"""
import ctypes
import pytest

def test_loads_onnxruntime_here(no_cuda_in_process):
    ctypes.CDLL({str(dylib)!r})

@pytest.fixture
def vram_pool_settings():
    return {{"free_vram_on_idle": False}}

def test_leaves_a_worker_behind(scripted_worker, vram_pool, monkeypatch):
    vram_pool.ocr(b"page")
    monkeypatch.setattr(vram_pool, "close", lambda *a, **k: None)
"""
    )
    run = _pytest(tmp_path)
    assert "2 errors" in run.stdout or "2 failed" in run.stdout, run.stdout[-3000:]
    assert "this process loaded CUDA or ONNX Runtime" in run.stdout and dylib.name in run.stdout
    assert "outlived vram_pool's close()" in run.stdout


def test_rules_reach_each_error_path(make_pool, tmp_path):
    worker = ScriptedWorker(tmp_path)
    worker.on("bad", error=("invalid_input", "not an image"))
    worker.on("odd", error=("inference", "NaN in det"))
    worker.on("quit", exit=7)
    worker.on("flaky", crash=signal.SIGKILL, times=1)
    worker.on("slow", seconds=0.3, lines=["done"])
    pool = make_pool(worker_bin=str(worker.path), max_workers=1, queue_max=1, max_retries=1)
    with pytest.raises(vo.InvalidInput, match="not an image"):
        pool.ocr(b"bad")
    with pytest.raises(vo.InferenceError, match="NaN in det"):
        pool.ocr(b"odd")
    with pytest.raises(vo.WorkerCrashed) as crashed:
        pool.ocr(b"quit")
    assert crashed.value.exit_code == 7
    flaky = pool.ocr(b"flaky")  # the crash is retried on a fresh worker, which serves it
    assert flaky["attempts"] == 2 and flaky["lines"][0]["text"] == "scripted"
    runs = [c for c in worker.calls() if c["rule"].endswith("flaky")]
    assert len(runs) == 1 and worker.calls()[-1]["rule"] == "default"
    slow = [pool.submit(b"slow")]
    assert wait_for(lambda: pool.runtime_info()["queue"]["length"] == 0, 5)  # it runs
    slow.append(pool.submit(b"slow"))  # waits: the queue holds one
    with pytest.raises(vo.QueueFull):
        pool.submit(b"slow")
    assert [f.result(timeout=10)["lines"][0]["text"] for f in slow] == ["done", "done"]


def test_a_pool_on_a_scripted_gpu_shows_it_like_a_real_device(make_pool, tmp_path):
    from prometheus_client import CollectorRegistry

    from vram_orchestrator.metrics import PoolCollector

    gpu = ScriptedGpu(tmp_path, total_mb=[8000, 4000], name="Scripted H1")
    gpu.hold(1000, device=1)
    pool = make_pool(**gpu.pool_settings(), free_vram_on_idle=False, standby="off")
    registry = CollectorRegistry()
    registry.register(PoolCollector(pool, name="scripted"))
    r = pool.ocr(b"page")
    assert r["worker"]["device"] == "cuda:0"  # the device with the most room
    assert wait_for(lambda: gpu.usage(0).get(r["worker"]["pid"]) == 300, 5)  # context booked
    info = pool.runtime_info()
    names = [d["name"] for d in info["gpu"]["devices"]]
    assert names == ["Scripted H1", "Scripted H1"] and info["device"] == "cuda:0,1"
    total = registry.get_sample_value(
        "vram_orch_device_memory_bytes", {"device": "cuda:1", "kind": "used"}
    )
    assert total == 1000 * 2**20  # the other process's memory on the second device
    pool.close()
    assert wait_for(lambda: gpu.usage(0) == {}, 5)  # the worker gave its memory back


def test_a_crashed_scripted_worker_leaves_no_memory_behind(tmp_path):
    gpu = ScriptedGpu(tmp_path)
    gpu.worker.on("die", crash=signal.SIGKILL)
    with vo.OcrPool(**gpu.pool_settings(), max_retries=0, free_vram_on_idle=False) as pool:
        with pytest.raises(vo.WorkerCrashed):
            pool.ocr(b"die")
        assert wait_for(lambda: gpu.usage(0) == {}, 5)  # as the driver frees a dead process


def test_cuda_libraries_mapped_sees_onnxruntime(tmp_path):
    dylib = resources.ort_dylib(None)
    code = f"import ctypes, sys; ctypes.CDLL({str(dylib)!r}); print('loaded')"
    child = subprocess.Popen(
        [sys.executable, "-c", code + "; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "loaded"
        assert [p for p in cuda_libraries_mapped(child.pid) if dylib.name in p]
    finally:
        child.communicate("", timeout=10)
    assert cuda_libraries_mapped() == []  # only the child loaded it


@pytest.mark.parametrize("bad", [float("nan"), -1, float("inf"), float("-inf")])
def test_scripted_worker_refuses_seconds_that_are_not_a_duration(tmp_path, bad):
    worker = ScriptedWorker(tmp_path)
    with pytest.raises(ValueError, match="seconds"):
        worker.on("slow", seconds=bad)
    with pytest.raises(ValueError, match="seconds"):
        worker.default(seconds=bad)
    with pytest.raises(ValueError, match="seconds"):
        worker.on_start(seconds=bad)
    with pytest.raises(ValueError, match="book_mb"):
        worker.on("big", book_mb=bad)


def test_a_scripted_gpu_keeps_its_peaks_in_its_own_folder(tmp_path):
    gpu = ScriptedGpu(tmp_path)
    assert gpu.environ()["VRAM_ORCH_PEAKS_DIR"] == str(tmp_path / "peaks")
