"""RQ workers for docling-serve's RQ engine, with every model in our worker processes.

docling-serve's API pods (``DOCLING_SERVE_ENG_KIND=rq``) enqueue conversions in Redis;
``vram-orchestrator rq-worker`` (or ``rq worker -w vram_orchestrator.docling.rq.VramRQWorker``)
takes them, one conversion at a time, with the pages in parallel through an OCR pool whose
workers exit when idle, so each GPU machine's memory returns to zero between jobs. Redis and
RQ distribute the work; the job contract is docling-jobkit's (3.9):

- the job function is ``docling_jobkit.orchestrators.rq.worker.docling_task`` (or
  ``docling_serve.rq_job_wrapper.instrumented_docling_task`` with tracing on) with
  ``task_data``; ``...rq.worker.clear_cache_task`` asks to free the converters. A job class
  maps these names to ours, so RQ never imports jobkit's worker module (which needs torch);
- the job publishes ``_TaskUpdate`` STARTED, then SUCCESS with the result key or FAILURE
  with a public message, on the sub channel; the result is msgpack of
  ``make_msgpack_safe(DoclingTaskResult.model_dump())`` under the results prefix, kept for
  the results TTL; the job returns the key;
- while a job runs, ``{heartbeat prefix}:{job id}`` is kept alive (60 s expiry, written
  every 20 s), else the API's watchdog fails it;
- the API-owned ``docling:tasks:*`` keys are never written here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import redis
from docling_jobkit.datamodel.task import validate_task
from docling_jobkit.datamodel.task_meta import TaskStatus
from docling_jobkit.orchestrators.rq.orchestrator import (
    _HEARTBEAT_INTERVAL,
    _HEARTBEAT_TTL,
    RQOrchestrator,
    RQOrchestratorConfig,
    _TaskUpdate,
)
from docling_jobkit.orchestrators.serialization import make_msgpack_safe
from docling_jobkit.public_errors import build_public_task_error
from rq.job import Job

from rq import Queue, SimpleWorker, get_current_job

from ..errors import ConfigError
from .converter import ConversionFailure, TaskConverter, VramOrchestratorConfig

__all__ = [
    "CLEAR_FUNCTIONS",
    "CONVERT_FUNCTIONS",
    "ColdShutdown",
    "VramRQJob",
    "VramRQWorker",
    "check_contract",
    "rq_config_from_env",
]

log = logging.getLogger("vram_orchestrator.rq")

#: Job functions docling-serve's API enqueues for a conversion (the second with OTEL traces).
CONVERT_FUNCTIONS = (
    "docling_jobkit.orchestrators.rq.worker.docling_task",
    "docling_serve.rq_job_wrapper.instrumented_docling_task",
)
#: Job functions that ask the workers to free their converters.
CLEAR_FUNCTIONS = ("docling_jobkit.orchestrators.rq.worker.clear_cache_task",)

#: docling-serve's variables for its RQ engine, read the same way here.
_ENV = "DOCLING_SERVE_ENG_RQ_"


def rq_config_from_env(environ: dict[str, str] | None = None) -> RQOrchestratorConfig:
    """The RQ engine settings from docling-serve's ``DOCLING_SERVE_ENG_RQ_*`` variables
    (Redis URL, queue names, results prefix, sub channel, TTLs, job timeout, connection
    limits), with docling-jobkit's defaults for what is unset. The Redis URL is required."""
    env = dict(os.environ if environ is None else environ)
    url = env.get(f"{_ENV}REDIS_URL", "")
    if not url:
        raise ConfigError(
            f"{_ENV}REDIS_URL is not set: the rq-worker needs the Redis URL of docling-serve's "
            "RQ engine (the same value as the API pods)"
        )
    fields: dict[str, Any] = {"redis_url": url}
    # name, type, and whether 0 is allowed (redis-py's health check interval 0 = off).
    numbers: dict[str, tuple[str, Callable[[str], float], bool]] = {
        "RESULTS_TTL": ("results_ttl", int, False),
        "FAILURE_TTL": ("failure_ttl", int, False),
        "JOB_TIMEOUT": ("job_timeout", int, False),
        "REDIS_MAX_CONNECTIONS": ("redis_max_connections", int, False),
        "REDIS_SOCKET_TIMEOUT": ("redis_socket_timeout", float, False),
        "REDIS_SOCKET_CONNECT_TIMEOUT": ("redis_socket_connect_timeout", float, False),
        "REDIS_HEALTH_CHECK_INTERVAL": ("redis_health_check_interval", float, True),
    }
    for suffix, (name, kind, zero_ok) in numbers.items():
        if (raw := env.get(_ENV + suffix)) is not None:
            fields[name] = _positive(_ENV + suffix, raw, kind, zero_ok)
    for suffix, name in (
        ("QUEUE_NAME", "queue_name"),
        ("RESULTS_PREFIX", "results_prefix"),
        ("SUB_CHANNEL", "sub_channel"),
    ):
        if raw := env.get(_ENV + suffix):
            fields[name] = raw
    return RQOrchestratorConfig(**fields)


def _positive(name: str, raw: str, kind: Callable[[str], float], zero_ok: bool) -> float:
    """``raw`` as a finite number > 0 (>= 0 with ``zero_ok``), else a ConfigError naming
    the variable: a NaN or negative TTL or timeout would fail jobs later, far from here."""
    allowed = f"{'an integer' if kind is int else 'a number'} {'>=' if zero_ok else '>'} 0"
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not allowed: expected {allowed}") from None
    if not (math.isfinite(value) and (value > 0 or (zero_ok and value == 0))):
        raise ConfigError(f"{name}={raw!r} is not allowed: expected {allowed}")
    return value


def queue_names(config: RQOrchestratorConfig) -> list[str]:
    """docling-serve's queue setting is a comma list; a worker takes from every queue."""
    return [name.strip() for name in config.queue_name.split(",") if name.strip()]


def _string_constants(code: types.CodeType) -> Iterator[str]:
    for const in code.co_consts:
        if isinstance(const, str):
            yield const
        elif isinstance(const, types.CodeType):
            yield from _string_constants(const)


def enqueued_functions() -> set[str]:
    """The job function names the installed docling-jobkit (and docling-serve, when
    installed) enqueue, read from their code: every dotted constant that names a function
    of their RQ worker modules."""
    import importlib

    sources: list[Any] = [RQOrchestrator]
    try:
        sources.append(importlib.import_module("docling_serve.orchestrator_factory"))
    except ImportError:
        pass
    names: set[str] = set()
    for source in sources:
        for value in vars(source).values():
            func = getattr(value, "__func__", value)
            func = getattr(func, "__wrapped__", func)  # lru_cache and other decorators
            code = getattr(func, "__code__", None)
            if code is None:
                continue
            names.update(
                s
                for s in _string_constants(code)
                if s.startswith(("docling_jobkit.orchestrators.rq.", "docling_serve.rq_"))
                and s.count(".") >= 2
                and " " not in s
            )
    return names


def check_contract() -> None:
    """Refuses (ConfigError) when the installed docling-jobkit or docling-serve enqueue a job
    function this worker does not handle: its jobs would fail on every worker of ours."""
    unknown = sorted(enqueued_functions() - set(CONVERT_FUNCTIONS) - set(CLEAR_FUNCTIONS))
    if unknown:
        from importlib.metadata import version

        raise ConfigError(
            f"docling-jobkit {version('docling-jobkit')} enqueues {', '.join(unknown)}, which "
            "this vram-orchestrator does not handle (it handles "
            f"{', '.join(CONVERT_FUNCTIONS + CLEAR_FUNCTIONS)}): install docling-jobkit==3.9.1 "
            "or a vram-orchestrator that supports this contract"
        )


class ColdShutdown(BaseException):
    """SIGTERM or SIGINT while a conversion runs: the job fails now, the worker exits."""


def _active() -> VramRQWorker:
    worker = VramRQWorker.current
    if worker is None:
        raise RuntimeError("a vram-orchestrator RQ job ran outside VramRQWorker")
    return worker


def _convert_job(task_data: dict[str, Any], **_: Any) -> str:
    return _active().convert(task_data)


def _clear_job(**_: Any) -> None:
    _active().clear_converters()


_HANDLERS: dict[str, Callable[..., Any]] = {
    **dict.fromkeys(CONVERT_FUNCTIONS, _convert_job),
    **dict.fromkeys(CLEAR_FUNCTIONS, _clear_job),
}


class VramRQJob(Job):
    """An RQ job whose docling function names run here; any other name fails the job with
    a message (nothing is imported by name)."""

    @property
    def func(self) -> Callable[..., Any]:
        handler = _HANDLERS.get(self.func_name or "")
        if handler is None:
            raise ConfigError(
                f"job {self.id}: {self.func_name!r} is not a job function vram-orchestrator's "
                f"RQ worker runs (it runs {', '.join(_HANDLERS)})"
            )
        return handler


class VramRQWorker(SimpleWorker):
    """docling-serve's RQ worker with conversions through vram-orchestrator's pool.

    Configured by docling-serve's ``DOCLING_SERVE_ENG_RQ_*`` variables (or
    ``orchestrator_config``) and ours (``VRAM_ORCH_*``: device, pipeline, idle release...).
    One job at a time (SimpleWorker: no fork, the OCR pool stays between jobs); conversions
    go through the same :class:`~.converter.TaskConverter` as ``VramWorkerOrchestrator``'s.
    """

    job_class = VramRQJob
    #: The worker running a job in this process (RQ runs one job at a time per process).
    current: VramRQWorker | None = None

    def __init__(
        self,
        queues: Any = None,
        *args: Any,
        orchestrator_config: RQOrchestratorConfig | None = None,
        converter_config: VramOrchestratorConfig | None = None,
        **kwargs: Any,
    ) -> None:
        check_contract()
        self.rq_config = orchestrator_config or rq_config_from_env()
        if queues is None:
            queues = queue_names(self.rq_config)
        if "connection" not in kwargs:
            kwargs["connection"], _ = RQOrchestrator.make_rq_queue(self.rq_config)
        kwargs.setdefault("default_result_ttl", self.rq_config.results_ttl)
        # rq's command line passes its default job class: ours must win, or RQ would import
        # jobkit's worker module by the job's function name.
        job_class = kwargs.get("job_class")
        if not (isinstance(job_class, type) and issubclass(job_class, VramRQJob)):
            kwargs["job_class"] = VramRQJob
        super().__init__(queues, *args, **kwargs)
        config = converter_config or VramOrchestratorConfig(num_workers=1)
        self.converter = TaskConverter(config)
        self._loop = asyncio.new_event_loop()
        #: The signal of a cold shutdown (SIGTERM or SIGINT during a job), else None.
        self.stopped_by: signal.Signals | None = None

    # ---- jobs ---------------------------------------------------------------------------

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """Runs one job with its heartbeat kept alive. After a cold shutdown during it (the
        job is failed and reported by then), the OCR pool closes at once."""
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(job.id, stop), daemon=True, name=f"heartbeat-{job.id}"
        )
        beat.start()
        VramRQWorker.current = self
        try:
            return bool(super().perform_job(job, queue))
        finally:
            VramRQWorker.current = None
            stop.set()
            beat.join(timeout=5)
            if self.stopped_by is not None:
                # The interrupted conversion's tasks end first (cancelled), then the pool.
                pending = asyncio.all_tasks(self._loop)
                for t in pending:
                    t.cancel()
                if pending:
                    gathered = asyncio.gather(*pending, return_exceptions=True)
                    self._loop.run_until_complete(gathered)
                self.converter_close()

    def convert(self, task_data: dict[str, Any]) -> str:
        """The docling_task contract: STARTED, the conversion, the result stored, SUCCESS;
        FAILURE with a message on any failure (and the exception raised for RQ)."""
        job = get_current_job()
        assert job is not None
        conn = job.connection
        cfg = self.rq_config
        task = validate_task(task_data, allow_external_plugins=cfg.allow_external_plugins)
        self._publish(conn, _TaskUpdate(task_id=task.task_id, task_status=TaskStatus.STARTED))
        log.info("job %s: converting %d source(s)", task.task_id, len(task.sources))
        result_key = None
        try:
            result = self._loop.run_until_complete(self.converter.convert(task))
            packed = msgpack.packb(make_msgpack_safe(result.model_dump()), use_bin_type=True)
            result_key = f"{cfg.results_prefix}:{task.task_id}"
            conn.setex(result_key, cfg.results_ttl, packed)
            self._publish(
                conn,
                _TaskUpdate(
                    task_id=task.task_id, task_status=TaskStatus.SUCCESS, result_key=result_key
                ),
            )
            log.info("job %s: done (%d bytes of result)", task.task_id, len(packed))
            return result_key
        except BaseException as e:
            if result_key is None:  # a stored result is the outcome, whatever came after
                self._publish(
                    conn,
                    _TaskUpdate(
                        task_id=task.task_id,
                        task_status=TaskStatus.FAILURE,
                        error_message=_public_message(e),
                    ),
                )
            log.warning("job %s failed: %s: %s", task.task_id, type(e).__name__, e)
            raise

    def clear_converters(self) -> None:
        """clear_cache_task: idle OCR workers end now, so their memory returns."""
        self._loop.run_until_complete(self.converter.clear())

    # ---- plumbing -----------------------------------------------------------------------

    def _publish(self, conn: redis.Redis, update: _TaskUpdate) -> None:
        conn.publish(self.rq_config.sub_channel, update.model_dump_json())

    def _heartbeat(self, job_id: str, stop: threading.Event) -> None:
        """The liveness key the API's watchdog looks for, while this job runs."""
        key = f"{self.rq_config.heartbeat_key_prefix}:{job_id}"
        conn = redis.Redis.from_url(self.rq_config.redis_url)
        try:
            while True:
                try:
                    conn.set(key, "1", ex=_HEARTBEAT_TTL)
                except redis.RedisError as e:
                    log.warning("heartbeat of job %s not written: %s", job_id, e)
                if stop.wait(timeout=_HEARTBEAT_INTERVAL):
                    return
        finally:
            conn.close()

    def request_stop(self, signum: int, frame: Any) -> None:
        """SIGTERM / SIGINT: during a conversion, a cold shutdown: RQ is told to stop, and
        the job is interrupted now (it fails, reported as such; the OCR workers end).
        Otherwise RQ's own stop."""
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]
        if VramRQWorker.current is self and self.stopped_by is None:
            self.stopped_by = signal.Signals(signum)
            raise ColdShutdown(f"{self.stopped_by.name} while the job ran")

    def converter_close(self) -> None:
        """Closes the OCR pool: its workers end (their GPU memory returns)."""
        self.converter.close()

    def teardown(self) -> None:
        """RQ's end of work(): the OCR pool closes with the worker."""
        try:
            self.converter_close()
        finally:
            self._loop.close()
            super().teardown()  # type: ignore[no-untyped-call]


def _public_message(error: BaseException) -> str:
    """What the API shows: our failures are written for the caller; others go through
    docling-jobkit's public error text (no internals)."""
    if isinstance(error, ConversionFailure):
        return str(error)
    if isinstance(error, ColdShutdown):
        return f"the worker stopped before the job finished ({error}); resubmit the task"
    return build_public_task_error(error)
