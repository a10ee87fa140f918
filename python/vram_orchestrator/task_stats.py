"""Counts of finished tasks by outcome and a duration histogram, kept by each pool for
metrics (no dependency on prometheus-client here)."""

from __future__ import annotations

import threading

__all__ = ["TASK_SECONDS_BUCKETS", "TaskStats"]

#: Upper bounds of the task duration histogram, seconds.
TASK_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class TaskStats:
    """Outcomes and durations of finished tasks, kept by the pool (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outcomes: dict[str, int] = {}
        self.buckets = [0] * len(TASK_SECONDS_BUCKETS)
        self.count = 0
        self.total_s = 0.0

    def record(self, outcome: str, seconds: float | None) -> None:
        with self._lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if seconds is None:
                return
            self.count += 1
            self.total_s += seconds
            for i, bound in enumerate(TASK_SECONDS_BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1

    def snapshot(self) -> tuple[dict[str, int], list[int], int, float]:
        with self._lock:
            return dict(self.outcomes), list(self.buckets), self.count, self.total_s
