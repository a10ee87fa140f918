"""A stand-in worker for fault tests: says hello like the real one, then misbehaves.

Usage: fake_worker.py MODE [worker args...]; MODE is `garbage` (answers the first request
with bytes that are not a frame) or `fail-setup` (reports a setup error and exits 3).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time


def frame(header: dict) -> bytes:
    body = json.dumps(header).encode()
    return struct.pack("<II", 4 + len(body), len(body)) + body


def main() -> int:
    mode = sys.argv[1]
    out = sys.stdout.buffer
    if mode == "fail-setup":
        sys.stderr.write("ERROR fake: the model file is unreadable\n")
        out.write(
            frame(
                {
                    "type": "error",
                    "id": None,
                    "kind": "setup",
                    "message": "fake setup failure: the model file is unreadable",
                }
            )
        )
        out.flush()
        return 3
    hello = {
        "type": "hello",
        "protocol_version": 1,
        "pid": os.getpid(),
        "ort_version": "fake",
        "providers_available": [],
        "device": "cpu",
        "models": [],
        "load_ms": 1.0,
    }
    out.write(frame(hello))
    out.flush()
    (length,) = struct.unpack("<I", sys.stdin.buffer.read(4))
    sys.stdin.buffer.read(length)
    out.write(b"\xff\xff\xff\x7fthis is not a frame")
    out.flush()
    time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
