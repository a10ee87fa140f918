"""The pipelines' shared frame with stand-in workers: a page whose model call fails carries
the error while the other pages convert, unless abort_on_error; the converter's failure
type keeps its category across pickling."""

from __future__ import annotations

# isort: off
from test_docling_helpers import IGNORE_DOCLING_DEPRECATED  # first: quiet docling import

# isort: on

import asyncio
import io
import pickle
from typing import Any

import pypdfium2 as pdfium
import pytest

from vram_orchestrator.docling import ConversionFailure
from vram_orchestrator.docling._pages import ConversionSettings
from vram_orchestrator.docling._sources import LoadedSource
from vram_orchestrator.docling.pipelines import pipeline

pytestmark = pytest.mark.filterwarnings(IGNORE_DOCLING_DEPRECATED)

#: Pages of a PDF without text: 200 and 300 points wide, so a stand-in can tell them apart.
WIDTHS = (200, 300)


def _blank_pdf() -> bytes:
    pdf = pdfium.PdfDocument.new()
    for width in WIDTHS:
        pdf.new_page(width, 100)
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


class _FailsOnWidePages:
    """Workers that read one line on each page and fail on the 300-point page."""

    def __init__(self) -> None:
        self.calls = 0

    def _result(self, image: Any) -> dict[str, Any]:
        self.calls += 1
        height, width = image.shape[:2]
        if width == 2 * WIDTHS[1]:  # rendered at images_scale 2
            raise RuntimeError("the worker fell over")
        line = {"text": "a line", "score": 0.99, "box": [[0, 0], [40, 0], [40, 10], [0, 10]]}
        return {"lines": [line], "regions": [], "width": width, "height": height}

    async def ocr_async(self, image: Any) -> Any:
        return self._result(image)

    async def analyze_async(self, image: Any, *, text_cells: Any = None) -> Any:
        return self._result(image)


@pytest.mark.parametrize("name", ["ocr", "layout"])
def test_a_failed_page_carries_its_error_and_the_others_convert(name):
    workers = _FailsOnWidePages()
    source = LoadedSource("two.pdf", _blank_pdf())
    converted = asyncio.run(pipeline(name)(source, workers, ConversionSettings()))
    assert workers.calls == 2
    assert converted.status == "partial_success" and converted.document is not None
    [(page_no, message)] = converted.errors
    assert page_no == 2 and message.startswith("page 2: ") and "the worker fell over" in message
    assert "failed" in message
    assert len(converted.document.pages) == 2


@pytest.mark.parametrize("name", ["ocr", "layout"])
def test_abort_on_error_raises_the_pages_failure(name):
    source = LoadedSource("two.pdf", _blank_pdf())
    settings = ConversionSettings(abort_on_error=True)
    with pytest.raises(RuntimeError, match="the worker fell over"):
        asyncio.run(pipeline(name)(source, _FailsOnWidePages(), settings))


def test_conversion_failure_pickles_with_its_category():
    failure = ConversionFailure("scan.pdf: took too long", "timeout")
    again = pickle.loads(pickle.dumps(failure))
    assert type(again) is ConversionFailure
    assert str(again) == "scan.pdf: took too long" and again.category == "timeout"
    assert ConversionFailure.policy("no").category == "policy"
