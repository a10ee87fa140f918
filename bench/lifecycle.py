"""Worker lifecycle benchmark: dispatch overhead, cold start, and burst throughput with
FREE_VRAM_ON_IDLE on and off, against process-per-task and a ProcessPoolExecutor running
RapidOCR, all in one run on the same images.

    python bench/lifecycle.py [--tasks 200] [--burst 50] [--workers 2] [--rounds 3]
                              [--skip-rapidocr]

Prints medians and the ratios the lifecycle targets are stated in. Needs the package
installed (``make install``) and, for the RapidOCR rows, ``pip install '.[bench]'``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import vram_orchestrator as vo

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "ocrset"
LINES = sorted(str(p) for p in DATA.glob("0*_line_*.png"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def dispatch_overhead(n: int) -> tuple[float, float, float]:
    """Round trip of a tiny task minus the worker's own time, warm worker."""
    tiny = np.full((8, 8), 255, np.uint8)
    with vo.OcrPool(device="cpu", max_workers=1, free_vram_on_idle=False) as pool:
        for _ in range(20):
            pool.ocr(tiny)
        overheads, trips = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            r = pool.ocr(tiny)
            trip = (time.perf_counter() - t0) * 1e3
            trips.append(trip)
            overheads.append(trip - r["timings_ms"]["worker"])
    return statistics.median(trips), statistics.median(overheads), pct(overheads, 0.99)


def cold_start(repeats: int) -> tuple[float, float]:
    """New pool to first result (spawn, load ONNX Runtime and models, first run), with the
    graph cache (filled by an earlier worker) and without it, interleaved."""
    times: dict[str, list[float]] = {"cache": [], "off": []}
    with vo.OcrPool(device="cpu", max_workers=1) as pool:
        pool.ocr(LINES[0])  # fills the cache if it is empty
    for _ in range(repeats):
        for key in times:
            t0 = time.perf_counter()
            cache = {"graph_cache_dir": "off"} if key == "off" else {}
            with vo.OcrPool(device="cpu", max_workers=1, **cache) as pool:
                pool.ocr(LINES[0])
            times[key].append(time.perf_counter() - t0)
    return statistics.median(times["cache"]), statistics.median(times["off"])


def cold_first_result(standby: bool, repeats: int) -> float:
    """Submit-to-result with no warm worker in an existing pool: a standby worker waiting
    (ONNX Runtime loaded, models read, no sessions) or none (spawn and load first)."""
    times = []
    with vo.OcrPool(
        device="cpu", max_workers=1, free_vram_on_idle=True, idle_timeout_s=0, standby=standby
    ) as pool:
        for _ in range(repeats):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                workers = pool.runtime_info()["workers"]
                ready = [w for w in workers if w["standby"] and w["state"] == "idle"]
                if (standby and len(workers) == len(ready) == 1) or (not standby and not workers):
                    break
                time.sleep(0.02)
            t0 = time.perf_counter()
            pool.ocr(LINES[0])
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def burst(n: int, workers: int, **settings: object) -> float:
    """Seconds to finish n line images submitted at once to a pool that has served work
    before: with FREE_VRAM_ON_IDLE off its workers are warm; on, they have exited (as in a
    service whose burst follows an idle spell) and the burst pays their start."""
    images = [LINES[i % len(LINES)] for i in range(n)]
    with vo.OcrPool(device="cpu", max_workers=workers, **settings) as pool:
        for f in [pool.submit(p) for p in images[:workers]]:
            f.result()
        deadline = time.monotonic() + 10
        while pool.settings.free_vram_on_idle and pool.runtime_info()["workers"]:
            if time.monotonic() > deadline:
                raise RuntimeError("idle workers did not exit")
            time.sleep(0.01)
        t0 = time.perf_counter()
        for f in [pool.submit(p) for p in images]:
            f.result()
        return time.perf_counter() - t0


def sequential(n: int, **settings: object) -> float:
    """Seconds for n line images sent one after another by one caller."""
    with vo.OcrPool(device="cpu", max_workers=1, **settings) as pool:
        t0 = time.perf_counter()
        for i in range(n):
            pool.ocr(LINES[i % len(LINES)])
        return time.perf_counter() - t0


_ENGINE = None


def _rapid_init() -> None:
    global _ENGINE
    from rapidocr_onnxruntime import RapidOCR

    _ENGINE = RapidOCR(intra_op_num_threads=1)


def _rapid_run(path: str) -> int:
    result, _ = _ENGINE(path)  # type: ignore[misc]
    return len(result or [])


_ONE_SHOT = (
    "import sys\n"
    "from rapidocr_onnxruntime import RapidOCR\n"
    "RapidOCR(intra_op_num_threads=1)(sys.argv[1])\n"
)


def rapidocr_process_per_task(n: int, workers: int) -> float:
    """The field's process-per-task: a fresh Python process imports RapidOCR, loads the
    models, OCRs one image and exits; `workers` of them at a time."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    images = [LINES[i % len(LINES)] for i in range(n)]

    def one(path: str) -> None:
        subprocess.run(
            [sys.executable, "-c", _ONE_SHOT, path],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, images))
    return time.perf_counter() - t0


def rapidocr_pool(n: int, workers: int) -> float:
    images = [LINES[i % len(LINES)] for i in range(n)]
    with ProcessPoolExecutor(workers, initializer=_rapid_init) as ex:
        list(ex.map(_rapid_run, images[:workers]))  # warm each process
        t0 = time.perf_counter()
        list(ex.map(_rapid_run, images))
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dispatch", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the bursts")
    ap.add_argument("--skip-rapidocr", action="store_true")
    args = ap.parse_args()
    print(
        f"# lifecycle benchmark, {os.cpu_count()} CPUs, {len(LINES)} line images, "
        f"{args.workers} workers, 1 ONNX Runtime thread each"
    )

    trip, over50, over99 = dispatch_overhead(args.dispatch)
    print(f"warm dispatch round trip p50          {trip:8.2f} ms")
    print(f"dispatch overhead (minus worker) p50  {over50:8.3f} ms   p99 {over99:.3f} ms")
    cold, no_cache = cold_start(5)
    print(
        f"cold start to first result (median)   {cold:8.2f} s   "
        f"without the graph cache {no_cache:.2f} s ({no_cache / cold:.2f}x)"
    )
    no_standby = cold_first_result(False, 5)
    with_standby = cold_first_result(True, 5)
    print(
        f"no warm worker, first result: without standby {no_standby:.3f} s, "
        f"with standby {with_standby:.3f} s ({no_standby / with_standby:.2f}x)"
    )

    threads = {"threads": 1}
    # Interleaved rounds, medians: one burst is a few seconds, and a noisy neighbour on a
    # small machine moves a single run by 10 % or more.
    rounds = [
        (
            burst(args.burst, args.workers, free_vram_on_idle=True, **threads),
            burst(args.burst, args.workers, free_vram_on_idle=False, **threads),
            burst(
                args.burst,
                args.workers,
                free_vram_on_idle=True,
                max_tasks_per_worker=1,
                **threads,
            ),
        )
        for _ in range(args.rounds)
    ]
    on, off, per_task = (statistics.median(column) for column in zip(*rounds))
    print(f"bursts: medians of {args.rounds} interleaved rounds")
    print(f"burst of {args.burst}: FREE_VRAM_ON_IDLE on  {on:7.2f} s")
    print(f"burst of {args.burst}: FREE_VRAM_ON_IDLE off {off:7.2f} s   on/off = {on / off:.3f}")
    print(
        f"burst of {args.burst}: process-per-task      {per_task:7.2f} s   "
        f"per-task/on = {per_task / on:.2f}x"
    )

    t_on = burst(args.tasks, args.workers, free_vram_on_idle=True, **threads)
    t_off = burst(args.tasks, args.workers, free_vram_on_idle=False, **threads)
    n = args.tasks
    print(f"{n} images: on {n / t_on:6.2f} img/s, off {n / t_off:6.2f} img/s")
    seq_on = sequential(args.burst, free_vram_on_idle=True, **threads)
    seq_off = sequential(args.burst, free_vram_on_idle=False, **threads)
    print(
        f"{args.burst} sequential calls: on {seq_on:.2f} s, off {seq_off:.2f} s "
        f"(on/off = {seq_on / seq_off:.3f})"
    )
    if not args.skip_rapidocr:
        field = rapidocr_process_per_task(args.burst, args.workers)
        print(
            f"burst of {args.burst}: process-per-task, Python + RapidOCR (the field's) "
            f"{field:7.2f} s   field/on = {field / on:.2f}x"
        )
        rapid = rapidocr_pool(args.tasks, args.workers)
        print(
            f"{args.tasks} images: RapidOCR ProcessPoolExecutor {args.tasks / rapid:6.2f} img/s "
            f"(ours on / RapidOCR = {rapid / t_on:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
