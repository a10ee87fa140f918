"""On a real NVIDIA GPU: the CUDA path end to end. Skipped (and reported as skipped) where
NVML sees no GPU or ONNX Runtime has no CUDA provider; scripts/gpu-run.sh runs them on the
GPU machine. Device memory is read through NVML, as the pool reads it: by our workers' pids
when NVML lists them, else as the whole device's rise over its idle level."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import vram_orchestrator as vo
from conftest import wait_for
from vram_orchestrator import resources
from vram_orchestrator.settings import Settings

# Device memory within this of the idle level counts as given back (whole-device readings).
TOLERANCE_MB = 32.0


def _cuda_ready() -> str | None:
    report = vo.gpu_report()
    if report["status"] != "available" or not report["devices"]:
        return report.get("reason", "NVML lists no GPU")
    try:
        dylib = resources.ort_dylib(Settings.load().ort_dylib)
    except vo.VramOrchestratorError as e:
        return str(e)
    if not resources.has_cuda_provider(dylib):
        return f"ONNX Runtime at {dylib} has no CUDA provider"
    return None


_WHY_NOT = _cuda_ready()
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=f"no CUDA: {_WHY_NOT}")


def _device() -> dict:
    return vo.gpu_report()["devices"][0]


def _listed(pids: set[int]) -> float | None:
    """Memory NVML lists for `pids` now, or None when it lists none of them."""
    found = [p["used_mb"] or 0.0 for p in _device()["processes"] if p["pid"] in pids]
    return sum(found) if found else None


@pytest.fixture
def idle_level() -> float:
    """Device used memory with none of our workers alive."""
    return _device()["used_mb"]


def test_cuda_reads_as_cpu_does(make_pool, ocrset, ground_truth):
    names = sorted(ground_truth)
    cuda = make_pool(device="cuda:0", free_vram_on_idle=False, max_workers=1)
    cpu = make_pool(device="cpu", free_vram_on_idle=False, max_workers=1)
    same = 0
    for name in names:
        a, b = cuda.ocr(ocrset / name), cpu.ocr(ocrset / name)
        assert a["worker"]["device"] == "cuda:0"
        same += [x["text"] for x in a["lines"]] == [x["text"] for x in b["lines"]]
    # GPU kernels differ from CPU ones in the last bits: a rare line may read differently.
    assert same >= len(names) - 2, f"only {same}/{len(names)} images read the same"


# A fresh interpreter: pytest's own plugins (jax, torch) may map CUDA into this one. It notes
# which CUDA libraries are mapped after each step, so a failure says which step mapped them.
_SERVICE = """
import json, os, sys
CUDA = ("libcuda.so", "libcudart", "libcublas", "libcudnn", "libonnxruntime")
def mapped():
    maps = open("/proc/self/maps").read()
    return [lib for lib in CUDA if lib in maps]
steps = {}
import vram_orchestrator as vo
steps["import"] = mapped()
vo.gpu_report()
steps["nvml"] = mapped()
with vo.OcrPool(device="cuda:0", free_vram_on_idle=False, max_workers=1) as pool:
    r = pool.ocr(sys.argv[1])
    listed = {p["pid"] for d in vo.gpu_report()["devices"] for p in d["processes"]}
    steps["ocr"] = mapped()
print(json.dumps({
    "device": r["worker"]["device"],
    "text": " ".join(x["text"] for x in r["lines"]),
    "worker_listed": r["worker"]["pid"] in listed,
    "service_listed": os.getpid() in listed,
    "steps": steps,
}))
"""


def test_the_service_process_holds_no_cuda(ocrset):
    out = subprocess.run(
        [sys.executable, "-c", _SERVICE, str(ocrset / "02_line_pangram.png")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["device"] == "cuda:0" and "quick brown fox" in seen["text"].lower()
    # A CUDA context is what holds VRAM, and NVML lists every process that has one.
    assert seen["worker_listed"] and not seen["service_listed"], seen
    # No CUDA runtime, cuBLAS, cuDNN or ONNX Runtime in the service at any step. Only the
    # driver library may appear, and only through NVML (which may open it: the 2026-12-01 GPU
    # run saw it mapped after OCR, without recording the step); the pool adds nothing.
    steps = seen["steps"]
    assert steps["import"] == [], steps
    assert set(steps["nvml"]) <= {"libcuda.so"}, steps
    assert steps["ocr"] == steps["nvml"], steps


def test_memory_returns_when_the_worker_goes_idle(make_pool, ocrset, idle_level):
    pool = make_pool(device="cuda:0", free_vram_on_idle=True, idle_timeout_s=0, standby=False)
    r = pool.ocr(ocrset / "13_page_paragraph.png")
    pid = r["worker"]["pid"]
    used_while_warm = _device()["used_mb"]
    assert r["vram_peak_mb"] is None or r["vram_peak_mb"] > 0
    assert wait_for(lambda: not pool.runtime_info()["workers"], 2.0), "the worker did not exit"
    assert wait_for(lambda: _listed({pid}) is None, 1.0), "NVML still lists the exited worker"
    assert wait_for(lambda: _device()["used_mb"] <= idle_level + TOLERANCE_MB, 1.0), (
        f"device used {_device()['used_mb']:.0f} MB after idle, {idle_level:.0f} MB before "
        f"({used_while_warm:.0f} MB while the worker was alive)"
    )


def test_a_standby_worker_holds_no_vram_and_answers(make_pool, ocrset, idle_level):
    pool = make_pool(device="cuda:0", free_vram_on_idle=True, idle_timeout_s=0, standby=True)
    assert wait_for(
        lambda: (
            [w["standby"] for w in pool.runtime_info()["workers"]] == [True]
            and pool.runtime_info()["workers"][0]["state"] == "idle"
        ),
        60.0,
    ), pool.runtime_info()["recent_exits"]
    standby_pid = pool.runtime_info()["workers"][0]["pid"]
    time.sleep(0.3)
    assert _listed({standby_pid}) is None
    assert _device()["used_mb"] <= idle_level + TOLERANCE_MB
    r = pool.ocr(ocrset / "02_line_pangram.png")
    assert r["worker"]["pid"] == standby_pid and r["timings_ms"]["activate"] > 0
    assert "quick brown fox" in " ".join(x["text"] for x in r["lines"]).lower()


def test_a_full_gpu_refuses_with_insufficient_vram(make_pool, ocrset):
    pytest.importorskip("torch")
    code = (
        "import sys, time, torch\n"
        "torch.cuda.init(); free, _ = torch.cuda.mem_get_info()\n"
        "x = torch.empty(free - (400 << 20), dtype=torch.uint8, device='cuda')\n"
        "x.fill_(1); torch.cuda.synchronize(); print('ok', flush=True); time.sleep(120)\n"
    )
    hog = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert hog.stdout is not None and hog.stdout.readline().strip() == "ok"
        pool = make_pool(device="cuda:0", admission_timeout_s=1.0, standby=False)
        t0 = time.monotonic()
        with pytest.raises(vo.InsufficientVram) as info:
            pool.ocr(ocrset / "13_page_paragraph.png")
        assert time.monotonic() - t0 < 10
        e = info.value
        assert e.required_mb > e.available_mb and e.device == "cuda:0"
        assert str(hog.pid) in str(e) or "MB used" in str(e)
    finally:
        hog.kill()
        hog.wait()
