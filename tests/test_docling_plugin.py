"""The docling OCR engine plugin against docling's real classes: entry point, factory,
options kind, and the OCR stage on a real pypdfium2 page through post_process_cells."""

from __future__ import annotations

# isort: off
from test_docling_helpers import IGNORE_DOCLING_DEPRECATED  # first: quiet docling import

# isort: on

import importlib.metadata
import importlib.util
import io

import pytest
from docling.backend.pypdfium2_backend import PyPdfiumDocumentBackend
from docling.datamodel.accelerator_options import AcceleratorOptions
from docling.datamodel.base_models import InputFormat, Page
from docling.datamodel.document import ConversionResult, InputDocument
from docling.datamodel.pipeline_options import OcrMode
from docling.models.factories import get_ocr_factory

from test_docling_helpers import image_pdf, mapped_forbidden, similarity
from vram_orchestrator.docling import plugin

pytestmark = pytest.mark.filterwarnings(IGNORE_DOCLING_DEPRECATED)


def test_entry_point_and_factory_register_the_engine():
    points = importlib.metadata.entry_points(group="docling")
    [ours] = [p for p in points if p.name == "vram_orchestrator"]
    assert ours.value == "vram_orchestrator.docling.plugin"
    assert ours.load().ocr_engines() == {"ocr_engines": [plugin.VramOcrModel]}
    factory = get_ocr_factory(allow_external_plugins=True)
    assert "vram_orchestrator" in factory.registered_kind
    options = factory.create_options(kind="vram_orchestrator")
    assert isinstance(options, plugin.VramOcrOptions)
    assert plugin.VramOcrOptions.kind == "vram_orchestrator"
    # docling's default refuses external plugins: ours is then simply absent.
    assert "vram_orchestrator" not in get_ocr_factory(allow_external_plugins=False).registered_kind


def _page(pdf: bytes) -> tuple[ConversionResult, Page]:
    document = InputDocument(
        path_or_stream=io.BytesIO(pdf),
        format=InputFormat.PDF,
        backend=PyPdfiumDocumentBackend,
        filename="scan.pdf",
    )
    conv_res = ConversionResult(input=document)
    page = Page(page_no=0)
    page._backend = document._backend.load_page(0)
    page.size = page._backend.get_size()
    return conv_res, page


def test_ocr_stage_fills_page_cells_through_post_process_cells(make_pool, ocrset, ground_truth):
    name = "13_page_paragraph.png"
    pool = make_pool(max_workers=2)
    plugin.set_pool(pool)
    try:
        conv_res, page = _page(image_pdf(ocrset / name))
        model = plugin.VramOcrModel(
            enabled=True,
            artifacts_path=None,
            options=plugin.VramOcrOptions(mode=OcrMode.FULL_PAGE, scale=2.0),
            accelerator_options=AcceleratorOptions(),
        )
        [out] = list(model(conv_res, [page]))
        cells = out.cells
        assert cells and all(c.from_ocr for c in cells)
        text = "\n".join(c.text for c in cells)
        assert similarity(text, "\n".join(ground_truth[name])) > 0.95, text
        for cell in cells:  # page units (points), top-left origin, inside the page
            box = cell.rect.to_bounding_box()
            assert 0 <= box.l < box.r <= page.size.width + 1
        assert out.parsed_page is not None and out.parsed_page.has_lines
        assert conv_res.confidence.pages[0].ocr_score > 0.5
        assert pool.runtime_info()["counters"]["succeeded"] == 1

        # disabled: pages pass through untouched
        conv_res, page = _page(image_pdf(ocrset / name))
        off = plugin.VramOcrModel(
            enabled=False,
            artifacts_path=None,
            options=plugin.VramOcrOptions(),
            accelerator_options=AcceleratorOptions(),
        )
        assert list(off(conv_res, [page])) == [page] and not page.cells
    finally:
        plugin.set_pool(None)
    assert not mapped_forbidden()


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="docling's full pipeline needs torch"
)
def test_full_docling_pipeline_sends_ocr_to_our_workers(make_pool, ocrset, ground_truth):
    from docling.datamodel.pipeline_options import PdfPipelineOptions
    from docling.document_converter import DocumentConverter, PdfFormatOption

    name = "14_block_multiline.png"
    pool = make_pool()
    plugin.set_pool(pool)
    try:
        options = PdfPipelineOptions(
            do_ocr=True,
            ocr_options=plugin.VramOcrOptions(mode=OcrMode.FULL_PAGE),
            allow_external_plugins=True,
        )
        converter = DocumentConverter(
            format_options={InputFormat.PDF: PdfFormatOption(pipeline_options=options)}
        )
        from docling.datamodel.base_models import DocumentStream

        stream = DocumentStream(name="scan.pdf", stream=io.BytesIO(image_pdf(ocrset / name)))
        result = converter.convert(stream)
        text = result.document.export_to_text()
        assert similarity(text, "\n".join(ground_truth[name])) > 0.9, text
        assert pool.runtime_info()["counters"]["succeeded"] >= 1
    finally:
        plugin.set_pool(None)
    assert not mapped_forbidden()
