"""A reference engine in a child process, spoken to in JSON lines: one request line in, one
answer line out. Both sides: the child's (answers on the original stdout, anything else
written to stdout sent to stderr) and the parent's (start, ask, close). Used by
documents_vs_rapid.py and ocr_vs_tesseract.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

# ---------------------------------------------------------------- child side


def child_answers() -> Callable[[dict[str, Any]], None]:
    """Keep the original stdout for the answers and send anything else written to stdout
    (library logs) to stderr, so it cannot corrupt them; returns the function that writes
    one answer line."""
    answers: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj: dict[str, Any]) -> None:
        answers.write(json.dumps(obj, ensure_ascii=False) + "\n")
        answers.flush()

    return send


def child_requests() -> Iterator[str]:
    """The request lines read from stdin (blank lines skipped), until stdin closes."""
    for line in sys.stdin:
        if line.strip():
            yield line


# ---------------------------------------------------------------- parent side


class JsonLinesChild:
    """The child process: started on ``cmd``, its first answer is its ready message
    (``answer()``), then one answer per ``ask()``. ``name`` names it in errors."""

    def __init__(
        self,
        cmd: Sequence[str],
        name: str,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen(
            list(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def answer(self) -> dict[str, Any]:
        """The next answer line; RuntimeError when the child exited instead."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=self.timeout_s)
            raise RuntimeError(f"{self.name} child process exited with {code}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request line and read its answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def close(self) -> None:
        """Close its stdin (the child then ends) and wait for it, killing it after 30 s."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
