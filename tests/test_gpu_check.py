"""scripts/gpu-check: refuses clearly without a GPU; its timeline plot is a valid PNG; its CPU
rehearsal runs a phase end to end."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vram_orchestrator as vo

SCRIPT = Path(__file__).parent.parent / "scripts" / "gpu-check"


def _module():
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_why_and_exits_2():
    if vo.gpu_report()["status"] == "available":
        pytest.skip("a GPU is visible: run scripts/gpu-check itself")
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no GPU" in out.stderr and "NVML" in out.stderr


def test_timeline_png_is_valid_and_draws_both_phases(tmp_path):
    rows = [
        (t / 10, "on" if t < 50 else "off", 1000.0, float(500 * (t % 20 < 10)), 1)
        for t in range(100)
    ]
    path = tmp_path / "timeline.png"
    _module().write_png(path, rows)
    with Image.open(path) as im:
        assert im.size == (900, 300)
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    colours = {tuple(int(c) for c in p) for p in np.unique(pixels, axis=0)}
    assert (200, 30, 30) in colours and (30, 30, 200) in colours


def test_rehearsal_runs_a_phase_on_cpu_and_writes_every_output(tmp_path):
    out = tmp_path / "check"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--rehearse", "--phases", "smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    smoke = results["phases"]["smoke"]
    assert smoke["status"] == "ok", smoke.get("error")
    r = smoke["result"]
    assert r["images"] >= 20 and r["images_same_text_cuda_cpu"] == r["images"]
    assert r["cer_cuda"] < 0.02 and r["standby_mb"] == 0
    assert results["verdicts"]["standby worker holds no VRAM (smoke)"] is True
    assert "| claim | holds |" in (out / "summary.md").read_text()
    with Image.open(out / "timeline.png") as im:
        assert im.size == (900, 300)
