"""Nothing lost under load: 1000 tasks from 16 threads plus 200 from asyncio each end
exactly once with their own result; afterwards no child process and no leaked fd."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from conftest import children, open_fds, wait_for

THREADS, PER_THREAD, ASYNC_TASKS = 16, 1000 // 16 + 1, 200


def _blank(i: int) -> np.ndarray:
    """A distinct input per task: its size identifies it in the result."""
    return np.full((24 + i % 37, 40 + i % 53, 3), 255, np.uint8)


def test_1000_threaded_and_200_async_tasks_each_end_exactly_once(make_pool, ocrset):
    fds_before = open_fds()
    pool = make_pool(max_workers=2, queue_max=4096)
    text_image = (ocrset / "02_line_pangram.png").read_bytes()
    expected_text = "The quick brown fox jumps over the lazy dog."
    outcomes: dict[int, int] = {}
    lock = threading.Lock()

    def check(i: int, result: dict) -> None:
        if i % 100 == 0:
            assert [line["text"] for line in result["lines"]] == [expected_text]
        else:
            h, w = _blank(i).shape[:2]
            assert (result["width"], result["height"]) == (w, h), (i, result)
        with lock:
            outcomes[i] = outcomes.get(i, 0) + 1

    def source(i: int) -> object:
        return text_image if i % 100 == 0 else _blank(i)

    def run_thread(t: int) -> None:
        ids = range(t * PER_THREAD, min((t + 1) * PER_THREAD, 1000))
        futures = [(i, pool.submit(source(i))) for i in ids]
        for i, f in futures:
            f.add_done_callback(lambda fut, i=i: check(i, fut.result()))
        for _, f in futures:
            f.result(timeout=600)

    async def run_async() -> None:
        async def one(i: int) -> None:
            check(i, await pool.ocr_async(source(i)))

        await asyncio.gather(*(one(1000 + k) for k in range(ASYNC_TASKS)))

    with ThreadPoolExecutor(THREADS + 1) as ex:
        thread_jobs = [ex.submit(run_thread, t) for t in range(THREADS)]
        async_job = ex.submit(asyncio.run, run_async())
        for job in [*thread_jobs, async_job]:
            job.result(timeout=900)

    assert wait_for(lambda: len(outcomes) == 1200, 10)
    assert sorted(outcomes) == list(range(1200))
    assert set(outcomes.values()) == {1}
    info = pool.runtime_info()
    assert info["counters"]["succeeded"] == 1200 and info["counters"]["failed"] == 0
    assert info["counters"]["spawned"] <= 2 + info["exits_by_reason"].get("idle", 0)
    pool.close(timeout_s=60)
    assert children() == []
    assert wait_for(lambda: open_fds() <= fds_before, 5), (open_fds(), fds_before)
