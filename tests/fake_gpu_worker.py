"""A stand-in GPU worker on a scripted GPU (see sim_gpu.py): speaks the worker protocol
and books GPU memory on the device CUDA_VISIBLE_DEVICES names, as a real worker's CUDA
context, sessions and arena would show in NVML.

Usage: fake_gpu_worker.py SIM_FILE CONTEXT_MB TASK_MB GROWTH_MB HOLD_S [worker args...]
- started normally: books CONTEXT_MB, then says hello;
- started with --standby: books nothing until its first task;
- each task: CONTEXT + TASK_MB + growth so far while it runs (HOLD_S seconds), then
  CONTEXT + GROWTH_MB * tasks served; one result line says which device it was pinned to;
- exits on stdin EOF, giving its memory back.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import sim_gpu


def frame(header: dict) -> bytes:
    body = json.dumps(header).encode()
    return struct.pack("<II", 4 + len(body), len(body)) + body


def read_frame(stream) -> dict | None:
    head = stream.read(8)
    if len(head) < 8:
        return None
    length, header_len = struct.unpack("<II", head)
    body = stream.read(length - 4)
    return json.loads(body[:header_len])


def main() -> int:
    sim = Path(sys.argv[1])
    context, task_mb, growth, hold = (float(a) for a in sys.argv[2:6])
    standby = "--standby" in sys.argv[6:]
    device = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    # The pid NVML shows: in a sandbox that does not translate pids, not ours.
    pid = os.getpid() + int(os.environ.get("FAKE_GPU_PID_OFFSET", "0"))
    out = sys.stdout.buffer
    if not standby:
        sim_gpu.set_usage(sim, device, pid, context)
    hello = {
        "type": "hello",
        "protocol_version": 1,
        "pid": os.getpid(),
        "ort_version": "fake",
        "providers_available": ["CUDAExecutionProvider"],
        "device": "cuda:0",
        "models": [],
        "load_ms": 1.0,
        "standby": standby,
    }
    out.write(frame(hello))
    out.flush()
    served = 0
    while True:
        request = read_frame(sys.stdin.buffer)
        if request is None or request["type"] == "shutdown":
            sim_gpu.set_usage(sim, device, pid, 0)
            return 0
        if request["type"] != "ocr":
            continue
        activate_ms = 0.0
        if standby:
            standby, activate_ms = False, 5.0
        sim_gpu.set_usage(sim, device, pid, context + task_mb + growth * served)
        time.sleep(hold)
        served += 1
        sim_gpu.set_usage(sim, device, pid, context + growth * served)
        line = {
            "text": f"visible={device}",
            "score": 1.0,
            "bbox": [[0, 0], [1, 0], [1, 1], [0, 1]],
        }
        timings = {
            "decode_ms": 0.0,
            "det_ms": 0.0,
            "cls_ms": 0.0,
            "rec_ms": 0.0,
            "model_ms": 0.0,
            "activate_ms": activate_ms,
            "total_ms": hold * 1e3 + activate_ms,
        }
        result = {"lines": [line], "width": 10, "height": 10, "timings": timings}
        out.write(frame({"type": "ocr_done", "id": request["id"], "result": result}))
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
