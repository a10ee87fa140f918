"""VramWorkerOrchestrator driven exactly as docling-serve 1.38 drives it: serve's enqueue
keywords, status polling, result fetch through serve's own prepare_response (single-use
removal), the clear endpoints' calls, and serve's WebsocketNotifier on fake sockets."""

from __future__ import annotations

# isort: off
from test_docling_helpers import IGNORE_DOCLING_DEPRECATED  # first: quiet docling import

# isort: on

import asyncio
import contextlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
from docling.datamodel.base_models import DocumentStream
from docling.datamodel.service.options import ConvertDocumentsOptions
from docling.datamodel.service.responses import ExportResult, ZipArchiveResult
from docling.datamodel.service.targets import InBodyTarget, ZipTarget
from docling.datamodel.service.tasks import TaskType
from docling_jobkit.datamodel.chunking import ChunkingExportOptions
from docling_jobkit.datamodel.task_meta import TaskStatus
from docling_jobkit.orchestrators.base_orchestrator import OrchestratorError, TaskNotFoundError
from docling_serve.response_preparation import prepare_response
from docling_serve.websocket_notifier import WebsocketNotifier
from fastapi import BackgroundTasks

from conftest import children, wait_for
from test_docling_helpers import FakeWebSocket, image_pdf, mapped_forbidden, similarity, text_pdf
from vram_orchestrator.docling import VramOrchestratorConfig, VramWorkerOrchestrator

pytestmark = pytest.mark.filterwarnings(IGNORE_DOCLING_DEPRECATED)

POOL = {"device": "cpu", "max_workers": 2, "free_vram_on_idle": True, "idle_timeout_s": 0}


@contextlib.asynccontextmanager
async def serving(**config: Any) -> AsyncIterator[VramWorkerOrchestrator]:
    """What serve's lifespan does: bind the WebsocketNotifier, start process_queue."""
    config.setdefault("pool_settings", POOL)
    # These tests check the text-lines flow; the layout pipeline has tests of its own.
    config.setdefault("pipeline", "ocr")
    config.setdefault("result_removal_delay", 0.3)
    orchestrator = VramWorkerOrchestrator(VramOrchestratorConfig(**config))
    orchestrator.bind_notifier(WebsocketNotifier(orchestrator))
    queue_task = asyncio.create_task(orchestrator.process_queue())
    try:
        yield orchestrator
        assert not queue_task.done(), "process_queue stopped"
    finally:
        queue_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await queue_task
    assert not mapped_forbidden()


async def serve_enqueue(
    orchestrator: VramWorkerOrchestrator,
    files: list[tuple[str, bytes]],
    options: ConvertDocumentsOptions | None = None,
    target: Any = None,
    tenant_id: str = "default",
) -> Any:
    """serve's _enqueue_file: keywords only, metadata with the tenant."""
    return await orchestrator.enqueue(
        task_type=TaskType.CONVERT,
        sources=[DocumentStream(name=name, stream=io.BytesIO(data)) for name, data in files],
        convert_options=options or ConvertDocumentsOptions(),
        chunking_options=None,
        chunking_export_options=ChunkingExportOptions(),
        targets=[target or InBodyTarget()],
        callbacks=[],
        metadata={"tenant_id": tenant_id},
        target_document_version=None,
    )


async def wait_complete(orchestrator: VramWorkerOrchestrator, task_id: str) -> Any:
    """serve's _wait_task_complete (bounded)."""
    for _ in range(2400):
        task = await orchestrator.task_status(task_id=task_id)
        if task.is_completed():
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not complete in 120 s")


async def fetch(orchestrator: VramWorkerOrchestrator, task_id: str) -> tuple[Any, Any]:
    """serve's /v1/result route: outcome, prepare_response, then the background tasks."""
    outcome = await orchestrator.task_outcome(task_id=task_id)
    assert outcome is not None, "no result for a finished task"
    background = BackgroundTasks()
    response = await prepare_response(
        task_id=task_id,
        task_result=outcome,
        orchestrator=orchestrator,
        background_tasks=background,
        target_document_version=None,
    )
    await background()
    return outcome, response


def md_options(*formats: str, **more: Any) -> ConvertDocumentsOptions:
    return ConvertDocumentsOptions(to_formats=list(formats or ("md",)), **more)


def test_serve_flow_image_result_matches_ground_truth_and_is_single_use(ocrset, ground_truth):
    name = "14_block_multiline.png"

    async def main() -> None:
        async with serving() as orch:
            socket = FakeWebSocket()
            task = await serve_enqueue(
                orch,
                [(name, (ocrset / name).read_bytes())],
                md_options("md", "json", "text", "html", "doctags"),
                tenant_id="tenant-a",
            )
            assert task.task_status == TaskStatus.PENDING
            assert task.metadata == {"tenant_id": "tenant-a"}
            orch.notifier.task_subscribers.setdefault(task.task_id, set()).add(socket)
            done = await wait_complete(orch, task.task_id)
            assert done.task_status == TaskStatus.SUCCESS, done.error_message
            assert done.metadata["tenant_id"] == "tenant-a"
            assert done.started_at is not None and done.finished_at is not None

            result, response = await fetch(orch, task.task_id)
            assert isinstance(result.result, ExportResult)
            assert (result.num_converted, result.num_succeeded, result.num_failed) == (1, 1, 0)
            doc = result.result.document
            assert doc.filename == name
            assert doc.text_content.split("\n\n") == ground_truth[name]
            assert doc.md_content.split("\n\n") == ground_truth[name]
            assert all(line in doc.html_content for line in ground_truth[name][1:])
            assert "<text>" in doc.doctags_content
            js = doc.json_content
            assert [t.text for t in js.texts] == ground_truth[name]
            assert js.pages[1].size.width == 577 and js.pages[1].size.height == 249
            boxes = [t.prov[0].bbox for t in js.texts]
            tops = [b.t for b in boxes]
            assert tops == sorted(tops, reverse=True), "reading order is top to bottom"
            assert all(0 <= b.l < b.r <= 577 and 0 <= b.b < b.t <= 249 for b in boxes)
            assert response.document.text_content == doc.text_content

            # The WebSocket-style subscriber saw started and success, then was closed.
            states = [json.loads(m)["task"]["task_status"] for m in socket.messages]
            assert states[-1] == "success" and "started" in states, states
            assert socket.closed
            # single-use: gone after result_removal_delay (0.3 s), the notifier forgets it.
            assert await orch.task_result(task.task_id) is not None
            await asyncio.sleep(0.6)
            with pytest.raises(TaskNotFoundError):
                await orch.task_status(task.task_id)
            assert await orch.task_result(task.task_id) is None
            assert task.task_id not in orch.notifier.task_subscribers

    asyncio.run(main())


def test_pdf_pages_use_ocr_or_their_text_layer(ocrset, ground_truth):
    scanned = image_pdf(ocrset / "13_page_paragraph.png", ocrset / "14_block_multiline.png")
    lines = ["Invoice 2024-0173 total 1234.56", "Second line of real PDF text"]

    async def main() -> None:
        async with serving() as orch:
            task = await serve_enqueue(orch, [("scan.pdf", scanned)], md_options("text", "json"))
            done = await wait_complete(orch, task.task_id)
            assert done.task_status == TaskStatus.SUCCESS, done.error_message
            result, _ = await fetch(orch, task.task_id)
            doc = result.result.document.json_content
            assert sorted(doc.pages) == [1, 2]
            assert (doc.pages[1].size.width, doc.pages[1].size.height) == (1000, 1400)
            for page_no, png in ((1, "13_page_paragraph.png"), (2, "14_block_multiline.png")):
                got = "\n".join(t.text for t in doc.texts if t.prov[0].page_no == page_no)
                assert similarity(got, "\n".join(ground_truth[png])) > 0.95, got

            # A page with a text layer: read from it, no OCR task reaches the pool.
            before = orch.pool_info()["counters"]["submitted"]
            task = await serve_enqueue(orch, [("text.pdf", text_pdf(lines))], md_options("text"))
            done = await wait_complete(orch, task.task_id)
            assert done.task_status == TaskStatus.SUCCESS, done.error_message
            result, _ = await fetch(orch, task.task_id)
            assert result.result.document.text_content.split("\n\n") == lines
            assert orch.pool_info()["counters"]["submitted"] == before

            # force_ocr: the same page goes through our workers.
            options = md_options("text", force_ocr=True, images_scale=2.0)
            task = await serve_enqueue(orch, [("text.pdf", text_pdf(lines))], options)
            done = await wait_complete(orch, task.task_id)
            assert done.task_status == TaskStatus.SUCCESS, done.error_message
            result, _ = await fetch(orch, task.task_id)
            assert similarity(result.result.document.text_content, "\n".join(lines)) > 0.9
            assert orch.pool_info()["counters"]["submitted"] == before + 1

    asyncio.run(main())


def test_several_documents_or_a_zip_target_give_a_zip(ocrset, ground_truth):
    names = ["01_line_short.png", "02_line_pangram.png"]
    files = [(n, (ocrset / n).read_bytes()) for n in names]

    async def main() -> None:
        async with serving() as orch:
            for target in (InBodyTarget(), ZipTarget()):
                task = await serve_enqueue(orch, files, md_options("md", "json"), target=target)
                done = await wait_complete(orch, task.task_id)
                assert done.task_status == TaskStatus.SUCCESS, done.error_message
                result, response = await fetch(orch, task.task_id)
                assert isinstance(result.result, ZipArchiveResult)
                assert response.media_type == "application/zip"
                archive = zipfile.ZipFile(io.BytesIO(result.result.content))
                assert sorted(archive.namelist()) == sorted(
                    f"{n[:-4]}{s}" for n in names for s in (".md", ".json")
                )
                for n in names:
                    assert archive.read(f"{n[:-4]}.md").decode().strip() == ground_truth[n][0]
                    doc = json.loads(archive.read(f"{n[:-4]}.json"))
                    assert doc["texts"][0]["text"] == ground_truth[n][0]

    asyncio.run(main())


def test_queue_positions_and_notifier_updates_while_waiting(ocrset):
    data = (ocrset / "02_line_pangram.png").read_bytes()

    async def main() -> None:
        async with serving(num_workers=1) as orch:
            tasks = [await serve_enqueue(orch, [(f"{i}.png", data)]) for i in range(3)]
            sockets = {t.task_id: FakeWebSocket() for t in tasks}
            for task_id, socket in sockets.items():
                orch.notifier.task_subscribers.setdefault(task_id, set()).add(socket)
            positions = [await orch.get_queue_position(t.task_id) for t in tasks]
            assert positions in ([1, 2, 3], [None, 1, 2]), positions
            assert await orch.queue_size() == sum(p is not None for p in positions)
            for task in tasks:
                assert (await wait_complete(orch, task.task_id)).task_status == TaskStatus.SUCCESS
            assert await orch.queue_size() == 0
            assert await orch.get_queue_position(tasks[2].task_id) is None
            last = [json.loads(m)["task"] for m in sockets[tasks[2].task_id].messages]
            pending = [m["task_position"] for m in last if m["task_status"] == "pending"]
            assert pending and pending == sorted(pending, reverse=True), last
            assert last[-1]["task_status"] == "success"

    asyncio.run(main())


def test_failures_are_clear_and_the_queue_keeps_serving(ocrset, ground_truth):
    good = ("01_line_short.png", (ocrset / "01_line_short.png").read_bytes())

    async def main() -> None:
        async with serving() as orch:
            cases = [
                ([("notes.txt", b"just some text")], None, "not a PDF or an image"),
                ([("broken.pdf", b"%PDF-1.4\nnot really")], None, "not a readable PDF"),
                ([good], md_options(do_picture_description=True), "do_picture_description"),
                ([good], md_options("latex"), "to_formats"),
                ([good], md_options(ocr_preset="easyocr"), "ocr_preset='easyocr'"),
                ([good], md_options(do_ocr=False), "do_ocr is false"),
            ]
            for files, options, expected in cases:
                socket = FakeWebSocket()
                task = await serve_enqueue(orch, files, options)
                orch.notifier.task_subscribers.setdefault(task.task_id, set()).add(socket)
                done = await wait_complete(orch, task.task_id)
                assert done.task_status == TaskStatus.FAILURE
                assert expected in (done.error_message or ""), done.error_message
                assert done.failure is not None and expected in done.failure.message
                assert await orch.task_result(task.task_id) is None
                assert json.loads(socket.messages[-1])["task"]["error_message"]
            # a failed document among good ones: partial outcome, the others converted.
            task = await serve_enqueue(orch, [good, ("x.bin", b"\x00\x01")], md_options("md"))
            done = await wait_complete(orch, task.task_id)
            assert done.task_status == TaskStatus.SUCCESS, done.error_message
            result, _ = await fetch(orch, task.task_id)
            assert (result.num_succeeded, result.num_failed) == (1, 1)
            # still serving
            task = await serve_enqueue(orch, [good], md_options("text"))
            assert (await wait_complete(orch, task.task_id)).task_status == TaskStatus.SUCCESS
            result, _ = await fetch(orch, task.task_id)
            assert result.result.document.text_content == ground_truth[good[0]][0]

    asyncio.run(main())


def test_clear_endpoints_delete_task_and_check_connection(ocrset):
    data = (ocrset / "01_line_short.png").read_bytes()
    warm = dict(POOL, free_vram_on_idle=False)

    async def main() -> None:
        async with serving(pool_settings=warm) as orch:
            await orch.check_connection()
            task = await serve_enqueue(orch, [("a.png", data)])
            assert (await wait_complete(orch, task.task_id)).task_status == TaskStatus.SUCCESS
            # FREE_VRAM_ON_IDLE off: the worker stays; /v1/clear/converters ends it now.
            assert children(), "a warm worker is expected"
            await orch.clear_converters()
            assert wait_for(lambda: not children(), 5.0), children()
            info = orch.pool_info()
            assert info is not None and info["workers"] == []
            assert info["exits_by_reason"].get("idle", 0) >= 1
            # the next task starts a fresh worker
            again = await serve_enqueue(orch, [("b.png", data)])
            assert (await wait_complete(orch, again.task_id)).task_status == TaskStatus.SUCCESS

            # /v1/clear/results?older_then=0 removes finished tasks (fetched or not).
            await orch.clear_results(older_than=0)
            for t in (task, again):
                with pytest.raises(TaskNotFoundError):
                    await orch.task_status(t.task_id)

            # delete_task on a task still queued: it is skipped, the queue goes on.
            await orch.clear_converters()
            blocker = await serve_enqueue(orch, [("c.png", data)])
            queued = [await serve_enqueue(orch, [(f"q{i}.png", data)]) for i in range(3)]
            await orch.delete_task(queued[-1].task_id)
            assert queued[-1].task_id not in orch.queue_list
            for t in (blocker, *queued[:-1]):
                assert (await wait_complete(orch, t.task_id)).task_status == TaskStatus.SUCCESS

            # check_connection reports a broken pool (closed under the orchestrator).
            orch.converter.pool().close()
            with pytest.raises(OrchestratorError, match="closed"):
                await orch.check_connection()
            await orch.clear_converters()
            await orch.check_connection()

        async with serving(pool_settings=dict(POOL, worker_bin="/nonexistent/worker")) as bad:
            with pytest.raises(OrchestratorError, match="cannot start"):
                await bad.check_connection()

    asyncio.run(main())
