"""Generate the structured document set (``tests/data/documents``): one-page PDFs with known
layout, their image-only and scanned forms, and the ground truth of every block.

    python3 bench/documents.py [--out tests/data/documents]   # (re)write the set
    python3 bench/documents.py --check                        # rebuild in a temp folder, compare

A development tool: it needs reportlab (``python3 -m pip install reportlab``), pypdfium2,
Pillow and numpy. The tests and the scorer (``bench/document_score.py``) use the checked-in
files only.

Per document NAME (all text deterministic: a seeded sentence grammar, no rare glyphs):

- ``NAME.pdf``: the page with its text layer, drawn with reportlab's canvas (standard fonts,
  not embedded), invariant mode (no dates or random IDs: same input, same bytes).
- ``NAME-notext.pdf``: the page rendered by pdfium at 150 dpi (gray, quantised to 16 levels),
  put back on a page of the same size as the only content: no text layer.
- ``NAME-scan.jpg``: the same render with scan damage: rotation <= 0.5 degrees (white fill,
  same size), Gaussian noise, blur, a little contrast loss, saved as grayscale JPEG at
  quality 35-45 (its artefacts are part of the damage; a PNG of it was 1.5-2x larger).
- ``NAME.json``: page size (points), pixels per point of the image forms, the blocks in reading
  order with boxes in points (top-left origin), table grids with spans, the split.

``manifest.json`` lists the documents, their splits and files. A third of the documents are
held out (``"split": "heldout"``): not to be used for choosing settings.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import random
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "tests" / "data" / "documents"
SEED = 20261123
DPI = 150
SCALE = DPI / 72  # pixels per point of the image forms
FORMAT_VERSION = 1
PAPER = {"A4": (595.2756, 841.8898), "Letter": (612.0, 792.0)}
HELDOUT = ("d04_sensor_datasheet", "d06_design_memo", "d08_survey_twocol")
NOTEXT_LEVELS = 16  # gray levels of the image-only PDF's render (smaller, looks the same)

# ---------------------------------------------------------------- text

SUBJECTS = [
    "the scheduler",
    "each worker process",
    "the cache layer",
    "the storage engine",
    "a background thread",
    "the request parser",
    "the index builder",
    "the measurement harness",
    "the compaction policy",
    "the replication protocol",
    "the load balancer",
    "the query planner",
    "the memory allocator",
    "the batch executor",
    "every client library",
    "the monitoring service",
]
VERBS = [
    "reduces",
    "increases",
    "controls",
    "limits",
    "records",
    "distributes",
    "allocates",
    "validates",
    "compresses",
    "estimates",
    "stabilises",
    "dominates",
    "determines",
    "bounds",
]
OBJECTS = [
    "the write latency",
    "memory fragmentation",
    "the number of pending requests",
    "throughput under sustained load",
    "the size of each batch",
    "the cost of a cold start",
    "the variance of response times",
    "the configuration overhead",
    "the amount of intermediate storage",
    "the synchronisation traffic",
    "the distribution of partition sizes",
    "the performance of small queries",
    "the frequency of checkpoints",
    "the representation of large records",
]
TAILS = [
    "for every partition",
    "during the initialisation phase",
    "when the buffer is full",
    "without additional configuration",
    "across all measured workloads",
    "in the steady state",
    "at the cost of higher memory consumption",
    "under concurrent modification",
    "by approximately one third",
    "considerably in most experiments",
    "independently of the hardware",
    "for representative production traces",
    "after the measurement window",
    "with negligible implementation effort",
]
ADVERBS = ["In practice,", "As expected,", "In our measurements,", "By design,", "Consequently,"]
CLAIMS = [
    "The results remain consistent when the workload changes gradually.",
    "This behaviour follows directly from the characteristics of the underlying device.",
    "A simple threshold is sufficient for the configurations considered here.",
    "The remaining differences are within the variation between repeated runs.",
    "No single parameter explains the observed performance differences.",
    "The implementation keeps all intermediate state in a fixed amount of memory.",
    "We therefore report medians over five independent repetitions.",
    "Larger deployments would require a more careful synchronisation strategy.",
]


class Text:
    """Seeded plausible technical English."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def sentence(self) -> str:
        r = self.rng
        form = r.randrange(5)
        s1, v1, o1, t1 = r.choice(SUBJECTS), r.choice(VERBS), r.choice(OBJECTS), r.choice(TAILS)
        if form == 0:
            return f"{s1.capitalize()} {v1} {o1} {t1}."
        if form == 1:
            return f"{r.choice(ADVERBS)} {s1} {v1} {o1} {t1}."
        if form == 2:
            s2, v2, o2 = r.choice(SUBJECTS), r.choice(VERBS), r.choice(OBJECTS)
            return f"{s1.capitalize()} {v1} {o1}, while {s2} {v2} {o2}."
        if form == 3:
            return r.choice(CLAIMS)
        return f"We observed that {s1} {v1} {o1} {t1}."

    def paragraph(self, words: int) -> str:
        out: list[str] = []
        n = 0
        while n < words:
            s = self.sentence()
            if out and s == out[-1]:
                continue
            out.append(s)
            n += len(s.split())
        return " ".join(out)


# ---------------------------------------------------------------- layout model


@dataclass(frozen=True)
class Style:
    font: str
    size: float
    leading: float = 0.0

    @property
    def lead(self) -> float:
        return self.leading or self.size * 1.25


@dataclass(frozen=True)
class Span:
    """A table cell starting in this row, spanning rows and columns."""

    text: str
    rows: int = 1
    cols: int = 1


Entry = Union[str, Span]


@dataclass
class Heading:
    text: str
    style: Style
    before: float = 10.0
    after: float = 4.0
    kind: str = "section_header"
    align: str = "left"


@dataclass
class Para:
    text: str
    style: Style
    hyphenate: bool = False
    before: float = 0.0
    after: float = 6.0
    kind: str = "paragraph"


@dataclass
class Formula:
    text: str
    number: str
    style: Style
    before: float = 4.0
    after: float = 8.0


@dataclass
class TableSpec:
    caption: str
    rows: list[list[Entry]]
    header_rows: int
    style: Style
    caption_style: Style
    rules: str = "grid"  # "grid": every cell ruled; "horizontal": top, header and bottom rules
    fill: bool = False  # stretch to the column width
    before: float = 6.0
    after: float = 10.0


@dataclass
class FigureSpec:
    chart: str  # bars, lines, diagram
    height: float
    caption: str
    caption_style: Style
    width_share: float = 0.8
    seed: int = 0
    before: float = 6.0
    after: float = 10.0


Element = Union[Heading, Para, Formula, TableSpec, FigureSpec]


@dataclass
class DocSpec:
    name: str
    paper: str
    columns: int
    header: tuple[str, Style]
    footer: tuple[str, Style]
    top: list[Element]
    flow: list[Element]
    margins: tuple[float, float, float, float] = (64.0, 72.0, 64.0, 72.0)  # l, t, r, b
    gap: float = 20.0
    footer_align: str = "center"


class LayoutError(RuntimeError):
    pass


def width_of(text: str, style: Style) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return float(stringWidth(text, style.font, style.size))


def ascent_descent(style: Style) -> tuple[float, float]:
    from reportlab.pdfbase.pdfmetrics import getAscentDescent

    a, d = getAscentDescent(style.font, style.size)
    return float(a), float(d)


VOWELS = set("aeiouy")


NO_SPLIT = {"th", "ch", "sh", "ph", "ck", "gh", "wh", "qu"}


def break_points(word: str) -> list[int]:
    """Where a word may take a hyphen: V-CV (``re-cord``) or VC-CV (``lim-its``, not inside
    th, ch, ...), at least 3 letters on either side; longest prefix first."""
    w = word.lower()
    out = []
    for k in range(len(w) - 3, 2, -1):
        v_cv = w[k - 1] in VOWELS and w[k] not in VOWELS and w[k + 1] in VOWELS
        vc_cv = (
            w[k - 2] in VOWELS
            and w[k - 1] not in VOWELS
            and w[k] not in VOWELS
            and w[k + 1] in VOWELS
            and w[k - 1 : k + 1] not in NO_SPLIT
        )
        if v_cv or vc_cv:
            out.append(k)
    return out


def hyphen_split(word: str, room: float, style: Style) -> tuple[str, str] | None:
    """The longest allowed prefix (see break_points) of an all-letter word of 8 or more
    letters (trailing punctuation aside) that fits in ``room`` with a hyphen."""
    core = word.rstrip(".,;:")
    if len(core) < 8 or not core.isalpha():
        return None
    for k in break_points(core):
        head = word[:k] + "-"
        if width_of(head, style) <= room:
            return head, word[k:]
    return None


def wrap(text: str, style: Style, width: float, hyphenate: bool) -> tuple[list[str], int]:
    """Lines of at most ``width`` (greedy, breaking at spaces; with ``hyphenate`` also inside
    long words, never at a hyphen already in a word) and the number of hyphenated breaks."""
    words = text.split()
    lines: list[str] = []
    cur = ""
    hyphens = 0
    i = 0
    while i < len(words):
        w = words[i]
        trial = f"{cur} {w}" if cur else w
        if width_of(trial, style) <= width:
            cur = trial
            i += 1
            continue
        if not cur:
            raise LayoutError(f"word wider than the column: {w!r}")
        if hyphenate:
            room = width - width_of(cur + " ", style)
            split = hyphen_split(w, room, style)
            if split is not None:
                lines.append(f"{cur} {split[0]}")
                words[i] = split[1]
                hyphens += 1
                cur = ""
                continue
        lines.append(cur)
        cur = ""
    if cur:
        lines.append(cur)
    return lines, hyphens


def is_number(text: str) -> bool:
    t = text.replace(",", "").replace(".", "").replace("%", "").replace("-", "").strip()
    return t.isdigit()


class Page:
    """Draws onto a reportlab canvas and records the ground-truth blocks (top-left points)."""

    def __init__(self, canvas: Any, width: float, height: float) -> None:
        self.c = canvas
        self.w = width
        self.h = height
        self.blocks: list[dict[str, Any]] = []
        self.fonts: set[str] = set()  # every font drawn with

    def text(self, x: float, baseline: float, s: str, style: Style) -> None:
        self.fonts.add(style.font)
        self.c.setFont(style.font, style.size)
        self.c.drawString(x, self.h - baseline, s)

    def add(self, kind: str, text: str | None, box: Sequence[float], column: int | None) -> dict:
        block: dict[str, Any] = {
            "kind": kind,
            "text": None if text is None else " ".join(text.split()),
            "box": [round(float(v), 2) for v in box],
            "column": column,
        }
        self.blocks.append(block)
        return block

    # ---- elements; each returns its height; draw=False only measures

    def lines_block(
        self,
        lines: list[str],
        style: Style,
        x: float,
        top: float,
        width: float,
        align: str = "left",
    ) -> tuple[float, Sequence[float]]:
        """Draw lines from ``top`` (top of the first line's ascent); height and box."""
        asc, desc = ascent_descent(style)
        baseline = top + asc
        left, right = x + width, x
        for k, line in enumerate(lines):
            w = width_of(line, style)
            lx = x + (width - w) / 2 if align == "center" else x
            self.text(lx, baseline + k * style.lead, line, style)
            left, right = min(left, lx), max(right, lx + w)
        last = baseline + (len(lines) - 1) * style.lead
        bottom = last - desc
        return bottom - top, (left, top, right, bottom)


def bold(style: Style) -> Style:
    """The bold face of a standard font family (header cells)."""
    family = style.font.split("-")[0]
    return Style(f"{family}-Bold", style.size, style.leading)


def table_layout(
    spec: TableSpec, width: float
) -> tuple[Style, list[dict[str, Any]], int, int, list[float], float]:
    """Cells (with grid positions), rows, cols, column widths and row height for a table
    that fits in ``width`` (the font shrinks down to 6 pt if need be)."""
    cells: list[dict[str, Any]] = []
    taken: set[tuple[int, int]] = set()
    for r, row in enumerate(spec.rows):
        c = 0
        for entry in row:
            span = entry if isinstance(entry, Span) else Span(entry)
            while (r, c) in taken:
                c += 1
            for dr in range(span.rows):
                for dc in range(span.cols):
                    if (r + dr, c + dc) in taken:
                        raise LayoutError(f"overlapping cells at {(r + dr, c + dc)}")
                    taken.add((r + dr, c + dc))
            cells.append(
                {
                    "row": r,
                    "col": c,
                    "row_span": span.rows,
                    "col_span": span.cols,
                    "text": span.text,
                }
            )
            c += span.cols
    n_rows = len(spec.rows)
    n_cols = max(c for _, c in taken) + 1
    if len(taken) != n_rows * n_cols or max(r for r, _ in taken) + 1 != n_rows:
        raise LayoutError(f"table {spec.caption!r} does not fill its grid")
    style = spec.style
    while True:
        pad = style.size * 0.6
        widths = [0.0] * n_cols
        for cell in sorted(cells, key=lambda c: c["col_span"]):
            cstyle = bold(style) if cell["row"] < spec.header_rows else style
            need = width_of(cell["text"], cstyle) + 2 * pad
            cs = range(cell["col"], cell["col"] + cell["col_span"])
            have = sum(widths[k] for k in cs)
            if need > have:
                for k in cs:
                    widths[k] += (need - have) / cell["col_span"]
        total = sum(widths)
        if total <= width:
            break
        if style.size <= 6:
            raise LayoutError(f"table {spec.caption!r} too wide ({total:.0f} > {width:.0f})")
        style = Style(style.font, round(style.size - 0.5, 2))
    extra = (width - total) if spec.fill else min(width - total, total * 0.25)
    widths = [w + extra / n_cols for w in widths]
    return style, cells, n_rows, n_cols, widths, style.size * 1.75


def draw_table(
    page: Page, spec: TableSpec, x: float, top: float, width: float, column: Any
) -> float:
    style, cells, n_rows, n_cols, widths, rh = table_layout(spec, width)
    total_w = sum(widths)
    x0 = x + (width - total_w) / 2
    xs = [x0 + sum(widths[:k]) for k in range(n_cols + 1)]
    c = page.c
    asc, _ = ascent_descent(style)
    out_cells = []
    for cell in cells:
        r, k, rs, cs = cell["row"], cell["col"], cell["row_span"], cell["col_span"]
        cl, cr = xs[k], xs[k + cs]
        ct, cb = top + r * rh, top + (r + rs) * rh
        text = cell["text"]
        cstyle = bold(style) if r < spec.header_rows else style
        tw = width_of(text, cstyle)
        pad = style.size * 0.6
        if cs > 1:
            tx = (cl + cr - tw) / 2
        elif r >= spec.header_rows and is_number(text):
            tx = cr - pad - tw
        else:
            tx = cl + pad
        baseline = (ct + cb) / 2 + asc * 0.35
        page.text(tx, baseline, text, cstyle)
        if spec.rules == "grid":
            c.setLineWidth(0.5)
            c.rect(cl, page.h - cb, cr - cl, cb - ct, stroke=1, fill=0)
        elif cs > 1 and r + rs < spec.header_rows:
            c.setLineWidth(0.4)
            c.line(cl + 3, page.h - cb, cr - 3, page.h - cb)
        out_cells.append({**cell, "box": [round(v, 2) for v in (cl, ct, cr, cb)]})
    bottom = top + n_rows * rh
    if spec.rules == "horizontal":
        c.setLineWidth(1.0)
        c.line(xs[0], page.h - top, xs[-1], page.h - top)
        c.line(xs[0], page.h - bottom, xs[-1], page.h - bottom)
        c.setLineWidth(0.5)
        hb = top + spec.header_rows * rh
        c.line(xs[0], page.h - hb, xs[-1], page.h - hb)
    block = page.add("table", None, (xs[0], top, xs[-1], bottom), column)
    block["table"] = {
        "rows": n_rows,
        "cols": n_cols,
        "header_rows": spec.header_rows,
        "rules": spec.rules,
        "font": style.font,
        "font_size": style.size,
        "cells": out_cells,
    }
    return bottom - top


def draw_figure(
    page: Page, spec: FigureSpec, x: float, top: float, width: float
) -> Sequence[float]:
    """A drawing without text; returns its box."""
    rng = random.Random(spec.seed)
    c = page.c
    w = width * spec.width_share
    h = spec.height
    left = x + (width - w) / 2
    bottom = top + h

    def Y(t: float) -> float:
        return page.h - t

    c.saveState()
    if spec.chart in ("bars", "lines"):
        ax, ay = left + 8, bottom - 8  # axis origin
        c.setLineWidth(0.8)
        c.line(ax, Y(ay), left + w, Y(ay))
        c.line(ax, Y(ay), ax, Y(top))
        c.setLineWidth(0.3)
        c.setStrokeGray(0.75)
        for k in range(1, 5):
            gy = ay - k * (ay - top) / 5
            c.line(ax, Y(gy), left + w, Y(gy))
            c.line(ax - 3, Y(gy), ax, Y(gy))
        c.setStrokeGray(0)
        if spec.chart == "bars":
            n = rng.randint(5, 8)
            slot = (left + w - ax - 6) / n
            for k in range(n):
                bh = (ay - top - 6) * rng.uniform(0.25, 0.95)
                c.setFillGray(0.35 if k % 2 else 0.65)
                c.rect(ax + 6 + k * slot + slot * 0.15, Y(ay), slot * 0.7, bh, stroke=1, fill=1)
        else:
            for s in range(3):
                c.setDash([] if s == 0 else [3, 2] if s == 1 else [1, 2])
                c.setLineWidth(1.2)
                pts = []
                level = rng.uniform(0.2, 0.5)
                for k in range(12):
                    level = min(0.95, max(0.05, level + rng.uniform(-0.08, 0.12)))
                    px = ax + 4 + k * (left + w - ax - 8) / 11
                    pts.append((px, Y(ay - level * (ay - top))))
                path = c.beginPath()
                path.moveTo(*pts[0])
                for p in pts[1:]:
                    path.lineTo(*p)
                c.drawPath(path, stroke=1, fill=0)
            c.setDash([])
    else:  # diagram: boxes joined by arrows, a cylinder at the end
        n = 4
        bw, bh = w / (n * 1.6), h * 0.42
        cy = top + h / 2
        gapx = (w - n * bw) / (n - 1)
        c.setLineWidth(0.9)
        for k in range(n):
            bx = left + k * (bw + gapx)
            c.setFillGray(0.92 - 0.1 * (k % 2))
            if k == n - 1:
                c.ellipse(bx, Y(cy - bh / 2 + 8), bx + bw, Y(cy - bh / 2 - 8), stroke=1, fill=1)
                c.rect(bx, Y(cy + bh / 2), bw, bh, stroke=0, fill=1)
                c.line(bx, Y(cy - bh / 2), bx, Y(cy + bh / 2))
                c.line(bx + bw, Y(cy - bh / 2), bx + bw, Y(cy + bh / 2))
                c.ellipse(bx, Y(cy + bh / 2 + 8), bx + bw, Y(cy + bh / 2 - 8), stroke=1, fill=1)
            else:
                c.roundRect(bx, Y(cy + bh / 2), bw, bh, 5, stroke=1, fill=1)
            if k < n - 1:
                x1, x2 = bx + bw + 3, bx + bw + gapx - 3
                c.line(x1, Y(cy), x2 - 5, Y(cy))
                path = c.beginPath()
                path.moveTo(x2, Y(cy))
                path.lineTo(x2 - 6, Y(cy) + 3)
                path.lineTo(x2 - 6, Y(cy) - 3)
                path.close()
                c.setFillGray(0)
                c.drawPath(path, stroke=0, fill=1)
        c.setDash([2, 2])
        c.setLineWidth(0.5)
        c.roundRect(left + 2, Y(bottom - 2), w - 4, h - 4, 6, stroke=1, fill=0)
        c.setDash([])
    c.restoreState()
    return (left, top, left + w, bottom)


def element_height(el: Element, width: float) -> float:
    """Height of an element (without its space before/after)."""
    if isinstance(el, (Heading, Para)):
        lines, _ = wrap(el.text, el.style, width, getattr(el, "hyphenate", False))
        asc, desc = ascent_descent(el.style)
        return asc - desc + (len(lines) - 1) * el.style.lead
    if isinstance(el, Formula):
        asc, desc = ascent_descent(el.style)
        return asc - desc
    if isinstance(el, TableSpec):
        _, _, n_rows, _, _, rh = table_layout(el, width)
        cap = element_height(Para(el.caption, el.caption_style), width)
        return cap + 5 + n_rows * rh
    cap = element_height(Para(el.caption, el.caption_style), width)
    return el.height + 6 + cap


def draw_element(page: Page, el: Element, x: float, top: float, width: float, column: Any) -> None:
    if isinstance(el, (Heading, Para)):
        hyph = isinstance(el, Para) and el.hyphenate
        lines, hyphens = wrap(el.text, el.style, width, hyph)
        align = el.align if isinstance(el, Heading) else "left"
        _, box = page.lines_block(lines, el.style, x, top, width, align)
        block = page.add(el.kind, el.text, box, column)
        if hyphens:
            block["hyphens"] = hyphens
    elif isinstance(el, Formula):
        asc, desc = ascent_descent(el.style)
        fw = width_of(el.text, el.style)
        nw = width_of(el.number, el.style)
        fx = x + (width - fw) / 2
        page.text(fx, top + asc, el.text, el.style)
        page.text(x + width - nw, top + asc, el.number, el.style)
        page.add(
            "formula", f"{el.text} {el.number}", (fx, top, x + width, top - desc + asc), column
        )
    elif isinstance(el, TableSpec):
        lines, _ = wrap(el.caption, el.caption_style, width, False)
        h, box = page.lines_block(lines, el.caption_style, x, top, width)
        page.add("caption", el.caption, box, column)
        draw_table(page, el, x, top + h + 5, width, column)
    else:
        box = draw_figure(page, el, x, top, width)
        page.add("figure", None, box, column)
        lines, _ = wrap(el.caption, el.caption_style, width, False)
        align = "center" if len(lines) == 1 else "left"
        _, cbox = page.lines_block(lines, el.caption_style, x, top + el.height + 6, width, align)
        page.add("caption", el.caption, cbox, column)


def render_spec(spec: DocSpec, pdf_path: Path) -> dict[str, Any]:
    """Draw the document into pdf_path; returns the ground truth (without image facts)."""
    from reportlab.pdfgen.canvas import Canvas

    pw, ph = PAPER[spec.paper]
    canvas = Canvas(str(pdf_path), pagesize=(pw, ph), invariant=1, pageCompression=1)
    canvas.setTitle(spec.name)
    page = Page(canvas, pw, ph)
    ml, mt, mr, mb = spec.margins
    content_w = pw - ml - mr
    limit = ph - mb
    # page header
    text, style = spec.header
    asc, desc = ascent_descent(style)
    htop = mt - 30
    page.text(ml, htop + asc, text, style)
    page.add("page_header", text, (ml, htop, ml + width_of(text, style), htop + asc - desc), None)
    canvas.setLineWidth(0.4)
    canvas.line(ml, ph - (htop + asc - desc + 3), pw - mr, ph - (htop + asc - desc + 3))
    y = mt
    two = spec.columns == 2
    for el in spec.top:
        y += el.before if y > mt else 0
        draw_element(page, el, ml, y, content_w, None)
        y += element_height(el, content_w) + el.after
    col_w = (content_w - spec.gap) / 2 if two else content_w
    flow_top = y
    col = 0
    free: list[float] = []
    for k, el in enumerate(spec.flow):
        before = el.before if y > flow_top else 0.0
        h = element_height(el, col_w)
        keep = 0.0
        if isinstance(el, Heading) and k + 1 < len(spec.flow):
            nxt = spec.flow[k + 1]
            keep = nxt.before + element_height(nxt, col_w)  # elements never split
        if y + before + h + keep > limit:
            if col + 1 >= spec.columns:
                raise LayoutError(f"{spec.name}: element {k} ({type(el).__name__}) overflows")
            free.append(limit - y)
            col, y, before = col + 1, flow_top, 0.0
        y += before
        draw_element(page, el, ml + col * (col_w + spec.gap), y, col_w, col if two else None)
        y += h + el.after
    free.append(limit - y)
    # page footer
    text, style = spec.footer
    asc, desc = ascent_descent(style)
    ftop = ph - mb + 26
    fw = width_of(text, style)
    fx = (pw - fw) / 2 if spec.footer_align == "center" else pw - mr - fw
    page.text(fx, ftop + asc, text, style)
    page.add("page_footer", text, (fx, ftop, fx + fw, ftop + asc - desc), None)
    canvas.showPage()
    canvas.save()
    return {
        "name": spec.name,
        "page": {"size": spec.paper, "width": round(pw, 4), "height": round(ph, 4)},
        "two_column": two,
        "fonts": sorted(page.fonts),
        "free_space_pt": [round(f, 1) for f in free],
        "blocks": page.blocks,
    }


# ---------------------------------------------------------------- image forms


def render_gray(pdf_path: Path) -> Image.Image:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        bitmap = pdf[0].render(scale=SCALE, grayscale=True)
        img = bitmap.to_pil().convert("L")
    finally:
        pdf.close()
    return img


def write_notext(img: Image.Image, size: tuple[float, float], path: Path) -> None:
    """An image-only PDF: the render, quantised to NOTEXT_LEVELS gray levels, as the page's
    only content (8-bit gray, Flate)."""
    from reportlab import rl_config
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    rl_config.useA85 = 0  # binary Flate stream, not ASCII85 (a quarter smaller)
    step = 255 / (NOTEXT_LEVELS - 1)
    arr = np.round(np.round(np.asarray(img, np.float64) / step) * step).astype(np.uint8)
    img = Image.fromarray(arr)
    canvas = Canvas(str(path), pagesize=size, invariant=1, pageCompression=1)
    canvas.drawImage(ImageReader(img), 0, 0, width=size[0], height=size[1])
    canvas.showPage()
    canvas.save()


def scan(img: Image.Image, rng: random.Random) -> tuple[Image.Image, dict[str, Any]]:
    """Scan damage before the JPEG encoding (the caller saves it as JPEG at
    ``params["jpeg_quality"]``): rotation about the centre (white fill, same size), sensor
    noise, blur (which also softens the noise), contrast loss."""
    params = {
        "rotate_deg": round(rng.uniform(-0.5, 0.5), 3),
        "noise_sigma": round(rng.uniform(5.0, 8.0), 3),
        "noise_seed": rng.randrange(2**31),
        "blur_radius": round(rng.uniform(0.7, 0.9), 3),
        "contrast": round(rng.uniform(0.85, 0.95), 3),
        "jpeg_quality": rng.randint(35, 45),
    }
    out = img.rotate(
        params["rotate_deg"], resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255
    )
    noise = np.random.default_rng(params["noise_seed"]).normal(
        0.0, params["noise_sigma"], (out.height, out.width)
    )
    arr = np.clip(np.asarray(out, np.float64) + noise, 0, 255).round().astype(np.uint8)
    out = Image.fromarray(arr).filter(ImageFilter.GaussianBlur(params["blur_radius"]))
    out = ImageEnhance.Contrast(out).enhance(params["contrast"])
    return out, params


# ---------------------------------------------------------------- the documents


def caption(font: str, size: float) -> Style:
    return Style(font, size, size * 1.25)


def numbers(rng: random.Random, n: int, lo: float, hi: float, decimals: int) -> list[str]:
    return [f"{rng.uniform(lo, hi):.{decimals}f}" for _ in range(n)]


def table_rows(
    header: list[list[Entry]], labels: Iterable[str], cells: Callable[[], list[Entry]]
) -> list[list[Entry]]:
    """The header rows, then a row per label: the label and ``cells()``, called row by row
    (so the random values are drawn in reading order)."""
    return [*header, *([label, *cells()] for label in labels)]


def title(text: str, style: Style, after: float, align: str = "left") -> Heading:
    """The page title, above the columns."""
    return Heading(text, style, kind="title", align=align, after=after)


def byline(text: str, style: Style, after: float) -> Heading:
    """A centred line of plain text under the title (authors, a subtitle)."""
    return Heading(text, style, kind="paragraph", align="center", after=after)


def doc01(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Helvetica", 10, 13)
    head = Style("Helvetica-Bold", 12, 15)
    cap = caption("Helvetica-Oblique", 9)
    rows = table_rows(
        [["Workload", "Records", "Write MB/s", "Amplification", "p99 ms"]],
        ("sequential", "random", "mixed 70/30", "append only", "update heavy"),
        lambda: [
            f"{rng.randint(1, 90)},{rng.randint(100, 999)},000",
            *numbers(rng, 1, 20, 400, 1),
            *numbers(rng, 1, 1.1, 9.0, 2),
            *numbers(rng, 1, 2, 80, 1),
        ],
    )
    return DocSpec(
        name="d01_storage_report",
        paper="A4",
        columns=1,
        header=(
            "Storage Engine Evaluation - Technical Report TR-2031",
            Style("Helvetica-Oblique", 8),
        ),
        footer=("Page 3", Style("Helvetica", 9)),
        top=[
            title(
                "Write Amplification in Log-Structured Storage",
                Style("Helvetica-Bold", 18, 22),
                after=12,
            )
        ],
        flow=[
            Heading("1 Introduction", head, before=4),
            Para(t.paragraph(80), body),
            Para(t.paragraph(60), body, hyphenate=True),
            Heading("1.1 Scope", Style("Helvetica-Bold", 11, 14)),
            Para(t.paragraph(55), body, hyphenate=True),
            Heading("2 Method", head),
            Para(t.paragraph(50), body),
            TableSpec(
                "Table 1: Write throughput and amplification per workload.",
                rows,
                1,
                Style("Helvetica", 9),
                cap,
                "grid",
                fill=True,
            ),
            Heading("3 Results", head),
            Para(t.paragraph(70), body, hyphenate=True),
            Formula(
                "A = (bytes written to disk) / (bytes written by the client)",
                "(1)",
                Style("Times-Italic", 11),
            ),
            Para(t.paragraph(40), body),
        ],
    )


def doc02(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Times-Roman", 10, 12)
    head = Style("Times-Bold", 11, 13)
    cap = caption("Times-Italic", 9)
    rows = table_rows(
        [
            [Span("Model", rows=2), Span("Recall at k", cols=2), Span("Latency", rows=2)],
            ["k = 10", "k = 100"],
        ],
        ("BM25", "dense small", "dense base", "hybrid"),
        lambda: [*numbers(rng, 2, 0.3, 0.95, 3), f"{rng.randint(3, 60)} ms"],
    )
    return DocSpec(
        name="d02_retrieval_paper",
        paper="Letter",
        columns=2,
        margins=(54, 72, 54, 66),
        header=("Proceedings of the Workshop on Document Systems, 2026", Style("Times-Italic", 8)),
        footer=("2", Style("Times-Roman", 9)),
        top=[
            title(
                "Dense Retrieval for Technical Manuals",
                Style("Times-Bold", 17, 21),
                after=6,
                align="center",
            ),
            byline(
                "A. Author and B. Author, Example Institute", Style("Times-Roman", 10, 12), after=10
            ),
            Heading("Abstract", Style("Times-Bold", 10, 12), before=0, after=3),
            Para(t.paragraph(70), Style("Times-Italic", 9.5, 11.5), after=12),
        ],
        flow=[
            Heading("1 Introduction", head, before=0),
            Para(t.paragraph(90), body, hyphenate=True),
            Para(t.paragraph(80), body, hyphenate=True),
            Heading("2 Related Work", head),
            Para(t.paragraph(70), body, hyphenate=True),
            Heading("3 Method", head),
            Para(t.paragraph(60), body, hyphenate=True),
            Formula("s(q, d) = cos(E(q), E(d))", "(1)", Style("Times-Italic", 10)),
            Para(t.paragraph(50), body, hyphenate=True),
            TableSpec(
                "Table 2: Recall and median latency on the manual collection.",
                rows,
                2,
                Style("Times-Roman", 9),
                cap,
                "horizontal",
                fill=True,
            ),
            Heading("4 Discussion", head),
            Para(t.paragraph(70), body, hyphenate=True),
        ],
    )


def doc03(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Times-Roman", 11, 14)
    head = Style("Helvetica-Bold", 12, 15)
    cap = caption("Helvetica", 9)
    rows: list[list[Entry]] = [
        ["Section", "Key", "Default"],
        [Span("storage", rows=3), "cache.size", "256 MB"],
        ["cache.policy", "lru"],
        ["data.dir", "/var/lib/node"],
        [Span("network", rows=2), "listen.port", "7400"],
        ["timeout.ms", "2500"],
        [Span("logging", rows=2), "log.level", "info"],
        ["log.rotate", "daily"],
    ]
    return DocSpec(
        name="d03_cluster_manual",
        paper="A4",
        columns=1,
        header=("Cluster Node Manual, Release 4.2", Style("Helvetica", 8)),
        footer=("- 17 -", Style("Times-Roman", 10)),
        top=[title("Installing a Cluster Node", Style("Helvetica-Bold", 20, 24), after=14)],
        flow=[
            Heading("Requirements", head, before=0),
            Para(t.paragraph(60), body, hyphenate=True),
            Heading("Installation", head),
            Para(t.paragraph(70), body),
            FigureSpec(
                "diagram",
                90,
                "Figure 4: Data path from the client to the storage volume.",
                cap,
                0.85,
                seed=rng.randrange(1000),
            ),
            Heading("Configuration", head),
            Para(t.paragraph(45), body, hyphenate=True),
            TableSpec(
                "Table 5: Configuration keys and their defaults.",
                rows,
                1,
                Style("Courier", 9.5),
                cap,
                "grid",
            ),
            Para(t.paragraph(40), body),
        ],
    )


def doc04(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Helvetica", 9, 11.5)
    head = Style("Helvetica-Bold", 11, 14)
    cap = caption("Helvetica-Bold", 8.5)
    params = [
        ("Supply voltage", "VDD"),
        ("Supply current", "IDD"),
        ("Standby current", "ISB"),
        ("Input high level", "VIH"),
        ("Input low level", "VIL"),
        ("Output high level", "VOH"),
        ("Output low level", "VOL"),
        ("Clock frequency", "FCLK"),
        ("Startup time", "TSU"),
        ("Conversion time", "TCONV"),
        ("Temperature range", "TA"),
    ]
    units = ["V", "mA", "uA", "V", "V", "V", "V", "MHz", "ms", "ms", "C"]
    rows: list[list[Entry]] = [["Parameter", "Symbol", "Condition", "Min", "Typ", "Max", "Unit"]]
    for (name, sym), unit in zip(params, units):
        lo = rng.uniform(0.1, 3)
        rows.append(
            [
                name,
                sym,
                rng.choice(["TA = 25 C", "full range", "VDD = 3.3 V"]),
                f"{lo:.1f}",
                f"{lo * 1.4:.1f}",
                f"{lo * 2:.1f}",
                unit,
            ]
        )
    rows2: list[list[Entry]] = [["Register", "Address", "Reset value"]]
    for name in ("CTRL", "STATUS", "DATA", "CONFIG"):
        rows2.append([name, f"0x{rng.randrange(256):02X}", f"0x{rng.randrange(256):02X}"])
    return DocSpec(
        name="d04_sensor_datasheet",
        paper="Letter",
        columns=1,
        margins=(60, 70, 60, 64),
        header=("TS-410 Digital Temperature Sensor - Datasheet Rev. C", Style("Helvetica-Bold", 8)),
        footer=("TS-410 Datasheet    Page 5 of 24", Style("Helvetica", 8)),
        footer_align="right",
        top=[title("TS-410 Electrical Specification", Style("Helvetica-Bold", 16, 20), after=10)],
        flow=[
            Heading("6 Electrical Characteristics", head, before=0),
            Para(t.paragraph(40), body),
            TableSpec(
                "Table 6: Electrical characteristics.",
                rows,
                1,
                Style("Helvetica", 8.5),
                cap,
                "grid",
                fill=True,
            ),
            Heading("7 Timing", head),
            Para(t.paragraph(45), body, hyphenate=True),
            FigureSpec(
                "lines",
                90,
                "Figure 7: Conversion time over the supply voltage range.",
                caption("Helvetica", 8.5),
                0.7,
                seed=rng.randrange(1000),
            ),
            Heading("8 Register Map", head),
            Para(t.paragraph(30), body),
            TableSpec("Table 7: Registers.", rows2, 1, Style("Courier", 9), cap, "horizontal"),
        ],
    )


def doc05(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Times-Roman", 10, 12)
    head = Style("Times-Bold", 11, 13.5)
    cap = caption("Times-Roman", 9)
    rows = table_rows(
        [["Threads", "Queries/s", "p50 ms", "p99 ms"]],
        ("1", "2", "4", "8", "16"),
        lambda: [str(rng.randint(100, 9000)), *numbers(rng, 2, 1, 90, 1)],
    )
    rows2 = table_rows(
        [["Index", "Size MB", "Build s"]],
        ("btree", "hash", "lsm"),
        lambda: [str(rng.randint(20, 900)), *numbers(rng, 1, 1, 60, 1)],
    )
    return DocSpec(
        name="d05_benchmark_twocol",
        paper="A4",
        columns=2,
        margins=(56, 74, 56, 70),
        header=("Benchmark Notes, Volume 3", Style("Times-Italic", 8.5)),
        footer=("Page 11", Style("Times-Roman", 9)),
        footer_align="right",
        top=[
            title(
                "Scaling a Query Engine on One Machine",
                Style("Times-Bold", 18, 22),
                after=14,
                align="center",
            )
        ],
        flow=[
            Heading("1 Setup", head, before=0),
            Para(t.paragraph(75), body, hyphenate=True),
            Para(t.paragraph(60), body, hyphenate=True),
            TableSpec(
                "Table 1: Throughput and latency by thread count.",
                rows,
                1,
                Style("Times-Roman", 9),
                cap,
                "grid",
                fill=True,
            ),
            Heading("2 Results", head),
            Para(t.paragraph(70), body, hyphenate=True),
            Para(t.paragraph(55), body),
            Para(t.paragraph(70), body, hyphenate=True),
            FigureSpec(
                "bars",
                95,
                "Figure 2: Queries per second for each index type.",
                cap,
                0.9,
                seed=rng.randrange(1000),
            ),
            Para(t.paragraph(45), body, hyphenate=True),
            TableSpec(
                "Table 2: Index size and build time.",
                rows2,
                1,
                Style("Times-Roman", 9),
                cap,
                "horizontal",
            ),
            Heading("3 Conclusion", head),
            Para(t.paragraph(55), body, hyphenate=True),
        ],
    )


def doc06(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Courier", 10, 12.5)
    head = Style("Courier-Bold", 11, 14)
    cap = caption("Courier", 9)
    rows = table_rows(
        [["Option", "Cost", "Risk", "Effort"]],
        ("keep as is", "add cache", "shard", "rewrite"),
        lambda: [
            f"{rng.randint(1, 40)}k",
            rng.choice(["low", "medium", "high"]),
            f"{rng.randint(1, 12)} weeks",
        ],
    )
    return DocSpec(
        name="d06_design_memo",
        paper="Letter",
        columns=1,
        margins=(72, 76, 72, 72),
        header=("MEMO / Platform Team / Internal", Style("Courier", 8.5)),
        footer=("page 1", Style("Courier", 9)),
        top=[title("Design Memo: Request Queue Limits", Style("Courier-Bold", 15, 19), after=12)],
        flow=[
            Heading("Summary", head, before=0),
            Para(t.paragraph(45), body, hyphenate=True),
            Heading("Background", head),
            Para(t.paragraph(70), body, hyphenate=True),
            Para(t.paragraph(35), body),
            Heading("Options", head),
            TableSpec(
                "Table 1: Options compared.", rows, 1, Style("Courier", 9), cap, "horizontal"
            ),
            Heading("Proposal", head),
            Para(t.paragraph(60), body, hyphenate=True),
            Formula("limit = workers * (1 + burst factor)", "(1)", Style("Courier", 10)),
            Para(t.paragraph(30), body),
        ],
    )


def doc07(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Helvetica", 10.5, 13.5)
    head = Style("Helvetica-Bold", 11.5, 14)
    cap = caption("Helvetica", 9)
    rows = table_rows(
        [
            [
                Span("Filter", rows=2),
                Span("Latency (ms)", cols=2),
                Span("Error (dB)", cols=2),
                Span("Memory", rows=2),
            ],
            ["p50", "p99", "mean", "max"],
        ],
        ("moving average", "median", "Kalman", "FIR 32 taps", "IIR order 4"),
        lambda: [
            *numbers(rng, 2, 0.1, 9, 2),
            *numbers(rng, 2, -60, -5, 1),
            f"{rng.randint(1, 64)} KB",
        ],
    )
    return DocSpec(
        name="d07_signal_notes",
        paper="A4",
        columns=1,
        header=("Lecture Notes on Signal Processing - Chapter 4", Style("Helvetica", 8)),
        footer=("42", Style("Helvetica", 9)),
        top=[title("Filtering Noisy Sensor Data", Style("Helvetica-Bold", 17, 21), after=10)],
        flow=[
            Heading("4.1 Moving Averages", head, before=0),
            Para(t.paragraph(55), body, hyphenate=True),
            Formula(
                "y[n] = (x[n] + x[n-1] + ... + x[n-N+1]) / N", "(4.1)", Style("Times-Italic", 11)
            ),
            Para(t.paragraph(35), body),
            FigureSpec(
                "lines",
                100,
                "Figure 3: Raw and filtered signal of one sensor over ten seconds.",
                cap,
                0.75,
                seed=rng.randrange(1000),
            ),
            Heading("4.2 Comparison", head),
            Para(t.paragraph(45), body, hyphenate=True),
            TableSpec(
                "Table 3: Latency, error and memory of five filters.",
                rows,
                2,
                Style("Helvetica", 8.5),
                cap,
                "grid",
                fill=True,
            ),
            Formula(
                "e = 10 log10(mean((y - s)^2) / mean(s^2))", "(4.2)", Style("Times-Italic", 11)
            ),
            Para(t.paragraph(35), body),
        ],
    )


def doc08(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Helvetica", 9, 11.5)
    head = Style("Helvetica-Bold", 10, 12.5)
    cap = caption("Helvetica-Oblique", 8)
    rows = table_rows(
        [[Span("System", rows=2), Span("Scale", cols=2), Span("Open", rows=2)], ["nodes", "TB"]],
        ("Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"),
        lambda: [str(rng.randint(3, 900)), str(rng.randint(1, 500)), rng.choice(["yes", "no"])],
    )
    return DocSpec(
        name="d08_survey_twocol",
        paper="Letter",
        columns=2,
        margins=(50, 70, 50, 64),
        gap=18,
        header=("A Survey of Distributed Storage, Part II", Style("Helvetica", 8)),
        footer=("Survey of Distributed Storage    7", Style("Helvetica", 8)),
        footer_align="right",
        top=[
            title("Consistency Models in Practice", Style("Helvetica-Bold", 16, 20), after=12),
        ],
        flow=[
            Heading("5 Systems Surveyed", head, before=0),
            Para(t.paragraph(80), body, hyphenate=True),
            TableSpec(
                "Table 4: Surveyed systems by scale.",
                rows,
                2,
                Style("Helvetica", 8.5),
                cap,
                "horizontal",
                fill=True,
            ),
            Para(t.paragraph(85), body, hyphenate=True),
            Heading("5.1 Strong Consistency", head),
            Para(t.paragraph(90), body, hyphenate=True),
            Para(t.paragraph(60), body),
            Heading("5.2 Eventual Consistency", head),
            Para(t.paragraph(85), body, hyphenate=True),
            FigureSpec(
                "diagram",
                70,
                "Figure 5: Replication with an asynchronous follower.",
                cap,
                0.95,
                seed=rng.randrange(1000),
            ),
            Para(t.paragraph(80), body, hyphenate=True),
            Heading("Summary", head),
            Para(t.paragraph(75), body, hyphenate=True),
        ],
    )


def doc09(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Times-Roman", 10.5, 13)
    cap = caption("Times-Bold", 9)
    rows: list[list[Entry]] = [["Field", "Offset", "Size", "Type", "Required", "Description"]]
    fields = [
        ("magic", "4", "u32", "yes", "format marker"),
        ("version", "2", "u16", "yes", "protocol version"),
        ("flags", "2", "u16", "yes", "option bits"),
        ("length", "4", "u32", "yes", "payload length"),
        ("stream", "8", "u64", "no", "stream identifier"),
        ("checksum", "4", "u32", "no", "CRC of payload"),
        ("reserved", "8", "bytes", "no", "must be zero"),
        ("payload", "n", "bytes", "yes", "message body"),
    ]
    off = 0
    for name, size, typ, req, desc in fields:
        rows.append([name, str(off), size, typ, req, desc])
        off += int(size) if size.isdigit() else 0
    return DocSpec(
        name="d09_protocol_spec",
        paper="A4",
        columns=1,
        margins=(70, 76, 70, 72),
        header=("Wire Protocol Specification, Draft 7", Style("Times-Roman", 8.5)),
        footer=("Page 12", Style("Times-Roman", 9)),
        top=[title("2 Message Format", Style("Times-Bold", 16, 20), after=8)],
        flow=[
            Para(t.paragraph(45), body),
            Heading("2.3 Frame Header", Style("Times-Bold", 12, 15)),
            Para(t.paragraph(50), body, hyphenate=True),
            TableSpec(
                "Table 8: Frame header fields.", rows, 1, Style("Times-Roman", 9.5), cap, "grid"
            ),
            Heading("2.3.1 Checksum", Style("Times-Bold", 11, 14)),
            Para(t.paragraph(45), body, hyphenate=True),
            Formula("crc = CRC32C(payload[0 .. length - 1])", "(3)", Style("Courier", 10)),
            Heading("2.3.2 Reserved Fields", Style("Times-Bold", 11, 14)),
            Para(t.paragraph(55), body, hyphenate=True),
            Heading("2.4 Payload", Style("Times-Bold", 12, 15)),
            Para(t.paragraph(45), body),
        ],
    )


def doc10(t: Text, rng: random.Random) -> DocSpec:
    body = Style("Times-Roman", 9.5, 11.5)
    head = Style("Helvetica-Bold", 10, 12.5)
    cap = caption("Times-Italic", 8.5)
    rows = table_rows(
        [["Sample", "Mass g", "Time s"]],
        (f"S-{k:02d}" for k in range(1, 10)),
        lambda: [*numbers(rng, 1, 0.5, 25, 2), *numbers(rng, 1, 10, 300, 0)],
    )
    return DocSpec(
        name="d10_lab_report_twocol",
        paper="Letter",
        columns=2,
        margins=(54, 72, 54, 66),
        header=("Materials Laboratory Report 2026-14", Style("Times-Roman", 8)),
        footer=("4", Style("Times-Roman", 9)),
        top=[
            title(
                "Drying Rates of Porous Samples",
                Style("Helvetica-Bold", 16, 20),
                after=4,
                align="center",
            ),
            byline("Laboratory report, group B", Style("Times-Italic", 10, 12), after=12),
        ],
        flow=[
            Heading("Aim", head, before=0),
            Para(t.paragraph(70), body, hyphenate=True),
            Heading("Procedure", head),
            Para(t.paragraph(95), body, hyphenate=True),
            Para(t.paragraph(80), body, hyphenate=True),
            Formula("r = (m0 - m1) / (A * t)", "(1)", Style("Times-Italic", 10)),
            Para(t.paragraph(60), body),
            Heading("Measurements", head),
            TableSpec(
                "Table 1: Mass loss and drying time per sample.",
                rows,
                1,
                Style("Courier", 8.5),
                cap,
                "grid",
                fill=False,
            ),
            Para(t.paragraph(85), body, hyphenate=True),
            Heading("Discussion", head),
            Para(t.paragraph(70), body, hyphenate=True),
        ],
    )


DOCUMENTS: list[Callable[[Text, random.Random], DocSpec]] = [
    doc01,
    doc02,
    doc03,
    doc04,
    doc05,
    doc06,
    doc07,
    doc08,
    doc09,
    doc10,
]


# ---------------------------------------------------------------- build


def build(out: Path, seed: int = SEED) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    docs = []
    for k, make in enumerate(DOCUMENTS):
        rng = random.Random(f"{seed}/{k}")
        spec = make(Text(random.Random(f"{seed}/{k}/text")), rng)
        split = "heldout" if spec.name in HELDOUT else "dev"
        pdf = out / f"{spec.name}.pdf"
        truth = render_spec(spec, pdf)
        img = render_gray(pdf)
        write_notext(img, PAPER[spec.paper], out / f"{spec.name}-notext.pdf")
        scanned, damage = scan(img, random.Random(f"{seed}/{k}/scan"))
        scanned.save(out / f"{spec.name}-scan.jpg", quality=damage["jpeg_quality"], optimize=True)
        files = {
            "pdf": f"{spec.name}.pdf",
            "notext_pdf": f"{spec.name}-notext.pdf",
            "scan": f"{spec.name}-scan.jpg",
        }
        truth = {
            "name": spec.name,
            "split": split,
            "version": FORMAT_VERSION,
            **{k2: v for k2, v in truth.items() if k2 != "name"},
            "image": {
                "dpi": DPI,
                "scale": SCALE,
                "width": img.width,
                "height": img.height,
                "scan_damage": damage,
            },
            "files": files,
        }
        (out / f"{spec.name}.json").write_text(json.dumps(truth, indent=1) + "\n")
        blocks = truth["blocks"]
        tables = [b["table"] for b in blocks if b["kind"] == "table"]
        summary = {
            "name": spec.name,
            "split": split,
            "paper": spec.paper,
            "two_column": truth["two_column"],
            "truth": f"{spec.name}.json",
            "files": files,
            "headers": sum(b["kind"] in ("title", "section_header") for b in blocks),
            "paragraphs": sum(b["kind"] == "paragraph" for b in blocks),
            "tables": len(tables),
            "cells": sum(len(t["cells"]) for t in tables),
            "figures": sum(b["kind"] == "figure" for b in blocks),
        }
        docs.append(summary)
        print(
            f"{spec.name}: {split}, {summary['headers']} headers, {summary['paragraphs']} "
            f"paragraphs, {summary['tables']} tables ({summary['cells']} cells), "
            f"free space {truth['free_space_pt']} pt"
        )
    manifest = {
        "version": FORMAT_VERSION,
        "seed": seed,
        "dpi": DPI,
        "generator": "bench/documents.py",
        "splits": {"heldout": list(HELDOUT)},
        "documents": docs,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (%(default)s)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--check", action="store_true", help="rebuild in a temp folder and compare with --out"
    )
    args = ap.parse_args(argv)
    if not args.check:
        build(args.out, args.seed)
        total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
        print(f"{args.out}: {total / 1e6:.2f} MB")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), args.seed)
        names = sorted(p.name for p in Path(tmp).iterdir())
        same, diff, missing = filecmp.cmpfiles(args.out, tmp, names, shallow=False)
        for name in diff + missing:
            print(f"differs: {name}")
        print(f"{len(same)} identical, {len(diff)} different, {len(missing)} missing")
        return 0 if not diff and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
