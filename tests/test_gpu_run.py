"""scripts/gpu-pack.sh and scripts/gpu-run.sh, end to end on this CPU machine: the GPU run is
rehearsed from the parts alone (ONNX Runtime's GPU build, its core library in CPU mode), so
a GPU machine meets no first-time bug in the scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import vram_orchestrator as vo

ROOT = Path(__file__).parent.parent
ORT_GPU = "1.30.0"


def _onnxruntime_gpu_wheel(into: Path) -> Path:
    target = ["--python-version", "3.12", "--implementation", "cp"]
    target += ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            *target,
            "-d",
            str(into),
            f"onnxruntime-gpu=={ORT_GPU}",
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = into.glob(f"onnxruntime_gpu-{ORT_GPU}-*.whl")
    return wheel


def _our_wheel(into: Path) -> Path:
    """The installed package as a wheel-shaped zip (the build that made it was CI's one)."""
    package = Path(vo.__file__).parent
    wheel = into / f"vram_orchestrator-{vo.__version__}-cp39-abi3-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, Path("vram_orchestrator") / path.relative_to(package))
    return wheel


# Packs onnxruntime-gpu (a download of hundreds of MB when pip has no copy): 40 s to minutes.
@pytest.mark.timeout(600)
def test_the_gpu_run_is_rehearsed_from_the_parts_alone(tmp_path):
    pack, run_tmp, out = tmp_path / "pack", tmp_path / "run", tmp_path / "out"
    env = {
        **os.environ,
        "GPU_PACK_OUT": str(pack),
        "GPU_PACK_DIR": str(tmp_path / "scratch"),
        "GPU_PACK_ORT_WHEEL": str(_onnxruntime_gpu_wheel(tmp_path)),
        "GPU_PACK_WHEEL": str(_our_wheel(tmp_path)),
        "GPU_PACK_CORE_ONLY": "1",
        "GPU_PACK_XZ": "-0",
        "GPU_RUN_TMP": str(run_tmp),
        "PYTHON": sys.executable,
    }
    env.pop("VRAM_ORCH_MODEL_DIR", None)
    packed = subprocess.run(
        ["bash", "scripts/gpu-pack.sh", ORT_GPU],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert packed.returncode == 0, packed.stderr[-3000:]
    calls = (pack / ".gpu" / "calls.txt").read_text().splitlines()
    stashes = sorted(pack.glob(".gpu[0-9]*"))
    assert len(stashes) >= 1 and len(calls) == len(stashes) + 1
    for folder in [*stashes, pack / ".gpu"]:
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        assert size < 64 << 20, f"{folder} cannot travel in one call: {size} bytes"

    for folder in stashes:  # as the device calls do, one after another
        subprocess.run(
            ["bash", "scripts/gpu-run.sh", "stash", str(folder)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    ran = subprocess.run(
        [
            "bash",
            "scripts/gpu-run.sh",
            "run",
            str(out),
            str(pack / ".gpu"),
            "--rehearse",
            "--",
            "--phases",
            "smoke",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = ran.stdout
    assert ran.returncode == 0, log[-4000:]
    for step in ("reassemble", "wheel", "environment", "doctor", "cli on cpu", "gpu-check"):
        assert f"step {step}" in log, step
    assert "step gpu-tests: skipped: no GPU" in log
    assert "done; failed steps: none" in log
    env_txt = (out / "env.txt").read_text()
    assert "nvidia-smi: skipped: no GPU" in env_txt
    assert str(run_tmp / "work" / "site" / "vram_orchestrator") in env_txt  # the carried wheel

    info = json.loads((out / "info.json").read_text())
    ort = info["cuda"]["onnxruntime"]
    assert ort["version"] == ORT_GPU and ort["build"]["cuda_version"].startswith("13")
    assert "CUDAExecutionProvider" in ort["providers_available"]  # the GPU build, on CPU
    assert info["cuda"]["cuda_ready"] is False
    assert "libonnxruntime_providers_cuda.so does not exist" in info["cuda"]["reason"]
    assert set(info["models"]["files"]) >= {"det", "rec", "layout", "table"}

    cli = json.loads((out / "cli.json").read_text())
    assert cli["lines"][0]["text"] == "The quick brown fox jumps over the lazy dog."
    results = json.loads((out / "results.json").read_text())
    assert results["phases"]["smoke"]["status"] == "ok"
