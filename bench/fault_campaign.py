"""Mixed-fault campaign against a real OcrPool on CPU: N tasks from several threads and an
asyncio loop while a chaos thread kills, stops and crashes workers, cancels futures,
submits bad inputs, and the pool is closed mid-run and replaced; then every task must have
ended exactly once with an error of ours, and nothing may be left behind.

    python3 bench/fault_campaign.py [--tasks 2000] [--seed 1] [--json OUT]

What runs (real worker processes, the line images of tests/data/ocrset and crops of them):

- ``--threads`` submitter threads (``submit()`` with a done callback, some ``queue_timeout_s``,
  and blocking ``ocr()`` calls) and one asyncio loop (``ocr_async()``) share the good tasks;
- a chaos thread, every ``--fault-interval`` seconds on average: SIGKILL, SIGSEGV or SIGSTOP
  (left stopped, or SIGCONT after 0.05-3 s) to a busy or an idle worker (pids from
  ``runtime_info()["workers"]``, checked to be our children), a cancel of a random pending
  task (a Future, or the asyncio task awaiting ``ocr_async``), or a bad input: random bytes,
  a truncated PNG, empty bytes, a PNG whose header claims 10^10 pixels, a FIFO, a folder, a
  missing file, arrays above ``max_pixels`` (dense and zero-stride), arrays of a wrong dtype
  or shape;
- at a random point in the second half the pool is closed (``close(cancel_pending=...)``,
  chosen by the seed) while work and chaos go on; a new pool (idle workers exit, recycled
  every 50 tasks) takes the rest of the campaign, chaos included.

Checks (PASS/FAIL each; any FAIL makes the exit code 1): every task ended exactly once (one
done callback per future, none pending after a bounded wait); a cancelled future wakes
``concurrent.futures.wait()``; every exception is one of vram_orchestrator's (CancelledError
only where we cancelled); no PanicException, no panic in an error or a log record; no hang
(global ``--deadline``, stacks printed if one is passed); results belong to their input (size;
text where known); good inputs never fail as invalid and bad ones never succeed; each fault
costs at most its own task (WorkerCrashed <= SIGKILL/SIGSEGV sent, TaskTimeout <= SIGSTOPs,
crash exits <= both, no SetupError); PoolClosed only after close(), and never for a task
accepted before close(cancel_pending=False); the pool delivered one outcome per task it
accepted (its own task_stats); close() returns True and has reaped every worker; afterwards
no zombie and no worker child, no fd or thread growth, and a fresh pool reads a line.

Workers still starting are signalled too (a start killed or stopped from outside is replaced,
up to two in a row); ``--spare-starting`` leaves them alone.

Threads and the machine's timing decide the interleaving, so ``--seed`` fixes the plan
(inputs, fault kinds, the close point and mode), not the exact run.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import faulthandler
import json
import logging
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

import vram_orchestrator as vo

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "ocrset"
TRUTH = json.loads((DATA / "ground_truth.json").read_text())
WORKER_COMM = "vram-orch-worke"  # /proc/PID/comm keeps 15 characters
FD_SLACK = 2
THREAD_SLACK = 1

# Outcome names by exception class name; anything else is "unexpected" (a FAIL).
ERROR_KINDS = {
    "InvalidInput": "invalid_input",
    "WorkerCrashed": "worker_crashed",
    "TaskTimeout": "timeout",
    "PoolClosed": "pool_closed",
    "QueueFull": "queue_full",
    "SetupError": "setup_error",
    "ConfigError": "config_error",
    "InferenceError": "inference_error",
    "InsufficientVram": "insufficient_vram",
}
CANCELLED = (cf.CancelledError, asyncio.CancelledError)
# Outcomes only the pool's dispatcher gives (a good input is never refused by submit()).
DELIVERED_BY_POOL = {
    "ok",
    "worker_crashed",
    "timeout",
    "invalid_input",
    "setup_error",
    "inference_error",
    "insufficient_vram",
}


# ---------------------------------------------------------------- inputs


@dataclass
class Input:
    name: str
    source: Any  # path, bytes or array, or a factory of one (called per task)
    good: bool
    size: tuple[int, int] | None = None  # (width, height) a result must have
    text: list[str] | None = None  # the lines a result must have, where known

    def make(self) -> Any:
        return self.source() if callable(self.source) else self.source


def _rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / name).convert("RGB"))


def good_inputs() -> list[Input]:
    """Small, fast tasks: short line images as paths, bytes and arrays, crops (strided
    views), a 5x5 image and a blank array."""
    out = []
    for name in ("01_line_short.png", "12_line_tight.png"):
        w, h = Image.open(DATA / name).size
        truth = TRUTH[name]
        rgb = _rgb(name)
        out += [
            Input(f"path:{name}", str(DATA / name), True, (w, h), truth),
            Input(f"bytes:{name}", (DATA / name).read_bytes(), True, (w, h), truth),
            Input(f"rgb:{name}", rgb, True, (w, h), truth),
            Input(f"gray:{name}", np.ascontiguousarray(rgb[:, :, 0]), True, (w, h), truth),
            Input(
                f"rgba:{name}",
                np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
                True,
                (w, h),
                truth,
            ),
        ]
    pangram = _rgb("02_line_pangram.png")
    crop = pangram[4:-4, :260]  # a strided view: gathered row by row
    out.append(Input("crop:02_line_pangram", crop, True, (crop.shape[1], crop.shape[0])))
    words = _rgb("08_line_small12.png")[:, :120]
    out.append(Input("crop:08_line_small12", words, True, (words.shape[1], words.shape[0])))
    out.append(Input("path:22_tiny5x5.png", str(DATA / "22_tiny5x5.png"), True, (5, 5), []))
    out.append(Input("blank", np.full((40, 120), 255, np.uint8), True, (120, 40), []))
    return out


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny IDAT: refused from the
    header (max_pixels), never decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def bad_inputs(folder: Path, max_pixels: int, rng: random.Random) -> list[Input]:
    """Inputs that must end in InvalidInput (at submit, or from the worker)."""
    png = (DATA / "02_line_pangram.png").read_bytes()
    fifo = folder / "fifo.png"
    os.mkfifo(fifo)
    side = int(max_pixels**0.5) + 8
    return [
        Input("garbage", lambda: rng.randbytes(rng.randint(1, 8192)), False),
        Input("truncated_png", lambda: png[: rng.randint(8, len(png) - 1)], False),
        Input("empty", b"", False),
        Input("text_bytes", b"hello, I am not an image", False),
        Input("png_header_1e10_pixels", _png_claiming(100_000, 100_000), False),
        Input("fifo", str(fifo), False),
        Input("directory", str(folder), False),
        Input("missing_file", str(folder / "no-such-file.png"), False),
        Input("huge_array", lambda: np.zeros((side, side), np.uint8), False),
        Input("huge_zero_stride", np.broadcast_to(np.zeros(1, np.uint8), (side * 2, side)), False),
        Input("float32_array", np.zeros((32, 32, 3), np.float32), False),
        Input("int16_array", np.zeros((32, 32), np.int16), False),
        Input("bool_array", np.zeros((32, 32), bool), False),
        Input("two_channel_array", np.zeros((32, 32, 2), np.uint8), False),
        Input("one_d_array", np.zeros(1024, np.uint8), False),
    ]


# ---------------------------------------------------------------- records


@dataclass
class Task:
    id: int
    origin: str  # thread-submit, thread-ocr, async, chaos-bad
    input: Input
    gen: int = 0  # which pool (1: the one closed mid-run, 2: its successor)
    callbacks: int = 0
    outcome: str | None = None
    stage: str = ""  # "submit" (raised by submit) or "" (the future's or call's outcome)
    error: str = ""
    error_type: str = ""
    cancel_requested: bool = False
    accepted_at: float | None = None  # when submit() returned a future
    ended_at: float | None = None
    future: Any = None  # concurrent Future, or asyncio Task
    slot: Any = None  # its submitter's window, released when it ends


@dataclass
class PoolRun:
    gen: int
    pool: Any
    settings: dict
    pids: set = field(default_factory=set)
    last_info: dict = field(default_factory=dict)
    lethal_signals: int = 0
    sigstops: int = 0
    close_started: float | None = None
    close_returned: float | None = None
    close_result: bool | None = None
    cancel_pending: bool | None = None
    left_after_close: list = field(default_factory=list)  # worker children when close returned

    def delivered(self) -> int:
        return sum(self.pool.task_stats.snapshot()[0].values()) if self.pool else 0


def classify(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, CANCELLED):
        return "cancelled"
    names = [c.__name__ for c in type(error).__mro__]
    if "PanicException" in names:
        return "panic"
    if isinstance(error, vo.VramOrchestratorError):
        return ERROR_KINDS.get(type(error).__name__, "other_vram_error")
    return "unexpected"


def proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return comm, state, int(ppid)


def children_of(pid: int) -> list[tuple[int, str, str]]:
    """(pid, comm, state) of every child process of ``pid``, zombies included."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None and st[2] == pid:
                found.append((int(entry), st[0], st[1]))
    return found


def worker_children() -> list[tuple[int, str, str]]:
    return [k for k in children_of(os.getpid()) if k[1].startswith(WORKER_COMM)]


def counts() -> tuple[int, int, int]:
    """Open fds, Python threads, OS threads of this process."""
    return (
        len(os.listdir("/proc/self/fd")),
        threading.active_count(),
        len(os.listdir("/proc/self/task")),
    )


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the campaign


class Campaign:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.seed = args.seed
        plan_rng = random.Random(f"{args.seed}:plan")
        self.good = good_inputs()
        self.bad = bad_inputs(folder, args.max_pixels, random.Random(f"{args.seed}:bad"))
        self.n_bad = round(args.tasks * args.bad_fraction)
        n_good = args.tasks - self.n_bad
        self.n_async = round(n_good * args.async_fraction)
        self.n_thread = n_good - self.n_async
        # The plan: which input each task gets, which bad inputs chaos sends, the close.
        self.thread_plan = [plan_rng.choice(self.good) for _ in range(self.n_thread)]
        self.async_plan = [plan_rng.choice(self.good) for _ in range(self.n_async)]
        self.bad_plan = [plan_rng.choice(self.bad) for _ in range(self.n_bad)]
        self.close_at = int(args.tasks * plan_rng.uniform(0.5, 0.9))
        self.close_cancel_pending = (
            plan_rng.random() < 0.5 if args.close_mode == "random" else args.close_mode == "cancel"
        )

        self.lock = threading.Lock()
        self.tasks: list[Task] = []
        self.pending: dict[int, Task] = {}
        self.submitted = 0
        self.next_thread_task = 0
        self.faults: Counter[str] = Counter()
        self.stopped: set[int] = set()
        self.conts: list[tuple[float, int]] = []
        self.mismatches: list[str] = []
        self.thread_errors: list[str] = []
        self.log_errors: list[str] = []
        self.callback_errors: list[str] = []
        self.runs: list[PoolRun] = []
        self.current: PoolRun | None = None
        self.submitters_done = threading.Event()
        self.stop_chaos = threading.Event()
        self.async_loop: asyncio.AbstractEventLoop | None = None
        self.deadline = 0.0
        self.hung: list[str] = []
        self.lull_until = 0.0  # submitters wait until then before their next task

    # ---- pools

    def pool_settings(self, gen: int) -> dict:
        a = self.args
        common = {
            "device": "cpu",
            "max_workers": a.workers,
            "threads": 1,
            "task_timeout_s": a.task_timeout,
            "kill_grace_s": 0.5,
            # A worker stopped while starting is replaced at this timeout.
            "startup_timeout_s": 10,
            "max_retries": 1,
            "max_pixels": a.max_pixels,
            "queue_max": a.queue_max,
        }
        if gen == 1:  # warm workers: idle ones are there to be hit
            return {**common, "free_vram_on_idle": False}
        # the successor: workers exit when idle and are recycled, so they come and go
        return {
            **common,
            "free_vram_on_idle": True,
            "idle_timeout_s": 0,
            "max_tasks_per_worker": 50,
        }

    def open_pool(self, gen: int) -> PoolRun:
        settings = self.pool_settings(gen)
        run = PoolRun(gen, vo.OcrPool(**settings), settings)
        with self.lock:
            self.runs.append(run)
            self.current = run
        return run

    # ---- recording

    def new_task(self, origin: str, inp: Input, run: PoolRun) -> Task:
        """A task about to be sent to ``run``'s pool."""
        with self.lock:
            task = Task(len(self.tasks), origin, inp, gen=run.gen)
            self.tasks.append(task)
            self.submitted += 1
        return task

    def finish(
        self, task: Task, error: BaseException | None, result: dict | None, stage: str = ""
    ) -> None:
        """One outcome of a task (called once per done callback, or once by a blocking
        call); a second call is counted, not recorded."""
        with self.lock:
            task.callbacks += 1
            if task.callbacks > 1:
                return
            task.ended_at = time.monotonic()
            task.stage = stage
            self.pending.pop(task.id, None)
        task.outcome = classify(error)
        if error is not None:
            task.error_type = ".".join((type(error).__module__, type(error).__qualname__))
            task.error = str(error)[:300]
        if result is not None:
            self.check_result(task, result)
        if task.slot is not None:
            task.slot.release()

    def check_result(self, task: Task, result: dict) -> None:
        inp = task.input
        size = (result.get("width"), result.get("height"))
        if inp.size is not None and size != inp.size:
            self.mismatches.append(f"task {task.id} ({inp.name}): size {size}, expected {inp.size}")
        text = [line["text"] for line in result.get("lines", [])]
        if inp.text is not None and text != inp.text:
            self.mismatches.append(f"task {task.id} ({inp.name}): text {text}, expected {inp.text}")
        pid = (result.get("worker") or {}).get("pid")
        if pid:
            for run in self.runs:
                if run.gen == task.gen:
                    run.pids.add(pid)

    def on_future_done(self, task: Task) -> Callable[[cf.Future], None]:
        def done(f: cf.Future) -> None:
            if f.cancelled():
                self.finish(task, cf.CancelledError(), None)
                return
            error = f.exception()
            self.finish(task, error, None if error is not None else f.result())

        return done

    def submit_future(self, task: Task, run: PoolRun, **kwargs: Any) -> cf.Future | None:
        try:
            future = run.pool.submit(task.input.make(), **kwargs)
        except BaseException as e:
            self.finish(task, e, None, stage="submit")
            return None
        task.accepted_at = time.monotonic()
        task.future = future
        with self.lock:
            if task.callbacks == 0:
                self.pending[task.id] = task
        future.add_done_callback(self.on_future_done(task))
        return future

    def wait_for_open_pool(self, run: PoolRun) -> None:
        """After PoolClosed at submit: a service waits for its new pool."""
        while time.monotonic() < self.deadline:
            with self.lock:
                if self.current is not run:
                    return
            time.sleep(0.01)

    # ---- submitters

    def thread_submitter(self, index: int) -> None:
        """Submits good tasks, at most --window of them unfinished at a time (the window is
        freed by each task's done callback, so this never waits on a future itself)."""
        rng = random.Random(f"{self.seed}:thread:{index}")
        window = threading.BoundedSemaphore(self.args.window)
        while time.monotonic() < self.deadline:
            if not window.acquire(timeout=max(0.0, self.deadline - time.monotonic())):
                break
            while time.monotonic() < min(self.lull_until, self.deadline):
                time.sleep(0.01)
            with self.lock:
                if self.next_thread_task >= self.n_thread:
                    window.release()
                    break
                inp = self.thread_plan[self.next_thread_task]
                self.next_thread_task += 1
                run = self.current
            if rng.random() < 0.15:  # a blocking call
                task = self.new_task("thread-ocr", inp, run)
                task.slot = window
                try:
                    result = run.pool.ocr(inp.make())
                except BaseException as e:
                    self.finish(task, e, None)
                else:
                    self.finish(task, None, result)
            else:
                task = self.new_task("thread-submit", inp, run)
                task.slot = window
                kwargs = {"queue_timeout_s": 0.5} if rng.random() < 0.3 else {}
                self.submit_future(task, run, **kwargs)
            if task.outcome == "pool_closed" and run.pool.closed:
                self.wait_for_open_pool(run)
            elif task.outcome == "queue_full":
                time.sleep(0.05)  # back off, as a service would
        for _ in range(self.args.window):  # until every task of this thread has ended
            if not window.acquire(timeout=max(0.0, self.deadline - time.monotonic())):
                break

    async def async_submitter(self) -> None:
        self.async_loop = asyncio.get_running_loop()
        window = asyncio.Semaphore(self.args.window)
        jobs: list[asyncio.Task] = []

        async def one(task: Task, run: PoolRun) -> dict:
            return await run.pool.ocr_async(task.input.make())

        def done(task: Task) -> Callable[[asyncio.Task], None]:
            def cb(job: asyncio.Task) -> None:
                window.release()  # here, not in one(): a job cancelled before it ran
                if job.cancelled():
                    self.finish(task, asyncio.CancelledError(), None)
                elif job.exception() is not None:
                    self.finish(task, job.exception(), None)
                else:
                    self.finish(task, None, job.result())

            return cb

        for inp in self.async_plan:
            if time.monotonic() >= self.deadline:
                break
            await window.acquire()
            while time.monotonic() < min(self.lull_until, self.deadline):
                await asyncio.sleep(0.01)
            with self.lock:
                run = self.current
            task = self.new_task("async", inp, run)
            job = asyncio.ensure_future(one(task, run))
            task.future = job
            task.accepted_at = time.monotonic()
            with self.lock:
                self.pending[task.id] = task
            job.add_done_callback(done(task))
            jobs.append(job)
            await asyncio.sleep(0)
            if job.done() and not job.cancelled():
                if isinstance(job.exception(), vo.PoolClosed) and run.pool.closed:
                    while self.current is run and time.monotonic() < self.deadline:
                        await asyncio.sleep(0.01)
                elif isinstance(job.exception(), vo.QueueFull):
                    await asyncio.sleep(0.05)  # back off, as a service would
        if jobs:
            await asyncio.wait(jobs, timeout=max(0.0, self.deadline - time.monotonic()))

    # ---- chaos

    def targets(self, run: PoolRun, state: str) -> list[int]:
        """Pids of the pool's workers in ``state`` now (and what it reports, kept)."""
        info = run.pool.runtime_info()
        workers = info.get("workers", [])
        if not info.get("closed"):  # a closed pool reports nothing
            run.last_info = info
        for w in workers:
            run.pids.add(w["pid"])
        return [w["pid"] for w in workers if w["state"] == state and w["pid"] not in self.stopped]

    def signal_worker(self, rng: random.Random, run: PoolRun) -> None:
        states = ["busy", "idle"] + ([] if self.args.spare_starting else ["starting"])
        state = rng.choice(states)
        sig = rng.choices(["SIGKILL", "SIGSEGV", "SIGSTOP"], weights=[4, 2, 3])[0]
        # Under load a worker is idle for moments only: for an idle one, submitters pause
        # (a lull in traffic) for up to 3 s while the queue drains.
        until = time.monotonic() + (3.0 if state == "idle" else 0.5)
        if state == "idle":
            self.lull_until = until
            self.faults["lull in submissions (to find an idle worker)"] += 1
        while not (targets := self.targets(run, state)) and time.monotonic() < until:
            time.sleep(0.002)
        self.lull_until = 0.0
        if not targets and state == "starting":
            # Workers start rarely under steady load: a busy one takes the signal instead,
            # so the campaign's count of faults does not depend on that timing.
            self.faults["no starting worker to signal (a busy one instead)"] += 1
            state = "busy"
            targets = self.targets(run, state)
        if not targets:
            self.faults[f"no {state} worker to signal"] += 1
            return
        pid = rng.choice(targets)
        st = proc_stat(pid)
        if st is None or st[2] != os.getpid() or not st[0].startswith(WORKER_COMM) or st[1] in "ZX":
            self.faults["target gone before the signal"] += 1
            return
        os.kill(pid, getattr(signal, sig))
        if sig == "SIGSTOP":
            run.sigstops += 1
            self.stopped.add(pid)
            if rng.random() < 0.6:
                delay = rng.uniform(0.05, 3.0)
                self.conts.append((time.monotonic() + delay, pid))
                self.faults[f"SIGSTOP {state} worker, SIGCONT later"] += 1
            else:
                self.faults[f"SIGSTOP {state} worker, left stopped"] += 1
        else:
            run.lethal_signals += 1
            self.faults[f"{sig} {state} worker"] += 1

    def cancel_one(self, rng: random.Random) -> None:
        with self.lock:
            candidates = [t for t in self.pending.values() if t.future is not None]
        if not candidates:
            self.faults["nothing pending to cancel"] += 1
            return
        task = rng.choice(candidates)
        task.cancel_requested = True
        if isinstance(task.future, cf.Future):
            accepted = task.future.cancel()
            self.faults["cancel a Future" + ("" if accepted else " (already done)")] += 1
        elif self.async_loop is not None:
            try:
                self.async_loop.call_soon_threadsafe(task.future.cancel)
            except RuntimeError:  # the loop has ended
                return
            self.faults["cancel an asyncio task"] += 1

    def bad_sent(self) -> int:
        return self.n_bad - len(self.bad_plan)

    def submit_bad(self, run: PoolRun) -> None:
        with self.lock:
            if not self.bad_plan:
                return
            inp = self.bad_plan.pop()
        task = self.new_task("chaos-bad", inp, run)
        self.faults["bad input"] += 1
        self.faults[f"bad input: {inp.name}"] += 1
        self.submit_future(task, run)

    def chaos(self) -> None:
        rng = random.Random(f"{self.seed}:chaos")
        next_action = time.monotonic() + rng.expovariate(1 / self.args.fault_interval)
        while not self.stop_chaos.is_set() and time.monotonic() < self.deadline:
            now = time.monotonic()
            for due, pid in [c for c in self.conts if c[0] <= now]:
                self.conts.remove((due, pid))
                st = proc_stat(pid)
                if st is not None and st[2] == os.getpid() and st[1] not in "ZX":
                    os.kill(pid, signal.SIGCONT)
                self.stopped.discard(pid)
            with self.lock:
                run = self.current
            if self.submitters_done.is_set():  # the rest of the bad inputs, then stop
                while self.bad_plan:
                    self.submit_bad(run)
                break
            if now >= next_action and run is not None:
                next_action = now + rng.expovariate(1 / self.args.fault_interval)
                action = rng.choices(["signal", "cancel", "bad"], weights=[4, 3, 3])[0]
                # Bad inputs keep pace with the tasks submitted, to the end.
                if action == "bad" and self.bad_sent() > self.n_bad * self.submitted / (
                    self.args.tasks
                ):
                    action = "signal"
                if action == "signal":
                    self.signal_worker(rng, run)
                elif action == "cancel":
                    self.cancel_one(rng)
                elif self.bad_plan:
                    self.submit_bad(run)
            else:
                time.sleep(0.01)

    def progress(self) -> None:
        started = time.monotonic()
        while not self.stop_chaos.wait(self.args.progress):
            with self.lock:
                run, pending = self.current, len(self.pending)
                outcomes = Counter(t.outcome for t in self.tasks)
            info = run.pool.runtime_info() if run else {}
            states = Counter(w["state"] for w in info.get("workers", []))
            print(
                f"# {time.monotonic() - started:6.1f} s: {self.submitted} submitted, "
                f"{pending} pending, pool {run.gen if run else '-'}: workers {dict(states)}, "
                f"queue {info.get('queue')}; {dict(outcomes)}",
                flush=True,
            )

    def closer(self) -> None:
        """At the planned point, close the current pool while work goes on, then open its
        successor."""
        while time.monotonic() < self.deadline:
            with self.lock:
                reached = self.submitted >= self.close_at
            if reached or self.submitters_done.is_set():
                break
            time.sleep(0.005)
        with self.lock:
            run = self.current
        run.cancel_pending = self.close_cancel_pending
        self.targets(run, "")  # its counters before the close
        run.close_started = time.monotonic()
        self.faults[f"close(cancel_pending={run.cancel_pending}) mid-run"] += 1
        run.close_result = run.pool.close(
            cancel_pending=run.cancel_pending, timeout_s=self.args.close_timeout
        )
        run.close_returned = time.monotonic()
        run.left_after_close = worker_children()
        self.open_pool(run.gen + 1)

    # ---- the run

    def run(self) -> dict:
        a = self.args
        started = time.monotonic()
        self.deadline = started + a.deadline
        faulthandler.dump_traceback_later(a.deadline + 120, exit=True)  # the last resort
        self.open_pool(1)
        threads = [
            threading.Thread(target=self.thread_submitter, args=(i,), name=f"submitter-{i}")
            for i in range(a.threads)
        ]
        threads.append(
            threading.Thread(
                target=lambda: asyncio.run(self.async_submitter()), name="async-submitter"
            )
        )
        chaos = threading.Thread(target=self.chaos, name="chaos")
        closer = threading.Thread(target=self.closer, name="closer")
        for t in [*threads, chaos, closer]:
            t.start()
        if a.progress:
            threading.Thread(target=self.progress, daemon=True, name="progress").start()
        for t in threads:
            t.join(max(0.0, self.deadline - time.monotonic()))
        self.submitters_done.set()
        chaos.join(max(0.0, self.deadline - time.monotonic()))
        closer.join(max(0.0, self.deadline - time.monotonic()))
        self.stop_chaos.set()
        self.hung += [
            f"thread {t.name} still running" for t in [*threads, chaos, closer] if t.is_alive()
        ]
        if self.hung:  # where they are stuck
            print(f"# hang: {'; '.join(self.hung)}; stacks:", file=sys.stderr, flush=True)
            faulthandler.dump_traceback(sys.stderr, all_threads=True)
        # Every accepted task must end: wait for the pending ones, bounded. (By their done
        # callbacks, not concurrent.futures.wait(): see the check on cancelled futures.)
        until = time.monotonic() + max(1.0, min(120.0, self.deadline - time.monotonic()))
        while self.pending and time.monotonic() < until:
            time.sleep(0.05)
        time.sleep(0.2)  # a second done callback, if any, would come now
        campaign_s = time.monotonic() - started
        final = self.current
        self.targets(final, "")  # its counters and workers before the close
        final.close_started = time.monotonic()
        final.close_result = final.pool.close(timeout_s=a.close_timeout)
        final.close_returned = time.monotonic()
        final.left_after_close = worker_children()
        faulthandler.cancel_dump_traceback_later()
        return {"campaign_s": campaign_s}


# ---------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_tasks(tasks: list[Task], runs: list[PoolRun], total: int) -> list[Check]:
    """The checks on the task records alone (unit-tested with made-up records)."""
    checks = []
    ended_once = [t for t in tasks if t.callbacks == 1]
    twice = [t for t in tasks if t.callbacks > 1]
    never = [t for t in tasks if t.callbacks == 0]
    checks.append(
        Check(
            "every task ended exactly once",
            len(tasks) == total and not twice and not never,
            f"{len(ended_once)}/{total} once, {len(twice)} more than once, {len(never)} never"
            + (
                f" (e.g. task {never[0].id} {never[0].origin} {never[0].input.name})"
                if never
                else ""
            ),
        )
    )
    futures = [t for t in tasks if isinstance(t.future, cf.Future)]
    checks.append(
        Check(
            "one done callback per future, none pending",
            all(t.callbacks == 1 and t.future.done() for t in futures),
            f"{sum(t.callbacks == 1 for t in futures)}/{len(futures)} futures with one callback, "
            f"{sum(not t.future.done() for t in futures)} not done",
        )
    )
    # A future cancelled by its caller must wake concurrent.futures.wait() and
    # as_completed(), as an executor's does (state CANCELLED_AND_NOTIFIED): else a caller
    # waiting on a batch that holds one waits forever.
    cancelled = [f for f in (t.future for t in futures) if f.cancelled()]
    _, unnotified = cf.wait(cancelled, timeout=0)
    checks.append(
        Check(
            "concurrent.futures.wait() sees cancelled futures as done",
            not unnotified,
            f"{len(unnotified)} of {len(cancelled)} cancelled futures never reach "
            "wait()/as_completed() (state "
            + ", ".join(sorted({f._state for f in unnotified} or {"-"}))
            + ")",
        )
    )
    foreign = [t for t in tasks if t.outcome in ("unexpected", "panic")]
    checks.append(
        Check(
            "every exception is a vram_orchestrator error (or CancelledError)",
            not foreign,
            f"{len(foreign)} others"
            + (f": {foreign[0].error_type}: {foreign[0].error}" if foreign else ""),
        )
    )
    unasked = [t for t in tasks if t.outcome == "cancelled" and not t.cancel_requested]
    checks.append(
        Check(
            "CancelledError only for tasks we cancelled",
            not unasked,
            f"{sum(t.outcome == 'cancelled' for t in tasks)} cancelled, "
            f"{sum(t.cancel_requested for t in tasks)} cancels asked, {len(unasked)} unasked",
        )
    )
    panics = [t for t in tasks if t.outcome == "panic" or "panick" in t.error.lower()]
    checks.append(
        Check(
            "no PanicException, no panic in an error",
            not panics,
            f"{len(panics)} tasks" + (f": {panics[0].error}" if panics else ""),
        )
    )
    invalid_good = [t for t in tasks if t.input.good and t.outcome == "invalid_input"]
    ok_bad = [t for t in tasks if not t.input.good and t.outcome == "ok"]
    checks.append(
        Check(
            "good inputs never invalid, bad inputs never succeed",
            not invalid_good and not ok_bad,
            f"{len(invalid_good)} good inputs invalid, {len(ok_bad)} bad inputs ok"
            + (f" (e.g. {ok_bad[0].input.name})" if ok_bad else "")
            + (
                f" (e.g. {invalid_good[0].input.name}: {invalid_good[0].error})"
                if invalid_good
                else ""
            ),
        )
    )
    for run in runs:
        mine = [t for t in tasks if t.gen == run.gen]
        crashed = sum(t.outcome == "worker_crashed" for t in mine)
        timeouts = sum(t.outcome == "timeout" for t in mine)
        setup = [t for t in mine if t.outcome in ("setup_error", "inference_error")]
        # A worker ends as "crash" when killed, and also when found stopped at dispatch.
        crash_exits = (run.last_info.get("exits_by_reason") or {}).get("crash", 0)
        checks.append(
            Check(
                f"pool {run.gen}: each fault costs at most its own task",
                crashed <= run.lethal_signals
                and crash_exits <= run.lethal_signals + run.sigstops
                and timeouts <= run.sigstops
                and not setup,
                f"{crashed} WorkerCrashed for {run.lethal_signals} SIGKILL/SIGSEGV; "
                f"{timeouts} TaskTimeout for {run.sigstops} SIGSTOP; {crash_exits}+ crash exits "
                f"for both; {len(setup)} SetupError/InferenceError"
                + (f" ({setup[0].error[:160]!r})" if setup else ""),
            )
        )
        # The pool's own count of outcomes it delivered: one per task it accepted. A
        # submit() that returned a future was accepted; ocr() and ocr_async() calls were
        # when they ended in a worker's outcome, and may have been when they were closed,
        # refused by a full queue or cancelled.
        delivered = run.delivered()
        futures = sum(t.accepted_at is not None and t.origin != "async" for t in mine)
        calls = [t for t in mine if t.origin in ("thread-ocr", "async")]
        sure = sum(t.outcome in DELIVERED_BY_POOL for t in calls)
        maybe = sum(t.outcome in ("pool_closed", "queue_full", "cancelled") for t in calls)
        checks.append(
            Check(
                f"pool {run.gen}: the pool delivered one outcome per task it accepted",
                futures + sure <= delivered <= futures + sure + maybe,
                f"{delivered} delivered, {futures} futures + {sure} calls accepted "
                f"(+ up to {maybe} calls that may have been)",
            )
        )
        closed = [t for t in mine if t.outcome == "pool_closed"]
        early = [
            t
            for t in closed
            if run.close_started is None
            or (t.ended_at is not None and t.ended_at < run.close_started)
        ]
        dropped = [
            t
            for t in closed
            if run.cancel_pending is False
            and t.accepted_at is not None
            and run.close_started is not None
            and t.accepted_at < run.close_started
        ]
        checks.append(
            Check(
                f"pool {run.gen}: PoolClosed only after close(), none for tasks it accepted"
                + (" before close(cancel_pending=False)" if run.cancel_pending is False else ""),
                not early and not dropped,
                f"{len(closed)} PoolClosed, {len(early)} before close(), {len(dropped)} accepted "
                "before it",
            )
        )
    return checks


def check_all(c: Campaign, base: tuple[int, int, int]) -> list[Check]:
    checks = check_tasks(c.tasks, c.runs, c.args.tasks)
    checks.append(
        Check(
            "no hang (every thread and task done before the deadline)",
            not c.hung,
            "; ".join(c.hung) or f"deadline {c.args.deadline:.0f} s",
        )
    )
    checks.append(
        Check(
            "results belong to their input (size, text)",
            not c.mismatches,
            f"{len(c.mismatches)} mismatches" + (f": {c.mismatches[0]}" if c.mismatches else ""),
        )
    )
    uncaught = c.thread_errors + c.callback_errors
    checks.append(
        Check(
            "no uncaught exception in any thread or callback",
            not uncaught,
            f"{len(uncaught)}" + (f": {uncaught[0]}" if uncaught else ""),
        )
    )
    panic_logs = [m for m in c.log_errors if "panic" in m.lower()]
    checks.append(
        Check(
            "no panic in the logs",
            not panic_logs,
            f"{len(c.log_errors)} error records, {len(panic_logs)} about a panic"
            + (f": {panic_logs[0][:200]}" if panic_logs else ""),
        )
    )
    for run in c.runs:
        took = (run.close_returned or 0) - (run.close_started or 0)
        checks.append(
            Check(
                f"pool {run.gen}: close() returned True in time",
                run.close_result is True,
                f"close(cancel_pending={bool(run.cancel_pending)}) -> "
                f"{run.close_result} after {took:.2f} s",
            )
        )
        left = run.left_after_close
        checks.append(
            Check(
                f"pool {run.gen}: every worker reaped when close() returned",
                not left,
                f"{len(run.pids)} worker pids seen, {len(left)} worker "
                f"children left" + (f": {left[:5]}" if left else ""),
            )
        )
    return checks


def check_afterwards(base: tuple[int, int, int]) -> list[Check]:
    checks = []
    started = time.monotonic()
    with vo.OcrPool(device="cpu", max_workers=1) as pool:
        result = pool.ocr(DATA / "01_line_short.png")
    text = [line["text"] for line in result["lines"]]
    checks.append(
        Check(
            "a fresh pool reads a line correctly afterwards",
            text == TRUTH["01_line_short.png"],
            f"{text} in {time.monotonic() - started:.2f} s",
        )
    )
    deadline = time.monotonic() + 5
    while True:
        kids = children_of(os.getpid())
        now = counts()
        settled = (
            not kids
            and now[0] <= base[0] + FD_SLACK
            and now[1] <= base[1] + THREAD_SLACK
            and now[2] <= base[2] + THREAD_SLACK
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    zombies = [k for k in kids if k[2] == "Z"]
    workers = [k for k in kids if k[1].startswith(WORKER_COMM)]
    checks.append(Check("no zombie child processes", not zombies, f"{len(zombies)} {zombies[:5]}"))
    checks.append(
        Check(
            "no worker process left as our child",
            not workers,
            f"{len(workers)} {workers[:5]}; {len(kids)} children in all",
        )
    )
    checks.append(
        Check(
            f"no fd growth (<= +{FD_SLACK})",
            now[0] <= base[0] + FD_SLACK,
            f"{base[0]} -> {now[0]} open fds",
        )
    )
    checks.append(
        Check(
            f"no thread growth (<= +{THREAD_SLACK})",
            now[1] <= base[1] + THREAD_SLACK and now[2] <= base[2] + THREAD_SLACK,
            f"Python threads {base[1]} -> {now[1]}, OS threads {base[2]} -> {now[2]}",
        )
    )
    return checks


# ---------------------------------------------------------------- main


class _ErrorLog(logging.Handler):
    def __init__(self, campaign: Campaign) -> None:
        super().__init__(logging.ERROR)
        self.campaign = campaign

    def emit(self, record: logging.LogRecord) -> None:
        message = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            message += f" ({record.exc_info[1]!r})"
        if record.name == "concurrent.futures":  # a done callback raised
            self.campaign.callback_errors.append(message)
        self.campaign.log_errors.append(message)


def summarise(c: Campaign, checks: list[Check], wall_s: float, campaign_s: float) -> dict:
    outcomes = Counter(t.outcome for t in c.tasks)
    by_origin: dict[str, Counter] = {}
    for t in c.tasks:
        by_origin.setdefault(t.origin, Counter())[t.outcome] += 1
    at_submit = Counter(t.outcome for t in c.tasks if t.stage == "submit")
    faults = {k: v for k, v in sorted(c.faults.items())}
    runs = [
        {
            "gen": r.gen,
            "settings": {k: v for k, v in r.settings.items() if k != "device"},
            "tasks": sum(t.gen == r.gen for t in c.tasks),
            "lethal_signals": r.lethal_signals,
            "sigstops": r.sigstops,
            "workers_seen": len(r.pids),
            "spawned": (r.last_info.get("counters") or {}).get("spawned"),
            "retried": (r.last_info.get("counters") or {}).get("retried"),
            "exits_by_reason": r.last_info.get("exits_by_reason"),
            "delivered": r.delivered(),
            "close": {
                "cancel_pending": bool(r.cancel_pending),
                "returned": r.close_result,
                "seconds": round((r.close_returned or 0) - (r.close_started or 0), 3),
            },
        }
        for r in c.runs
    ]
    return {
        "seed": c.seed,
        "tasks": len(c.tasks),
        "tasks_planned": c.args.tasks,
        "origins": {k: sum(v.values()) for k, v in sorted(by_origin.items())},
        "outcomes": dict(sorted(outcomes.items())),
        "outcomes_by_origin": {k: dict(sorted(v.items())) for k, v in sorted(by_origin.items())},
        "rejected_at_submit": dict(sorted(at_submit.items())),
        "faults": faults,
        "close_at_task": c.close_at,
        "pools": runs,
        "wall_s": round(wall_s, 2),
        "campaign_s": round(campaign_s, 2),
        "peak_parent_rss_mb": round(peak_rss_mb(), 1),
        "checks": [{"name": k.name, "ok": k.ok, "detail": k.detail} for k in checks],
        "passed": all(k.ok for k in checks),
    }


def print_summary(s: dict, args: argparse.Namespace) -> None:
    print(
        f"# fault campaign: seed {s['seed']}, {s['tasks']} tasks "
        f"({', '.join(f'{k} {v}' for k, v in s['origins'].items())}), "
        f"{args.workers} CPU workers x 1 thread, {os.cpu_count()} CPUs"
    )
    print("outcomes:      " + ", ".join(f"{k} {v}" for k, v in s["outcomes"].items()))
    for origin, o in s["outcomes_by_origin"].items():
        print(f"  {origin:14s}" + ", ".join(f"{k} {v}" for k, v in o.items()))
    print(
        "  raised by submit: "
        + (", ".join(f"{k} {v}" for k, v in s["rejected_at_submit"].items()) or "none")
    )
    print("faults injected:")
    for k, v in s["faults"].items():
        print(f"  {v:5d}  {k}")
    for r in s["pools"]:
        print(
            f"pool {r['gen']}: {r['tasks']} tasks, {r['delivered']} delivered by the pool, "
            f"{r['workers_seen']} workers seen, spawned {r['spawned']}+, retried {r['retried']}+, "
            f"exits {r['exits_by_reason']}; close(cancel_pending={r['close']['cancel_pending']}) "
            f"-> {r['close']['returned']} in {r['close']['seconds']} s"
        )
    print(
        f"close at task {s['close_at_task']}; wall {s['wall_s']} s (campaign {s['campaign_s']} s); "
        f"peak parent RSS {s['peak_parent_rss_mb']} MB"
    )
    print("checks:")
    for k in s["checks"]:
        print(f"  {'PASS' if k['ok'] else 'FAIL'}  {k['name']}: {k['detail']}")
    print("RESULT: " + ("PASS" if s["passed"] else "FAIL"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--threads", type=int, default=3, help="submitter threads (plus one asyncio loop)"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--window", type=int, default=4, help="tasks in flight per submitter")
    ap.add_argument("--async-fraction", type=float, default=0.25)
    ap.add_argument("--bad-fraction", type=float, default=0.08, help="bad inputs sent by chaos")
    ap.add_argument(
        "--fault-interval", type=float, default=0.05, help="mean s between chaos actions"
    )
    ap.add_argument("--task-timeout", type=float, default=8.0)
    ap.add_argument("--queue-max", type=int, default=16)
    ap.add_argument("--max-pixels", type=int, default=2_000_000)
    ap.add_argument(
        "--close-mode",
        choices=["random", "cancel", "wait"],
        default="random",
        help="close(cancel_pending=...) mid-run: by the seed, True or False",
    )
    ap.add_argument("--close-timeout", type=float, default=60.0)
    ap.add_argument(
        "--spare-starting", action="store_true", help="signal busy and idle workers only"
    )
    ap.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="seconds for the whole campaign (default 120 + 0.5 per task)",
    )
    ap.add_argument("--json", type=Path, help="write the summary here")
    ap.add_argument("--progress", type=float, default=0, help="print progress every N s")
    ap.add_argument("--verbose", action="store_true", help="show the pool's warnings")
    args = ap.parse_args(argv)
    if args.deadline is None:
        args.deadline = 120 + 0.5 * args.tasks
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGSEGV'd worker must not write core files (workers inherit the limit).
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    logging.basicConfig(
        level=logging.WARNING if args.verbose else logging.CRITICAL,
        format="%(relativeCreated)8.0f %(name)s %(levelname)s %(message)s",
    )
    wall = time.monotonic()
    # A pool opened and closed first: what the first pool of a process sets up once (the
    # model files, libraries, logging) is in the baseline.
    with vo.OcrPool(device="cpu", max_workers=1) as pool:
        pool.ocr(DATA / "12_line_tight.png")
    with tempfile.TemporaryDirectory(prefix="fault-campaign-") as tmp:
        campaign = Campaign(args, Path(tmp))
        handler = _ErrorLog(campaign)
        logging.getLogger().addHandler(handler)
        threading.excepthook = lambda a: campaign.thread_errors.append(
            f"{a.thread.name if a.thread else '?'}: {a.exc_type.__name__}: {a.exc_value}"
        )
        sys.unraisablehook = lambda u: campaign.thread_errors.append(
            f"unraisable in {u.object!r}: {u.exc_type.__name__}: {u.exc_value}"
        )
        base = counts()
        result = campaign.run()
        checks = check_all(campaign, base)
        # Done with the campaign's pools and their futures (they hold results), then the
        # measures of what is left.
        checks += check_afterwards(base)
        logging.getLogger().removeHandler(handler)
    summary = summarise(campaign, checks, time.monotonic() - wall, result["campaign_s"])
    print_summary(summary, args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
