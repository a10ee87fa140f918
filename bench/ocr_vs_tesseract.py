"""OCR side by side with what users would otherwise pick: this project's engine (Rust
workers, every model set), Tesseract 5 (the CLI, one process per image) and RapidOCR 3.10
(Python, PP-OCRv6 small models from its wheel), in one run, interleaved per image, with the
same thread count.

    python bench/ocr_vs_tesseract.py [--set ocrset,pages] [--threads 2] [--repeats 1]
                                     [--models ppocr-v6-small,ppocr-v6-tiny,ppocr-v4]
                                     [--pages-dir bench/.data/pages-heldout] [--limit N]
                                     [--install] [--json OUT]

Rows, all on CPU:

- ours MODELS: ``OcrPool(device="cpu", max_workers=1, threads=T, free_vram_on_idle=False,
  ocr_models=MODELS)`` for each name of --models; a name the installed package does not
  know is reported as "not available: <error>" (ppocr-v4 falls back to the package's
  default models, PP-OCRv4, when the package has no ``ocr_models`` setting yet).
- Tesseract 5: ``tesseract IMAGE stdout --oem 1 --psm 3 -l eng tsv``, one process per image
  (how it is called from other programs), with OMP_THREAD_LIMIT=1 and OMP_THREAD_LIMIT=T.
- RapidOCR 3.10: ``rapidocr.RapidOCR`` with its defaults (PP-OCRv6 small det and rec, angle
  classifier on) and ONNX Runtime intra-op threads = T, inter-op 1, in a child process
  (this script with --child) so that its peak RSS is its own.

All engines are started before the first image. Each engine first OCRs 2 images untimed
(warm-up); then, for every image, each engine OCRs it in turn, the order rotated by one
engine from one image to the next, so that no engine always runs first or after the same
other engine. Every call is timed from the caller's side (path in, text out: process start
and model loading for Tesseract, IPC for ours and RapidOCR).

Data sets: ``ocrset`` (tests/data/ocrset: CER, word recall and precision against its
ground_truth.json) and ``pages`` (a page set of bench/pages.py; default the held-out set in
bench/.data/pages-heldout, built when missing: word recall and precision). Metrics are
those of bench/ocr_vs_rapidocr.py (imported from it).

Needs tesseract-ocr and tesseract-ocr-eng (``--install`` runs apt-get as root, otherwise the
script exits with status 2 and the command to run), ``pip install rapidocr==3.10.0`` (the
RapidOCR row is skipped, with the command, when it is missing) and poppler-utils for
building a page set.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import ocr_vs_rapidocr as base  # noqa: E402  (bench/ is not a package)
import pages  # noqa: E402
from _common import JsonLinesChild, child_answers, child_requests  # noqa: E402
from ocr_vs_rapidocr import (  # noqa: E402
    WARMUP_IMAGES,
    CompilerWatch,
    EngineRun,
    Item,
    accuracy,
    fmt,
    load_ocrset,
    load_pages,
    machine_facts,
    timing,
    version,
    vm_hwm_mb,
)

HELDOUT_PAGES = HERE / ".data" / "pages-heldout"
DEFAULT_MODELS = "ppocr-v6-small,ppocr-v6-tiny,ppocr-v4"
RAPIDOCR_VERSION = "3.10.0"
RAPIDOCR_PIP = f"python3 -m pip install rapidocr=={RAPIDOCR_VERSION}"
TESSERACT_PACKAGES = ("tesseract-ocr", "tesseract-ocr-eng")
TESSERACT_ARGS = ("--oem", "1", "--psm", "3", "-l", "eng")
CHILD_TIMEOUT_S = 600.0


# ---------------------------------------------------------------- Tesseract output


def parse_tesseract_tsv(tsv: str) -> list[str]:
    """Text lines of Tesseract's TSV output, in its order.

    A line is the words (level 5 rows with non-blank text) sharing page, block, paragraph
    and line numbers, joined by one space; lines without any word are dropped.
    """
    lines: dict[tuple[str, str, str, str], list[str]] = {}
    rows = tsv.splitlines()
    if rows and rows[0].startswith("level"):
        rows = rows[1:]
    for row in rows:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = "\t".join(cols[11:]).strip()
        if not text:
            continue
        lines.setdefault((cols[1], cols[2], cols[3], cols[4]), []).append(text)
    return [" ".join(words) for words in lines.values()]


def parse_tesseract_text(text: str) -> list[str]:
    """Text lines of Tesseract's plain text output: non-blank lines, spacing collapsed."""
    lines = (" ".join(line.split()) for line in text.replace("\f", "\n").splitlines())
    return [line for line in lines if line]


def tesseract_command(path: str, output: str = "tsv") -> list[str]:
    """The command line for one image, output to stdout as TSV or plain text."""
    cmd = ["tesseract", path, "stdout", *TESSERACT_ARGS]
    return [*cmd, "tsv"] if output == "tsv" else cmd


# ---------------------------------------------------------------- run order and grouping


def engine_order(n_engines: int, image_index: int, rep: int = 0) -> list[int]:
    """Engine indices in the order they OCR image ``image_index`` in pass ``rep``: the list
    0..n-1 rotated left by (image_index + rep), so every engine leads equally often."""
    if n_engines <= 0:
        return []
    shift = (image_index + rep) % n_engines
    return [(shift + j) % n_engines for j in range(n_engines)]


def keyword_unknown(err: BaseException, keyword: str = "ocr_models") -> bool:
    """True when ``err`` says the pool does not know the keyword (an older package)."""
    msg = str(err)
    if keyword not in msg:
        return False
    return isinstance(err, TypeError) or "unknown setting" in msg


def image_groups(items: Sequence[Item]) -> dict[str, list[Item]]:
    """Sub-sets of a page set for split scores: clean and scan-damaged copies, and each
    source manual (the prefix before "_p" in held-out names) when there are several."""
    groups: dict[str, list[Item]] = {}
    for it in items:
        kind = "damaged" if it.name.endswith("_scan.png") else "clean"
        groups.setdefault(kind, []).append(it)
    sources: dict[str, list[Item]] = {}
    for it in items:
        stem = it.name.rsplit("_p", 1)[0] if "_p" in it.name else ""
        sources.setdefault(stem, []).append(it)
    if len(sources) > 1 and all(sources):
        for stem, members in sorted(sources.items()):
            groups[stem] = members
    return groups


# ---------------------------------------------------------------- engines


@dataclass
class Engine:
    """One row: started once per data set, called per image, closed at the end."""

    name: str
    threads: int
    unavailable: str | None = None  # why the row has no numbers
    info: dict[str, Any] = field(default_factory=dict)

    def start(self) -> None:
        """Load what the engine needs; set ``unavailable`` instead of raising."""

    def ocr(self, path: str) -> list[str]:
        raise NotImplementedError

    def peak_rss_mb(self) -> float | None:
        return None

    def close(self) -> None:
        """Free the engine (after peak_rss_mb was read)."""


class OursEngine(Engine):
    def __init__(self, models: str, threads: int) -> None:
        super().__init__(f"ours {models}", threads)
        self.models = models
        self.pool: Any = None
        self.pids: set[int] = set()
        self.last_pid: int | None = None
        self.stages: dict[str, list[float]] = {}

    def start(self) -> None:
        try:
            import vram_orchestrator as vo
        except Exception as e:
            self.unavailable = f"not available: import vram_orchestrator failed: {e}"
            return
        settings: dict[str, Any] = {
            "device": "cpu",
            "max_workers": 1,
            "threads": self.threads,
            "free_vram_on_idle": False,
            "ocr_models": self.models,
        }
        try:
            self.pool = vo.OcrPool(**settings)
        except (vo.VramOrchestratorError, TypeError, ValueError) as e:
            if self.models == "ppocr-v4" and keyword_unknown(e):
                del settings["ocr_models"]
                self.info["note"] = (
                    "the installed package has no ocr_models setting: its default models "
                    "(PP-OCRv4) were used"
                )
                try:
                    self.pool = vo.OcrPool(**settings)
                except (vo.VramOrchestratorError, TypeError, ValueError) as e2:
                    self.unavailable = f"not available: {type(e2).__name__}: {e2}"
                    return
            else:
                self.unavailable = f"not available: {type(e).__name__}: {e}"
                return
        self.info["settings"] = settings
        self.info["vram_orchestrator"] = version("vram-orchestrator")

    def ocr(self, path: str) -> list[str]:
        r = self.pool.ocr(path)
        self.last_pid = int(r["worker"]["pid"])
        self.pids.add(self.last_pid)
        for key, ms in r.get("timings_ms", {}).items():
            if isinstance(ms, (int, float)):
                self.stages.setdefault(key, []).append(float(ms))
        return [line["text"] for line in r["lines"]]

    def peak_rss_mb(self) -> float | None:
        return None if self.last_pid is None else vm_hwm_mb(self.last_pid)

    def close(self) -> None:
        self.info["worker_pids"] = sorted(self.pids)
        self.info["median_timings_ms"] = {
            k: statistics.median(v) for k, v in self.stages.items() if v
        }
        if self.pool is not None:
            self.pool.close()
            self.pool = None


class TesseractEngine(Engine):
    def __init__(self, threads: int, output: str = "tsv") -> None:
        super().__init__(f"Tesseract {threads} thread{'s' if threads > 1 else ''}", threads)
        self.output = output
        self.max_rss_kib = 0

    def start(self) -> None:
        if shutil.which("tesseract") is None:
            self.unavailable = "not available: tesseract not found"
            return
        self.info["command"] = shlex.join(tesseract_command("IMAGE", self.output))
        self.info["env"] = {"OMP_THREAD_LIMIT": str(self.threads)}

    def ocr(self, path: str) -> list[str]:
        env = {**os.environ, "OMP_THREAD_LIMIT": str(self.threads)}
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                tesseract_command(path, self.output),
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.stdout.close()
            _, status, usage = os.wait4(proc.pid, 0)  # its own peak RSS, not all children's
            proc.returncode = os.waitstatus_to_exitcode(status)
            self.max_rss_kib = max(self.max_rss_kib, usage.ru_maxrss)
            if proc.returncode != 0:
                err.seek(0)
                tail = err.read().decode(errors="replace")[-300:].strip()
                raise RuntimeError(f"tesseract exited with {proc.returncode}: {tail}")
        text = out.decode("utf-8", errors="replace")
        return parse_tesseract_tsv(text) if self.output == "tsv" else parse_tesseract_text(text)

    def peak_rss_mb(self) -> float | None:
        return self.max_rss_kib / 1024 if self.max_rss_kib else None


class RapidOcrEngine(Engine):
    """RapidOCR 3.x in a child process; one JSON line per request and per answer."""

    def __init__(self, threads: int) -> None:
        installed = version("rapidocr")
        label = RAPIDOCR_VERSION if installed == "not installed" else installed
        super().__init__(f"RapidOCR {label}", threads)
        self.proc: JsonLinesChild | None = None

    def start(self) -> None:
        installed = version("rapidocr")
        if installed == "not installed":
            self.unavailable = f"not available: rapidocr is not installed ({RAPIDOCR_PIP})"
            return
        if installed != RAPIDOCR_VERSION:
            print(
                f"# WARNING: rapidocr {installed} is installed; this benchmark compares "
                f"{RAPIDOCR_VERSION} ({RAPIDOCR_PIP})",
                flush=True,
            )
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "rapidocr",
            "--threads",
            str(self.threads),
        ]
        self.proc = JsonLinesChild(cmd, "RapidOCR", CHILD_TIMEOUT_S)
        try:
            ready = self.proc.answer()
        except RuntimeError as e:
            self.unavailable = f"not available: {e}"
            self.close()
            return
        if "error" in ready:
            self.unavailable = f"not available: {ready['error']}"
            self.close()
            return
        self.info.update(ready)

    def ocr(self, path: str) -> list[str]:
        assert self.proc is not None
        answer = self.proc.ask({"path": path})
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return [str(t) for t in answer["lines"]]

    def peak_rss_mb(self) -> float | None:
        return None if self.proc is None else vm_hwm_mb(self.proc.pid)

    def close(self) -> None:
        if self.proc is None:
            return
        self.proc.close()
        self.proc = None


def child_rapidocr(threads: int) -> int:
    """Child process body: answer {"path": ...} lines with {"lines": [...]} lines.

    The answers go to the original stdout; anything else written to stdout (library logs)
    is sent to stderr so it cannot corrupt them.
    """
    send = child_answers()
    t0 = time.perf_counter()
    try:
        import onnxruntime
        from rapidocr import RapidOCR

        engine = RapidOCR(
            params={
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                "Global.log_level": "warning",
            }
        )
    except Exception as e:
        send({"error": f"{type(e).__name__}: {e}"})
        return 1
    import rapidocr

    models = sorted(
        f"{p.name} ({p.stat().st_size} bytes)"
        for p in (Path(rapidocr.__file__).parent / "models").glob("*.onnx")
    )
    send(
        {
            "init_s": time.perf_counter() - t0,
            "pid": os.getpid(),
            "rapidocr": version("rapidocr"),
            "onnxruntime": onnxruntime.__version__,
            "intra_op_num_threads": threads,
            "models_in_wheel": models,
        }
    )
    for line in child_requests():
        try:
            out = engine(json.loads(line)["path"])
            send({"lines": [str(t) for t in (out.txts or ())]})
        except Exception as e:
            send({"error": f"{type(e).__name__}: {e}"[:500]})
    return 0


# ---------------------------------------------------------------- set-up


def need_tesseract(install: bool) -> None:
    """tesseract with English data, or exit 2 with the command (apt-get as root: --install)."""

    def have() -> bool:
        if shutil.which("tesseract") is None:
            return False
        langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True)
        return "eng" in (langs.stdout + langs.stderr).split()

    if pages.apt_install(list(TESSERACT_PACKAGES), have, install):
        return
    print(
        "missing tesseract with English data (Debian packages "
        f"{' and '.join(TESSERACT_PACKAGES)}). Install them with:\n"
        f"    sudo apt-get install -y {' '.join(TESSERACT_PACKAGES)}\n"
        "or run this script as root with --install.",
        file=sys.stderr,
    )
    sys.exit(2)


def tesseract_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {}
    try:
        out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
        text = out.stdout + out.stderr
        facts["tesseract"] = text.splitlines()[0] if text else None
        facts["tesseract_openmp"] = "OpenMP" in text
    except OSError:
        facts["tesseract"] = None
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version}\\n", *TESSERACT_PACKAGES],
            capture_output=True,
            text=True,
        )
        facts["tesseract_debs"] = out.stdout.strip().splitlines()
    except OSError:
        pass
    return facts


def ensure_pages(folder: Path) -> None:
    """Build the page set when its manifest is missing: the debian-reference set for its
    own folder, the held-out set for any other."""
    if (folder / "manifest.json").is_file():
        return
    source = "debian-reference" if folder.resolve() == base.PAGES.resolve() else "heldout"
    print(f"# building the page set in {folder} (bench/pages.py --source {source})", flush=True)
    cmd = [sys.executable, str(HERE / "pages.py"), "--source", source, "--out", str(folder)]
    rc = subprocess.run(cmd).returncode
    if rc != 0:
        raise SystemExit(f"bench/pages.py failed (exit {rc})")


def make_engines(models: Sequence[str], threads: int, tesseract_output: str) -> list[Engine]:
    engines: list[Engine] = [OursEngine(m, threads) for m in models]
    engines += [TesseractEngine(t, tesseract_output) for t in sorted({1, threads})]
    engines.append(RapidOcrEngine(threads))
    return engines


# ---------------------------------------------------------------- the interleaved loop


def run_interleaved(
    engines: Sequence[Engine], items: Sequence[Item], repeats: int
) -> tuple[list[EngineRun], list[list[str]]]:
    """Warm up every available engine on the first images, then per image every engine in
    rotated order. Returns one EngineRun per engine and the order used for each image."""
    live = [e for e in engines if e.unavailable is None]
    runs = {e.name: EngineRun(e.name) for e in engines}
    for i, it in enumerate(items[:WARMUP_IMAGES]):
        for j in engine_order(len(live), i):
            try:
                live[j].ocr(it.path)
            except Exception as e:
                print(f"#   {live[j].name}: warm-up on {it.name} failed: {e!r}", flush=True)
    orders: list[list[str]] = []
    for rep in range(repeats):
        t_pass = dict.fromkeys(runs, 0.0)
        for i, it in enumerate(items):
            order = [live[j] for j in engine_order(len(live), i, rep)]
            if rep == 0:
                orders.append([e.name for e in order])
            for engine in order:
                run = runs[engine.name]
                t0 = time.perf_counter()
                try:
                    lines = engine.ocr(it.path)
                except Exception as e:
                    run.failures[it.name] = f"{type(e).__name__}: {e}"[:500]
                    continue
                elapsed = time.perf_counter() - t0
                t_pass[engine.name] += elapsed
                run.latencies_ms.setdefault(it.name, []).append(elapsed * 1e3)
                if rep == 0:
                    run.texts[it.name] = lines
            print(f"#   {it.name} done ({i + 1}/{len(items)}, pass {rep + 1})", flush=True)
        for e in live:
            runs[e.name].pass_wall_s.append(t_pass[e.name])
    for e in live:
        runs[e.name].peak_rss_mb = e.peak_rss_mb()
    return [runs[e.name] for e in engines], orders


def summarise(engine: Engine, run: EngineRun, items: Sequence[Item]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "engine": engine.name,
        "threads": engine.threads,
        "unavailable": engine.unavailable,
        "info": engine.info,
    }
    if engine.unavailable is not None:
        return row
    row.update(
        timing=timing(run),
        accuracy=accuracy(run, items),
        peak_rss_mb=run.peak_rss_mb,
        failures=run.failures,
        latencies_ms=run.latencies_ms,
        texts=run.texts,
    )
    return row


# ---------------------------------------------------------------- report


def markdown_table(rows: Sequence[dict[str, Any]], with_cer: bool) -> str:
    """One Markdown table: a row per engine; an unavailable engine's reason fills a row."""
    head = ["engine", "threads", "images/s", "median s/image"]
    head += ["CER"] if with_cer else []
    head += ["word recall", "word precision", "peak RSS MB", "fails"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|---|" + "--:|" * (len(head) - 1),
    ]
    for r in rows:
        if r.get("unavailable"):
            reason = " ".join(str(r["unavailable"]).split())
            if len(reason) > 160:
                reason = reason[:157] + "..."
            reason = reason.replace("|", "\\|")
            cells = [r["engine"], str(r["threads"]), reason] + ["-"] * (len(head) - 3)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        t, a = r["timing"], r["accuracy"]
        p50 = None if t["p50_ms"] is None else t["p50_ms"] / 1e3
        cells = [
            r["engine"],
            str(r["threads"]),
            fmt(t["images_per_s"], ".3f"),
            fmt(p50, ".3f"),
        ]
        cells += [fmt(a["cer"], ".4f")] if with_cer else []
        cells += [
            fmt(a["word_recall"], ".3f"),
            fmt(a["word_precision"], ".3f"),
            fmt(r["peak_rss_mb"], ".0f"),
            str(len(r["failures"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_table(
    runs: dict[str, EngineRun], groups: dict[str, list[Item]], rows: Sequence[dict[str, Any]]
) -> str:
    """Word recall / precision of each engine on each group of images."""
    names = list(groups)
    head = "| engine | " + " | ".join(f"{g} ({len(groups[g])}) R / P" for g in names) + " |"
    lines = [head, "|---|" + "--:|" * len(names)]
    for r in rows:
        if r.get("unavailable"):
            continue
        cells = []
        for g in names:
            a = accuracy(runs[r["engine"]], groups[g])
            cells.append(f"{fmt(a['word_recall'], '.3f')} / {fmt(a['word_precision'], '.3f')}")
        lines.append(f"| {r['engine']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Typographic quotes (U+201C/D, U+2018/9) as their ASCII forms: PDF manuals set curly
#: quotes, and an engine that reads straight ones has read the same text in another glyph.
QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def fold_quotes(
    runs: dict[str, EngineRun], items: Sequence[Item]
) -> tuple[dict[str, EngineRun], list[Item]]:
    """The runs' texts and the items' words with typographic quotes folded (QUOTES)."""
    folded_items = [
        Item(it.name, it.path, [w.translate(QUOTES) for w in it.words], None) for it in items
    ]
    folded_runs = {
        name: EngineRun(
            run.engine,
            texts={k: [line.translate(QUOTES) for line in v] for k, v in run.texts.items()},
        )
        for name, run in runs.items()
    }
    return folded_runs, folded_items


def folded_table(
    runs: dict[str, EngineRun], items: Sequence[Item], rows: Sequence[dict[str, Any]]
) -> str:
    """Word recall / precision of each engine with quote shapes folded on both sides."""
    folded_runs, folded_items = fold_quotes(runs, items)
    lines = ["| engine | word recall | word precision |", "|---|--:|--:|"]
    for r in rows:
        if r.get("unavailable"):
            continue
        a = accuracy(folded_runs[r["engine"]], folded_items)
        lines.append(
            f"| {r['engine']} | {fmt(a['word_recall'], '.3f')} | "
            f"{fmt(a['word_precision'], '.3f')} |"
        )
    return "\n".join(lines)


def report(
    dataset: str,
    items: Sequence[Item],
    engines: Sequence[Engine],
    runs: Sequence[EngineRun],
    rows: Sequence[dict[str, Any]],
) -> None:
    with_cer = any(it.lines is not None for it in items)
    print(f"\n## {dataset}: {len(items)} images\n")
    print(markdown_table(rows, with_cer))
    for e in engines:
        if e.info.get("note"):
            print(f"\n- {e.name}: {e.info['note']}")
    by_name = dict(zip([e.name for e in engines], runs))
    if not with_cer:
        groups = image_groups(items)
        if len(groups) > 1:
            print("\nword recall / precision by image group:\n")
            print(group_table(by_name, groups, rows))
        print("\nword recall / precision with typographic quotes folded (\u201d \u2019 as \" '):\n")
        print(folded_table(by_name, items, rows))
    for r in rows:
        for name, err in (r.get("failures") or {}).items():
            print(f"FAILED {r['engine']} on {name}: {err}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", default="ocrset,pages", help="ocrset, pages or both (%(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="threads T of every engine (2)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each image (1)")
    ap.add_argument("--models", default=DEFAULT_MODELS, help="our model sets (%(default)s)")
    ap.add_argument(
        "--pages-dir",
        type=Path,
        default=HELDOUT_PAGES,
        help="page set of bench/pages.py (default: the held-out set, %(default)s)",
    )
    ap.add_argument("--limit", type=int, default=0, help="first N images of each set (smoke)")
    ap.add_argument(
        "--tesseract-output",
        choices=("tsv", "txt"),
        default="tsv",
        help="Tesseract output read: TSV (its line grouping) or plain text (%(default)s)",
    )
    ap.add_argument("--install", action="store_true", help="apt-get install Tesseract (root)")
    ap.add_argument("--json", type=Path, help="write every number (and the texts) here")
    ap.add_argument("--child", choices=["rapidocr"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_rapidocr(args.threads)
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    sets = [s.strip() for s in args.set.replace("both", "ocrset,pages").split(",") if s.strip()]
    if not sets or any(s not in ("ocrset", "pages") for s in sets):
        ap.error(f"--set: ocrset, pages or both, got {args.set!r}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    need_tesseract(args.install)
    command = base.command_line(argv)
    facts = {**machine_facts(), **tesseract_facts(), "rapidocr": version("rapidocr")}
    facts["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    notes = [
        f"# threads T={args.threads} for every engine (Tesseract also with 1), "
        f"repeats={args.repeats}, warm-up={WARMUP_IMAGES} images, engine order rotated per image"
    ]
    if not facts.get("tesseract_openmp", True):
        notes.append(
            "# WARNING: tesseract is built without OpenMP; OMP_THREAD_LIMIT changes nothing"
        )
    if version("rapidocr") == "not installed":
        notes.append(
            f"# RapidOCR {RAPIDOCR_VERSION} is not installed: its row is skipped ({RAPIDOCR_PIP})"
        )
    base.print_header(command, facts, *notes)

    out: dict[str, Any] = {"command": command, "machine": facts, "args": vars(args), "sets": {}}
    with CompilerWatch() as watch:
        for dataset in sets:
            if dataset == "ocrset":
                items = load_ocrset()
                label = "ocrset (tests/data/ocrset)"
            else:
                ensure_pages(args.pages_dir)
                items = load_pages(args.pages_dir)
                label = f"pages ({args.pages_dir})"
            if args.limit > 0:
                items = items[: args.limit]
            out["sets"][dataset] = run_set(label, items, models, args)
    out["compiler_samples"] = {"busy": watch.busy, "total": watch.samples}
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    base.print_compiler_samples(watch)
    print(
        f"# load average (1, 5, 15 min) at the start {facts['loadavg_start']}, "
        f"at the end {out['loadavg_end']}"
    )
    base.write_json(args.json, out)
    return 0


def run_set(
    label: str, items: Sequence[Item], models: Sequence[str], args: argparse.Namespace
) -> dict[str, Any]:
    engines = make_engines(models, args.threads, args.tesseract_output)
    try:
        for e in engines:
            print(f"# {label}: starting {e.name} ...", flush=True)
            e.start()
            if e.unavailable:
                print(f"#   {e.name}: {e.unavailable}", flush=True)
        runs, orders = run_interleaved(engines, items, args.repeats)
    finally:
        for e in engines:
            try:
                e.close()
            except Exception:
                traceback.print_exc()
    rows = [summarise(e, r, items) for e, r in zip(engines, runs)]
    report(label, items, engines, runs, rows)
    return {
        "label": label,
        "images": [it.name for it in items],
        "order": orders,
        "rows": rows,
    }


if __name__ == "__main__":
    sys.exit(main())
