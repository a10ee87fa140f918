"""Task sources (uploads, base64 files, URLs) read into named bytes, and their kind."""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

__all__ = ["LoadedSource", "SourceError", "detect_kind", "load_source"]

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF8",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}


class SourceError(ValueError):
    """A source that cannot be read or is not an image or a PDF."""


@dataclass(frozen=True)
class LoadedSource:
    """One input document: its file name and bytes."""

    name: str
    data: bytes


def detect_kind(name: str, data: bytes) -> str:
    """``pdf`` or ``image`` from the bytes (magic numbers), else a clear :class:`SourceError`."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    suffix = PurePosixPath(name).suffix.lower()
    what = "empty" if not data else f"not a PDF or an image (suffix {suffix or 'none'!r})"
    raise SourceError(
        f"{name}: {what}; vram-orchestrator's OCR pipeline converts PDFs and images "
        "(PNG, JPEG, BMP, TIFF, GIF, WebP)"
    )


def _read_limited(stream: Any, name: str, max_bytes: int) -> bytes:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SourceError(f"{name}: larger than the limit of {max_bytes} bytes")
    return bytes(data)


def load_source(
    source: Any, index: int, *, max_bytes: int, timeout_s: float = 60.0
) -> LoadedSource:
    """Reads a ``DocumentStream``, ``FileSource`` or ``HttpSource`` (at most ``max_bytes``)."""
    kind = type(source).__name__
    if hasattr(source, "stream") and hasattr(source, "name"):  # DocumentStream
        stream = source.stream
        if hasattr(stream, "seek"):
            stream.seek(0)
        return LoadedSource(str(source.name), _read_limited(stream, str(source.name), max_bytes))
    if hasattr(source, "base64_string") and hasattr(source, "filename"):  # FileSource
        data = base64.b64decode(source.base64_string)
        if len(data) > max_bytes:
            raise SourceError(f"{source.filename}: larger than the limit of {max_bytes} bytes")
        return LoadedSource(str(source.filename), data)
    if hasattr(source, "url"):  # HttpSource
        url = str(source.url)
        if urlparse(url).scheme not in ("http", "https"):
            raise SourceError(f"source {index}: only http(s) URLs are fetched, not {url!r}")
        headers = {str(k): str(v) for k, v in (getattr(source, "headers", None) or {}).items()}
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                data = _read_limited(response, url, max_bytes)
        except OSError as e:
            raise SourceError(f"could not fetch {url}: {e}") from e
        name = PurePosixPath(urlparse(url).path).name or f"document_{index}"
        return LoadedSource(name, data)
    raise SourceError(
        f"source {index} is a {kind}; VramWorkerOrchestrator reads file uploads, base64 "
        "files (FileSource) and http(s) URLs (HttpSource)"
    )
