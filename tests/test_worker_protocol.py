"""The worker binary speaks the frame protocol on its own: hello, ping, info, errors."""

from __future__ import annotations

import json
import os
import struct
import subprocess

import pytest

from vram_orchestrator import _native, model_sets, resources


def _send(proc: subprocess.Popen, header: dict, payload: bytes = b"") -> None:
    body = json.dumps(header).encode()
    proc.stdin.write(struct.pack("<II", 4 + len(body) + len(payload), len(body)) + body + payload)
    proc.stdin.flush()


def _recv(proc: subprocess.Popen) -> dict:
    (length,) = struct.unpack("<I", proc.stdout.read(4))
    body = proc.stdout.read(length)
    (header_len,) = struct.unpack("<I", body[:4])
    return json.loads(body[4 : 4 + header_len])


@pytest.fixture
def worker():
    dylib = resources.ort_dylib(None)
    cmd = [
        str(resources.worker_bin(None)),
        "--model-dir",
        str(resources.model_dir(None)),
        "--ort-dylib",
        str(dylib),
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"LD_LIBRARY_PATH": str(dylib.parent)},
    )
    yield proc
    proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()


def test_hello_then_ping_info_ocr_and_clean_exit_on_eof(worker, ocrset):
    hello = _recv(worker)
    assert hello["type"] == "hello" and hello["pid"] == worker.pid
    assert hello["protocol_version"] == _native.PROTOCOL_VERSION
    assert hello["device"] == "cpu" and hello["ort_version"].count(".") == 2
    assert "CPUExecutionProvider" in hello["providers_available"]
    default_set = model_sets.get(model_sets.default_name())
    assert hello["models"] == [f.name for f in default_set.files]
    assert hello["load_ms"] > 0

    _send(worker, {"type": "ping", "id": 7})
    assert _recv(worker) == {"type": "pong", "id": 7}
    options = {
        "profile": "default",
        "max_input_bytes": 1 << 20,
        "max_pixels": 10**7,
        "max_det_pixels": 4 * 10**6,
    }
    image = (ocrset / "01_line_short.png").read_bytes()
    _send(worker, {"type": "ocr", "id": 8, "input": {"kind": "encoded"}, "options": options}, image)
    done = _recv(worker)
    assert done["type"] == "ocr_done" and done["id"] == 8
    assert [line["text"] for line in done["result"]["lines"]] == ["Hello World"]
    _send(
        worker,
        {"type": "ocr", "id": 9, "input": {"kind": "encoded"}, "options": options},
        b"not an image",
    )
    error = _recv(worker)
    assert (error["type"], error["id"], error["kind"]) == ("error", 9, "invalid_input")
    _send(worker, {"type": "info", "id": 10})
    info = _recv(worker)
    assert info["tasks_served"] == 2 and info["rss_bytes"] > 10 << 20

    worker.stdin.close()
    assert worker.wait(10) == 0
    logs = worker.stderr.read().decode()
    assert "ready on cpu" in logs and all(
        line[:5].strip() in {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"}
        for line in logs.splitlines()
    )


def test_malformed_frame_ends_the_worker_with_a_protocol_error(worker):
    assert _recv(worker)["type"] == "hello"
    worker.stdin.write(struct.pack("<II", 12, 8) + b"{not json")
    worker.stdin.flush()
    error = _recv(worker)
    assert error["type"] == "error" and error["kind"] == "protocol" and error["id"] is None
    assert worker.wait(10) == 4


def test_worker_refuses_to_run_when_its_parent_is_already_gone():
    dylib = resources.ort_dylib(None)
    out = subprocess.run(
        [
            str(resources.worker_bin(None)),
            "--model-dir",
            "/x",
            "--ort-dylib",
            str(dylib),
            "--parent-pid",
            str(os.getpid() + 10**6),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "is gone" in out.stderr


def test_nvidia_wheel_library_folders_reach_the_worker(tmp_path, monkeypatch):
    for lib in ("cublas", "cudnn", "cuda_runtime"):
        (tmp_path / "nvidia" / lib / "lib").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    dylib = resources.ort_dylib(None)
    dirs = resources.library_dirs(dylib)
    assert dirs[0] == str(dylib.parent)
    for lib in ("cublas", "cudnn", "cuda_runtime"):
        assert str(tmp_path / "nvidia" / lib / "lib") in dirs
