"""One converter for docling-serve's tasks, shared by the local orchestrator and the RQ
worker: a jobkit ``Task`` in, a ``DoclingTaskResult`` out, through the chosen pipeline
with every model in our workers."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from docling.datamodel.service.tasks import TaskType
from docling_jobkit.datamodel.result import DoclingTaskResult
from docling_jobkit.datamodel.task import Task

from ..errors import VramOrchestratorError
from ..pool import OcrPool
from ..settings import Settings
from ._export import build_task_result
from ._options import pipeline_mode, unsupported_options
from ._pages import ConversionSettings, ConvertedDocument
from ._pool_handle import PoolHolder
from ._sources import load_source
from .pipelines import pipeline

__all__ = ["ConversionFailure", "TaskConverter", "VramOrchestratorConfig"]

log = logging.getLogger("vram_orchestrator.docling")

#: The targets results can go to: the response body, or a zip in it.
TARGET_KINDS = ("inbody", "zip")


@dataclass
class VramOrchestratorConfig:
    """Settings of :class:`TaskConverter` and :class:`VramWorkerOrchestrator` (the OCR pool
    reads its own environment).

    ``pool_settings`` are :class:`~vram_orchestrator.OcrPool` keywords; ``num_workers`` is how
    many tasks convert at once; ``result_removal_delay`` how long a fetched result is kept;
    ``pipeline`` overrides ``VRAM_ORCH_PIPELINE`` (layout, ocr, docling or auto).
    """

    num_workers: int = 2
    result_removal_delay: float = 300.0
    max_file_size: int | None = None
    max_num_pages: int = 2**63 - 1
    pages_in_flight: int = 4
    pipeline: str | None = None
    pool_settings: dict[str, Any] = field(default_factory=dict)
    allowed_target_kinds: set[str] = field(default_factory=lambda: set(TARGET_KINDS))


class ConversionFailure(Exception):
    """A task that could not be converted. The message is written for the caller as is;
    ``category`` is docling's ``FailureCategory`` value (policy, timeout, inference_failure,
    backend_failure)."""

    def __init__(self, message: str, category: str = "backend_failure") -> None:
        super().__init__(message)
        self.category = category

    def __reduce__(self) -> tuple[type[ConversionFailure], tuple[str, str]]:
        # Pickled with its category (an exception pickles only its args by default).
        return (type(self), (str(self), self.category))

    @classmethod
    def policy(cls, message: str) -> ConversionFailure:
        """A request this converter does not serve (options, task type, target)."""
        return cls(message, "policy")


def failure_category(error: BaseException) -> str:
    """docling's ``FailureCategory`` value for any error of a conversion."""
    if isinstance(error, ConversionFailure):
        return error.category
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, VramOrchestratorError):
        return "inference_failure"
    return "backend_failure"


class TaskConverter:
    """Converts docling-serve tasks with the pipeline of ``config`` (or
    ``VRAM_ORCH_PIPELINE``), its OCR pool created on first use and replaceable
    (:meth:`clear`)."""

    def __init__(self, config: VramOrchestratorConfig | None = None) -> None:
        self.config = config or VramOrchestratorConfig()
        self.pipeline = pipeline_mode(requested=self.config.pipeline)
        self._convert = pipeline(self.pipeline)
        self._pools = PoolHolder(self.config.pool_settings)

    async def convert(self, task: Task) -> DoclingTaskResult:
        """The task's result, or a :class:`ConversionFailure` (or another exception) whose
        message is meant for the caller."""
        options, kind = self._check(task)
        started = time.monotonic()
        docs = await self._convert_all(task, options)
        if all(d.document is None for d in docs):
            raise ConversionFailure(
                "; ".join(m for d in docs for _, m in d.errors) or "no document"
            )
        return await asyncio.to_thread(
            build_task_result,
            docs,
            options,
            kind,
            time.monotonic() - started,
            task.target_document_version,
        )

    def _check(self, task: Task) -> tuple[Any, str]:
        """The task's convert options and target kind, once the task is one this converter
        serves."""
        if task.task_type != TaskType.CONVERT:
            raise ConversionFailure.policy(
                f"task type {task.task_type.value!r} is not supported by VramWorkerOrchestrator "
                "(convert only)"
            )
        options = task.convert_options
        if options is not None and getattr(options, "chunking_options", None) is not None:
            raise ConversionFailure.policy(
                "chunking_options are not supported by VramWorkerOrchestrator"
            )
        problems = unsupported_options(options, pipeline=self.pipeline)
        if problems:
            raise ConversionFailure.policy(
                "VramWorkerOrchestrator cannot honour these options: "
                + "; ".join(problems)
                + ". Drop them, or run docling's full pipeline (pip install docling, "
                "VRAM_ORCH_PIPELINE=docling)."
            )
        targets = task.targets or []
        if len(targets) != 1:
            raise ConversionFailure.policy(
                "VramWorkerOrchestrator writes to exactly one target (inbody or zip)"
            )
        kind = str(getattr(targets[0], "kind", "inbody"))
        if kind not in TARGET_KINDS:
            raise ConversionFailure.policy(
                f"target kind {kind!r} is not supported by VramWorkerOrchestrator (it returns "
                "results in the response: inbody or zip)"
            )
        return options, kind

    async def _convert_all(self, task: Task, options: Any) -> list[ConvertedDocument]:
        with self._pools.use() as pool:
            max_bytes = self.config.max_file_size or pool.settings.max_input_bytes
            settings = ConversionSettings.from_options(
                options,
                max_num_pages=self.config.max_num_pages,
                pages_in_flight=self.config.pages_in_flight,
            )
            timeout = getattr(options, "document_timeout", None) if options else None
            docs: list[ConvertedDocument] = []
            for index, source in enumerate(task.sources):
                name = getattr(source, "name", None) or getattr(source, "filename", None)
                name = str(name or f"document_{index}")
                try:
                    loaded = await asyncio.to_thread(
                        load_source, source, index, max_bytes=max_bytes
                    )
                    name = loaded.name
                    coro = self._convert(loaded, pool, settings)
                    docs.append(await asyncio.wait_for(coro, timeout) if timeout else await coro)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    message = (
                        f"{name}: took longer than document_timeout={timeout} s"
                        if isinstance(e, asyncio.TimeoutError)
                        else f"{name}: {e}"
                    )
                    if settings.abort_on_error or len(task.sources) == 1:
                        raise ConversionFailure(message, failure_category(e)) from e
                    failed = ConvertedDocument(name, "unknown", None, "failure", [(None, message)])
                    docs.append(failed)
            return docs

    # ---- the pool -----------------------------------------------------------------------

    def pool(self) -> OcrPool:
        """The OCR pool (created if needed, which resolves the worker, ONNX Runtime and the
        models, downloading models if needed)."""
        return self._pools.get()

    def current_pool(self) -> OcrPool | None:
        """The OCR pool if one is open, without creating one."""
        return self._pools.peek()

    @property
    def pool_settings(self) -> Settings:
        """The settings the OCR pool is created with."""
        return Settings.load(self.config.pool_settings)

    async def clear(self) -> None:
        """Ends the idle OCR workers now (their VRAM returns at once); busy ones finish
        their task first and the next task starts a fresh worker. A pool that was closed
        under us is replaced. docling's own converters, if any, are forgotten."""
        if self.pipeline == "docling":
            from .pipelines import docling

            docling.clear_converters()
        pool = self._pools.peek()
        if pool is not None and not pool.closed:
            pool.release_idle()
            log.info("clear_converters: idle workers ended")
            return
        closed = await self._pools.retire()
        log.info("clear_converters: %s", "pool replaced" if closed else "no pool open")

    def close(self) -> None:
        """Closes the OCR pool, failing what is still queued (shutdown)."""
        self._pools.close()
