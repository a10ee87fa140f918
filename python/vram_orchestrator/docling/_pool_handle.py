"""The orchestrator's OCR pool, replaceable at run time (``clear_converters``)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..pool import OcrPool

__all__ = ["PoolHolder"]

log = logging.getLogger("vram_orchestrator.docling")


class _Lease:
    def __init__(self, pool: OcrPool) -> None:
        self.pool = pool
        self.users = 0
        self.retired = False


class PoolHolder:
    """Holds one :class:`OcrPool`, created on first use with ``settings``.

    ``retire()`` detaches the pool: it is closed at once (its idle workers end now) or, if
    conversions still use it, when the last of them is done; the next use creates a new one.
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = dict(settings)
        self._lease: _Lease | None = None
        self._lock = threading.Lock()
        self.created = 0

    def _current(self) -> _Lease:
        with self._lock:
            if self._lease is None:
                self._lease = _Lease(OcrPool(**self._settings))
                self.created += 1
                log.info("OCR pool created (%d so far)", self.created)
            return self._lease

    def peek(self) -> OcrPool | None:
        """The current pool, without creating one."""
        with self._lock:
            return None if self._lease is None else self._lease.pool

    def get(self) -> OcrPool:
        """The current pool (created if needed)."""
        return self._current().pool

    @contextmanager
    def use(self) -> Iterator[OcrPool]:
        """The current pool, kept open until the block ends even if retired meanwhile."""
        lease = self._current()
        with self._lock:
            lease.users += 1
        try:
            yield lease.pool
        finally:
            with self._lock:
                lease.users -= 1
                close_now = lease.retired and lease.users == 0
            if close_now:
                threading.Thread(target=_close, args=(lease.pool,), daemon=True).start()

    async def retire(self) -> bool:
        """Detaches the current pool and closes it now if unused; True if one was closed."""
        with self._lock:
            lease, self._lease = self._lease, None
            if lease is None:
                return False
            lease.retired = True
            busy = lease.users > 0
        if busy:
            log.info("OCR pool retired; it closes when its running conversions end")
            return False
        await asyncio.to_thread(_close, lease.pool)
        return True

    def close(self) -> None:
        """Closes the current pool, failing what is still queued (shutdown)."""
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is not None:
            lease.pool.close(cancel_pending=True, timeout_s=30.0)


def _close(pool: OcrPool) -> None:
    pool.close(timeout_s=60.0)
    log.info("OCR pool closed: its workers have ended")
