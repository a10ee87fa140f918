"""cuda_report / `vram-orchestrator info`: whether CUDA would start and why not, found by the
real worker executable in the workers' environment, with no CUDA call and no worker left."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vram_orchestrator as vo
from conftest import children
from vram_orchestrator import readiness, resources
from vram_orchestrator.settings import CUDA_OPTIONS, Settings


def _maps() -> str:
    return Path("/proc/self/maps").read_text()


def _a_shared_library() -> Path:
    """Any real shared library of this machine, to stand in for a CUDA one by name."""
    name = ctypes.util.find_library("z")
    assert name, "libz is on every Linux machine"
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise AssertionError(f"{name} not found in the usual folders")


def test_on_a_machine_without_gpu_every_missing_piece_is_named():
    before = children()
    report = vo.cuda_report()
    assert report["cuda_ready"] is False
    reason = report["reason"]
    assert "NVML" in reason
    assert "CPU build" in reason and "vram-orchestrator[gpu]" in reason
    assert "libcudnn.so.9" in reason and "libcuda.so.1" in reason
    names = [lib["name"] for lib in report["libraries"]]
    assert names[:2] == ["libcuda.so.1", "libcudart.so.13"] and "libcudnn.so.9" in names
    assert all(lib["path"] is None and lib["error"] for lib in report["libraries"])
    ort = report["onnxruntime"]
    assert ort["version"] and ort["providers_available"] == ["CPUExecutionProvider"]
    assert ort["library"] == str(resources.ort_dylib(None))
    assert report["library_dirs"][0] == str(resources.ort_dylib(None).parent)
    # The report ran in a worker process that is gone; this process loaded nothing.
    assert children() == before
    assert "libonnxruntime" not in _maps() and "libcuda" not in _maps()


def test_a_library_found_on_the_loader_path_is_reported_with_its_path(tmp_path, monkeypatch):
    stand_in = tmp_path / "libcurand.so.10"
    shutil.copy(_a_shared_library(), stand_in)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    report = vo.cuda_report()
    (curand,) = [lib for lib in report["libraries"] if lib["name"] == "libcurand.so.10"]
    assert curand["path"] == str(stand_in) and curand["error"] is None
    assert "libcurand" not in report["reason"]
    assert "libcudart.so.13" in report["reason"]
    assert str(tmp_path) in report["library_dirs"]


def test_the_cuda_libraries_follow_the_onnxruntime_build(tmp_path):
    """A CUDA 12 build of ONNX Runtime needs CUDA 12's libraries: the worker reads the
    wheel's build info beside the core library."""
    real = resources.ort_dylib(None)
    dylib = tmp_path / real.name
    shutil.copy(real, dylib)
    (tmp_path / "build_and_package_info.py").write_text(
        "package_name = 'onnxruntime-gpu'\n__version__ = '1.26.0'\ncuda_version = '12.8'\n"
    )
    report = vo.cuda_report(ort_dylib=str(dylib))
    assert report["onnxruntime"]["build"]["cuda_version"] == "12.8"
    names = [lib["name"] for lib in report["libraries"]]
    assert "libcudart.so.12" in names and "libcublas.so.12" in names
    assert "libcudart.so.13" not in names


def test_a_build_newer_than_the_driver_is_named():
    gpu = {
        "status": "available",
        "driver_version": "550.54",
        "cuda_driver_version": "12.4",
        "devices": [{"index": 0, "name": "GPU", "uuid": "GPU-1"}],
    }
    worker = {
        "ort_version": "1.30.0",
        "providers_available": ["CPUExecutionProvider", "CUDAExecutionProvider"],
        "provider_files": [],
        "libraries": [],
    }
    dylib = Path("/x/libonnxruntime.so.1.30.0")
    (problem,) = readiness._problems(gpu, {"cuda_version": "13.0"}, worker, dylib)
    assert "CUDA 13.0 build" in problem and "CUDA 12.4 at most" in problem
    assert readiness._problems({**gpu, "cuda_driver_version": "13.0"}, {}, worker, dylib) == []


def test_info_reports_cuda_and_survives_a_pool_that_cannot_start():
    env = {**os.environ, "VRAM_ORCH_DEVICE": "cpu"}
    run = [sys.executable, "-m", "vram_orchestrator", "info"]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=60, env=env, check=True)
    data = json.loads(ok.stdout)
    assert data["device"] == "cpu" and data["workers"] == [] and data["standby"] is False
    assert data["cuda"]["cuda_ready"] is False and "CUDA:" in ok.stderr
    bad = subprocess.run(
        run, capture_output=True, text=True, timeout=60, env={**env, "VRAM_ORCH_DEVICE": "cuda"}
    )
    assert bad.returncode == 2
    data = json.loads(bad.stdout)
    assert data["error"].startswith("SetupError") and "VRAM_ORCH_DEVICE" in data["error"]
    assert "NVML" in data["cuda"]["reason"]


def test_cuda_defaults_setting_takes_onnxruntime_option_names():
    s = Settings.load(
        {}, environ={"VRAM_ORCH_CUDA_DEFAULTS": "gpu_mem_limit, arena_extend_strategy"}
    )
    assert s.cuda_defaults == ("gpu_mem_limit", "arena_extend_strategy")
    assert Settings.load({"cuda_defaults": list(CUDA_OPTIONS)}, environ={}).cuda_defaults == (
        CUDA_OPTIONS
    )
    assert Settings.load({}, environ={}).cuda_defaults == ()
    with pytest.raises(vo.ConfigError) as info:
        Settings.load({}, environ={"VRAM_ORCH_CUDA_DEFAULTS": "gpu_mem_limit,arena"})
    assert "'arena'" in str(info.value) and "arena_extend_strategy" in str(info.value)
