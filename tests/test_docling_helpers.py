"""Shared helpers of the docling/serve tests: sample documents, a WebSocket stand-in,
and the Python process's mapped libraries."""

from __future__ import annotations

import difflib
import io
import warnings
from pathlib import Path

from PIL import Image

# docling's service models read their own deprecated fields while being defined; the test
# config turns warnings into errors, so they are imported here once, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import docling.datamodel.service  # noqa: F401

#: docling's options warn "deprecated" from pydantic when deprecated fields are read.
IGNORE_DOCLING_DEPRECATED = "ignore:^deprecated$:DeprecationWarning"

FORBIDDEN_IN_PARENT = ("libonnxruntime", "libcuda")


def mapped_forbidden() -> set[str]:
    """ONNX Runtime or CUDA driver libraries mapped into this process (must stay empty)."""
    found = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and Path(parts[5].strip()).name.startswith(FORBIDDEN_IN_PARENT):
            found.add(Path(parts[5].strip()).name)
    return found


def image_pdf(*pngs: Path) -> bytes:
    """A PDF without a text layer: each PNG one page at 72 dpi (page points = pixels)."""
    images = []
    for png in pngs:
        with Image.open(png) as image:
            images.append(image.convert("RGB"))
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", resolution=72.0, save_all=True, append_images=images[1:])
    return buffer.getvalue()


def text_pdf(lines: list[str], width: int = 612, height: int = 792) -> bytes:
    """A one-page PDF whose lines are real text (Helvetica 14 pt), written by hand."""
    ops = ["BT", "/F1 14 Tf"]
    y = height - 72
    for line in lines:
        safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"1 0 0 1 72 {y} Tm ({safe}) Tj")
        y -= 24
    ops.append("ET")
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
            "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
        ).encode(),
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def similarity(got: str, want: str) -> float:
    """How alike two texts are (0..1), ignoring case and whitespace."""

    def norm(text: str) -> str:
        return "".join(text.lower().split())

    return difflib.SequenceMatcher(None, norm(got), norm(want)).ratio()


class FakeWebSocket:
    """What docling-serve's WebsocketNotifier needs of a WebSocket: send_text and close."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.closed = False

    async def send_text(self, text: str) -> None:
        assert not self.closed, "sent after close"
        self.messages.append(text)

    async def close(self) -> None:
        self.closed = True


def test_hand_written_pdf_has_its_text_layer():
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(text_pdf(["Hello (PDF) text"]))
    try:
        page = pdf[0]
        textpage = page.get_textpage()
        assert textpage.get_text_range().strip() == "Hello (PDF) text"
        textpage.close()
        page.close()
    finally:
        pdf.close()


def test_image_pdf_pages_keep_the_pixel_size(ocrset):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(
        image_pdf(ocrset / "01_line_short.png", ocrset / "02_line_pangram.png")
    )
    try:
        sizes = [tuple(round(v) for v in pdf[i].get_size()) for i in range(len(pdf))]
    finally:
        pdf.close()
    want = []
    for name in ("01_line_short.png", "02_line_pangram.png"):
        with Image.open(ocrset / name) as image:
            want.append(image.size)
    assert sizes == want


def test_similarity_tells_texts_apart():
    assert similarity("Hello  World", "hello world") == 1.0
    assert similarity("Hello World", "Goodbye moon") < 0.5
