"""``uvicorn --factory vram_orchestrator.serve:create_app``: docling-serve with
:class:`~vram_orchestrator.docling.VramWorkerOrchestrator` when ``FREE_VRAM_ON_IDLE`` (or
``DOCLING_SERVE_FREE_VRAM_ON_IDLE``) is on, docling-serve's own orchestrator otherwise (and
always with its RQ engine, whose conversions run on ``vram-orchestrator rq-worker``).

docling-serve has no orchestrator plugin hook, so ours is installed the way upstream's tests
do it: ``docling_serve.app.get_async_orchestrator`` and the factory module's copy are
replaced before docling-serve's ``create_app()`` builds its routes. Each uvicorn worker
process calls this factory and gets its own orchestrator and OCR pool.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from .errors import ConfigError
from .settings import parse_bool

__all__ = ["build_orchestrator", "create_app", "free_vram_on_idle", "install_orchestrator"]

log = logging.getLogger("vram_orchestrator.docling")

_SWITCHES = ("FREE_VRAM_ON_IDLE", "DOCLING_SERVE_FREE_VRAM_ON_IDLE")


def free_vram_on_idle(environ: Mapping[str, str] | None = None) -> bool:
    """True when FREE_VRAM_ON_IDLE (or its alias) is set on; unset means off here, so an
    unset variable changes nothing in docling-serve."""
    env = os.environ if environ is None else environ
    for name in _SWITCHES:
        if name in env:
            try:
                return parse_bool(env[name])
            except ValueError as e:
                raise ConfigError(f"{name}={env[name]!r} is not allowed: {e}") from None
    return False


def build_orchestrator(serve_settings: Any = None) -> Any:
    """A ``VramWorkerOrchestrator`` configured from docling-serve's settings where it has
    them (concurrent tasks, result removal delay, file and page limits)."""
    from .docling import VramOrchestratorConfig, VramWorkerOrchestrator

    config = VramOrchestratorConfig()
    if serve_settings is not None:
        config.num_workers = int(getattr(serve_settings, "eng_loc_num_workers", 2))
        config.result_removal_delay = float(getattr(serve_settings, "result_removal_delay", 300))
        config.max_num_pages = int(getattr(serve_settings, "max_num_pages", 2**63 - 1))
        max_file = int(getattr(serve_settings, "max_file_size", 2**63 - 1))
        config.max_file_size = max_file if max_file < 2**62 else None
    return VramWorkerOrchestrator(config)


def install_orchestrator(
    app_module: ModuleType,
    factory_module: ModuleType | None = None,
    make: Callable[[], Any] | None = None,
) -> Callable[[], Any]:
    """Replaces ``get_async_orchestrator`` in docling-serve's app and factory modules with a
    cached getter of one ``VramWorkerOrchestrator`` (made on first call, in this process)."""
    settings = getattr(app_module, "docling_serve_settings", None)
    maker = make or functools.partial(build_orchestrator, settings)

    @functools.lru_cache(maxsize=1)
    def get_async_orchestrator() -> Any:
        return maker()

    app_module.get_async_orchestrator = get_async_orchestrator  # type: ignore[attr-defined]
    if factory_module is not None:
        factory_module.get_async_orchestrator = get_async_orchestrator  # type: ignore[attr-defined]
    return get_async_orchestrator


def create_app() -> Any:
    """The docling-serve FastAPI app, with our orchestrator when FREE_VRAM_ON_IDLE is on.
    With docling-serve's RQ engine (``DOCLING_SERVE_ENG_KIND=rq``) the API keeps its own
    RQ orchestrator: conversions run where ``vram-orchestrator rq-worker`` processes take
    them from Redis."""
    app_module = importlib.import_module("docling_serve.app")
    if os.environ.get("DOCLING_SERVE_ENG_KIND", "").strip().lower() == "rq":
        log.info(
            "docling-serve: RQ engine, the API keeps docling-serve's RQ orchestrator; the "
            "conversions (and the GPU) belong on `vram-orchestrator rq-worker` processes, one "
            "per GPU with VRAM_ORCH_DEVICE=cuda:N (FREE_VRAM_ON_IDLE applies there)"
        )
        return app_module.create_app()
    if free_vram_on_idle():
        factory_module = importlib.import_module("docling_serve.orchestrator_factory")
        install_orchestrator(app_module, factory_module)
        log.info(
            "docling-serve: VramWorkerOrchestrator installed (FREE_VRAM_ON_IDLE on): OCR runs "
            "in worker processes that exit when idle"
        )
    else:
        log.info(
            "docling-serve: its own orchestrator (FREE_VRAM_ON_IDLE not on; set "
            "FREE_VRAM_ON_IDLE=1 for VramWorkerOrchestrator)"
        )
    return app_module.create_app()
