"""Prometheus metrics export on a CPU-only machine too."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import vram_orchestrator as vo
from vram_orchestrator.metrics import PoolCollector


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_outcomes_durations_workers_and_gpu_state(make_pool, ocrset):
    pool = make_pool(max_workers=1, free_vram_on_idle=False)
    registry = CollectorRegistry()
    registry.register(PoolCollector(pool, name="ocr"))
    for _ in range(3):
        pool.ocr(ocrset / "01_line_short.png")
    try:
        pool.ocr(b"not an image")
    except vo.InvalidInput:
        pass
    m = _samples(registry)
    pool_label = ("pool", "ocr")
    assert m[("vram_orch_tasks_total", (("outcome", "success"), pool_label))] == 3
    assert m[("vram_orch_tasks_total", (("outcome", "invalid_input"), pool_label))] == 1
    assert m[("vram_orch_task_seconds_count", (pool_label,))] == 3
    assert m[("vram_orch_task_seconds_sum", (pool_label,))] > 0
    assert m[("vram_orch_task_seconds_bucket", (("le", "+Inf"), pool_label))] == 3
    assert m[("vram_orch_workers", (pool_label, ("state", "idle")))] == 1
    assert m[("vram_orch_worker_spawns_total", (pool_label,))] == 1
    assert m[("vram_orch_queue_depth", (pool_label,))] == 0
    [rss] = [v for (name, _), v in m.items() if name == "vram_orch_worker_resident_memory_bytes"]
    assert rss > 10 * 1024 * 1024
    gpu = vo.gpu_report()["status"] == "available"
    assert m[("vram_orch_gpu_available", (pool_label,))] == (1 if gpu else 0)
    if not gpu:
        assert not [k for k in m if k[0] == "vram_orch_device_memory_bytes"]


def test_runtime_info_workers_carry_gpu_memory_or_none(make_pool, ocrset):
    pool = make_pool(max_workers=1, free_vram_on_idle=False)
    pool.ocr(ocrset / "01_line_short.png")
    [worker] = pool.runtime_info()["workers"]
    if vo.gpu_report()["status"] != "available":
        assert worker["gpu_mb"] is None
