"""Would CUDA start in a worker, and if not, why: a check to run before the first GPU task.

:func:`cuda_report` resolves everything a pool would (settings, ONNX Runtime, library folders,
NVML), then runs the worker executable with ``--cuda-report`` in the workers' own environment:
it loads ONNX Runtime and opens the driver's, CUDA's and cuDNN's libraries as a CUDA worker
would, and says where each came from. No CUDA call is made, so no context and no VRAM.
``vram-orchestrator info`` prints it under ``"cuda"``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from . import resources
from .errors import VramOrchestratorError
from .pool import _visible, _worker_env, _worker_log_level, gpu_report
from .settings import Settings

#: What to do when a library is missing, by the start of its name.
_REMEDY = {
    "libcuda.so": "it comes with the NVIDIA driver: add the driver's folder (for example "
    "/usr/local/nvidia/lib64) to LD_LIBRARY_PATH before Python starts",
    "libcudnn": "pip install 'vram-orchestrator[gpu]' (cuDNN 9 wheel) or add cuDNN's folder "
    "to LD_LIBRARY_PATH",
    "libcu": "pip install 'vram-orchestrator[gpu]' (the CUDA wheels of ONNX Runtime's "
    "cuda extra) or add the CUDA toolkit's lib folder to LD_LIBRARY_PATH",
}


def build_info(dylib: Path) -> dict[str, str]:
    """The wheel's ``build_and_package_info.py`` beside ONNX Runtime's library (package name,
    version, ``cuda_version`` for GPU builds); empty for a library without one."""
    try:
        text = (dylib.parent / "build_and_package_info.py").read_text()
    except OSError:
        return {}
    return dict(re.findall(r"^(\w+)\s*=\s*['\"]([^'\"]*)['\"]", text, re.MULTILINE))


def _version(text: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in (text or "").split(".")[:2])
    except ValueError:
        return None


def _worker_report(worker: Path, dylib: Path, env: dict[str, str]) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [str(worker), "--cuda-report", "--ort-dylib", str(dylib)],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{worker} --cuda-report did not run: {e}"}
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-500:]
        return {"error": f"{worker} --cuda-report exited {done.returncode}: {tail}"}
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _problems(
    gpu: dict[str, Any], build: dict[str, str], worker: dict[str, Any], dylib: Path
) -> list[str]:
    """Everything that keeps CUDA from starting, most basic first."""
    problems = []
    if gpu["status"] != "available":
        problems.append(gpu.get("reason", "NVML is not available"))
    elif not _visible(gpu.get("devices", [])):
        problems.append(
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r} hides every GPU "
            "NVML lists"
        )
    needs, has = _version(build.get("cuda_version")), _version(gpu.get("cuda_driver_version"))
    if needs and has and has < needs:
        problems.append(
            f"ONNX Runtime at {dylib} is a CUDA {build['cuda_version']} build, but the driver "
            f"({gpu.get('driver_version')}) supports CUDA {gpu['cuda_driver_version']} at most: "
            "update the driver, or install an ONNX Runtime built for an older CUDA (docs/gpu.md: "
            "a CUDA 12 host)"
        )
    if "error" in worker:
        return [*problems, worker["error"]]
    if worker.get("ort_error"):
        problems.append(f"ONNX Runtime does not load: {worker['ort_error']}")
    elif "CUDAExecutionProvider" not in worker.get("providers_available", []):
        problems.append(
            f"ONNX Runtime at {dylib} is a CPU build (no CUDA provider): "
            "pip install 'vram-orchestrator[gpu]'"
        )
    else:
        problems += [
            f"{f['error']}: reinstall onnxruntime-gpu"
            for f in worker.get("provider_files", [])
            if f["error"]
        ]
    # One line per remedy: "not found" needs no detail; anything else (a wrong or broken
    # library) is quoted.
    missing: dict[str, list[str]] = {}
    for lib in worker.get("libraries", []):
        if lib["required"] and lib["error"]:
            remedy = next(r for prefix, r in _REMEDY.items() if lib["name"].startswith(prefix))
            found = "cannot open shared object file" in lib["error"]
            missing.setdefault(remedy, []).append(
                lib["name"] if found else f"{lib['name']} ({lib['error']})"
            )
    for remedy, names in missing.items():
        problems.append(f"cannot load {', '.join(names)}: {remedy}")
    return problems


def cuda_report(**settings: Any) -> dict[str, Any]:
    """Whether a pool with these settings (keywords as for :class:`OcrPool`, else the
    environment) would start CUDA workers, and why not. Starts no worker on the GPU.

    Returns ``cuda_ready`` (bool: this machine can run CUDA workers), ``reason`` (the
    devices it would use, or every problem found, each with its remedy),
    ``device_setting``, ``gpu`` (NVML, with the driver's CUDA version), ``onnxruntime``
    (library, wheel build info, version, providers, provider files), ``libraries``
    (driver, CUDA, cuDNN: the path each was found at, or the loader's error),
    ``library_dirs`` (folders the workers' loader searches first) and ``provider_options``
    (the CUDA provider options left at ONNX Runtime's default).
    """
    s = Settings.load(settings)
    gpu = gpu_report(s.scripted_gpu)
    report: dict[str, Any] = {
        "device_setting": s.device,
        "gpu": gpu,
        "provider_options": {"onnxruntime_defaults": list(s.cuda_defaults)},
    }
    try:
        dylib = resources.ort_dylib(s.ort_dylib)
        worker_bin = resources.worker_bin(s.worker_bin)
    except VramOrchestratorError as e:
        return {**report, "cuda_ready": False, "reason": str(e)}
    lib_dirs = resources.library_dirs(dylib)
    env = dict(_worker_env(lib_dirs, _worker_log_level(s.worker_log)))
    build = build_info(dylib)
    worker = _worker_report(worker_bin, dylib, env)
    report["onnxruntime"] = {
        "library": str(dylib),
        "build": build,
        "version": worker.get("ort_version"),
        "providers_available": worker.get("providers_available", []),
        "provider_files": worker.get("provider_files", []),
    }
    report["libraries"] = worker.get("libraries", [])
    report["library_dirs"] = env["LD_LIBRARY_PATH"].split(os.pathsep)
    problems = _problems(gpu, build, worker, dylib)
    if problems:
        reason = "; ".join(problems)
    else:
        devices = _visible(gpu["devices"])
        names = ", ".join(f"cuda:{d['index']} {d['name']}" for d in devices)
        reason = f"CUDA would start on {names} (driver {gpu['driver_version']})"
        if s.device == "cpu":
            reason += ", but VRAM_ORCH_DEVICE=cpu keeps the workers on the CPU"
    return {**report, "cuda_ready": not problems, "reason": reason}
