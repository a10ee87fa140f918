"""The scripted worker process, and the scripted GPU file it books memory on.

Run by path (``python _child.py FOLDER [worker args...]``), not as a package module: a
pool gives its workers a clean environment (no PYTHONPATH), so this file imports nothing
but the standard library. The parent side (:mod:`vram_orchestrator.testing`) imports the
same file-handling functions from here, so both sides read and write one format.

Scripted GPU file: ``{"devices": [{"index", "uuid", "name", "total_mb", "processes":
[{"pid", "used_mb"}]}]}``, the format the pool reads instead of NVML; free memory is the
total minus every process's use. Writers hold a lock and replace the file atomically.

Worker folder: ``config.json`` (the GPU file, memory booked at start and per task, the
startup behaviour), ``rules.json`` (what to do per input, read at every task, so a test can
change it at any time), ``counts.json`` (how often each rule was used) and ``calls.jsonl``
(one line per task: pid, input key, rule).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

# ---- files shared by the test process and its workers -------------------------------------


@contextmanager
def locked_json(path: Path, default: Any) -> Iterator[Any]:
    """The JSON in ``path`` (``default`` when absent), written back atomically on exit,
    under an exclusive lock shared by every process that uses this function."""
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text()) if path.exists() else default
        yield state
        write_json(path, state)


def write_json(path: Path, state: Any) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def book(gpu: Path, device: int | str, pid: int, used_mb: float, owner: int | None = None) -> None:
    """Sets what ``pid`` uses on a scripted device (by index or UUID); 0 removes it. With
    ``owner`` (a real pid), the pool's reader drops the entry once that process is gone,
    as the driver frees a dead process's memory."""
    with locked_json(gpu, {"devices": []}) as state:
        for d in state["devices"]:
            if device in (d["index"], d["uuid"]):
                d["processes"] = [p for p in d["processes"] if p["pid"] != pid]
                if used_mb > 0:
                    entry = {"pid": pid, "used_mb": used_mb}
                    if owner is not None:
                        entry["owner"] = owner
                    d["processes"].append(entry)


# ---- the worker protocol ------------------------------------------------------------------


def frame(header: dict[str, Any]) -> bytes:
    body = json.dumps(header).encode()
    return struct.pack("<II", 4 + len(body), len(body)) + body


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    head = stream.read(8)
    if len(head) < 8:
        return None
    length, header_len = struct.unpack("<II", head)
    body = stream.read(length - 4)
    return json.loads(body[:header_len]), body[header_len:]


class Worker:
    def __init__(self, folder: Path, argv: list[str]) -> None:
        self.folder = folder
        self.config: dict[str, Any] = json.loads((folder / "config.json").read_text())
        self.standby = "--standby" in argv
        self.gpu = Path(self.config["gpu"]) if self.config.get("gpu") else None
        # The pool pins a GPU worker by UUID; the scripted GPU's devices carry UUIDs too.
        self.device = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        self.pid = os.getpid()
        self.booked_pid = self.pid + int(self.config.get("pid_offset", 0))
        self.out = sys.stdout.buffer
        self.served = 0

    def book(self, mb: float) -> None:
        if self.gpu is not None:
            book(self.gpu, self.device, self.booked_pid, mb, owner=self.pid)

    def send(self, header: dict[str, Any]) -> None:
        self.out.write(frame(header))
        self.out.flush()

    def start(self) -> bool:
        startup = self.config.get("startup", {})
        time.sleep(float(startup.get("seconds", 0)))
        if startup.get("fail"):
            sys.stderr.write(f"ERROR scripted worker: {startup['fail']}\n")
            self.send({"type": "error", "id": None, "kind": "setup", "message": startup["fail"]})
            return False
        if not self.standby:
            self.book(self.config["context_mb"])
        self.send(
            {
                "type": "hello",
                "protocol_version": 1,
                "pid": self.pid,
                "ort_version": "scripted",
                "providers_available": ["CUDAExecutionProvider"] if self.gpu else [],
                "device": "cuda:0" if self.gpu else "cpu",
                "models": [],
                "load_ms": 1.0,
                "standby": self.standby,
            }
        )
        return True

    def rule_for(self, key: str, payload: bytes) -> tuple[str, dict[str, Any]]:
        """The first rule whose match is the input's file name or occurs in its bytes and
        has uses left; else the default."""
        rules = json.loads((self.folder / "rules.json").read_text())
        with locked_json(self.folder / "counts.json", {}) as counts:
            for i, rule in enumerate(rules["rules"]):
                match = rule["match"]
                if match != key and match.encode() not in payload:
                    continue
                name = f"{i}:{match}"
                if rule.get("times") is not None and counts.get(name, 0) >= rule["times"]:
                    continue
                counts[name] = counts.get(name, 0) + 1
                return name, rule
        return "default", rules["default"]

    def serve(self, request: dict[str, Any], payload: bytes) -> None:
        source = request["input"]
        key = os.path.basename(source["path"]) if source["kind"] == "path" else ""
        if source["kind"] == "path":
            with open(source["path"], "rb") as f:
                payload = f.read()
        name, rule = self.rule_for(key, payload)
        with open(self.folder / "calls.jsonl", "a") as log:
            call = {"pid": self.pid, "device": self.device, "input": key, "rule": name}
            log.write(json.dumps(call) + "\n")
        activate_ms = 0.0
        if self.standby:
            self.standby, activate_ms = False, 5.0
        context = self.config["context_mb"] + self.config["growth_mb"] * self.served
        task_mb = rule.get("book_mb", self.config["task_mb"])
        self.book(context + task_mb)
        if rule.get("crash"):
            os.kill(self.pid, int(rule["crash"]))
        if rule.get("exit") is not None:
            os._exit(int(rule["exit"]))
        if rule.get("hang"):
            while True:
                time.sleep(3600)
        if rule.get("garbage"):
            self.out.write(b"\xff\xff\xff\x7fthis is not a frame")
            self.out.flush()
            time.sleep(3600)
        seconds = float(rule.get("seconds", 0))
        time.sleep(seconds)
        self.served += 1
        self.book(self.config["context_mb"] + self.config["growth_mb"] * self.served)
        if rule.get("error"):
            kind, message = rule["error"]
            self.send({"type": "error", "id": request["id"], "kind": kind, "message": message})
            return
        lines = [
            {"text": text, "score": 1.0, "bbox": [[0, 0], [1, 0], [1, 1], [0, 1]]}
            for text in rule.get("lines", [])
        ]
        zero = {f"{s}_ms": 0.0 for s in ("decode", "det", "cls", "rec", "model")}
        timings = {**zero, "activate_ms": activate_ms, "total_ms": seconds * 1e3 + activate_ms}
        result = {"lines": lines, "width": 1, "height": 1, "timings": timings}
        self.send({"type": "ocr_done", "id": request["id"], "result": result})

    def run(self) -> int:
        if not self.start():
            return 3
        while True:
            got = read_frame(sys.stdin.buffer)
            if got is None or got[0]["type"] == "shutdown":
                self.book(0)
                return 0
            request, payload = got
            if request["type"] == "ping":
                self.send({"type": "pong", "id": request["id"]})
            elif request["type"] == "info":
                self.send(
                    {
                        "type": "info",
                        "id": request["id"],
                        "tasks_served": self.served,
                        "rss_bytes": 0,
                    }
                )
            elif request["type"] == "ocr":
                self.serve(request, payload)


if __name__ == "__main__":
    # Signals as the real worker leaves them: default actions, so a crash is a crash.
    for sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    sys.exit(Worker(Path(sys.argv[1]), sys.argv[2:]).run())
