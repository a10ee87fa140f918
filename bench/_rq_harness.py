"""A docling-serve RQ deployment on one machine, for the RQ tests and benchmark: a Redis
server on a free loopback port (no persistence), docling-jobkit's unmodified RQOrchestrator
(the API side) on an event loop of its own, and `vram-orchestrator rq-worker` processes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from io import BytesIO
from pathlib import Path
from typing import Any

import redis
from docling.datamodel.base_models import DocumentStream
from docling.datamodel.service.options import ConvertDocumentsOptions
from docling.datamodel.service.targets import InBodyTarget
from docling.datamodel.service.tasks import TaskType
from docling_jobkit.orchestrators.rq import orchestrator as jobkit_rq

ROOT = Path(__file__).resolve().parent.parent
OCR_WORKER = "vram-orch-worker"


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """The predicate's first true value within ``timeout`` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _children(parent: int) -> list[int]:
    """Live child processes of ``parent``, whichever of its threads started them."""
    found = []
    for task in Path(f"/proc/{parent}/task").glob("*"):
        try:
            found += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            continue
    return [pid for pid in found if _state(pid) not in ("Z", "")]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _redis_server() -> str:
    for candidate in (
        ROOT / "build" / "redis" / "bin" / "redis-server",
        shutil.which("redis-server"),
    ):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise RuntimeError("no redis-server: run `bash scripts/get-redis.sh` (make install-test does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """redis-server on a free loopback port, no persistence; restartable on the same port."""

    def __init__(self, folder: Path, persist: bool = False) -> None:
        """``persist``: an append-only file synced on every write, so a restart keeps
        everything (else nothing is kept)."""
        self.folder, self.port, self.persist = folder, _free_port(), persist
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        keep = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else []
        self.proc = subprocess.Popen(
            [_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + (keep or ["--appendonly", "no"])
            + ["--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )
        with redis.Redis.from_url(self.url) as client:
            assert wait_for(lambda: _pings(client), 10), "redis-server did not start"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Api:
    """docling-serve's API side: jobkit's RQOrchestrator with its update listener and
    watchdog, on an event loop of its own."""

    def __init__(self, url: str, queue: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = jobkit_rq.RQOrchestratorConfig(redis_url=url, queue_name=queue)
        self._updates: list[dict[str, Any]] = []
        self._closing = threading.Event()
        self.recorder = threading.Thread(
            target=self._record, args=(url, config.sub_channel), daemon=True
        )
        self.recorder.start()
        self.orch = self.call(self._make(config))
        self.processing = asyncio.run_coroutine_threadsafe(self.orch.process_queue(), self.loop)

    @staticmethod
    async def _make(config: Any) -> Any:
        return jobkit_rq.RQOrchestrator(config)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, path: Path, target: Any = None, task_type: TaskType = TaskType.CONVERT) -> str:
        source = DocumentStream(name=path.name, stream=BytesIO(path.read_bytes()))
        task = self.call(
            self.orch.enqueue(
                sources=[source],
                convert_options=ConvertDocumentsOptions(),
                targets=[target or InBodyTarget()],
                task_type=task_type,
            )
        )
        return str(task.task_id)

    def status(self, task_id: str) -> Any:
        return self.call(self.orch.task_status(task_id))

    def wait(self, task_id: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.status(task_id)
            if task.is_completed():
                return task
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} still {task.task_status} after {timeout} s")

    def error(self, task_id: str) -> str:
        """The failure message: the task's, or the one its worker published (jobkit's API
        may rebuild a failed task from RQ, without message, just before the update with the
        message arrives; that update is then dropped)."""

        def message() -> str | None:
            failures = [u for u in self.updates(task_id) if u["task_status"] == "failure"]
            return self.status(task_id).error_message or (
                failures[-1]["error_message"] if failures else None
            )

        assert wait_for(message, 10), f"no error message for {task_id}"
        return str(message())

    def updates(self, task_id: str) -> list[dict[str, Any]]:
        """What workers published on the sub channel for this task, in order."""
        return [u for u in self._updates if u["task_id"] == task_id]

    def _record(self, url: str, channel: str) -> None:
        client = redis.Redis.from_url(url)
        pubsub = client.pubsub()
        pubsub.subscribe(channel)
        while not self._closing.is_set():
            try:
                message = pubsub.get_message(timeout=0.2)
            except redis.RedisError:
                time.sleep(0.2)  # Redis restarting
                try:
                    pubsub.close()
                    pubsub = client.pubsub()
                    pubsub.subscribe(channel)
                except redis.RedisError:
                    pass
                continue
            if message and message["type"] == "message":
                self._updates.append(json.loads(message["data"]))
        pubsub.close()
        client.close()

    def markdown(self, task_id: str) -> str:
        result = self.call(self.orch.task_result(task_id))
        assert result is not None, f"no result for {task_id}"
        return str(result.result.document.md_content)

    def close(self) -> None:
        self._closing.set()
        self.recorder.join(timeout=5)
        self.processing.cancel()
        self.call(self.orch.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Workers:
    """`vram-orchestrator rq-worker` processes, with their logs."""

    def __init__(self, folder: Path, url: str, queue: str) -> None:
        self.folder = folder
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("VRAM_ORCH_", "DOCLING_SERVE_"))
            },
            "DOCLING_SERVE_ENG_RQ_REDIS_URL": url,
            "DOCLING_SERVE_ENG_RQ_QUEUE_NAME": queue,
            "VRAM_ORCH_DEVICE": "cpu",
            "VRAM_ORCH_IDLE_TIMEOUT_S": "0.3",
            "VRAM_ORCH_MAX_WORKERS": "2",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, argv: list[str] | None = None, **env: str
    ) -> subprocess.Popen[bytes]:
        """A worker named ``name``: `vram-orchestrator rq-worker`, or ``argv``."""
        argv = argv or [sys.executable, "-m", "vram_orchestrator", "-v", "rq-worker"]
        with open(self.folder / f"{name}.log", "wb") as log:  # the child keeps its own fd
            proc = subprocess.Popen(
                [*argv, "--name", name],
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        assert wait_for(lambda: "Listening on" in self.log(name), 30), self.log(name)[-2000:]
        return proc

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def ocr_processes(self, name: str) -> list[int]:
        return [pid for pid in _children(self.procs[name].pid) if _is_ocr(pid)]

    def stop_all(self) -> list[str]:
        """Asks every worker to stop (SIGINT, as Ctrl-C); kills and reaps those still
        running 20 s later and returns their names (a worker should stop at once)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        hung = []
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                hung.append(name)
                proc.kill()
                proc.wait()
        return hung


def _is_ocr(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(
        OCR_WORKER.encode() in a or b"scripted-worker" in a or b"_child.py" in a for a in argv
    )
