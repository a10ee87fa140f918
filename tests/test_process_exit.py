"""Interpreter exit, fork and draining close leave no worker behind."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import vram_orchestrator as vo
from conftest import alive, children, wait_for

EXIT_WITHOUT_CLOSE = """
import vram_orchestrator as vo
pool = vo.OcrPool(device="cpu", max_workers=2, free_vram_on_idle=False)
pool.warm_up()
print(pool.ocr(__import__("sys").argv[1])["worker"]["pid"], flush=True)
# No close(): interpreter exit must end the workers.
"""


def test_interpreter_exit_without_close_ends_workers(ocrset):
    out = subprocess.run(
        [sys.executable, "-c", EXIT_WITHOUT_CLOSE, str(ocrset / "01_line_short.png")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    pid = int(out.stdout.strip())
    assert wait_for(lambda: not alive(pid), 2.0), f"worker {pid} outlived its parent"


def test_forked_child_cannot_use_the_parents_pool_and_leaves_no_worker(make_pool, ocrset):
    pool = make_pool(max_workers=1, free_vram_on_idle=False, kill_grace_s=1)
    assert pool.ocr(ocrset / "01_line_short.png")["lines"]
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that fork() in a threaded process is risky: that is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        try:
            pool.ocr(ocrset / "01_line_short.png")
            message = b"no error"
        except vo.PoolClosed as e:
            message = str(e).encode()
        pool.close()  # must not hang on threads that do not exist here
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        message = f.read().decode()
    os.waitpid(child, 0)
    assert "belongs to process" in message and "after fork()" in message
    assert pool.ocr(ocrset / "01_line_short.png")["lines"]  # the parent's pool still works
    workers = [w["pid"] for w in pool.runtime_info()["workers"]]
    assert pool.close(timeout_s=30)
    assert not any(alive(p) for p in workers) and children() == []


def test_close_drains_queued_tasks_by_default(make_pool, ocrset):
    pool = make_pool(max_workers=1)
    futures = [
        pool.submit(ocrset / name)
        for name in ("01_line_short.png", "02_line_pangram.png", "04_line_numbers.png")
    ]
    assert pool.close(timeout_s=120)
    assert all(f.result(timeout=1)["lines"] for f in futures)
    with pytest.raises(vo.PoolClosed):
        pool.ocr(ocrset / "01_line_short.png")
