"""Blocking calls of a pool keep Python responsive: they release the GIL, Ctrl-C interrupts
their waits, and a close that runs out of time ends what remains, workers included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import vram_orchestrator as vo
from conftest import alive, wait_for, worker_pids
from vram_orchestrator.testing import ScriptedWorker

#: A pool with one 60 s task running and one queued (the queue's only place), then a
#: blocking call on it: ``close`` (waits for both tasks) or ``queue`` (a submit that waits up
#: to 60 s for room). Prints the busy worker's pid, then what happened once interrupted.
WAIT_ON_A_LONG_TASK = """
import os, signal, sys, time
# A shell starts background jobs with SIGINT ignored, and Python then installs no handler:
# set Ctrl-C's usual disposition here, so how the suite was started cannot matter.
signal.signal(signal.SIGINT, signal.default_int_handler)
import vram_orchestrator as vo
from vram_orchestrator.testing import ScriptedWorker

folder, mode = sys.argv[1:]
worker = ScriptedWorker(folder).on("slow", seconds=60)
pool = vo.OcrPool(device="cpu", max_workers=1, queue_max=1, worker_bin=str(worker.path))
running = pool.submit(b"slow")
while not [w for w in pool.runtime_info()["workers"] if w["state"] == "busy"]:
    time.sleep(0.01)
[pid] = [w["pid"] for w in pool.runtime_info()["workers"]]
queued = pool.submit(b"slow")
print(pid, flush=True)
start = time.monotonic()
try:
    if mode == "close":
        pool.close()
    else:
        pool.submit(b"slow", queue_timeout_s=60)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - start:.2f} s", flush=True)
if mode == "close":
    # An interrupted close ends what remains, as one that timed out.
    for future in (running, queued):
        print(type(future.exception(timeout=5)).__name__, flush=True)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    print("worker gone" if not os.path.exists(f"/proc/{pid}") else "worker alive", flush=True)
else:
    assert not pool.closed
    pool.close(cancel_pending=True)
"""


@pytest.mark.parametrize("started", ["foreground", "as a background job"])
@pytest.mark.parametrize("mode", ["close", "queue"])
def test_ctrl_c_interrupts_a_blocking_wait_promptly(tmp_path, mode, started):
    argv = [sys.executable, "-c", WAIT_ON_A_LONG_TASK, str(tmp_path), mode]
    if started != "foreground":
        # What a non-interactive shell does to `cmd &`: the child starts with SIGINT ignored.
        argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
    pid = None
    # The context manager closes the pipes and reaps the child whatever happens, so a
    # failure here leaves nothing open for the next test to trip over.
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            pid = int(child.stdout.readline())
            time.sleep(0.5)  # the child is inside the blocking call by now
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=20)
        except BaseException:  # a failure or pytest's timeout: end the child and its worker
            child.kill()
            child.communicate()
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)
            raise
    assert child.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("interrupted after"), out + err
    assert float(lines[0].split()[2]) < 2.5, out  # not after the 60 s task
    if mode == "close":
        assert lines[1:] == ["PoolClosed", "PoolClosed", "worker gone"], out
    assert wait_for(lambda: not alive(pid), 5)


def test_close_timeout_fails_what_remains_and_ends_the_workers(make_pool, tmp_path):
    worker = ScriptedWorker(tmp_path).on("slow", seconds=60)
    pool = make_pool(max_workers=2, worker_bin=str(worker.path))
    futures = [pool.submit(b"slow") for _ in range(3)]  # two running, one queued
    assert wait_for(lambda: len(worker_pids(pool, "busy")) == 2, 30), pool.runtime_info()
    pids = worker_pids(pool)
    start = time.monotonic()
    assert pool.close(timeout_s=0.5) is False
    assert time.monotonic() - start < 3
    assert wait_for(lambda: not any(alive(p) for p in pids), 5), "workers went on computing"
    for future in futures:
        with pytest.raises(vo.PoolClosed):
            future.result(timeout=5)
    assert pool.close() is True  # the pool finished closing meanwhile


def test_other_threads_run_while_a_large_input_is_submitted(make_pool, tmp_path):
    """Copying and hashing 60 MiB happens without the GIL: a thread that counts keeps
    counting (an asyncio loop keeps serving) while submit runs."""
    worker = ScriptedWorker(tmp_path).on("slow", seconds=60)
    pool = make_pool(max_workers=1, worker_bin=str(worker.path), max_input_bytes=128 << 20)
    payload = bytes(60 << 20)
    # The one worker is busy: the inputs below only queue, so no other thread of this
    # process (sending them to a worker) competes with the counter for the CPU.
    pool.submit(b"slow")
    assert wait_for(lambda: worker_pids(pool, "busy") != [], 30)
    stalls: list[tuple[float, float]] = []  # the counter's pauses over 1 ms: (from, to)
    stop = threading.Event()

    def count() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter()
            if now - last > 0.001:
                stalls.append((last, now))
            last = now

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    counter = threading.Thread(target=count)
    counter.start()
    try:
        worst = []
        for _ in range(3):
            time.sleep(0.05)
            start = time.perf_counter()
            future = pool.submit(payload)
            end = time.perf_counter()
            time.sleep(0.01)  # the counter notes a stall once it runs again
            # The longest part of submit during which the counter stood still.
            worst.append(
                (
                    max((min(b, end) - max(a, start) for a, b in list(stalls)), default=0.0),
                    end - start,
                )
            )
            future.cancel()
    finally:
        stop.set()
        counter.join()
        sys.setswitchinterval(interval)
    # Holding the GIL, the counter would stand still for all of submit (about 100 ms).
    assert min(stalled / took for stalled, took in worst) < 0.25, worst
