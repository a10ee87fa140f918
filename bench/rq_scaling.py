#!/usr/bin/env python3
"""docling-serve's RQ engine with our rq-workers: N documents at once through 1 and then 2
`vram-orchestrator rq-worker` processes (a real Redis, docling-jobkit's RQOrchestrator as the
API side), and the cost of the RQ hop per job against the same conversion in-process.

    python3 bench/rq_scaling.py [--docs 6] [--rounds 3] [--pdf tests/data/documents/...]
        [--docling-serve-python /path/to/venv/bin/python]

Prints per round the wall time from enqueue to the last SUCCESS and documents/s, then the
medians and the 2-worker / 1-worker ratio. With --docling-serve-python (a Python that has
docling-serve 1.38 with its torch models), the same jobs also go through docling-serve's own
`docling-serve rq-worker` in the same run, one worker, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docling_jobkit.datamodel.task_meta import TaskStatus

from _rq_harness import ROOT, Api, RedisServer, Workers, wait_for

DEFAULT_PDF = ROOT / "tests" / "data" / "documents" / "d03_cluster_manual-notext.pdf"


def run_batch(api: Any, pdf: Path, n: int) -> float:
    """Seconds from enqueueing ``n`` copies of ``pdf`` to the last one's SUCCESS."""
    started = time.monotonic()
    ids = [api.submit(pdf) for _ in range(n)]
    for task_id in ids:
        task = api.wait(task_id, timeout=600)
        if task.task_status != TaskStatus.SUCCESS:
            raise RuntimeError(f"task {task_id}: {task.task_status} {task.error_message}")
    return time.monotonic() - started


def in_process_seconds(pdf: Path, repeats: int) -> list[float]:
    """The same conversion without RQ: VramWorkerOrchestrator.execute in this process."""
    from io import BytesIO

    from docling.datamodel.base_models import DocumentStream
    from docling.datamodel.service.options import ConvertDocumentsOptions
    from docling.datamodel.service.targets import InBodyTarget
    from docling_jobkit.datamodel.task import validate_task

    from vram_orchestrator.docling import VramOrchestratorConfig, VramWorkerOrchestrator

    orchestrator = VramWorkerOrchestrator(
        VramOrchestratorConfig(num_workers=1, pool_settings={"device": "cpu"})
    )

    async def once() -> float:
        task = validate_task(
            {
                "task_id": "bench",
                "task_type": "convert",
                "sources": [DocumentStream(name=pdf.name, stream=BytesIO(pdf.read_bytes()))],
                "convert_options": ConvertDocumentsOptions(),
                "targets": [InBodyTarget()],
            }
        )
        t0 = time.monotonic()
        await orchestrator.execute(task)
        return time.monotonic() - t0

    async def all_runs() -> list[float]:
        await once()  # warm-up: workers, models
        times = [await once() for _ in range(repeats)]
        await orchestrator.close()
        return times

    return asyncio.run(all_runs())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=6, help="documents enqueued at once")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    ap.add_argument("--docling-serve-python", default=None)
    args = ap.parse_args()
    logging.getLogger("docling_jobkit").setLevel(logging.WARNING)  # one line per status poll

    print(f"# RQ scaling, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    print(f"command: {' '.join(sys.argv)}")
    print(f"document: {args.pdf.name} x {args.docs} per round, {args.rounds} rounds\n")
    results: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = RedisServer(folder)
        queue = "bench"
        api = Api(server.url, queue)
        workers = Workers(folder, server.url, queue)
        try:
            workers.start("w1")
            run_batch(api, args.pdf, 1)  # warm-up: imports, models, graph cache
            for r in range(args.rounds):
                results["1 worker"].append(run_batch(api, args.pdf, args.docs))
                print(f"round {r + 1}, 1 worker: {results['1 worker'][-1]:.2f} s", flush=True)
            workers.start("w2")
            run_batch(api, args.pdf, 2)
            for r in range(args.rounds):
                results["2 workers"].append(run_batch(api, args.pdf, args.docs))
                print(f"round {r + 1}, 2 workers: {results['2 workers'][-1]:.2f} s", flush=True)
            workers.stop_all()
            single = []
            if args.docling_serve_python:
                single = docling_serve_rounds(args, api, folder, server.url, queue)
        finally:
            workers.stop_all()
            api.close()
            server.stop()

    direct = in_process_seconds(args.pdf, args.rounds * 2)
    print("\n| setup | median s per round | docs/s | s per doc |")
    print("|---|--:|--:|--:|")
    rows = dict(results)
    if single:
        rows["docling-serve rq-worker, 1 worker"] = single
    for name, times in rows.items():
        med = statistics.median(times)
        print(f"| {name} | {med:.2f} | {args.docs / med:.2f} | {med / args.docs:.2f} |")
    one, two = (statistics.median(results[k]) for k in ("1 worker", "2 workers"))
    per_job_rq = one / args.docs
    per_job_direct = statistics.median(direct)
    print(f"\nscaling, 2 workers / 1 worker: {one / two:.2f}x faster")
    print(
        f"per document: {per_job_rq:.2f} s through RQ (1 worker, {args.docs} queued) against "
        f"{per_job_direct:.2f} s converted in-process: the RQ hop costs "
        f"{per_job_rq - per_job_direct:+.2f} s per job"
    )
    print(json.dumps({"rounds": rows, "in_process_s": direct, "docs": args.docs}))
    return 0


def docling_serve_rounds(
    args: argparse.Namespace, api: Any, folder: Path, url: str, queue: str
) -> list[float]:
    """The same rounds through docling-serve's own rq-worker (its own Python)."""
    env = {
        **os.environ,
        "DOCLING_SERVE_ENG_RQ_REDIS_URL": url,
        "DOCLING_SERVE_ENG_RQ_QUEUE_NAME": queue,
    }
    log = folder / "docling-serve-worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [args.docling_serve_python, "-m", "docling_serve", "rq-worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for(lambda: "Listening on" in log.read_text(errors="replace"), 120):
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"docling-serve's rq-worker did not start: {tail}")
        run_batch(api, args.pdf, 1)
        times = []
        for r in range(args.rounds):
            times.append(run_batch(api, args.pdf, args.docs))
            print(f"round {r + 1}, docling-serve rq-worker: {times[-1]:.2f} s", flush=True)
        return times
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
