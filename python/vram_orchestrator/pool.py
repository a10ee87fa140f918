"""``OcrPool``: OCR in Rust worker processes that give GPU memory back when idle."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from . import _native, inputs, model_sets, resources
from ._native_config import NativeGpuConfig, NativeOcrOptions, NativePoolConfig
from .errors import ConfigError, PoolClosed, SetupError
from .inputs import ImageSource, TextCells
from .results import AnalysisResult, OcrResult
from .settings import Settings
from .task_stats import TaskStats

log = logging.getLogger("vram_orchestrator")

#: Metric outcome label of each error class.
_OUTCOMES = {
    "InvalidInput": "invalid_input",
    "TaskTimeout": "timeout",
    "WorkerCrashed": "crashed",
    "PoolClosed": "closed",
    "SetupError": "setup_error",
    "InferenceError": "inference_error",
    "InsufficientVram": "insufficient_vram",
    "CancelledError": "cancelled",
}

_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}


def gpu_report(scripted: str | None = None) -> dict[str, Any]:
    """What NVML says about the GPUs now (``{"status": "unavailable", "reason": ...}``
    without a driver). Never creates a CUDA context. ``scripted`` reads a scripted device
    file instead (tests without a GPU)."""
    report: dict[str, Any] = json.loads(_native.gpu_probe_json(scripted))
    return report


def _visible(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The devices CUDA_VISIBLE_DEVICES lets this service use (NVML lists them all).
    Indices are read in PCI order, as NVML numbers them; ``GPU-…`` entries match UUIDs."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return devices
    chosen: list[dict[str, Any]] = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        if entry.isdigit():
            match = [d for d in devices if d["index"] == int(entry)]
        else:
            match = [d for d in devices if d.get("uuid", "").startswith(entry)]
        if not match:
            break  # CUDA stops at the first entry it cannot use
        chosen.extend(d for d in match if d not in chosen)
    return chosen


def pid_namespace_is_nested() -> bool:
    """True inside a nested pid namespace (a container): NVML then lists host pids, which
    are not ours, so per-process GPU readings cannot be matched to our workers."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass
    return False


def _resolve_device(requested: str, dylib: Any, scripted: str | None) -> tuple[list[int], str]:
    """Turns auto/cpu/cuda/cuda:N into the NVML indices workers may use (none: CPU), with
    the reason, or fails clearly. ``cuda`` and ``auto`` use every visible GPU. NVML and the
    ONNX Runtime library are only inspected when a GPU may be used."""
    if requested == "cpu":
        return [], "VRAM_ORCH_DEVICE=cpu"
    gpu = gpu_report(scripted)
    # A scripted GPU runs stand-in workers: no CUDA provider needed.
    cuda_ep = scripted is not None or resources.has_cuda_provider(dylib)
    available = gpu["status"] == "available"
    devices = _visible(gpu.get("devices", [])) if available else []
    if requested == "auto":
        if not devices:
            return [], gpu.get("reason", "NVML lists no usable GPU")
        if not cuda_ep:
            return [], (
                f"ONNX Runtime at {dylib} has no CUDA provider "
                "(install vram-orchestrator[gpu] for CUDA)"
            )
        names = ", ".join(f"cuda:{d['index']} {d['name']}" for d in devices)
        return [d["index"] for d in devices], f"NVML: {names}"
    if not devices:
        raise SetupError(
            f"VRAM_ORCH_DEVICE={requested!r} asks for CUDA but "
            f"{gpu.get('reason', 'NVML lists no usable GPU (see CUDA_VISIBLE_DEVICES)')}. "
            "Use cpu or auto."
        )
    if not cuda_ep:
        raise SetupError(
            f"VRAM_ORCH_DEVICE={requested!r} asks for CUDA but ONNX Runtime at "
            f"{dylib} has no CUDA provider: pip install vram-orchestrator[gpu]."
        )
    if requested == "cuda":
        return [d["index"] for d in devices], f"VRAM_ORCH_DEVICE=cuda: {len(devices)} GPU(s)"
    index = int(requested.split(":", 1)[1])
    if index not in [d["index"] for d in devices]:
        usable = ", ".join(f"cuda:{d['index']}" for d in devices)
        raise ConfigError(f"VRAM_ORCH_DEVICE={requested!r}: usable GPUs are {usable}.")
    return [index], f"VRAM_ORCH_DEVICE={requested}"


def _graph_cache(setting: str | None) -> str | None:
    """The graph cache folder workers get: the setting, 'off' for none, else the default."""
    if setting == "off":
        return None
    return setting or str(resources.graph_cache_dir())


def _worker_env(lib_dirs: list[str], level: str) -> tuple[tuple[str, str], ...]:
    """The worker's whole environment: a clean one plus what it needs."""
    keep = (
        "HOME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "TZ",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
    )
    env = [(k, os.environ[k]) for k in keep if k in os.environ]
    inherited = os.environ.get("LD_LIBRARY_PATH")
    env.append(("LD_LIBRARY_PATH", os.pathsep.join(lib_dirs + ([inherited] if inherited else []))))
    env.append(("VRAM_ORCH_WORKER_LOG", level))
    # ONNX Runtime's telemetry starts when the library loads unless this is set.
    env.append(("ORT_DISABLE_TELEMETRY", "1"))
    return tuple(env)


def _worker_log_level(setting: str) -> str:
    if setting != "auto":
        return setting
    level = logging.getLogger("vram_orchestrator.worker").getEffectiveLevel()
    return _LEVELS.get(level, "error" if level > logging.WARNING else "trace")


class OcrPool:
    """A pool of OCR worker processes.

    Keyword arguments override the environment (see ``settings.ENV_VARS``); e.g.
    ``OcrPool(device="cpu", max_workers=2, free_vram_on_idle=True, idle_timeout_s=0)``.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = Settings.load(settings)
        s = self.settings
        self._worker_bin = resources.worker_bin(s.worker_bin)
        self._ort_dylib = resources.ort_dylib(s.ort_dylib)
        self._model_set = model_sets.get(s.model_set)
        self._model_dir = resources.model_dir(s.model_dir, s.model_set)
        self._gpus, self._device_reason = _resolve_device(s.device, self._ort_dylib, s.scripted_gpu)
        self._device = "cpu" if not self._gpus else "cuda:" + ",".join(str(i) for i in self._gpus)
        if self._device == "cpu":
            log.info("workers run on CPU: %s", self._device_reason)
        else:
            log.info("workers run on %s: %s", self._device, self._device_reason)
        limits = NativeOcrOptions(
            profile=s.ocr_profile,
            max_input_bytes=s.max_input_bytes,
            max_pixels=s.max_pixels,
            max_det_pixels=s.max_det_pixels,
        )
        self._native_config = NativePoolConfig(
            worker_bin=str(self._worker_bin),
            model_set=s.model_set,
            model_dir=str(self._model_dir),
            ort_dylib=str(self._ort_dylib),
            device=tuple(self._gpus),
            worker_env=_worker_env(
                resources.library_dirs(self._ort_dylib), _worker_log_level(s.worker_log)
            ),
            max_workers=s.max_workers,
            queue_max=s.queue_max,
            idle_timeout=s.idle_timeout_s if s.free_vram_on_idle else None,
            task_timeout=s.task_timeout_s,
            kill_grace=s.kill_grace_s,
            startup_timeout=s.startup_timeout_s,
            max_tasks_per_worker=s.max_tasks_per_worker,
            worker_rss_limit_mb=s.worker_rss_limit_mb,
            max_retries=s.max_retries,
            threads=s.threads or max(1, (os.cpu_count() or 1) // s.max_workers),
            worker_vram_limit_mb=s.worker_vram_limit_mb or None,
            graph_cache_dir=_graph_cache(s.graph_cache_dir),
            cudnn_conv_algo=s.cudnn_conv_algo,
            cuda_defaults=s.cuda_defaults,
            gpu=NativeGpuConfig(
                source=s.scripted_gpu,
                vram_margin_mb=s.vram_margin_mb,
                admission_timeout=s.admission_timeout_s,
                worker_vram_growth_mb=s.worker_vram_growth_mb,
                peaks_dir=s.peaks_dir or str(resources.peaks_dir()),
            ),
            standby=s.free_vram_on_idle
            and (s.standby == "on" or (s.standby == "auto" and bool(self._gpus))),
            default_options=limits,
            max_frame_bytes=s.max_input_bytes + (1 << 20),
        )
        # The native side delivers to this, not to the pool: a pool dropped without close()
        # is then collected (its supervisor ends its workers), and its futures still end.
        self._deliveries = _Deliveries()
        #: Outcomes and durations of finished tasks (for metrics).
        self.task_stats = self._deliveries.task_stats
        self._native = _native.NativePool(self._native_config, self._deliveries.on_done)
        # The supervisor's threads do not survive fork(): a forked child must not use
        # (or wait on) this pool. Its workers stay the parent's.
        self._owner_pid = os.getpid()
        # A pool dropped without close(), or still open at interpreter exit, ends its workers
        # too. The finalizer holds the native side and the deliveries, never the pool.
        self._finalizer = weakref.finalize(
            self, _shut_down, self._native, self._deliveries, self._owner_pid
        )

    # ---- submitting -------------------------------------------------------------------

    def submit(
        self,
        image: ImageSource,
        *,
        profile: str | None = None,
        timeout_s: float | None = None,
        queue_timeout_s: float | None = None,
    ) -> Future[OcrResult]:
        """Queues one image; returns a ``concurrent.futures.Future`` of its
        :class:`~vram_orchestrator.results.OcrResult`.

        ``timeout_s`` overrides the task time limit. A full queue raises ``QueueFull`` at
        once, or after waiting up to ``queue_timeout_s`` for room; a closed pool raises
        ``PoolClosed``. Cancelling the future removes a queued task; a running one is
        stopped by ending its worker (its memory returns at once; the next task starts a
        fresh worker).
        """
        return self._submit(image, self._options(profile), timeout_s, queue_timeout_s, None)

    def submit_analyze(
        self,
        image: ImageSource,
        *,
        text_cells: TextCells | None = None,
        tables: bool = True,
        timeout_s: float | None = None,
        queue_timeout_s: float | None = None,
    ) -> Future[AnalysisResult]:
        """Queues a page analysis (see :meth:`analyze`); returns a Future of its result."""
        request = {"tables": bool(tables), "text_cells": inputs.text_cells(text_cells)}
        # Page analysis reads with the default profile whatever the pool's OCR profile.
        options = self._options("default")
        return self._submit(image, options, timeout_s, queue_timeout_s, request)

    def analyze(
        self,
        image: ImageSource,
        *,
        text_cells: TextCells | None = None,
        tables: bool = True,
        timeout_s: float | None = None,
        queue_timeout_s: float | None = None,
    ) -> AnalysisResult:
        """Analyses one page in a worker: its lines, layout regions and table grids.

        Returns an :class:`~vram_orchestrator.results.AnalysisResult`: the OCR result plus
        ``regions``: each with ``label`` (text, title,
        figure, figure_caption, table, table_caption, header, footer, reference, equation),
        ``score``, ``box`` (l, t, r, b in input pixels), its ``lines`` and, for tables,
        ``table`` (``rows``, ``cols``, ``cells`` with row, col, row_span, col_span, box,
        text). Every line is in exactly one region. With ``text_cells`` (a PDF page's own
        text, in image pixels) no OCR runs.
        """
        future = self.submit_analyze(
            image,
            text_cells=text_cells,
            tables=tables,
            timeout_s=timeout_s,
            queue_timeout_s=queue_timeout_s,
        )
        return future.result()

    async def analyze_async(
        self,
        image: ImageSource,
        *,
        text_cells: TextCells | None = None,
        tables: bool = True,
        timeout_s: float | None = None,
    ) -> AnalysisResult:
        """``analyze`` for asyncio; cancelling the awaiting task cancels the pool's task
        (queued: removed; running: its worker ended)."""
        return await asyncio.wrap_future(
            self.submit_analyze(image, text_cells=text_cells, tables=tables, timeout_s=timeout_s)
        )

    def _submit(
        self,
        image: ImageSource,
        options: NativeOcrOptions | None,
        timeout_s: float | None,
        queue_timeout_s: float | None,
        analyze: dict[str, Any] | None,
    ) -> Future[Any]:  # an OcrResult, or an AnalysisResult with ``analyze``
        self._check_owner()
        timeout_s = inputs.time_limit("timeout_s", timeout_s)
        queue_timeout_s = inputs.time_limit("queue_timeout_s", queue_timeout_s)
        limits = options or self._native_config.default_options
        source = inputs.image_source(image, limits.max_pixels)
        deliveries = self._deliveries
        future: Future[dict[str, Any]] = _PoolFuture(deliveries.callbacks)
        task_id = self._native.submit(source, options, timeout_s, queue_timeout_s, analyze)
        deliveries.expect(task_id, future)
        native = self._native

        def on_cancel(f: Future[dict[str, Any]]) -> None:
            if f.cancelled():
                # Future.cancel() wakes result() but not wait()/as_completed(): an executor
                # does that here, and so must we.
                f.set_running_or_notify_cancel()
                native.cancel(task_id)

        future.add_done_callback(on_cancel)
        return future

    def ocr(
        self,
        image: ImageSource,
        *,
        profile: str | None = None,
        timeout_s: float | None = None,
        queue_timeout_s: float | None = None,
    ) -> OcrResult:
        """OCRs one image and returns its :class:`~vram_orchestrator.results.OcrResult`."""
        future = self.submit(
            image, profile=profile, timeout_s=timeout_s, queue_timeout_s=queue_timeout_s
        )
        return future.result()

    async def ocr_async(
        self, image: ImageSource, *, profile: str | None = None, timeout_s: float | None = None
    ) -> OcrResult:
        """``ocr`` for asyncio; cancelling the awaiting task cancels the pool's task
        (queued: removed; running: its worker ended)."""
        return await asyncio.wrap_future(self.submit(image, profile=profile, timeout_s=timeout_s))

    def _check_owner(self) -> None:
        if os.getpid() != self._owner_pid:
            raise PoolClosed(
                f"this pool belongs to process {self._owner_pid}; after fork() create a new "
                "OcrPool in the child"
            )

    def _options(self, profile: str | None) -> NativeOcrOptions | None:
        if profile is None:
            return None
        if profile not in ("default", "reference"):
            raise ConfigError(f"profile={profile!r} is not allowed: expected default or reference")
        if profile == "reference" and self._model_set.name != model_sets.REFERENCE_SET:
            raise ConfigError(
                f"profile='reference' reproduces RapidOCR 1.4.4 and needs a pool with "
                f"model_set={model_sets.REFERENCE_SET!r}; this one runs {self._model_set.name!r}"
            )
        return dataclasses.replace(self._native_config.default_options, profile=profile)

    # ---- lifecycle ----------------------------------------------------------------------

    def warm_up(self, workers: int | None = None) -> None:
        """Starts workers ahead of work (all of ``max_workers`` by default)."""
        self._check_owner()
        count = self.settings.max_workers if workers is None else inputs.worker_count(workers)
        self._native.warm_up(count)

    def release_idle(self) -> None:
        """Ends every idle worker now, so its memory (GPU memory included) is given back,
        whatever ``FREE_VRAM_ON_IDLE`` says. Busy workers finish their task first; the next
        task starts a fresh worker."""
        self._check_owner()
        self._native.release_idle()

    def close(self, *, cancel_pending: bool = False, timeout_s: float | None = None) -> bool:
        """Stops the pool: waits for queued and running tasks (or fails them with
        ``PoolClosed`` when ``cancel_pending``), ends and reaps every worker, and returns
        True. When ``timeout_s`` passes first, the tasks not finished by then fail with
        ``PoolClosed`` and their workers are killed, so nothing runs on for a caller that
        stopped waiting; it returns False. Ctrl-C while it waits does the same and raises
        ``KeyboardInterrupt``. Safe to call twice."""
        if os.getpid() != self._owner_pid:
            return True  # a forked child: nothing of this pool runs here
        timeout_s = inputs.time_limit("timeout_s", timeout_s)
        self._finalizer.detach()
        try:
            finished = bool(self._native.close(cancel_pending, timeout_s))
        except BaseException:
            self._deliveries.close(stop_callbacks=False)
            raise
        self._deliveries.close(stop_callbacks=finished)
        return finished

    @property
    def closed(self) -> bool:
        return os.getpid() != self._owner_pid or bool(self._native.is_closed())

    def __enter__(self) -> OcrPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        native = getattr(self, "_native", None)
        owner = getattr(self, "_owner_pid", None)
        if native is not None and owner == os.getpid() and not native.is_closed():
            native.close(True, 5.0)

    # ---- introspection ------------------------------------------------------------------

    def runtime_info(self) -> dict[str, Any]:
        """Devices, workers (pid, state, device, tasks served), queue, limits, paths."""
        raw = None if os.getpid() != self._owner_pid else self._native.snapshot_json()
        snap: dict[str, Any] = json.loads(raw) if raw else {"closed": True, "workers": []}
        s = self.settings
        gpu = gpu_report(s.scripted_gpu)
        workers = snap.get("workers", [])
        nested = pid_namespace_is_nested()
        # The pool gives up per-process readings when NVML's pids prove not to be ours.
        unmatched = (snap.get("gpu") or {}).get("per_process_readings") is False and not nested
        if gpu["status"] == "available":
            if nested:
                gpu["per_process_readings"] = (
                    "unavailable: this process runs in a nested pid namespace, NVML lists host "
                    "pids; whole-device readings are used"
                )
            elif unmatched:
                gpu["per_process_readings"] = (
                    "unavailable: NVML never listed our workers' pids while device memory "
                    "rose (a sandbox's own pids); whole-device readings are used"
                )
            else:
                gpu["per_process_readings"] = "nvml"
        nested = nested or unmatched
        per_pid = {
            p["pid"]: p.get("used_mb")
            for dev in gpu.get("devices", [])
            for p in dev.get("processes", [])
        }
        for w in workers:
            if w.get("gpu_mb") is None:  # the pool's own readings come first
                w["gpu_mb"] = None if nested else per_pid.get(w["pid"], 0.0 if per_pid else None)
        return {
            "version": _native.__version__,
            "device": self._device,
            "device_reason": self._device_reason,
            "gpu": gpu,
            "workers": workers,
            "queue": {
                "length": snap.get("queue_length", 0),
                "max": s.queue_max,
                "in_flight": snap.get("in_flight", 0),
            },
            "counters": {
                k: snap.get(k, 0)
                for k in ("submitted", "succeeded", "failed", "retried", "spawned")
            },
            "gpu_memory": snap.get("gpu"),
            "waiting_for_vram": snap.get("waiting_for_vram", 0),
            "standby": self._native_config.standby,
            "exits_by_reason": snap.get("exits_by_reason", {}),
            "recent_exits": snap.get("recent_exits", []),
            "closed": snap.get("closed", True),
            "limits": {
                "max_workers": s.max_workers,
                "threads": self._native_config.threads,
                "task_timeout_s": s.task_timeout_s,
                "kill_grace_s": s.kill_grace_s,
                "queue_max": s.queue_max,
                "max_input_bytes": s.max_input_bytes,
                "max_pixels": s.max_pixels,
                "max_det_pixels": s.max_det_pixels,
                "max_tasks_per_worker": s.max_tasks_per_worker,
                "worker_rss_limit_mb": s.worker_rss_limit_mb,
                "worker_vram_limit_mb": s.worker_vram_limit_mb,
                "worker_vram_growth_mb": s.worker_vram_growth_mb,
                "vram_margin_mb": s.vram_margin_mb,
                "admission_timeout_s": s.admission_timeout_s,
                "max_retries": s.max_retries,
            },
            "free_vram_on_idle": s.free_vram_on_idle,
            "idle_timeout_s": s.idle_timeout_s if s.free_vram_on_idle else None,
            "profile": s.ocr_profile,
            "ort_dylib": str(self._ort_dylib),
            "models": {
                "set": self._model_set.name,
                "summary": self._model_set.summary,
                "files": {
                    f.role: {"name": f.name, "sha256": f.sha256, "source": f"{f.package}:{f.path}"}
                    for f in self._model_set.files
                },
            },
            "model_dir": str(self._model_dir),
            # Used by CPU workers only; None when turned off.
            "graph_cache_dir": self._native_config.graph_cache_dir,
            "worker_bin": str(self._worker_bin),
            "settings_sources": dict(s.sources),
        }


class _Deliveries:
    """Where the native side delivers outcomes: the futures waiting for them, and the
    statistics. It holds no reference to its pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[int, Future[dict[str, Any]]] = {}
        #: Outcomes that came before submit() registered their future.
        self._early: dict[int, tuple[dict[str, Any] | None, BaseException | None]] = {}
        self.task_stats = TaskStats()
        self.callbacks = _CallbackThread()

    def expect(self, task_id: int, future: Future[dict[str, Any]]) -> None:
        """Registers the future of a task just submitted (resolved now if it is done)."""
        with self._lock:
            early = self._early.pop(task_id, None)
            if early is None:
                self._futures[task_id] = future
        if early is not None:
            _resolve(future, *early)

    def on_done(
        self, task_id: int, result: dict[str, Any] | None, error: BaseException | None
    ) -> None:
        if error is None and result is not None:
            self.task_stats.record("success", result["timings_ms"]["total"] / 1e3)
        else:
            self.task_stats.record(_OUTCOMES.get(type(error).__name__, "error"), None)
        with self._lock:
            future = self._futures.pop(task_id, None)
            if future is None:
                # Finished before submit() registered its future: it picks this up.
                self._early[task_id] = (result, error)
                return
        _resolve(future, result, error)

    def close(self, stop_callbacks: bool) -> None:
        """Fails what was not delivered with PoolClosed; with ``stop_callbacks`` (every
        outcome delivered), the callback thread ends after the callbacks posted so far."""
        with self._lock:
            leftovers, self._futures = self._futures, {}
        for future in leftovers.values():
            if not future.done():
                future.set_exception(PoolClosed("the pool is closed"))
        if stop_callbacks:
            self.callbacks.stop()


class _CallbackThread:
    """Runs the done-callbacks of a pool's futures, in order, on a thread of their own.

    The thread that delivers results must never run user code: a callback that waits on
    the pool (``pool.ocr()`` inside a done-callback) would wait for a result only that
    thread could deliver. Here it waits on this thread while deliveries go on."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="vo-callbacks", daemon=True)
        self._thread.start()

    def post(self, callback: Callable[[], None]) -> None:
        self._queue.put(callback)

    def _run(self) -> None:
        while (callback := self._queue.get()) is not None:
            callback()  # Future._invoke_callbacks logs what a callback raises

    def stop(self) -> None:
        """Ends the thread once the callbacks posted so far have run (without waiting when
        called from one of them)."""
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()


class _PoolFuture(Future):  # type: ignore[type-arg]
    """A Future whose done-callbacks run on the pool's callback thread (see
    :class:`_CallbackThread`); waiting on ``result()`` is unchanged."""

    def __init__(self, callbacks: _CallbackThread) -> None:
        super().__init__()
        self._callback_thread = callbacks

    def _invoke_callbacks(self) -> None:
        # A private method of Future, absent from its type stubs.
        self._callback_thread.post(super()._invoke_callbacks)  # type: ignore[misc]


def _resolve(
    future: Future[dict[str, Any]], result: dict[str, Any] | None, error: BaseException | None
) -> None:
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except InvalidStateError:
        pass  # cancelled by the caller meanwhile


def _shut_down(native: Any, deliveries: _Deliveries, owner_pid: int) -> None:
    """A pool's end when nobody closed it: collected, or at interpreter exit."""
    if os.getpid() != owner_pid:
        return  # a forked child: its parent's workers are not its own
    finished = native.close(True, 10.0)
    deliveries.close(stop_callbacks=bool(finished))
