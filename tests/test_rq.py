"""RQ workers for docling-serve's RQ engine, end to end: a real Redis server on a loopback
port, docling-jobkit's unmodified RQOrchestrator (the API side) in this process, and our
`vram-orchestrator rq-worker` processes consuming its queue."""

from __future__ import annotations

# isort: off
from test_docling_helpers import IGNORE_DOCLING_DEPRECATED  # first: quiet docling import

# isort: on

import gc
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from docling.datamodel.service.targets import PutTarget
from docling.datamodel.service.tasks import TaskType
from docling_jobkit.datamodel.task_meta import TaskStatus
from docling_jobkit.orchestrators.rq import orchestrator as jobkit_rq
from rq.job import Job

from conftest import alive, load_bench, wait_for
from vram_orchestrator.docling import rq as vram_rq
from vram_orchestrator.errors import ConfigError
from vram_orchestrator.testing import ScriptedWorker

harness = load_bench("_rq_harness")
Api, RedisServer, Workers = harness.Api, harness.RedisServer, harness.Workers

pytestmark = pytest.mark.filterwarnings(IGNORE_DOCLING_DEPRECATED)

ROOT = Path(__file__).parent.parent
DOCUMENTS = ROOT / "tests" / "data" / "documents"


@pytest.fixture
def rq_setup(tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    server = RedisServer(tmp_path)
    queue = f"convert-{os.getpid()}"
    api = Api(server.url, queue)
    workers = Workers(tmp_path, server.url, queue)
    try:
        yield server, api, workers
    finally:
        hung = workers.stop_all()
        api.close()
        server.stop()
    assert not hung, f"rq-workers {hung} did not stop within 20 s of SIGINT"


def _title(stem: str) -> str:
    truth = json.loads((DOCUMENTS / f"{stem}.json").read_text())
    return next(b["text"] for b in truth["blocks"] if b["kind"] == "title")


def _job(url: str, task_id: str) -> Job:
    with redis.Redis.from_url(url) as conn:
        return Job.fetch(task_id, connection=conn)


def test_two_workers_convert_correctly_and_give_their_ocr_processes_back(rq_setup):
    server, api, workers = rq_setup
    workers.start("w1")
    workers.start("w2")
    stems = [
        "d01_storage_report-notext",
        "d02_retrieval_paper-notext",
        "d03_cluster_manual",
        "d05_benchmark_twocol",
    ]
    tasks = {stem: api.submit(DOCUMENTS / f"{stem}.pdf") for stem in stems}
    for stem, task_id in tasks.items():
        task = api.wait(task_id, timeout=180)
        assert task.task_status == TaskStatus.SUCCESS, task.error_message
        title = _title(stem.removesuffix("-notext"))
        assert title.lower() in api.markdown(task_id).lower(), stem
    assert {_job(server.url, t).worker_name for t in tasks.values()} == {"w1", "w2"}
    # Idle: every OCR process of both workers ends (their GPU memory would return).
    assert wait_for(lambda: not workers.ocr_processes("w1") and not workers.ocr_processes("w2"), 10)


# Two conversions, one of them redone after its worker is killed: about 60 s.
@pytest.mark.timeout(300)
def test_a_worker_killed_mid_job_loses_only_that_job(rq_setup, tmp_path, monkeypatch):
    _server, api, workers = rq_setup
    # The API's watchdog, scanning often: it fails a job once its heartbeat key expires.
    monkeypatch.setattr(jobkit_rq, "_WATCHDOG_INTERVAL", 1.0)
    monkeypatch.setattr(jobkit_rq, "_WATCHDOG_GRACE_PERIOD", 1.0)
    stuck = ScriptedWorker(tmp_path / "stuck").default(hang=True)
    doomed = workers.start("doomed", VRAM_ORCH_WORKER_BIN=str(stuck.path), VRAM_ORCH_PIPELINE="ocr")
    lost = api.submit(DOCUMENTS / "d01_storage_report-notext.pdf")
    assert wait_for(lambda: workers.ocr_processes("doomed"), 30), workers.log("doomed")[-2000:]
    ocr = workers.ocr_processes("doomed")
    assert api.status(lost).task_status == TaskStatus.STARTED
    doomed.kill()
    assert wait_for(lambda: not any(alive(pid) for pid in ocr), 1.0), "OCR processes outlived it"

    workers.start("survivor")
    served = api.submit(DOCUMENTS / "d03_cluster_manual.pdf")
    assert api.wait(served, timeout=120).task_status == TaskStatus.SUCCESS
    # The lost job fails through the watchdog (heartbeat expiry, 60 s), never runs again.
    assert api.wait(lost, timeout=100).task_status == TaskStatus.FAILURE
    assert "heartbeat" in api.error(lost).lower()
    assert lost not in workers.log("survivor")


def test_sigterm_mid_job_fails_it_at_once_and_ends_the_ocr_workers(rq_setup, tmp_path):
    _server, api, workers = rq_setup
    stuck = ScriptedWorker(tmp_path / "stuck").default(hang=True)
    proc = workers.start("stopped", VRAM_ORCH_WORKER_BIN=str(stuck.path), VRAM_ORCH_PIPELINE="ocr")
    task_id = api.submit(DOCUMENTS / "d01_storage_report-notext.pdf")
    assert wait_for(lambda: workers.ocr_processes("stopped"), 30), workers.log("stopped")[-2000:]
    ocr = workers.ocr_processes("stopped")
    proc.send_signal(signal.SIGTERM)
    task = api.wait(task_id, timeout=15)  # not the watchdog's 90 s: the worker reported it
    assert task.task_status == TaskStatus.FAILURE
    assert "SIGTERM" in api.error(task_id) and "resubmit" in api.error(task_id)
    assert proc.wait(timeout=15) != 0
    assert not any(alive(pid) for pid in ocr)


def test_clear_converters_ends_idle_ocr_workers_at_once(rq_setup):
    _server, api, workers = rq_setup
    workers.start("warm", FREE_VRAM_ON_IDLE="0")
    first = api.submit(DOCUMENTS / "d03_cluster_manual.pdf")
    assert api.wait(first, timeout=120).task_status == TaskStatus.SUCCESS
    time.sleep(1.0)
    assert workers.ocr_processes("warm"), "FREE_VRAM_ON_IDLE=0 keeps OCR workers warm"
    api.call(api.orch.clear_converters())
    assert wait_for(lambda: not workers.ocr_processes("warm"), 10)
    again = api.submit(DOCUMENTS / "d03_cluster_manual.pdf")
    assert api.wait(again, timeout=120).task_status == TaskStatus.SUCCESS


def test_the_traced_function_name_and_a_redis_restart_are_handled(rq_setup):
    server, api, workers = rq_setup
    workers.start("w")
    api.orch._rq_job_function = vram_rq.CONVERT_FUNCTIONS[1]  # what docling-serve sets with OTEL
    traced = api.submit(DOCUMENTS / "d03_cluster_manual.pdf")
    assert api.wait(traced, timeout=120).task_status == TaskStatus.SUCCESS
    assert (
        Job.fetch(traced, connection=redis.Redis.from_url(server.url)).func_name
        == (vram_rq.CONVERT_FUNCTIONS[1])
    )
    server.stop()
    time.sleep(1.0)
    server.start()  # empty: no persistence
    after = api.submit(DOCUMENTS / "d03_cluster_manual.pdf")
    assert api.wait(after, timeout=120).task_status == TaskStatus.SUCCESS


def test_rqs_own_command_line_runs_our_worker_class(rq_setup):
    server, api, workers = rq_setup
    rq_cli = [sys.executable, "-c", "from rq.cli import main; main()", "worker"]
    rq_cli += ["-w", "vram_orchestrator.docling.rq.VramRQWorker", "--url", server.url]
    rq_cli += [workers.env["DOCLING_SERVE_ENG_RQ_QUEUE_NAME"]]
    workers.start("rq-cli", argv=rq_cli)
    task_id = api.submit(DOCUMENTS / "d03_cluster_manual.pdf")
    assert api.wait(task_id, timeout=120).task_status == TaskStatus.SUCCESS
    assert _job(server.url, task_id).worker_name == "rq-cli"


def test_a_redis_restart_during_a_job_loses_nothing(tmp_path):
    """A Redis that keeps its data (append-only file) restarts while a job runs: the job
    still ends in SUCCESS once, and the worker serves the next one."""
    server = RedisServer(tmp_path, persist=True)
    api = Api(server.url, "convert")
    workers = Workers(tmp_path, server.url, "convert")
    slow = ScriptedWorker(tmp_path / "slow").default(lines=["slow page"], seconds=4)
    try:
        workers.start("w", VRAM_ORCH_WORKER_BIN=str(slow.path), VRAM_ORCH_PIPELINE="ocr")
        task_id = api.submit(DOCUMENTS / "d01_storage_report-notext.pdf")
        assert wait_for(lambda: slow.calls(), 30), workers.log("w")[-2000:]
        server.stop()
        time.sleep(1.0)
        server.start()
        assert api.wait(task_id, timeout=60).task_status == TaskStatus.SUCCESS
        assert "slow page" in api.markdown(task_id)
        again = api.submit(DOCUMENTS / "d01_storage_report-notext.pdf")
        assert api.wait(again, timeout=60).task_status == TaskStatus.SUCCESS
        assert len(slow.calls()) == 2  # each job converted once
    finally:
        hung = workers.stop_all()
        api.close()
        server.stop()
        # The API side's Redis clients drop connections the restart broke without closing
        # them; collected here, they cannot fail a later test with a ResourceWarning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    assert not hung, f"rq-workers {hung} did not stop within 20 s of SIGINT"


def test_unsupported_targets_and_task_types_fail_with_a_message(rq_setup):
    _server, api, workers = rq_setup
    workers.start("w")
    put = api.submit(
        DOCUMENTS / "d03_cluster_manual.pdf", target=PutTarget(url="http://127.0.0.1:9/x")
    )
    assert api.wait(put, timeout=60).task_status == TaskStatus.FAILURE
    assert "target kind 'put' is not supported" in api.error(put)
    chunk = api.submit(DOCUMENTS / "d03_cluster_manual.pdf", task_type=TaskType.CHUNK)
    assert api.wait(chunk, timeout=60).task_status == TaskStatus.FAILURE
    assert "chunk" in api.error(chunk)


def test_the_worker_refuses_a_job_contract_it_does_not_handle(monkeypatch):
    assert vram_rq.enqueued_functions() == set(vram_rq.CONVERT_FUNCTIONS + vram_rq.CLEAR_FUNCTIONS)
    vram_rq.check_contract()  # the installed docling-jobkit 3.9.1 and docling-serve 1.38
    future = "docling_jobkit.orchestrators.rq.worker.docling_task_v2"
    monkeypatch.setattr(vram_rq, "enqueued_functions", lambda: {future, *vram_rq.CONVERT_FUNCTIONS})
    with pytest.raises(ConfigError, match="docling_task_v2"):
        vram_rq.check_contract()


def test_rq_worker_without_a_redis_url_says_which_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCLING_SERVE_ENG_RQ_")}
    run = subprocess.run(
        [sys.executable, "-m", "vram_orchestrator", "rq-worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "DOCLING_SERVE_ENG_RQ_REDIS_URL" in run.stderr


@pytest.mark.parametrize(
    ("suffix", "value"),
    [
        ("RESULTS_TTL", "0"),
        ("FAILURE_TTL", "-5"),
        ("JOB_TIMEOUT", "nan"),
        ("JOB_TIMEOUT", "1.5"),
        ("REDIS_MAX_CONNECTIONS", "0"),
        ("REDIS_SOCKET_TIMEOUT", "nan"),
        ("REDIS_SOCKET_TIMEOUT", "inf"),
        ("REDIS_SOCKET_CONNECT_TIMEOUT", "0"),
        ("REDIS_HEALTH_CHECK_INTERVAL", "-1"),
        ("REDIS_HEALTH_CHECK_INTERVAL", "-inf"),
        ("RESULTS_TTL", "soon"),
    ],
)
def test_rq_numbers_must_be_finite_and_positive(suffix, value):
    name = "DOCLING_SERVE_ENG_RQ_" + suffix
    env = {"DOCLING_SERVE_ENG_RQ_REDIS_URL": "redis://127.0.0.1:1/", name: value}
    with pytest.raises(ConfigError) as info:
        vram_rq.rq_config_from_env(env)
    assert f"{name}={value!r}" in str(info.value) and "expected" in str(info.value)


def test_rq_numbers_that_are_allowed_are_taken():
    env = {
        "DOCLING_SERVE_ENG_RQ_REDIS_URL": "redis://127.0.0.1:1/",
        "DOCLING_SERVE_ENG_RQ_JOB_TIMEOUT": " 60 ",
        "DOCLING_SERVE_ENG_RQ_REDIS_SOCKET_TIMEOUT": "2.5",
        "DOCLING_SERVE_ENG_RQ_REDIS_HEALTH_CHECK_INTERVAL": "0",  # redis-py: no health checks
    }
    config = vram_rq.rq_config_from_env(env)
    assert config.job_timeout == 60 and config.redis_socket_timeout == 2.5
    assert config.redis_health_check_interval == 0
