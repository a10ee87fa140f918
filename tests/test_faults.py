"""Fault injection with real processes and real signals: each fault costs at most its own
task, with the right error, and the pool keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vram_orchestrator as vo
from conftest import alive, children, wait_for, worker_pids
from vram_orchestrator.testing import ScriptedWorker


def _busy_worker(pool: vo.OcrPool, timeout: float = 30) -> int:
    """Waits until a worker is running a task and returns its pid."""
    found: list[int] = []

    def busy() -> bool:
        found[:] = worker_pids(pool, "busy")
        return bool(found)

    assert wait_for(busy, timeout, interval=0.002), pool.runtime_info()
    return found[0]


@pytest.mark.parametrize(
    ("sig", "name"), [(signal.SIGKILL, "SIGKILL"), (signal.SIGSEGV, "SIGSEGV")]
)
def test_killed_busy_worker_fails_only_its_task_then_pool_serves(make_pool, ocrset, sig, name):
    pool = make_pool(max_workers=1, max_retries=0)
    future = pool.submit(ocrset / "13_page_paragraph.png")
    pid = _busy_worker(pool)
    os.kill(pid, sig)
    with pytest.raises(vo.WorkerCrashed) as info:
        future.result(timeout=60)
    err = info.value
    assert err.signal == sig and err.exit_code is None and err.attempts == 1
    assert name in str(err) and str(pid) in str(err)
    after = pool.ocr(ocrset / "01_line_short.png")
    assert after["lines"] and after["worker"]["pid"] != pid
    assert pool.runtime_info()["exits_by_reason"]["crash"] == 1


def test_crash_is_retried_on_a_fresh_worker(make_pool, ocrset):
    pool = make_pool(max_workers=1, max_retries=1)
    future = pool.submit(ocrset / "13_page_paragraph.png")
    pid = _busy_worker(pool)
    os.kill(pid, signal.SIGKILL)
    result = future.result(timeout=120)
    assert result["attempts"] == 2 and result["worker"]["pid"] != pid and result["lines"]
    assert pool.runtime_info()["counters"]["retried"] == 1


@pytest.mark.parametrize(("max_retries", "crashes"), [(2, 2), (2, 3), (0, 1)])
def test_max_retries_bounds_a_tasks_own_retries(make_pool, tmp_path, max_retries, crashes):
    """Each attempt of a retried task may crash (only a new task with an input that crashed
    before is refused a retry); the message says what happened. SIGSEGV: a crash of the
    worker's own making (a kill from outside is not held against the input)."""
    worker = ScriptedWorker(tmp_path).on("flaky", crash=signal.SIGSEGV, times=crashes)
    pool = make_pool(max_workers=1, max_retries=max_retries, worker_bin=str(worker.path))
    if crashes <= max_retries:
        assert pool.ocr(b"flaky")["attempts"] == crashes + 1
        return
    with pytest.raises(vo.WorkerCrashed) as info:
        pool.ocr(b"flaky")
    message = str(info.value)
    assert info.value.attempts == max_retries + 1 and info.value.signal == signal.SIGSEGV
    if max_retries:
        assert f"every one of its {max_retries + 1} attempts crashed" in message
    else:
        assert "VRAM_ORCH_MAX_RETRIES=0" in message
    assert "was not retried" not in message or max_retries == 0
    assert "(the worker wrote nothing)" in message  # killed silently: said so, not blank
    # The same input again, as a new task: a poison input is not retried.
    worker.on("flaky", crash=signal.SIGSEGV)
    with pytest.raises(vo.WorkerCrashed, match="crashed a worker before"):
        pool.ocr(b"flaky")


def test_a_done_callback_may_use_and_close_the_pool(make_pool, ocrset):
    """Callbacks run on a thread of their own: one that waits on the pool does not stop
    the deliveries it waits for, and one that closes the pool does not panic."""
    pool = make_pool(max_workers=1)
    seen: dict[str, object] = {}

    def uses_the_pool(f):
        seen["inner"] = pool.ocr(ocrset / "01_line_short.png", timeout_s=60)

    outer = pool.submit(ocrset / "02_line_pangram.png")
    outer.add_done_callback(uses_the_pool)
    assert outer.result(timeout=60)["lines"]
    assert wait_for(lambda: "inner" in seen, 60), "the callback's pool.ocr() never returned"
    assert seen["inner"]["lines"]

    def closes_the_pool(f):
        try:
            seen["closed"] = pool.close()
        except BaseException as e:  # a PanicException is a BaseException
            seen["closed"] = e

    last = pool.submit(ocrset / "01_line_short.png")
    last.add_done_callback(closes_the_pool)
    assert wait_for(lambda: "closed" in seen, 60)
    assert seen["closed"] is True and pool.closed


def test_a_stopped_idle_worker_is_replaced_not_given_the_next_task(make_pool, ocrset):
    pool = make_pool(max_workers=1, free_vram_on_idle=False, task_timeout_s=20)
    pool.warm_up()
    assert wait_for(lambda: worker_pids(pool, "idle"), 30)
    (stopped,) = worker_pids(pool, "idle")
    os.kill(stopped, signal.SIGSTOP)
    try:
        # SIGSTOP takes effect asynchronously: the premise is a worker already stopped.
        assert wait_for(lambda: _state(stopped) == "T", 5)
        started = time.monotonic()
        result = pool.ocr(ocrset / "01_line_short.png")
        assert result["worker"]["pid"] != stopped and result["attempts"] == 1
        assert time.monotonic() - started < 10  # not the 20 s time limit
        assert wait_for(lambda: not alive(stopped), 5)
        exits = pool.runtime_info()["recent_exits"]
        assert any("stopped (SIGSTOP" in e["detail"] for e in exits), exits
    finally:
        if alive(stopped):
            os.kill(stopped, signal.SIGKILL)


def test_cancelling_a_running_task_ends_its_worker_at_once(make_pool, tmp_path):
    worker = ScriptedWorker(tmp_path).on("slow", seconds=60)
    pool = make_pool(max_workers=1, free_vram_on_idle=False, worker_bin=str(worker.path))
    future = pool.submit(b"slow")
    assert wait_for(lambda: worker_pids(pool, "busy") != [], 30)
    [pid] = worker_pids(pool)
    assert future.cancel() and future.cancelled()
    assert wait_for(lambda: not alive(pid), 5), "the cancelled task's worker kept computing"
    assert pool.runtime_info()["exits_by_reason"].get("cancel") == 1
    assert pool.ocr(b"page")["worker"]["pid"] != pid  # served by a fresh worker

    async def cancelled_request() -> None:  # a web request aborted mid-task
        task = asyncio.ensure_future(pool.ocr_async(b"slow"))
        await asyncio.sleep(0)
        assert await asyncio.to_thread(wait_for, lambda: worker_pids(pool, "busy") != [], 30)
        [busy] = worker_pids(pool, "busy")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(wait_for, lambda: not alive(busy), 5)

    asyncio.run(cancelled_request())
    assert pool.runtime_info()["exits_by_reason"].get("cancel") == 2


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_stopped_worker_times_out_through_sigkill(make_pool, tmp_path):
    worker = ScriptedWorker(tmp_path).on("slow", seconds=5)
    pool = make_pool(
        max_workers=1,
        free_vram_on_idle=False,
        task_timeout_s=1,
        kill_grace_s=0.3,
        worker_bin=str(worker.path),
    )
    started = time.monotonic()
    future = pool.submit(b"slow")
    assert wait_for(lambda: worker_pids(pool, "busy") != [], 30)
    [pid] = worker_pids(pool)
    os.kill(pid, signal.SIGSTOP)  # busy and stopped: SIGTERM stays pending, only SIGKILL ends it
    with pytest.raises(vo.TaskTimeout) as info:
        future.result(timeout=30)
    assert 0.9 < time.monotonic() - started < 10
    assert info.value.limit_s == 1 and "VRAM_ORCH_TASK_TIMEOUT_S" in str(info.value)
    assert wait_for(lambda: not alive(pid), 5)
    assert pool.ocr(b"page")["worker"]["pid"] != pid
    [exit_record] = [e for e in pool.runtime_info()["recent_exits"] if e["pid"] == pid]
    assert exit_record["reason"] == "timeout" and "SIGKILL" in exit_record["detail"]


def test_garbage_frames_cost_one_task(make_pool, ocrset, tmp_path):
    worker = ScriptedWorker(tmp_path).on("01_line_short.png", garbage=True, times=1)
    pool = make_pool(max_workers=1, max_retries=0, worker_bin=str(worker.path))
    with pytest.raises(vo.WorkerCrashed) as info:
        pool.ocr(ocrset / "01_line_short.png")
    assert "malformed frame" in str(info.value)
    assert pool.ocr(ocrset / "01_line_short.png")["lines"]
    assert pool.runtime_info()["exits_by_reason"]["protocol_error"] == 1


def test_worker_that_cannot_start_fails_tasks_with_setup_error(make_pool, ocrset, tmp_path):
    worker = ScriptedWorker(tmp_path).on_start(fail="the model file is unreadable")
    pool = make_pool(max_workers=2, worker_bin=str(worker.path))
    futures = [pool.submit(ocrset / "01_line_short.png") for _ in range(3)]
    for f in futures:
        with pytest.raises(vo.SetupError, match="model file is unreadable"):
            f.result(timeout=30)
    # It does not respawn in a loop once the queue is failed.
    time.sleep(0.3)
    spawned = pool.runtime_info()["counters"]["spawned"]
    time.sleep(0.5)
    assert pool.runtime_info()["counters"]["spawned"] == spawned <= 3


PARENT = """
import sys, time
import vram_orchestrator as vo
pool = vo.OcrPool(device="cpu", max_workers=2, free_vram_on_idle=False)
page = sys.argv[1]
futures = [pool.submit(page) for _ in range(8)]
deadline = time.time() + 60
while time.time() < deadline:
    busy = [w["pid"] for w in pool.runtime_info()["workers"] if w["state"] == "busy"]
    if len(busy) == 2:
        print(" ".join(map(str, busy)), flush=True)
        break
    time.sleep(0.01)
time.sleep(60)
"""


def test_parent_killed_with_sigkill_takes_its_busy_workers_within_1s(ocrset):
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(ocrset / "13_page_paragraph.png")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2, line
        assert all(alive(p) for p in pids)
        proc.kill()
        killed = time.monotonic()
        proc.wait(10)
        assert wait_for(lambda: not any(alive(p) for p in pids), 1.0, interval=0.005), (
            f"workers still alive {time.monotonic() - killed:.2f}s after the parent died"
        )
    finally:
        proc.kill()
        proc.stdout.close()
        proc.wait()


def test_idle_workers_exit_after_the_idle_timeout(make_pool, ocrset):
    pool = make_pool(max_workers=2, free_vram_on_idle=True, idle_timeout_s=0.3)
    futures = [pool.submit(ocrset / "01_line_short.png") for _ in range(4)]
    for f in futures:
        f.result(timeout=60)
    done = time.monotonic()
    assert wait_for(lambda: children() == [], 0.3 + 0.5, interval=0.005)
    assert time.monotonic() - done >= 0.25
    assert pool.runtime_info()["exits_by_reason"].get("idle", 0) >= 1


def test_warm_workers_stay_when_free_vram_on_idle_is_off(make_pool, ocrset):
    pool = make_pool(max_workers=1, free_vram_on_idle=False)
    first = pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"]
    time.sleep(0.5)
    second = pool.ocr(ocrset / "01_line_short.png")["worker"]
    assert second["pid"] == first and second["tasks_served"] == 2


BAD_INPUTS = {
    "empty": b"",
    "random": os.urandom(4096),
    "truncated_png": (Path(__file__).parent / "data/ocrset/02_line_pangram.png").read_bytes()[:300],
    "text": b"hello, I am not an image",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_bytes_get_invalid_input_and_the_worker_survives(make_pool, ocrset, name):
    pool = make_pool(max_workers=1, free_vram_on_idle=False)
    pid = pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"]
    started = time.monotonic()
    with pytest.raises(vo.InvalidInput):
        pool.ocr(BAD_INPUTS[name])
    assert time.monotonic() - started < 2
    assert pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"] == pid


def test_missing_file_is_invalid_input(make_pool):
    pool = make_pool(max_workers=1)
    with pytest.raises(vo.InvalidInput, match="cannot read"):
        pool.ocr("/no/such/file.png")


def test_per_call_timeout_overrides_the_pool_limit(make_pool, ocrset):
    pool = make_pool(max_workers=1, task_timeout_s=600, kill_grace_s=0.2)
    started = time.monotonic()
    with pytest.raises(vo.TaskTimeout) as info:
        pool.ocr(ocrset / "13_page_paragraph.png", timeout_s=0.2)
    assert info.value.limit_s == 0.2 and time.monotonic() - started < 10
    assert pool.ocr(ocrset / "01_line_short.png")["lines"]


def test_recycle_after_max_tasks(make_pool, ocrset):
    pool = make_pool(max_workers=1, free_vram_on_idle=False, max_tasks_per_worker=2)
    pids = [pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"] for _ in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4], pids
    info = pool.runtime_info()
    assert info["exits_by_reason"]["recycle"] == 2
    assert all("max_tasks_per_worker" in e["detail"] for e in info["recent_exits"])


def test_recycle_when_resident_memory_passes_the_limit(make_pool, ocrset):
    # Any real worker holds more than 1 MB: it is recycled after every task.
    pool = make_pool(max_workers=1, free_vram_on_idle=False, worker_rss_limit_mb=1)
    first = pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"]
    assert pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"] != first
    [record, *_] = pool.runtime_info()["recent_exits"]
    assert record["reason"] == "recycle" and "over 1 MB" in record["detail"]


def test_cancelling_an_asyncio_task_removes_its_queued_task(make_pool, ocrset):
    import asyncio

    pool = make_pool(max_workers=1)
    page = ocrset / "13_page_paragraph.png"

    async def run() -> None:
        first = asyncio.ensure_future(pool.ocr_async(page))
        queued = asyncio.ensure_future(pool.ocr_async(page))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert (await first)["lines"]

    asyncio.run(run())
    counters = pool.runtime_info()["counters"]
    assert counters["succeeded"] == 1 and counters["failed"] == 1  # the cancelled one


def test_release_idle_ends_warm_workers_now_and_the_pool_keeps_serving(make_pool, ocrset):
    pool = make_pool(max_workers=2, free_vram_on_idle=False)
    pool.warm_up()
    assert wait_for(lambda: len(worker_pids(pool, "idle")) == 2, 30)
    pool.release_idle()
    assert wait_for(lambda: children() == [], 2.0, interval=0.005)
    assert pool.ocr(ocrset / "01_line_short.png")["lines"]
    exits = pool.runtime_info()["recent_exits"]
    assert [e["detail"].startswith("released on request") for e in exits] == [True, True]


DROPPED = """
import gc, os, sys, time, weakref
import vram_orchestrator as vo

def counts():
    return len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))

def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

page = sys.argv[1]
pool = vo.OcrPool(device="cpu", max_workers=1, free_vram_on_idle=False)
pool.ocr(page)
pool.close()
base = counts()
for _ in range(3):
    pool = vo.OcrPool(device="cpu", max_workers=1, free_vram_on_idle=False)
    future = pool.submit(page)
    pid = future.result(timeout=60)["worker"]["pid"]
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None, "the pool was not collected"
    deadline = time.time() + 10
    while running(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not running(pid), f"worker {pid} outlived its dropped pool"
time.sleep(0.5)
fds, threads = counts()
print(f"fds +{fds - base[0]}, threads +{threads - base[1]}")
assert fds <= base[0] and threads <= base[1], (base, (fds, threads))
"""


def test_a_pool_dropped_without_close_is_collected_with_its_workers_and_threads(ocrset):
    run = subprocess.run(
        [sys.executable, "-c", DROPPED, str(ocrset / "01_line_short.png")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]  # the child asserts each point


def test_a_crashed_task_is_retried_on_a_fresh_worker_not_on_another_warm_one(make_pool, tmp_path):
    # An input that kills one worker must not take a second warm one with it: the retry
    # runs on a worker started after the crash.
    worker = ScriptedWorker(tmp_path)
    worker.on("poison", crash=signal.SIGSEGV, times=1)
    pool = make_pool(worker_bin=str(worker.path), max_workers=2, free_vram_on_idle=False)
    pool.warm_up(2)
    assert wait_for(lambda: len(worker_pids(pool, "idle")) == 2, 30)
    warm = set(worker_pids(pool))
    result = pool.ocr(b"poison")
    assert result["attempts"] == 2
    assert result["worker"]["pid"] not in warm, (result["worker"], warm)
    assert result["worker"]["tasks_served"] == 1


def test_a_cancelled_future_wakes_concurrent_futures_wait(make_pool, tmp_path):
    # Future.cancel() alone wakes result() but not wait()/as_completed().
    import concurrent.futures as cf

    worker = ScriptedWorker(tmp_path)
    worker.on("slow", seconds=3)
    pool = make_pool(worker_bin=str(worker.path), max_workers=1)
    running = pool.submit(b"slow")
    queued = pool.submit(b"slow")
    assert queued.cancel()
    started = time.monotonic()
    done, _ = cf.wait([queued], timeout=10)
    assert queued in done and time.monotonic() - started < 2
    assert next(cf.as_completed([queued], timeout=10)) is queued
    running.cancel()
