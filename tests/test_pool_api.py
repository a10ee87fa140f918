"""The public API end to end: inputs, futures, asyncio, runtime_info, close, CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import vram_orchestrator as vo
from conftest import children, wait_for


def _pixels(path, mode: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


def _text(result: dict) -> str:
    return " ".join(line["text"] for line in result["lines"])


def test_path_bytes_and_arrays_give_the_same_text(make_pool, ocrset):
    path = ocrset / "02_line_pangram.png"
    pool = make_pool(free_vram_on_idle=False, max_workers=1)
    by_path = pool.ocr(path)
    assert _text(by_path) == "The quick brown fox jumps over the lazy dog."
    assert pool.ocr(path.read_bytes())["lines"] == by_path["lines"]
    rgb = _pixels(path, "RGB")
    assert _text(pool.ocr(rgb)) == _text(by_path)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert _text(pool.ocr(rgba)) == _text(by_path)
    gray = _pixels(path, "L")
    assert _text(pool.ocr(gray)) == _text(by_path)
    # A strided view is read in place, in order.
    assert _text(pool.ocr(np.ascontiguousarray(rgb)[:, ::1])) == _text(by_path)


def test_result_dict_has_the_documented_shape(make_pool, ocrset):
    pool = make_pool(max_workers=1)
    r = pool.ocr(ocrset / "01_line_short.png")
    assert set(r) >= {"lines", "width", "height", "timings_ms", "worker", "vram_peak_mb"}
    height, width = _pixels(ocrset / "01_line_short.png", "L").shape
    assert (r["width"], r["height"]) == (width, height)
    line = r["lines"][0]
    assert set(line) == {"text", "score", "box"} and 0.5 <= line["score"] <= 1.0
    assert len(line["box"]) == 4 and all(len(p) == 2 for p in line["box"])
    assert set(r["timings_ms"]) >= {"queue", "det", "cls", "rec", "total"}
    assert r["timings_ms"]["total"] >= r["timings_ms"]["det"] > 0
    assert r["worker"]["pid"] > 0 and r["worker"]["device"] == "cpu"
    assert r["worker"]["tasks_served"] == 1


def test_submit_and_async_agree(make_pool, ocrset):
    pool = make_pool(max_workers=2)
    files = sorted(ocrset.glob("0*.png"))
    futures = [pool.submit(f) for f in files]
    sync = [f.result(timeout=120) for f in futures]

    async def run() -> list[dict]:
        return await asyncio.gather(*(pool.ocr_async(f) for f in files))

    for a, b in zip(sync, asyncio.run(run())):
        assert a["lines"] == b["lines"]


def test_wrong_types_and_profiles_are_refused_before_queueing(make_pool):
    pool = make_pool()
    with pytest.raises(vo.InvalidInput, match=r"cannot OCR an? int"):
        pool.submit(12345)
    with pytest.raises(vo.InvalidInput, match="uint8"):
        pool.submit(np.zeros((4, 4), np.float32))
    with pytest.raises(vo.InvalidInput):
        pool.submit(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(vo.ConfigError):
        pool.submit(b"x", profile="fast")
    assert pool.runtime_info()["counters"]["submitted"] == 0


def test_runtime_info_reports_workers_limits_paths_and_gpu(make_pool, ocrset):
    pool = make_pool(free_vram_on_idle=False, max_workers=1, task_timeout_s=42)
    pool.ocr(ocrset / "01_line_short.png")
    info = pool.runtime_info()
    json.dumps(info)  # serialisable as is
    [worker] = info["workers"]
    assert worker["state"] == "idle" and worker["device"] == "cpu" and worker["tasks_served"] == 1
    assert worker["ready_ms"] > 0 and worker["rss_mb"] > 0
    assert info["queue"] == {"length": 0, "max": 1024, "in_flight": 0}
    assert info["limits"]["task_timeout_s"] == 42
    assert (
        info["ort_dylib"].endswith(tuple(f".so{s}" for s in ("", ".1")))
        or ".so." in info["ort_dylib"]
    )
    assert info["model_dir"] and info["worker_bin"].endswith("vram-orch-worker")
    if info["gpu"]["status"] == "unavailable":
        assert "NVML" in info["gpu"]["reason"]
        assert info["device"] == "cpu"


def test_close_reaps_workers_and_later_calls_fail(make_pool, ocrset):
    pool = make_pool(free_vram_on_idle=False, max_workers=2)
    pool.warm_up()
    assert wait_for(lambda: len(children()) == 2, 30)
    pool.ocr(ocrset / "01_line_short.png")
    assert pool.close(timeout_s=30) is True
    assert children() == []
    assert pool.runtime_info()["closed"] is True
    with pytest.raises(vo.PoolClosed):
        pool.submit(ocrset / "01_line_short.png")
    assert pool.close() is True  # twice is fine


def test_close_with_cancel_fails_pending_tasks_with_pool_closed(make_pool, ocrset):
    pool = make_pool(max_workers=1)
    futures = [pool.submit(ocrset / "13_page_paragraph.png") for _ in range(6)]
    pool.close(cancel_pending=True, timeout_s=30)
    outcomes = [type(f.exception(timeout=30)) for f in futures]
    assert vo.PoolClosed in outcomes
    assert all(o in (type(None), vo.PoolClosed) for o in outcomes), outcomes
    assert children() == []


def test_queue_full_is_immediate(make_pool, ocrset):
    pool = make_pool(max_workers=1, queue_max=2)
    page = (ocrset / "13_page_paragraph.png").read_bytes()
    accepted = []
    with pytest.raises(vo.QueueFull) as info:
        for _ in range(50):
            accepted.append(pool.submit(page))
    assert info.value.limit == 2 and "VRAM_ORCH_QUEUE_MAX" in str(info.value)
    assert 2 <= len(accepted) <= 3
    for f in accepted:
        assert f.result(timeout=120)["lines"]


def test_cancelled_future_leaves_the_queue(make_pool, ocrset):
    pool = make_pool(max_workers=1)
    page = ocrset / "13_page_paragraph.png"
    first = pool.submit(page)
    queued = [pool.submit(page) for _ in range(3)]
    assert all(f.cancel() for f in queued)
    assert first.result(timeout=120)["lines"]
    assert wait_for(lambda: pool.runtime_info()["counters"]["failed"] == 3, 10)
    assert pool.runtime_info()["counters"]["succeeded"] == 1


def test_cli_ocr_and_info(ocrset):
    env_cpu = {"VRAM_ORCH_DEVICE": "cpu"}
    import os

    env = {**os.environ, **env_cpu}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vram_orchestrator",
            "ocr",
            "--json",
            str(ocrset / "01_line_short.png"),
            str(ocrset / "02_line_pangram.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    ).stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert [r["file"].rsplit("/", 1)[1] for r in rows] == [
        "01_line_short.png",
        "02_line_pangram.png",
    ]
    assert rows[1]["lines"][0]["text"] == "The quick brown fox jumps over the lazy dog."

    info = subprocess.run(
        [sys.executable, "-m", "vram_orchestrator", "info"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    data = json.loads(info.stdout)
    assert data["device"] == "cpu" and "gpu" in data and "limits" in data

    bad = subprocess.run(
        [sys.executable, "-m", "vram_orchestrator", "ocr", "/no/such.png"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert bad.returncode == 1 and "InvalidInput" in bad.stderr


def test_full_queue_waits_for_room_when_asked(make_pool, ocrset):
    pool = make_pool(max_workers=1, queue_max=1)
    page = (ocrset / "13_page_paragraph.png").read_bytes()
    running = pool.submit(page)
    assert wait_for(lambda: pool.runtime_info()["queue"]["in_flight"] == 1, 30)
    queued = pool.submit(page)
    with pytest.raises(vo.QueueFull):
        pool.submit(page, queue_timeout_s=0.05)
    waited = pool.submit(ocrset / "01_line_short.png", queue_timeout_s=120)
    # Room appears only when `queued` starts, i.e. after `running` finished.
    assert pool.runtime_info()["counters"]["succeeded"] >= 1
    for f in (running, queued, waited):
        assert f.result(timeout=120)["lines"]


def _worker_argv(pool: vo.OcrPool) -> list[str]:
    pid = pool.runtime_info()["workers"][0]["pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def test_graph_cache_is_filled_once_and_can_be_turned_off(make_pool, ocrset, tmp_path):
    path = ocrset / "02_line_pangram.png"
    cache = tmp_path / "graphs"
    first = make_pool(free_vram_on_idle=False, max_workers=1, graph_cache_dir=str(cache))
    assert _text(first.ocr(path)) == "The quick brown fox jumps over the lazy dog."
    saved = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    roles = ["cls", "det", "orientation", "rec"]
    assert sorted(name.split("-")[0] for name in saved) == roles, saved
    assert all(name.endswith(".onnx") for name in saved), saved

    # The next worker loads the saved graphs: same text, nothing rewritten.
    second = make_pool(free_vram_on_idle=False, max_workers=1, graph_cache_dir=str(cache))
    assert _text(second.ocr(path)) == "The quick brown fox jumps over the lazy dog."
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == saved
    argv = _worker_argv(second)
    assert argv[argv.index("--graph-cache") + 1] == str(cache)

    off = make_pool(free_vram_on_idle=False, max_workers=1, graph_cache_dir="off")
    assert _text(off.ocr(path)) == "The quick brown fox jumps over the lazy dog."
    assert "--graph-cache" not in _worker_argv(off)
    assert off.runtime_info()["graph_cache_dir"] is None
    assert second.runtime_info()["graph_cache_dir"] == str(cache)


def test_errors_survive_pickle_with_their_fields(make_pool):
    import pickle

    pool = make_pool(max_workers=1)
    with pytest.raises(vo.InvalidInput) as caught:
        pool.ocr(b"not an image")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is vo.InvalidInput and str(again) == str(caught.value)
    assert type(again).__module__ == "vram_orchestrator.errors"
    crashed = vo.WorkerCrashed("worker 7 died")
    crashed.exit_code, crashed.signal = None, 9
    back = pickle.loads(pickle.dumps(crashed))
    assert isinstance(back, vo.VramOrchestratorError)
    assert (back.exit_code, back.signal, str(back)) == (None, 9, "worker 7 died")
