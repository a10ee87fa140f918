"""``VramWorkerOrchestrator``: docling-jobkit's ``BaseOrchestrator`` with OCR in our workers."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from docling.datamodel.service.tasks import TaskType
from docling_jobkit.datamodel.result import DoclingTaskResult
from docling_jobkit.datamodel.task import Task, TaskSource, TaskTarget, validate_task
from docling_jobkit.datamodel.task_meta import TaskStatus
from docling_jobkit.orchestrators.base_orchestrator import BaseOrchestrator, OrchestratorError

from ..errors import VramOrchestratorError
from ..settings import Settings
from ._convert import ConversionSettings, ConvertedDocument, convert_document
from ._export import build_task_result
from ._layout_convert import convert_with_layout, pool_analyze
from ._options import pipeline_mode, unsupported_options
from ._pool_handle import PoolHolder
from ._sources import load_source

__all__ = ["VramOrchestratorConfig", "VramWorkerOrchestrator"]

log = logging.getLogger("vram_orchestrator.docling")

#: The targets results can go to: the response body, or a zip in it.
_TARGET_KINDS = ("inbody", "zip")


@dataclass
class VramOrchestratorConfig:
    """Settings of :class:`VramWorkerOrchestrator` (the OCR pool reads its own environment).

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
    allowed_target_kinds: set[str] = field(default_factory=lambda: set(_TARGET_KINDS))


class _TaskFailure(Exception):
    """A task failure whose message is meant for the caller as is."""

    def __init__(self, message: str, category: str = "backend_failure") -> None:
        super().__init__(message)
        self.category = category


def _category(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, VramOrchestratorError):
        return "inference_failure"
    return "backend_failure"


class VramWorkerOrchestrator(BaseOrchestrator):
    """Runs docling-serve's tasks with OCR in vram-orchestrator's Rust workers.

    Drop-in for docling-serve 1.38 (docling-jobkit 3.9): ``enqueue`` takes serve's keywords,
    tasks go pending → started → success/failure with the notifier told at each step,
    results stay until fetched (then ``result_removal_delay`` seconds), ``clear_converters``
    ends idle OCR workers at once. The Python process never loads ONNX Runtime or CUDA.
    """

    def __init__(self, config: VramOrchestratorConfig | None = None) -> None:
        super().__init__()
        self.config = config or VramOrchestratorConfig()
        self.allowed_target_kinds = set(self.config.allowed_target_kinds)
        self.pipeline = pipeline_mode(requested=self.config.pipeline)
        self._pools = PoolHolder(self.config.pool_settings)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self.queue_list: list[str] = []
        self._results: dict[str, DoclingTaskResult] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._processing = False
        self._docling: Any = None
        log.info(
            "VramWorkerOrchestrator: pipeline %s, %d task(s) at once",
            self.pipeline,
            self.config.num_workers,
        )

    # ---- submitting ---------------------------------------------------------------------

    async def enqueue(
        self,
        sources: list[TaskSource],
        target: TaskTarget | None = None,
        task_type: TaskType = TaskType.CONVERT,
        options: Any = None,
        convert_options: Any = None,
        chunking_options: Any = None,
        chunking_export_options: Any = None,
        callbacks: list[Any] | None = None,
        metadata: dict[str, Any] | None = None,
        targets: list[TaskTarget] | None = None,
        target_document_version: str | None = None,
    ) -> Task:
        """Queues a task (serve 1.38 passes everything as keywords); returns it pending."""
        if options is not None and convert_options is None:
            convert_options = options
        resolved = self._resolve_enqueue_targets(target, targets)
        self._validate_targets(resolved)
        payload: dict[str, Any] = {
            "task_id": str(uuid.uuid4()),
            "task_type": task_type,
            "sources": sources,
            "convert_options": convert_options,
            "chunking_options": chunking_options,
            "targets": resolved,
            "callbacks": callbacks or [],
            "metadata": dict(metadata or {}),
            "target_document_version": target_document_version,
        }
        if chunking_export_options is not None:
            payload["chunking_export_options"] = chunking_export_options
        task = validate_task(payload)
        self._done[task.task_id] = asyncio.Event()
        await self.init_task_tracking(task)
        self.queue_list.append(task.task_id)
        await self._queue.put(task.task_id)
        log.info(
            "task %s queued (%d source(s), tenant %s, position %d)",
            task.task_id,
            len(task.sources),
            task.metadata.get("tenant_id", "default"),
            len(self.queue_list),
        )
        return task

    async def queue_size(self) -> int:
        """Tasks waiting to start."""
        return len(self.queue_list)

    async def get_queue_position(self, task_id: str) -> int | None:
        """1 for the next task to start; None once started (or unknown)."""
        try:
            return self.queue_list.index(task_id) + 1
        except ValueError:
            return None

    async def task_status(self, task_id: str, wait: float = 0.0) -> Task:
        """The task; with ``wait`` > 0, waits up to that long for it to finish."""
        task = await self.get_raw_task(task_id=task_id)
        event = self._done.get(task_id)
        if wait > 0 and event is not None and not task.is_completed():
            try:
                await asyncio.wait_for(event.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
        return await self.get_raw_task(task_id=task_id)

    async def task_result(self, task_id: str) -> DoclingTaskResult | None:
        """The result of a finished task, None before (or after removal, or on failure)."""
        return self._results.get(task_id)

    # ---- results ------------------------------------------------------------------------

    async def on_result_fetched(self, task_id: str) -> None:
        """Single-use results: the task and its result go ``result_removal_delay`` s later."""

        async def remove_later() -> None:
            await asyncio.sleep(self.config.result_removal_delay)
            await self.delete_task(task_id=task_id)

        job = asyncio.create_task(remove_later())
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def delete_task(self, task_id: str) -> None:
        """Forgets a task and its result (a queued task is then skipped)."""
        self._results.pop(task_id, None)
        self._done.pop(task_id, None)
        if task_id in self.queue_list:
            self.queue_list.remove(task_id)
        await super().delete_task(task_id)

    # ---- processing ---------------------------------------------------------------------

    async def process_queue(self) -> None:
        """Runs queued tasks, ``num_workers`` at a time, until cancelled; never raises
        otherwise. On cancellation (shutdown) the OCR pool is closed."""
        gate = asyncio.Semaphore(max(1, self.config.num_workers))
        running: set[asyncio.Task[None]] = set()
        self._processing = True
        try:
            while True:
                try:
                    await gate.acquire()
                    task_id = await self._queue.get()
                except asyncio.CancelledError:
                    raise
                except Exception:  # pragma: no cover - defensive
                    log.exception("queue loop error; continuing")
                    await asyncio.sleep(0.1)
                    continue
                job = asyncio.create_task(self._run_guarded(task_id, gate))
                running.add(job)
                job.add_done_callback(running.discard)
        finally:
            self._processing = False
            for job in list(running):
                job.cancel()
            self._pools.close()
            log.info("queue processing stopped; OCR pool closed")

    async def _run_guarded(self, task_id: str, gate: asyncio.Semaphore) -> None:
        try:
            await self._run(task_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s: unexpected error in the orchestrator", task_id)
        finally:
            gate.release()
            self._queue.task_done()

    async def _notify(self, task_id: str, positions: bool = False) -> None:
        if self.notifier is None:
            return
        try:
            await self.notifier.notify_task_subscribers(task_id)
            if positions:
                await self.notifier.notify_queue_positions()
        except Exception as e:
            log.warning("notifier failed for task %s: %s", task_id, e)

    async def _run(self, task_id: str) -> None:
        if task_id in self.queue_list:
            self.queue_list.remove(task_id)
        task = self.tasks.get(task_id)
        if task is None:
            log.info("task %s was deleted before it started", task_id)
            return
        task.set_status(TaskStatus.STARTED)
        log.info("task %s started", task_id)
        await self._notify(task_id, positions=True)
        started = time.monotonic()
        try:
            result = await self.execute(task)
        except asyncio.CancelledError:
            self._fail(task, "the service shut down before the task finished", "internal")
            raise
        except Exception as e:
            if isinstance(e, _TaskFailure):
                message, category = str(e), e.category
            else:
                message, category = f"{type(e).__name__}: {e}", _category(e)
            self._fail(task, message, category)
            log.warning("task %s failed: %s", task_id, message)
        else:
            self._results[task_id] = result
            task.sources = []
            task.set_status(TaskStatus.SUCCESS)
            log.info("task %s succeeded in %.2f s", task_id, time.monotonic() - started)
        finally:
            event = self._done.get(task_id)
            if event is not None:
                event.set()
            await self._notify(task_id)

    @staticmethod
    def _fail(task: Task, message: str, category: str) -> None:
        from docling.datamodel.service.responses import (
            FailureCategory,
            FailurePhase,
            PublicFailureInfo,
        )

        task.error_message = message
        task.failure = PublicFailureInfo(
            category=FailureCategory(category),
            message=message,
            retryable=category in ("timeout", "capacity", "inference_failure"),
            phase=FailurePhase.EXECUTION,
        )
        task.sources = []
        task.set_status(TaskStatus.FAILURE)

    async def execute(self, task: Task) -> DoclingTaskResult:
        """Converts one task now, outside the queue (the RQ worker's entry): the result, or
        an exception whose message is meant for the caller."""
        if task.task_type != TaskType.CONVERT:
            raise _policy(
                f"task type {task.task_type.value!r} is not supported by VramWorkerOrchestrator "
                "(convert only)"
            )
        options = task.convert_options
        if options is not None and getattr(options, "chunking_options", None) is not None:
            raise _policy("chunking_options are not supported by VramWorkerOrchestrator")
        problems = unsupported_options(options, pipeline=self.pipeline)
        if problems:
            raise _policy(
                "VramWorkerOrchestrator cannot honour these options: "
                + "; ".join(problems)
                + ". Drop them, or run docling's full pipeline (pip install docling, "
                "VRAM_ORCH_PIPELINE=docling)."
            )
        targets = task.targets or []
        if len(targets) != 1:
            raise _policy("VramWorkerOrchestrator writes to exactly one target (inbody or zip)")
        kind = str(getattr(targets[0], "kind", "inbody"))
        if kind not in _TARGET_KINDS:
            raise _policy(
                f"target kind {kind!r} is not supported by VramWorkerOrchestrator (it returns "
                "results in the response: inbody or zip)"
            )
        started = time.monotonic()
        docs = await self._convert_all(task, options)
        if all(d.document is None for d in docs):
            raise _TaskFailure("; ".join(m for d in docs for _, m in d.errors) or "no document")
        return await asyncio.to_thread(
            build_task_result,
            docs,
            options,
            kind,
            time.monotonic() - started,
            task.target_document_version,
        )

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
                    if self.pipeline == "docling":
                        from ._full_pipeline import convert_with_docling

                        coro = asyncio.to_thread(convert_with_docling, self, loaded, options, pool)
                    elif self.pipeline == "layout":
                        coro = convert_with_layout(loaded, pool_analyze(pool), settings)
                    else:
                        coro = convert_document(loaded, pool.ocr_async, settings)
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
                        raise _TaskFailure(message, _category(e)) from e
                    failed = ConvertedDocument(name, "unknown", None, "failure", [(None, message)])
                    docs.append(failed)
            return docs

    # ---- service hooks ------------------------------------------------------------------

    async def warm_up_caches(self) -> None:
        """Resolves the worker, models and ONNX Runtime (downloading models if needed);
        starts workers ahead only when they are kept warm (FREE_VRAM_ON_IDLE off)."""
        pool = await asyncio.to_thread(self._pools.get)
        if not pool.settings.free_vram_on_idle:
            await asyncio.to_thread(pool.warm_up)

    async def clear_converters(self) -> None:
        """Ends the idle OCR workers now (their VRAM returns at once); busy ones finish
        their task first and the next task starts a fresh worker. A pool that was closed
        under us is replaced."""
        self._docling = None
        pool = self._pools.peek()
        if pool is not None and not pool.closed:
            pool.release_idle()
            log.info("clear_converters: idle workers ended")
            return
        closed = await self._pools.retire()
        log.info("clear_converters: %s", "pool replaced" if closed else "no pool open")

    async def check_connection(self) -> None:
        """Raises ``OrchestratorError`` when the OCR pool cannot be used (setup broken,
        pool closed under us)."""
        try:
            pool = await asyncio.to_thread(self._pools.get)
        except Exception as e:
            raise OrchestratorError(f"the OCR pool cannot start: {e}") from e
        if pool.closed:
            raise OrchestratorError(
                "the OCR pool is closed; call /v1/clear/converters or restart the service"
            )

    def pool_info(self) -> dict[str, Any] | None:
        """``runtime_info()`` of the current OCR pool (None when none is open)."""
        pool = self._pools.peek()
        return None if pool is None else pool.runtime_info()

    @property
    def pool_settings(self) -> Settings:
        """The settings the OCR pool is created with."""
        return Settings.load(self.config.pool_settings)

    async def close(self) -> None:
        """Closes the OCR pool (queued OCR fails with PoolClosed)."""
        await asyncio.to_thread(self._pools.close)


def _policy(message: str) -> _TaskFailure:
    return _TaskFailure(message, "policy")
