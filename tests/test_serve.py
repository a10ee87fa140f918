"""vram_orchestrator.serve: FREE_VRAM_ON_IDLE picks the orchestrator; ours is installed in
docling-serve's app and factory modules before its create_app() runs; VRAM_ORCH_PIPELINE."""

from __future__ import annotations

# isort: off
from test_docling_helpers import IGNORE_DOCLING_DEPRECATED  # first: quiet docling import

# isort: on

import logging
import sys
import types
from typing import Any

import docling_serve.orchestrator_factory as real_factory
import pytest
from docling_serve.settings import docling_serve_settings

import vram_orchestrator as vo
from vram_orchestrator import serve
from vram_orchestrator.docling import VramWorkerOrchestrator, pipeline_mode

pytestmark = pytest.mark.filterwarnings(IGNORE_DOCLING_DEPRECATED)


@pytest.fixture
def fake_serve(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A docling_serve.app whose create_app() reads get_async_orchestrator at call time,
    as the real one does (Depends(get_async_orchestrator) and the lifespan)."""
    upstream = object()
    app_module = types.ModuleType("docling_serve.app")

    def get_async_orchestrator() -> Any:
        return upstream

    def create_app() -> dict[str, Any]:
        return {"orchestrator": app_module.get_async_orchestrator()}

    app_module.get_async_orchestrator = get_async_orchestrator  # type: ignore[attr-defined]
    app_module.create_app = create_app  # type: ignore[attr-defined]
    app_module.docling_serve_settings = docling_serve_settings  # type: ignore[attr-defined]
    app_module.upstream = upstream  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "docling_serve.app", app_module)
    monkeypatch.setattr(real_factory, "get_async_orchestrator", get_async_orchestrator)
    for name in ("FREE_VRAM_ON_IDLE", "DOCLING_SERVE_FREE_VRAM_ON_IDLE"):
        monkeypatch.delenv(name, raising=False)
    return app_module


def test_the_rq_engine_keeps_docling_serves_orchestrator_and_points_at_our_workers(
    fake_serve, monkeypatch, caplog
):
    monkeypatch.setenv("FREE_VRAM_ON_IDLE", "1")
    monkeypatch.setenv("DOCLING_SERVE_ENG_KIND", "rq")
    with caplog.at_level(logging.INFO, logger="vram_orchestrator.docling"):
        app = serve.create_app()
    assert app["orchestrator"] is fake_serve.upstream
    assert real_factory.get_async_orchestrator() is fake_serve.upstream
    assert "vram-orchestrator rq-worker" in caplog.text


@pytest.mark.parametrize("variable", ["FREE_VRAM_ON_IDLE", "DOCLING_SERVE_FREE_VRAM_ON_IDLE"])
def test_switch_on_installs_ours_before_create_app(fake_serve, monkeypatch, caplog, variable):
    monkeypatch.setenv(variable, "1")
    with caplog.at_level(logging.INFO, logger="vram_orchestrator.docling"):
        app = serve.create_app()
    ours = app["orchestrator"]
    assert isinstance(ours, VramWorkerOrchestrator)
    assert fake_serve.get_async_orchestrator() is ours  # one per process (cached)
    assert real_factory.get_async_orchestrator() is ours  # the factory's copy too
    assert "VramWorkerOrchestrator installed" in caplog.text
    # configured from docling-serve's settings
    assert ours.config.num_workers == docling_serve_settings.eng_loc_num_workers
    assert ours.config.result_removal_delay == docling_serve_settings.result_removal_delay


@pytest.mark.parametrize("value", [None, "0", "off"])
def test_switch_unset_or_off_keeps_docling_serves_own(fake_serve, monkeypatch, caplog, value):
    if value is not None:
        monkeypatch.setenv("FREE_VRAM_ON_IDLE", value)
    with caplog.at_level(logging.INFO, logger="vram_orchestrator.docling"):
        app = serve.create_app()
    assert app["orchestrator"] is fake_serve.upstream
    assert "its own orchestrator" in caplog.text


def test_bad_switch_value_is_a_clear_error(fake_serve, monkeypatch):
    monkeypatch.setenv("FREE_VRAM_ON_IDLE", "maybe")
    with pytest.raises(vo.ConfigError, match="FREE_VRAM_ON_IDLE='maybe'"):
        serve.create_app()


def test_pipeline_setting(monkeypatch):
    assert pipeline_mode({"VRAM_ORCH_PIPELINE": "ocr"}) == "ocr"
    assert pipeline_mode({"VRAM_ORCH_PIPELINE": "Layout "}) == "layout"
    # auto keeps every model in the workers, torch installed or not.
    assert pipeline_mode({}) == "layout"
    assert pipeline_mode({"VRAM_ORCH_PIPELINE": "auto"}) == "layout"
    with pytest.raises(vo.ConfigError, match="VRAM_ORCH_PIPELINE='fast'"):
        pipeline_mode({"VRAM_ORCH_PIPELINE": "fast"})
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(vo.ConfigError, match="not importable"):
            pipeline_mode({"VRAM_ORCH_PIPELINE": "docling"})
