"""The shapes of what a pool returns: plain dicts, typed here for readers and type checkers.

``OcrPool.ocr`` (and ``submit``, ``ocr_async``) return an :class:`OcrResult`;
``OcrPool.analyze`` (and ``analyze_async``) an :class:`AnalysisResult`, which adds the page's
layout regions. Boxes are in the input image's pixels.
"""

from __future__ import annotations

from typing import Optional, TypedDict

__all__ = [
    "AnalysisResult",
    "OcrResult",
    "Region",
    "Table",
    "TableCell",
    "TextLine",
    "Timings",
    "WorkerInfo",
]

#: A point (x, y) of a line's quadrilateral.
Point = list[float]


class TextLine(TypedDict):
    """One line of text: its reading, the mean character probability, and its box as four
    points (top-left, top-right, bottom-right, bottom-left)."""

    text: str
    score: float
    box: list[Point]


class _AnalysisTimings(TypedDict, total=False):
    layout: float
    table: float


class Timings(_AnalysisTimings):
    """Milliseconds: ``queue`` (waiting for a worker), the worker's stages, ``worker`` (its
    whole task) and ``total`` (submit to result); ``layout`` and ``table`` on analyses."""

    queue: float
    decode: float
    det: float
    cls: float
    rec: float
    model: float
    activate: float
    worker: float
    total: float


class WorkerInfo(TypedDict):
    """The worker that ran the task."""

    pid: int
    device: str
    tasks_served: int


class OcrResult(TypedDict):
    """What an OCR task returns."""

    lines: list[TextLine]
    width: int
    height: int
    #: Degrees the page was turned before reading (0 or 180).
    rotation: int
    timings_ms: Timings
    worker: WorkerInfo
    #: 1, or more when the task was retried after its worker crashed.
    attempts: int
    #: The worker's peak GPU memory during the task (GPU workers only).
    vram_peak_mb: Optional[float]  # noqa: UP045 (a runtime annotation before 3.10)


class TableCell(TypedDict):
    """One cell of a table grid; its text comes from the lines it holds most of."""

    row: int
    col: int
    row_span: int
    col_span: int
    box: list[float]
    text: str


class Table(TypedDict):
    """A table region's grid."""

    rows: int
    cols: int
    cells: list[TableCell]


class Region(TypedDict):
    """A layout region: its class, score, box (left, top, right, bottom), the lines inside
    it (every line is in exactly one region) and, for a table, its grid."""

    label: str
    score: float
    box: list[float]
    lines: list[TextLine]
    table: Optional[Table]  # noqa: UP045 (a runtime annotation before 3.10)


class AnalysisResult(OcrResult):
    """What a page analysis returns: the OCR result plus the page's layout regions."""

    regions: list[Region]
