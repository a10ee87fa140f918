"""Invariant 1: the Python process never maps ONNX Runtime or CUDA; the worker does the
work and never links libpython."""

from __future__ import annotations

from pathlib import Path

from conftest import worker_pids

FORBIDDEN_IN_PARENT = ("libonnxruntime", "libcuda", "libcudart", "libcublas", "libcudnn")


def mapped_libraries(pid: int | str = "self") -> set[str]:
    libs = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and ".so" in parts[5]:
            libs.add(Path(parts[5].strip()).name)
    return libs


def test_parent_maps_no_onnxruntime_or_cuda_and_worker_maps_ort_not_python(make_pool, ocrset):
    pool = make_pool(free_vram_on_idle=False, max_workers=1)
    result = pool.ocr(ocrset / "01_line_short.png")
    assert result["lines"], "the worker answered with no text"
    parent = mapped_libraries()
    assert not {lib for lib in parent for bad in FORBIDDEN_IN_PARENT if lib.startswith(bad)}, parent
    assert any(lib.startswith("_native") for lib in parent), "the extension itself is mapped"

    [pid] = worker_pids(pool)
    assert pid == result["worker"]["pid"]
    worker = mapped_libraries(pid)
    assert any(lib.startswith("libonnxruntime") for lib in worker), worker
    assert not any(lib.startswith("libpython") for lib in worker), worker


def test_workers_leave_no_onnx_runtime_telemetry(tmp_path, ocrset):
    """ONNX Runtime's Microsoft builds keep a telemetry store under the user's home
    (~/.cache/Microsoft/DeveloperTools/.onnxruntime); workers turn telemetry off."""
    import os
    import subprocess
    import sys

    from vram_orchestrator import resources

    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "VRAM_ORCH_MODEL_DIR": str(resources.model_dir(None)),
        "VRAM_ORCH_GRAPH_CACHE_DIR": "off",
        "VRAM_ORCH_PEAKS_DIR": str(tmp_path / "peaks"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "vram_orchestrator", "ocr", str(ocrset / "01_line_short.png")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert not [p for p in left if "Microsoft" in p or "onnxruntime" in p.lower()], left


def test_workers_hold_none_of_the_services_files_and_gain_no_privileges(make_pool, ocrset):
    import os
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.set_inheritable(True)  # as a server handing its socket to children would
    try:
        inode = os.fstat(listener.fileno()).st_ino
        pool = make_pool(free_vram_on_idle=False, max_workers=1)
        pid = pool.ocr(ocrset / "01_line_short.png")["worker"]["pid"]
        held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert f"socket:[{inode}]" not in held, held
        status = Path(f"/proc/{pid}/status").read_text()
        assert "NoNewPrivs:\t1" in status
    finally:
        listener.close()
