"""examples/fastapi_app.py over real HTTP: uvicorn on 127.0.0.1 (a free port), httpx
clients, concurrent uploads, bad uploads, health with runtime_info, workers gone when idle,
and no ONNX Runtime / CUDA library in this (the server's) process."""

from __future__ import annotations

# isort: off
from test_docling_helpers import IGNORE_DOCLING_DEPRECATED  # first: quiet docling import

# isort: on

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn

from conftest import wait_for
from test_docling_helpers import image_pdf, mapped_forbidden, similarity

pytestmark = pytest.mark.filterwarnings(IGNORE_DOCLING_DEPRECATED)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi_app.py"


def _load_example() -> object:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def base_url() -> Iterator[str]:
    app = _load_example().create_app(
        device="cpu", max_workers=2, free_vram_on_idle=True, idle_timeout_s=0.5
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, 30.0), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_concurrent_uploads_bad_uploads_health_and_idle_release(base_url, ocrset, ground_truth):
    names = ["01_line_short.png", "02_line_pangram.png", "14_block_multiline.png"] * 2
    with httpx.Client(base_url=base_url, timeout=120) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok"
        assert health["runtime_info"]["limits"]["max_workers"] == 2

        def upload(name: str) -> httpx.Response:
            files = {"file": (name, (ocrset / name).read_bytes(), "image/png")}
            return client.post("/ocr", files=files)

        with ThreadPoolExecutor(max_workers=len(names)) as threads:
            responses = list(threads.map(upload, names))
        for name, response in zip(names, responses):
            assert response.status_code == 200, response.text
            body = response.json()
            assert [line["text"] for line in body["pages"][0]["lines"]] == ground_truth[name]
            assert body["text"] == "\n".join(ground_truth[name])

        info = client.get("/health").json()["runtime_info"]
        assert info["counters"]["succeeded"] == len(names)
        assert 1 <= info["counters"]["spawned"] <= 2

        pdf = image_pdf(ocrset / "13_page_paragraph.png", ocrset / "02_line_pangram.png")
        response = client.post(
            "/ocr", params={"format": "text"}, files={"file": ("scan.pdf", pdf, "application/pdf")}
        )
        assert response.status_code == 200, response.text
        want = "\n".join(ground_truth["13_page_paragraph.png"])
        want += "\n\n" + ground_truth["02_line_pangram.png"][0]
        assert similarity(response.text, want) > 0.95, response.text

        bad = client.post("/ocr", files={"file": ("x.png", b"not an image at all", "image/png")})
        assert bad.status_code == 422 and "cannot be read as an image" in bad.json()["detail"]
        empty = client.post("/ocr", files={"file": ("x.png", b"", "image/png")})
        assert empty.status_code == 400 and "empty" in empty.json()["detail"]
        broken = client.post("/ocr", files={"file": ("x.pdf", b"%PDF-1.4 junk", "application/pdf")})
        assert broken.status_code == 422 and "not a readable PDF" in broken.json()["detail"]
        missing = client.post("/ocr")
        assert missing.status_code == 422

        # idle: the workers exit (FREE_VRAM_ON_IDLE, idle_timeout_s=0.5) and the pool serves on.
        def no_workers() -> bool:
            return not client.get("/health").json()["runtime_info"]["workers"]

        assert wait_for(no_workers, 20.0, interval=0.2), client.get("/health").json()
        time.sleep(0.1)
        assert upload("01_line_short.png").status_code == 200
        assert wait_for(no_workers, 20.0, interval=0.2)
    assert not mapped_forbidden()
