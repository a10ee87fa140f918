"""GPU memory admission, peak learning, recycling, placement and standby, end to end:
scripted worker processes on a scripted GPU machine that the pool reads instead of NVML
(vram_orchestrator.testing, the tools our users test with). The rules themselves are
unit-tested in Rust (crates/supervisor/src/vram/tests.rs); these tests check the wiring."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import vram_orchestrator as vo
from conftest import alive, wait_for
from vram_orchestrator.testing import ScriptedGpu

OTHER = 4_000_000  # a pid that is not ours: another service on the GPU
#: Decisions use readings at most 50 ms old: a change is seen after this.
SEEN = 0.1


@pytest.fixture
def gpu(tmp_path: Path):
    """make(totals, context_mb=..., task_mb=..., growth_mb=..., hold_s=..., pid_offset=...,
    **pool kwargs) → (pool, scripted GPU). pid_offset != 0: workers book memory under pids
    that are not theirs, as NVML shows them in a sandbox that does not translate pids."""

    def make(
        totals: list[float],
        *,
        context_mb: float = 300,
        task_mb: float = 200,
        growth_mb: float = 0,
        hold_s: float = 0.2,
        pid_offset: int = 0,
        pool_factory,
        **kwargs: object,
    ):
        gpu = ScriptedGpu(
            tmp_path / "gpu",
            totals,
            context_mb=context_mb,
            task_mb=task_mb,
            growth_mb=growth_mb,
            pid_offset=pid_offset,
        )
        gpu.worker.default(seconds=hold_s)
        settings = {**gpu.pool_settings(), "peaks_dir": str(tmp_path / "peaks")}
        settings["standby"] = False
        pool = pool_factory(**{**settings, **kwargs})
        return pool, gpu

    return make


def test_a_task_waits_for_memory_another_process_holds_then_runs(gpu, make_pool, ocrset):
    pool, scripted = gpu([4000], pool_factory=make_pool, max_workers=1, admission_timeout_s=30)
    scripted.hold(3700, pid=OTHER)
    time.sleep(SEEN)
    future = pool.submit(ocrset / "01_line_short.png")
    assert wait_for(lambda: pool.runtime_info()["waiting_for_vram"] == 1, 5)
    time.sleep(0.3)
    info = pool.runtime_info()
    assert not future.done()
    assert info["counters"]["spawned"] == 0  # no worker may start without the memory
    scripted.hold(0, pid=OTHER)  # the other service leaves
    time.sleep(SEEN)
    result = future.result(timeout=10)
    assert result["worker"]["device"] == "cuda:0"
    # Peak NVML saw for the worker during the task: context + task.
    assert result["vram_peak_mb"] == pytest.approx(500, abs=1)


def test_refusal_after_the_admission_timeout_names_numbers_and_users(gpu, make_pool, ocrset):
    pool, scripted = gpu(
        [4000], pool_factory=make_pool, admission_timeout_s=0.5, vram_margin_mb=100
    )
    scripted.hold(3500, pid=OTHER)
    time.sleep(SEEN)
    t0 = time.monotonic()
    with pytest.raises(vo.InsufficientVram) as info:
        pool.ocr(ocrset / "01_line_short.png")
    waited = time.monotonic() - t0
    err = info.value
    assert 0.5 <= waited < 3
    assert err.device == "cuda:0"
    assert err.available_mb == pytest.approx(4000 - 3500 - 100)
    assert err.required_mb > err.available_mb
    assert f"pid {OTHER}" in str(err) and "3500 MB" in str(err)
    assert pool.runtime_info()["counters"]["spawned"] == 0
    # The pool keeps serving once memory is back.
    scripted.hold(0, pid=OTHER)
    time.sleep(SEEN)
    assert pool.ocr(ocrset / "01_line_short.png")["lines"]


def test_a_task_that_can_never_fit_fails_at_once(gpu, make_pool, ocrset):
    pool, _ = gpu([300], pool_factory=make_pool, admission_timeout_s=30)
    t0 = time.monotonic()
    with pytest.raises(vo.InsufficientVram):
        pool.ocr(ocrset / "01_line_short.png")
    assert time.monotonic() - t0 < 2


def test_learned_peaks_persist_and_a_restarted_pool_admits_by_them(gpu, make_pool, ocrset):
    pool, _scripted = gpu([8000], pool_factory=make_pool, context_mb=400, task_mb=300)
    assert pool.ocr(ocrset / "01_line_short.png")["vram_peak_mb"] == pytest.approx(700, abs=1)
    learned = pool.runtime_info()["gpu_memory"]["learned_peaks_mb"]
    assert list(learned.values()) == [pytest.approx(700, abs=1)]
    peaks_file = Path(pool.runtime_info()["gpu_memory"]["peaks_file"])
    pool.close()
    assert json.loads(peaks_file.read_text())["peaks_mb"] == learned

    # A new pool (a restarted service) needs peak + 20 % from its first task on.
    pool2, sim2 = gpu(
        [8000],
        pool_factory=make_pool,
        admission_timeout_s=0.3,
        vram_margin_mb=0,
        peaks_dir=str(peaks_file.parent),
    )
    sim2.hold(8000 - 800, pid=OTHER)
    time.sleep(SEEN)
    with pytest.raises(vo.InsufficientVram) as info:
        pool2.ocr(ocrset / "01_line_short.png")
    assert info.value.required_mb == pytest.approx(840, abs=2)
    sim2.hold(8000 - 850, pid=OTHER)
    time.sleep(SEEN)
    assert pool2.ocr(ocrset / "01_line_short.png")["lines"]


def test_reservations_keep_workers_that_have_not_allocated_yet_from_overcommitting(
    gpu, make_pool, ocrset, tmp_path
):
    # Learn the peak first: 1000 context + 500 task = 1500, so each task needs 1800.
    pool, _ = gpu([8000], pool_factory=make_pool, context_mb=1000, task_mb=500, max_workers=1)
    pool.ocr(ocrset / "01_line_short.png")
    pool.close()
    # 4000 MB: room for two new workers (3600), not three, although NVML shows all of it
    # free when the three tasks arrive together.
    pool, _ = gpu(
        [4000],
        pool_factory=make_pool,
        context_mb=1000,
        task_mb=500,
        hold_s=0.5,
        max_workers=3,
        vram_margin_mb=0,
        free_vram_on_idle=False,
    )
    futures = [pool.submit(ocrset / "01_line_short.png") for _ in range(3)]
    assert wait_for(lambda: pool.runtime_info()["waiting_for_vram"] == 1, 5)
    assert pool.runtime_info()["counters"]["spawned"] == 2
    results = [f.result(timeout=20) for f in futures]
    # The third ran on a warm worker (which only needed what it did not hold yet).
    assert pool.runtime_info()["counters"]["spawned"] == 2
    assert len({r["worker"]["pid"] for r in results}) == 2


@pytest.mark.parametrize(
    ("pid_offset", "served", "level"),
    [
        # Level after task 1: 400; task 2: 500 (+100); task 3: 600 (+200 > 150) → recycled.
        (0, 3, 400),
        # A sandbox whose NVML pids are not ours: tasks 1-2 prove it, the level is learned
        # again after task 2 (500 MB of device memory above others'), task 4 leaves 700.
        (1_000_000, 4, 500),
    ],
    ids=["nvml-pids", "sandbox-pids"],
)
def test_a_worker_whose_vram_grows_is_recycled_between_tasks(
    gpu, make_pool, ocrset, pid_offset, served, level
):
    pool, scripted = gpu(
        [8000],
        pool_factory=make_pool,
        pid_offset=pid_offset,
        growth_mb=100,
        hold_s=0.1,
        max_workers=1,
        free_vram_on_idle=False,
        worker_vram_growth_mb=150,
    )
    pids = []
    for _ in range(served + 1):
        pids.append(pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"])
        time.sleep(0.2)  # a reading between tasks
    assert len(set(pids[:served])) == 1 and pids[served] != pids[0]
    exits = pool.runtime_info()["recent_exits"]
    assert [e["reason"] for e in exits] == ["recycle"]
    assert f"grew from {level} MB" in exits[0]["detail"]
    # Its memory is given back: the recycled worker is gone from the device.
    assert wait_for(lambda: pids[0] + pid_offset not in scripted.usage(0), 5)


def test_a_worker_over_the_vram_limit_is_recycled(gpu, make_pool, ocrset):
    pool, _ = gpu(
        [8000],
        pool_factory=make_pool,
        context_mb=900,
        max_workers=1,
        free_vram_on_idle=False,
        worker_vram_limit_mb=800,
    )
    first = pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"]
    assert wait_for(lambda: not alive(first), 5)
    assert "over 800 MB" in pool.runtime_info()["recent_exits"][0]["detail"]


def test_placement_picks_the_gpu_with_most_room_and_pins_the_worker(gpu, make_pool, ocrset):
    pool, scripted = gpu([4000, 4000], pool_factory=make_pool, max_workers=1)
    scripted.hold(3000, pid=OTHER)
    time.sleep(SEEN)
    r = pool.ocr(ocrset / "01_line_short.png")
    assert r["worker"]["device"] == "cuda:1"
    assert scripted.worker.calls()[-1]["device"] == "GPU-scripted-1"  # its CUDA_VISIBLE_DEVICES
    assert pool.runtime_info()["device"] == "cuda:0,1"


def test_device_cuda_n_pins_every_worker(gpu, make_pool, ocrset):
    pool, scripted = gpu([4000, 4000], pool_factory=make_pool, device="cuda:0")
    scripted.hold(3000, pid=OTHER)
    time.sleep(SEEN)
    r = pool.ocr(ocrset / "01_line_short.png")
    assert r["worker"]["device"] == "cuda:0"
    assert scripted.worker.calls()[-1]["device"] == "GPU-scripted-0"


def test_standby_holds_no_vram_takes_the_first_task_and_comes_back(gpu, make_pool, ocrset):
    pool, scripted = gpu(
        [8000], pool_factory=make_pool, standby=True, idle_timeout_s=0, max_workers=2
    )
    assert wait_for(lambda: _standbys(pool), 30)
    (standby_pid,) = _standbys(pool)
    time.sleep(0.5)  # past the idle timeout: a standby is not idle-ended
    assert _standbys(pool) == [standby_pid]
    assert standby_pid not in scripted.usage(0)  # no GPU memory at all
    assert pool.runtime_info()["workers"][0]["gpu_mb"] == 0

    r = pool.ocr(ocrset / "01_line_short.png")
    assert r["worker"]["pid"] == standby_pid
    assert r["timings_ms"]["activate"] > 0
    # Idle again: the used worker exits (its memory goes), a new standby takes its place.
    assert wait_for(lambda: not alive(standby_pid), 30)
    assert wait_for(lambda: len(_standbys(pool)) == 1 and _standbys(pool) != [standby_pid], 30)
    assert all(pid not in scripted.usage(0) for pid in _standbys(pool))


def _standbys(pool: vo.OcrPool) -> list[int]:
    return [w["pid"] for w in pool.runtime_info()["workers"] if w["standby"]]


def _argv(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def test_cuda_provider_settings_reach_gpu_workers_only(gpu, make_pool, ocrset):
    cuda = {"cudnn_conv_algo": "exhaustive", "cuda_defaults": "gpu_mem_limit,arena_extend_strategy"}
    pool, _ = gpu([8000], pool_factory=make_pool, free_vram_on_idle=False, **cuda)
    argv = _argv(pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"])
    assert argv[argv.index("--cudnn-conv-algo") + 1] == "exhaustive"
    assert argv[argv.index("--cuda-defaults") + 1] == "gpu_mem_limit,arena_extend_strategy"
    cpu = make_pool(free_vram_on_idle=False, max_workers=1, **cuda)
    argv = _argv(cpu.ocr(ocrset / "01_line_short.png")["worker"]["pid"])
    assert "--cudnn-conv-algo" not in argv and "--cuda-defaults" not in argv


def test_standby_on_cpu_runs_the_real_worker(make_pool, ocrset):
    pool = make_pool(standby=True, max_workers=1)
    assert wait_for(lambda: _standbys(pool), 10)
    (pid,) = _standbys(pool)
    r = pool.ocr(ocrset / "13_page_paragraph.png")
    assert r["worker"]["pid"] == pid
    assert r["timings_ms"]["activate"] > 0 and r["lines"]
    assert r["vram_peak_mb"] is None  # CPU
    r2 = make_pool(max_workers=1).ocr(ocrset / "13_page_paragraph.png")
    assert [line["text"] for line in r["lines"]] == [line["text"] for line in r2["lines"]]
    assert r2["timings_ms"]["activate"] == 0


def test_runtime_info_lists_devices_reservations_and_profiles(gpu, make_pool, ocrset):
    pool, _scripted = gpu([4000, 2000], pool_factory=make_pool, free_vram_on_idle=False)
    pool.ocr(ocrset / "01_line_short.png")
    info = pool.runtime_info()
    mem = info["gpu_memory"]
    assert [d["index"] for d in mem["devices"]] == [0, 1]
    assert mem["devices"][0]["total_mb"] == 4000 and mem["devices"][0]["name"] == "Scripted GPU"
    assert mem["per_process_readings"] is True
    assert len(mem["learned_peaks_mb"]) == 1
    (_worker,) = info["workers"]
    assert wait_for(lambda: pool.runtime_info()["workers"][0]["gpu_mb"] == 300, 3)
    assert info["limits"]["admission_timeout_s"] == pool.settings.admission_timeout_s


def test_a_sandbox_whose_nvml_pids_are_not_ours_falls_back_to_whole_device_readings(
    gpu, make_pool, ocrset
):
    """gVisor-like: NVML lists the workers under other pids and /proc shows no nested
    namespace. Per-worker readings would be 0 forever (no peak learned, no recycling)."""
    pool, scripted = gpu(
        [8000],
        pool_factory=make_pool,
        pid_offset=1_000_000,
        free_vram_on_idle=False,
        max_workers=1,
        worker_vram_limit_mb=400,
    )
    results = [pool.ocr(ocrset / "01_line_short.png") for _ in range(3)]
    (booked,) = scripted.usage(0)
    assert booked == results[0]["worker"]["pid"] + 1_000_000  # NVML never lists our pid
    info = pool.runtime_info()
    assert info["gpu"]["per_process_readings"].startswith("unavailable: NVML never listed")
    assert info["gpu_memory"]["per_process_readings"] is False
    # Peaks come from the device's used memory: context + task (500 MB), not 0 or None.
    assert results[-1]["vram_peak_mb"] is not None and results[-1]["vram_peak_mb"] >= 400
    assert info["gpu_memory"]["learned_peaks_mb"]
    # ...and the worker limit acts on them: 300 MB held between tasks is within 400.
    assert info["counters"]["spawned"] == 1


def test_metrics_export_gpu_memory_admission_and_standby(gpu, make_pool, ocrset):
    from prometheus_client import CollectorRegistry

    from test_metrics import _samples
    from vram_orchestrator.metrics import PoolCollector

    pool, scripted = gpu([4000], pool_factory=make_pool, standby=True, admission_timeout_s=30)
    registry = CollectorRegistry()
    registry.register(PoolCollector(pool, name="g"))
    pool.ocr(ocrset / "01_line_short.png")
    assert wait_for(lambda: _standbys(pool), 5)
    scripted.hold(3900, pid=OTHER)
    time.sleep(SEEN)
    future = pool.submit(ocrset / "01_line_short.png")
    assert wait_for(lambda: pool.runtime_info()["waiting_for_vram"] == 1, 5)
    m = _samples(registry)
    label = ("pool", "g")
    assert m[("vram_orch_tasks_waiting_for_vram", (label,))] == 1
    assert m[("vram_orch_workers", (label, ("state", "standby")))] == 1
    [peak] = [v for (name, _), v in m.items() if name == "vram_orch_learned_peak_bytes"]
    assert peak == pytest.approx(500 * 2**20, rel=0.01)
    device_used = m[("vram_orch_device_memory_bytes", (("device", "cuda:0"), ("kind", "used")))]
    assert device_used == 3900 * 2**20
    scripted.hold(0, pid=OTHER)
    assert future.result(timeout=10)["lines"]
