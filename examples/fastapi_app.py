"""A small OCR service on vram-orchestrator: upload an image or a PDF, get text or JSON.

    pip install 'vram-orchestrator[cpu,serve]'      # or [gpu,serve] for CUDA
    FREE_VRAM_ON_IDLE=1 uvicorn --factory examples.fastapi_app:create_app --port 8000
    curl -F file=@page.png 'http://127.0.0.1:8000/ocr?format=text'
    curl http://127.0.0.1:8000/health

The web process never loads ONNX Runtime or CUDA: OCR runs in the pool's worker processes,
which exit when the service is idle (FREE_VRAM_ON_IDLE), so GPU memory goes back to zero.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request, UploadFile
from fastapi.responses import PlainTextResponse

import vram_orchestrator as vo

log = logging.getLogger("vram_orchestrator.examples.fastapi_app")

MAX_UPLOAD_BYTES = 32 << 20
PDF_SCALE = 2.0  # PDF pages are rendered at 144 dpi
MAX_PDF_PAGES = 50
#: When to come back after a 503 for want of GPU memory (another process holds it).
RETRY_AFTER_S = 10


def _pdf_pages(data: bytes) -> list[Any]:
    """Renders every page of a PDF to an RGB numpy array (pypdfium2, needs [docling])."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        raise HTTPException(422, f"the upload is not a readable PDF: {e}") from None
    try:
        if len(pdf) > MAX_PDF_PAGES:
            raise HTTPException(413, f"the PDF has {len(pdf)} pages; the limit is {MAX_PDF_PAGES}")
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            bitmap = page.render(scale=PDF_SCALE, rev_byteorder=True)
            pages.append(bitmap.to_numpy().copy())
            bitmap.close()
            page.close()
        return pages
    finally:
        pdf.close()


async def _ocr(pool: vo.OcrPool, image: Any) -> dict[str, Any]:
    try:
        return await pool.ocr_async(image)
    except vo.InvalidInput as e:
        raise HTTPException(422, f"the upload cannot be read as an image: {e}") from None
    except vo.QueueFull as e:
        raise HTTPException(503, f"busy, try again later: {e}") from None
    except vo.InsufficientVram as e:
        raise HTTPException(
            503, f"the GPU is full, try again later: {e}", {"Retry-After": str(RETRY_AFTER_S)}
        ) from None
    except vo.TaskTimeout as e:
        raise HTTPException(504, str(e)) from None
    except vo.WorkerCrashed as e:
        raise HTTPException(500, f"OCR failed on this upload: {e}") from None


def create_app(**pool_settings: Any) -> FastAPI:
    """The service; ``pool_settings`` are OcrPool keywords (the environment otherwise)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = vo.OcrPool(**pool_settings)
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.pool.close, cancel_pending=True, timeout_s=30)

    app = FastAPI(title="vram-orchestrator OCR", lifespan=lifespan)

    @app.post("/ocr", response_model=None)
    async def ocr(
        request: Request,
        file: UploadFile,
        format: str = Query("json", pattern="^(json|text)$"),
    ) -> Any:
        """OCR of an uploaded image (PNG, JPEG, ...) or PDF (every page)."""
        pool: vo.OcrPool = request.app.state.pool
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if not data:
            raise HTTPException(400, "the upload is empty: send an image or a PDF as 'file'")
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the upload is larger than {MAX_UPLOAD_BYTES} bytes")
        if data[:1024].find(b"%PDF-") >= 0:
            images = await asyncio.to_thread(_pdf_pages, data)
        else:
            images = [data]
        results = await asyncio.gather(*(_ocr(pool, image) for image in images))
        pages = [
            {
                "page": n,
                "width": r["width"],
                "height": r["height"],
                "lines": [{k: line[k] for k in ("text", "score", "box")} for line in r["lines"]],
            }
            for n, r in enumerate(results, start=1)
        ]
        text = "\n\n".join("\n".join(line["text"] for line in p["lines"]) for p in pages)
        if format == "text":
            return PlainTextResponse(text)
        return {"filename": file.filename, "text": text, "pages": pages}

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """Liveness plus the pool's runtime_info (workers, queue, device, limits)."""
        pool: vo.OcrPool = request.app.state.pool
        info = await asyncio.to_thread(pool.runtime_info)
        return {"status": "closed" if info["closed"] else "ok", "runtime_info": info}

    return app


if __name__ == "__main__":
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(), host="127.0.0.1", port=8000)
