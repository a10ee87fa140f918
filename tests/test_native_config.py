"""The one typed config crossing into the extension: the same field names as the Rust
structs, and a clear error for a field that is missing or of the wrong type."""

from __future__ import annotations

import dataclasses
import re
import types
from pathlib import Path

import pytest

from vram_orchestrator import _native
from vram_orchestrator._native_config import NativeGpuConfig, NativeOcrOptions, NativePoolConfig
from vram_orchestrator.testing import ScriptedWorker

CRATES = Path(__file__).resolve().parent.parent / "crates"


def _rust_fields(path: Path, struct: str) -> list[str]:
    source = path.read_text()
    body = re.search(rf"pub struct {struct} \{{(.*?)\n\}}", source, re.S)
    assert body, f"no struct {struct} in {path}"
    return re.findall(r"^\s*pub (\w+):", body.group(1), re.M)


@pytest.mark.parametrize(
    ("python", "path", "struct"),
    [
        (NativePoolConfig, "supervisor/src/config.rs", "PoolConfig"),
        (NativeGpuConfig, "supervisor/src/config.rs", "GpuConfig"),
        (NativeOcrOptions, "protocol/src/messages.rs", "OcrOptions"),
    ],
)
def test_fields_are_named_as_the_rust_structs(python, path, struct):
    names = [f.name for f in dataclasses.fields(python)]
    assert names == _rust_fields(CRATES / path, struct)


def _config(make_pool, tmp_path) -> NativePoolConfig:
    worker = ScriptedWorker(tmp_path)
    pool = make_pool(worker_bin=str(worker.path), peaks_dir=str(tmp_path / "peaks"))
    native: NativePoolConfig = pool._native_config
    return native


def test_a_pool_hands_over_its_settings_under_the_rust_names(make_pool, tmp_path):
    config = _config(make_pool, tmp_path)
    assert config.gpu.peaks_dir == str(tmp_path / "peaks")
    assert config.device == () and config.default_options.profile == "default"


def test_a_mistyped_field_fails_naming_it(make_pool, tmp_path):
    config = _config(make_pool, tmp_path)
    with pytest.raises(TypeError, match=r"NativePoolConfig\.max_workers"):
        _native.NativePool(dataclasses.replace(config, max_workers="two"), print)
    nested = dataclasses.replace(config.gpu, peaks_dir=3)
    with pytest.raises(TypeError, match=r"NativePoolConfig\.gpu: .*NativeGpuConfig\.peaks_dir"):
        _native.NativePool(dataclasses.replace(config, gpu=nested), print)


def test_a_missing_field_fails_naming_it(make_pool, tmp_path):
    config = _config(make_pool, tmp_path)
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    del fields["queue_max"]
    with pytest.raises(AttributeError, match="queue_max"):
        _native.NativePool(types.SimpleNamespace(**fields), print)
