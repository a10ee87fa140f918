"""Configuration: environment, keyword overrides, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

import vram_orchestrator as vo
from vram_orchestrator.settings import ENV_VARS, Settings, markdown_table


@pytest.mark.parametrize(
    ("env", "name", "value", "allowed"),
    [
        ({"VRAM_ORCH_DEVICE": "tpu"}, "VRAM_ORCH_DEVICE", "'tpu'", "auto, cpu, cuda or cuda:N"),
        ({"VRAM_ORCH_TASK_TIMEOUT_S": "-5"}, "VRAM_ORCH_TASK_TIMEOUT_S", "'-5'", "> 0"),
        ({"VRAM_ORCH_KILL_GRACE_S": "soon"}, "VRAM_ORCH_KILL_GRACE_S", "'soon'", "seconds"),
        ({"VRAM_ORCH_MAX_WORKERS": "0"}, "VRAM_ORCH_MAX_WORKERS", "'0'", "from 1 to"),
        (
            {"VRAM_ORCH_CUDNN_CONV_ALGO": "fast"},
            "VRAM_ORCH_CUDNN_CONV_ALGO",
            "'fast'",
            "heuristic, exhaustive or default",
        ),
        ({"FREE_VRAM_ON_IDLE": "maybe"}, "FREE_VRAM_ON_IDLE", "'maybe'", "true/false"),
        (
            {"DOCLING_SERVE_FREE_VRAM_ON_IDLE": "2"},
            "DOCLING_SERVE_FREE_VRAM_ON_IDLE",
            "'2'",
            "on/off",
        ),
    ],
)
def test_bad_environment_fails_at_start_with_name_value_and_allowed(
    monkeypatch, env, name, value, allowed
):
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    with pytest.raises(vo.ConfigError) as info:
        vo.OcrPool()
    message = str(info.value)
    assert name in message and value in message and allowed in message, message
    assert isinstance(info.value, vo.SetupError) and isinstance(info.value, ValueError)


def test_missing_model_dir_names_variable_value_and_what_it_needs(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("VRAM_ORCH_MODEL_DIR", str(missing))
    with pytest.raises(vo.SetupError) as info:
        vo.OcrPool(device="cpu")
    message = str(info.value)
    assert "VRAM_ORCH_MODEL_DIR" in message and str(missing) in message
    assert "PP-OCRv6_det_small.onnx" in message and "ppocr-v6-small" in message


def test_cuda_request_without_gpu_fails_clearly():
    # This machine class has no NVIDIA driver: asking for CUDA must not fall back silently.
    if vo.gpu_report()["status"] == "available":
        pytest.skip("a GPU is visible here; the CPU-only contract is tested on CPU machines")
    with pytest.raises(vo.SetupError) as info:
        vo.OcrPool(device="cuda")
    assert "VRAM_ORCH_DEVICE='cuda'" in str(info.value) and "NVML" in str(info.value)


def test_keywords_override_environment_and_unknown_keywords_fail(monkeypatch):
    monkeypatch.setenv("VRAM_ORCH_MAX_WORKERS", "3")
    monkeypatch.setenv("DOCLING_SERVE_FREE_VRAM_ON_IDLE", "off")
    s = Settings.load({"task_timeout_s": 7})
    assert s.max_workers == 3 and s.sources["max_workers"] == "env VRAM_ORCH_MAX_WORKERS"
    assert s.free_vram_on_idle is False
    assert s.task_timeout_s == 7.0 and s.sources["task_timeout_s"] == "argument"
    assert Settings.load({"max_workers": 1}).max_workers == 1
    with pytest.raises(vo.ConfigError, match="max_wrokers"):
        Settings.load({"max_wrokers": 1})


def test_defaults_and_docs_table_cover_every_variable():
    s = Settings.load(environ={})
    assert s.free_vram_on_idle is True and s.idle_timeout_s == 0 and s.task_timeout_s == 600
    table = markdown_table()
    for var in ENV_VARS:
        assert f"`{var.name}" in table


def test_docs_configuration_table_matches_the_code():
    page = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    assert markdown_table() in page, (
        "regenerate the table in docs/configuration.md: python -m vram_orchestrator.settings"
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0, -1, 10**30, "ppocr-v9", ""])
def test_string_choices_refuse_numbers_and_unknown_names(bad):
    for keyword in ("model_set", "cudnn_conv_algo"):
        with pytest.raises(vo.ConfigError) as info:
            Settings.load({keyword: bad}, environ={})
        assert keyword in str(info.value) and "expected" in str(info.value)


@pytest.mark.parametrize("value", ["1", "0", "1.5", "nan", "-1"])
def test_number_like_cuda_defaults_are_refused_with_the_allowed_names(value):
    with pytest.raises(vo.ConfigError) as info:
        Settings.load(environ={"VRAM_ORCH_CUDA_DEFAULTS": value})
    message = str(info.value)
    assert "VRAM_ORCH_CUDA_DEFAULTS" in message and repr(value) in message, message
    assert "gpu_mem_limit" in message  # what is allowed
    with pytest.raises(vo.ConfigError, match="argument cuda_defaults"):
        Settings.load({"cuda_defaults": float(value)}, environ={})


def test_every_default_is_the_settings_field_default():
    """Defaults are written once, on the Settings fields; the variables and the table in
    docs/configuration.md read them from there."""
    defaults = Settings()
    assert Settings.load(environ={}) == defaults
    for var in ENV_VARS:
        assert var.default == getattr(defaults, var.keyword), var.name
    assert [v.keyword for v in ENV_VARS] == list(defaults.as_dict())


def test_peaks_dir_takes_its_earlier_name_and_the_new_name_wins(tmp_path, caplog):
    new, old = str(tmp_path / "new"), str(tmp_path / "old")
    s = Settings.load(environ={"VRAM_ORCH_PROFILE_DIR": old})
    assert s.peaks_dir == old and s.sources["peaks_dir"] == "env VRAM_ORCH_PROFILE_DIR"
    assert Settings.load({"profile_dir": old}, environ={}).peaks_dir == old
    with caplog.at_level("WARNING", logger="vram_orchestrator"):
        s = Settings.load(environ={"VRAM_ORCH_PEAKS_DIR": new, "VRAM_ORCH_PROFILE_DIR": old})
    assert s.peaks_dir == new and s.sources["peaks_dir"] == "env VRAM_ORCH_PEAKS_DIR"
    [warning] = caplog.records
    assert "VRAM_ORCH_PROFILE_DIR" in warning.getMessage() and "ignored" in warning.getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="vram_orchestrator"):
        s = Settings.load({"peaks_dir": new, "profile_dir": old}, environ={})
        assert s.peaks_dir == new
        same = Settings.load(environ={"VRAM_ORCH_PEAKS_DIR": new, "VRAM_ORCH_PROFILE_DIR": new})
        assert same.peaks_dir == new
    assert ["profile_dir" in r.getMessage() for r in caplog.records] == [True]
    assert "VRAM_ORCH_PROFILE_DIR" in markdown_table()


def test_model_set_takes_its_earlier_name():
    s = Settings.load(environ={"VRAM_ORCH_OCR_MODELS": "ppocr-v4"})
    assert s.model_set == "ppocr-v4" and s.sources["model_set"] == "env VRAM_ORCH_OCR_MODELS"
    assert Settings.load({"ocr_models": "ppocr-v6-tiny"}, environ={}).model_set == "ppocr-v6-tiny"
    with pytest.raises(vo.ConfigError, match="ocr_models"):
        Settings.load({"ocr_models": "ppocr-v9"}, environ={})
    new = Settings.load({"model_set": "ppocr-v4"}, environ={"VRAM_ORCH_OCR_MODELS": "ppocr-v4"})
    assert new.sources["model_set"] == "argument"
