"""``VramWorkerOrchestrator``: docling-jobkit's ``BaseOrchestrator`` with every model in our
workers: the queue, task states and results here, the conversion in :mod:`.converter`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from docling.datamodel.service.tasks import TaskType
from docling_jobkit.datamodel.result import DoclingTaskResult
from docling_jobkit.datamodel.task import Task, TaskSource, TaskTarget, validate_task
from docling_jobkit.datamodel.task_meta import TaskStatus
from docling_jobkit.orchestrators.base_orchestrator import BaseOrchestrator, OrchestratorError

from ..settings import Settings
from .converter import (
    ConversionFailure,
    TaskConverter,
    VramOrchestratorConfig,
    failure_category,
)

__all__ = ["VramOrchestratorConfig", "VramWorkerOrchestrator"]

log = logging.getLogger("vram_orchestrator.docling")


class VramWorkerOrchestrator(BaseOrchestrator):
    """Runs docling-serve's tasks with OCR in vram-orchestrator's Rust workers.

    Drop-in for docling-serve 1.38 (docling-jobkit 3.9): ``enqueue`` takes serve's keywords,
    tasks go pending → started → success/failure with the notifier told at each step,
    results stay until fetched (then ``result_removal_delay`` seconds), ``clear_converters``
    ends idle OCR workers at once. The Python process never loads ONNX Runtime or CUDA.
    """

    def __init__(self, config: VramOrchestratorConfig | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.config = config or VramOrchestratorConfig()
        self.allowed_target_kinds = set(self.config.allowed_target_kinds)
        self.converter = TaskConverter(self.config)
        self.pipeline = self.converter.pipeline
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self.queue_list: list[str] = []
        self._results: dict[str, DoclingTaskResult] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._processing = False
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
            self.converter.close()
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
            result = await self.converter.convert(task)
        except asyncio.CancelledError:
            self._fail(task, "the service shut down before the task finished", "internal")
            raise
        except Exception as e:
            message = str(e) if isinstance(e, ConversionFailure) else f"{type(e).__name__}: {e}"
            self._fail(task, message, failure_category(e))
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

    # ---- service hooks ------------------------------------------------------------------

    async def warm_up_caches(self) -> None:
        """Resolves the worker, models and ONNX Runtime (downloading models if needed);
        starts workers ahead only when they are kept warm (FREE_VRAM_ON_IDLE off)."""
        pool = await asyncio.to_thread(self.converter.pool)
        if not pool.settings.free_vram_on_idle:
            await asyncio.to_thread(pool.warm_up)

    async def clear_converters(self) -> None:
        """Ends the idle OCR workers now (their VRAM returns at once); busy ones finish
        their task first and the next task starts a fresh worker. A pool that was closed
        under us is replaced."""
        await self.converter.clear()

    async def check_connection(self) -> None:
        """Raises ``OrchestratorError`` when the OCR pool cannot be used (setup broken,
        pool closed under us)."""
        try:
            pool = await asyncio.to_thread(self.converter.pool)
        except Exception as e:
            raise OrchestratorError(f"the OCR pool cannot start: {e}") from e
        if pool.closed:
            raise OrchestratorError(
                "the OCR pool is closed; call /v1/clear/converters or restart the service"
            )

    def pool_info(self) -> dict[str, Any] | None:
        """``runtime_info()`` of the current OCR pool (None when none is open)."""
        pool = self.converter.current_pool()
        return None if pool is None else pool.runtime_info()

    @property
    def pool_settings(self) -> Settings:
        """The settings the OCR pool is created with."""
        return self.converter.pool_settings

    async def close(self) -> None:
        """Closes the OCR pool (queued OCR fails with PoolClosed)."""
        await asyncio.to_thread(self.converter.close)
