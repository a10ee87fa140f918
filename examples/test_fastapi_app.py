"""Tests of examples/fastapi_app.py as a user of vram-orchestrator writes them: its pytest
fixtures reach a full GPU, a crashing or hanging worker and a full queue on a CI machine
without a GPU or models, in milliseconds.

    pip install 'vram-orchestrator[serve]' pytest
    pytest examples/test_fastapi_app.py
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastapi_app import RETRY_AFTER_S, create_app
from vram_orchestrator.testing import ScriptedGpu, ScriptedWorker


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The app, built after scripted_gpu / scripted_worker (listed before it in each test):
    the app's own pool then reads the scripted GPU and runs the scripted worker."""
    app = create_app(admission_timeout_s=0.5, task_timeout_s=1, max_retries=0)
    with TestClient(app) as client:
        yield client


def _post(client: TestClient, body: bytes = b"page") -> Any:
    return client.post("/ocr", files={"file": ("page.png", body, "image/png")})


def test_text_of_an_upload(scripted_worker: ScriptedWorker, client: TestClient) -> None:
    scripted_worker.on("invoice", lines=["Invoice 42", "Total: 12.50"])
    r = client.post("/ocr?format=text", files={"file": ("a.png", b"invoice", "image/png")})
    assert r.status_code == 200 and r.text == "Invoice 42\nTotal: 12.50"


def test_a_full_gpu_is_503_with_retry_after(
    scripted_gpu: ScriptedGpu, client: TestClient, no_cuda_in_process: None
) -> None:
    other = scripted_gpu.fill(0.95)  # another service holds 95 % of the GPU
    r = _post(client)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert f"pid {other}" in r.json()["detail"]  # the message names who holds the memory
    scripted_gpu.release(other)
    assert _post(client).status_code == 200  # memory back: served again


def test_a_crashing_worker_is_500_and_the_next_upload_is_served(
    scripted_worker: ScriptedWorker, client: TestClient
) -> None:
    scripted_worker.on("poison", crash=signal.SIGSEGV)
    r = _post(client, b"poison")
    assert r.status_code == 500 and "SIGSEGV" in r.json()["detail"]
    assert _post(client).status_code == 200


def test_a_hanging_worker_is_504(scripted_worker: ScriptedWorker, client: TestClient) -> None:
    scripted_worker.on("stuck", hang=True)
    r = _post(client, b"stuck")
    assert r.status_code == 504 and "time limit of 1" in r.json()["detail"]
