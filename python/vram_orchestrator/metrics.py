"""Prometheus metrics of a pool (``prometheus-client``; install the ``metrics`` extra).

>>> from prometheus_client import REGISTRY
>>> REGISTRY.register(vram_orchestrator.metrics.PoolCollector(pool))

Names carry the ``vram_orch_`` prefix and base units (seconds, bytes); counters end in
``_total``. Values are read from the pool when scraped, so a scrape costs one
``runtime_info()`` (an NVML read and a round trip to the dispatcher thread).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .task_stats import TASK_SECONDS_BUCKETS, TaskStats

if TYPE_CHECKING:
    from .pool import OcrPool

__all__ = ["TASK_SECONDS_BUCKETS", "PoolCollector", "TaskStats"]

_MB = 1024 * 1024
_STATES = ("starting", "standby", "idle", "busy", "stopping")


class PoolCollector(Collector):
    """Exports one pool's state; holds the pool weakly (a closed, dropped pool exports
    nothing)."""

    def __init__(self, pool: OcrPool, name: str = "default") -> None:
        self._pool = weakref.ref(pool)
        self._name = name

    def collect(self) -> Iterator[Metric]:
        pool = self._pool()
        if pool is None:
            return
        info = pool.runtime_info()
        outcomes, buckets, count, total_s = pool.task_stats.snapshot()
        label = ["pool"]

        tasks = CounterMetricFamily(
            "vram_orch_tasks", "Tasks that ended, by outcome", labels=[*label, "outcome"]
        )
        for outcome, n in sorted(outcomes.items()):
            tasks.add_metric([self._name, outcome], n)
        yield tasks

        hist = HistogramMetricFamily(
            "vram_orch_task_seconds", "Submission to result of successful tasks", labels=label
        )
        cumulative = [(str(b), n) for b, n in zip(TASK_SECONDS_BUCKETS, buckets)]
        hist.add_metric([self._name], [*cumulative, ("+Inf", count)], total_s)
        yield hist

        queue = GaugeMetricFamily(
            "vram_orch_queue_depth", "Tasks waiting for a worker", labels=label
        )
        queue.add_metric([self._name], info["queue"]["length"])
        yield queue

        workers = GaugeMetricFamily(
            "vram_orch_workers", "Worker processes by state", labels=[*label, "state"]
        )
        for state in _STATES:
            n = sum(1 for w in info["workers"] if _state(w) == state)
            workers.add_metric([self._name, state], n)
        yield workers

        waiting = GaugeMetricFamily(
            "vram_orch_tasks_waiting_for_vram",
            "Queued tasks waiting for GPU memory (admission)",
            labels=label,
        )
        waiting.add_metric([self._name], info.get("waiting_for_vram", 0))
        yield waiting

        peaks = GaugeMetricFamily(
            "vram_orch_learned_peak_bytes",
            "Learned GPU memory peak per kind of task",
            labels=[*label, "kind"],
        )
        for kind, mb in sorted(
            ((info.get("gpu_memory") or {}).get("learned_peaks_mb") or {}).items()
        ):
            peaks.add_metric([self._name, kind], mb * _MB)
        yield peaks

        spawns = CounterMetricFamily(
            "vram_orch_worker_spawns", "Worker processes started", labels=label
        )
        spawns.add_metric([self._name], info["counters"]["spawned"])
        yield spawns

        exits = CounterMetricFamily(
            "vram_orch_worker_exits", "Worker exits by reason", labels=[*label, "reason"]
        )
        for reason, n in sorted(info["exits_by_reason"].items()):
            exits.add_metric([self._name, reason], n)
        yield exits

        rss = GaugeMetricFamily(
            "vram_orch_worker_resident_memory_bytes",
            "Resident memory of each worker",
            labels=[*label, "pid"],
        )
        for w in info["workers"]:
            if w.get("rss_mb") is not None:
                rss.add_metric([self._name, str(w["pid"])], w["rss_mb"] * _MB)
        yield rss

        yield from _gpu_metrics(info["gpu"], {w["pid"] for w in info["workers"]}, self._name)


def _state(worker: dict[str, Any]) -> str:
    """A standby worker is idle but holds no GPU memory: its own state in metrics."""
    return "standby" if worker.get("standby") and worker["state"] == "idle" else worker["state"]


def _gpu_metrics(gpu: dict[str, Any], pids: set[int], name: str) -> Iterator[Metric]:
    available = GaugeMetricFamily(
        "vram_orch_gpu_available", "1 when NVML reports GPUs, 0 in CPU mode", labels=["pool"]
    )
    available.add_metric([name], 1 if gpu["status"] == "available" else 0)
    yield available
    memory = GaugeMetricFamily(
        "vram_orch_device_memory_bytes", "GPU memory per device (NVML)", labels=["device", "kind"]
    )
    ours = GaugeMetricFamily(
        "vram_orch_worker_gpu_memory_bytes",
        "GPU memory NVML lists for each of our workers",
        labels=["device", "pid"],
    )
    for dev in gpu.get("devices", []):
        device = f"cuda:{dev['index']}"
        for kind in ("total", "free", "used"):
            memory.add_metric([device, kind], dev[f"{kind}_mb"] * _MB)
        for proc in dev.get("processes", []):
            if proc["pid"] in pids and proc.get("used_mb") is not None:
                ours.add_metric([device, str(proc["pid"])], proc["used_mb"] * _MB)
    yield memory
    yield ours
