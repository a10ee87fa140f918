"""OCR side by side: this project's engine (Rust workers) against RapidOCR 1.4.4 (Python),
on the same images with the same ONNX Runtime thread count, in one run.

    python bench/ocr_vs_rapidocr.py [--set ocrset,pages] [--threads 2] [--repeats 3]
                                    [--profiles default[,reference]] [--json OUT]

Rows: ours (one per profile, OcrPool on CPU with one worker), RapidOCR with its defaults
(angle classifier on) and RapidOCR called with use_cls=False. Each engine warms up on two
images (untimed), then runs every image --repeats times; latencies are per-image medians.
RapidOCR runs in a child process (this script with --child) so that its peak RSS (VmHWM)
is its own; ours is the worker process's VmHWM. Needs the package installed (make install),
``pip install '.[bench]'`` for RapidOCR, and poppler-utils for the pages set (bench/pages.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OCRSET = ROOT / "tests" / "data" / "ocrset"
PAGES = HERE / ".data" / "pages"
WARMUP_IMAGES = 2


@dataclass
class Item:
    """One image and its ground truth (lines when CER is meaningful, always words)."""

    name: str
    path: str
    words: list[str]
    lines: list[str] | None  # None: no CER (reading order of the ground truth is not defined)


@dataclass
class EngineRun:
    """Everything one engine produced on one dataset."""

    engine: str
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    pass_wall_s: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    outside_share: list[float] = field(default_factory=list)  # (worker - model) / worker
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- datasets


def load_ocrset() -> list[Item]:
    gt: dict[str, list[str]] = json.loads((OCRSET / "ground_truth.json").read_text())
    return [
        Item(name, str(OCRSET / name), [w for line in lines for w in line.split()], lines)
        for name, lines in sorted(gt.items())
    ]


def load_pages(folder: Path) -> list[Item]:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        print(f"# building the page set in {folder} (bench/pages.py)", flush=True)
        rc = subprocess.run([sys.executable, str(HERE / "pages.py"), "--out", str(folder)])
        if rc.returncode != 0:
            raise SystemExit(f"bench/pages.py failed (exit {rc.returncode})")
    images: dict[str, dict[str, Any]] = json.loads(manifest.read_text())["images"]
    return [
        Item(name, str(folder / name), entry["words"], None)
        for name, entry in sorted(images.items())
    ]


# ---------------------------------------------------------------- metrics


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute all cost 1), two-row dynamic programme."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def word_match(ocr: list[str], gt: list[str]) -> int:
    """Multiset intersection size: sum over words of min(count in OCR, count in GT)."""
    c_ocr, c_gt = Counter(ocr), Counter(gt)
    return sum(min(n, c_gt[w]) for w, n in c_ocr.items())


def accuracy(run: EngineRun, items: Sequence[Item]) -> dict[str, Any]:
    """Micro CER and per-image CER (when lines are known), word recall and precision."""
    dist = chars = 0
    per_image: dict[str, float | None] = {}
    matched = n_gt = n_ocr = 0
    for it in items:
        lines = run.texts.get(it.name, [])  # a failed image counts as no output
        if it.lines is not None:
            ref = "\n".join(it.lines)
            d = levenshtein("\n".join(lines), ref)
            dist += d
            chars += len(ref)
            per_image[it.name] = d / len(ref) if ref else None
        words = [w for line in lines for w in line.split()]
        matched += word_match(words, it.words)
        n_gt += len(it.words)
        n_ocr += len(words)
    has_cer = any(it.lines is not None for it in items)
    return {
        "cer": dist / chars if has_cer and chars else None,
        "cer_edits": dist if has_cer else None,
        "gt_chars": chars if has_cer else None,
        "per_image_cer": per_image,
        "word_recall": matched / n_gt if n_gt else None,
        "word_precision": matched / n_ocr if n_ocr else None,
        "words_matched": matched,
        "words_gt": n_gt,
        "words_ocr": n_ocr,
    }


def timing(run: EngineRun) -> dict[str, Any]:
    medians = {k: statistics.median(v) for k, v in run.latencies_ms.items() if v}
    total_s = sum(medians.values()) / 1e3
    return {
        "images_timed": len(medians),
        "images_per_s": len(medians) / total_s if total_s else None,
        "p50_ms": statistics.median(medians.values()) if medians else None,
        "max_ms": max(medians.values()) if medians else None,
        "pass_wall_s": run.pass_wall_s,
        "images_per_s_wall": (
            len(run.latencies_ms) / statistics.median(run.pass_wall_s) if run.pass_wall_s else None
        ),
        "per_image_median_ms": medians,
    }


def vm_hwm_mb(pid: int | str) -> float | None:
    """Peak resident set size of a process (VmHWM), MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- timing loop


def measure(
    engine: str,
    call: Callable[[str], list[str]],
    items: Sequence[Item],
    repeats: int,
    after: Callable[[str], None] | None = None,
) -> EngineRun:
    """Warm up on two images, then `repeats` passes over all images, each call timed.

    `call` returns the text lines; an exception is recorded as a failure of that image.
    `after` runs untimed after each successful call (ours: reads the result's timings).
    """
    run = EngineRun(engine)
    for it in items[:WARMUP_IMAGES]:
        try:
            call(it.path)
        except Exception as e:
            print(f"#   {engine}: warm-up on {it.name} failed: {e!r}", flush=True)
    for rep in range(repeats):
        t_pass = time.perf_counter()
        for it in items:
            t0 = time.perf_counter()
            try:
                lines = call(it.path)
            except Exception as e:
                run.failures[it.name] = f"{type(e).__name__}: {e}"[:500]
                continue
            run.latencies_ms.setdefault(it.name, []).append((time.perf_counter() - t0) * 1e3)
            if rep == 0:
                run.texts[it.name] = lines
            if after is not None:
                after(it.name)
        run.pass_wall_s.append(time.perf_counter() - t_pass)
    return run


def run_ours(items: Sequence[Item], profile: str, threads: int, repeats: int) -> EngineRun:
    import vram_orchestrator as vo

    last: dict[str, Any] = {}
    shares: list[float] = []
    stages: dict[str, list[float]] = {}
    pids: set[int] = set()

    def call(path: str) -> list[str]:
        r = pool.ocr(path)
        last.clear()
        last.update(r)
        return [line["text"] for line in r["lines"]]

    def after(_name: str) -> None:
        t = last.get("timings_ms", {})
        if t.get("worker"):
            shares.append((t["worker"] - t["model"]) / t["worker"])
        for key, ms in t.items():
            if isinstance(ms, (int, float)):
                stages.setdefault(key, []).append(float(ms))
        pids.add(int(last["worker"]["pid"]))

    settings: dict[str, Any] = {
        "device": "cpu",
        "max_workers": 1,
        "threads": threads,
        "free_vram_on_idle": False,
        "ocr_profile": profile,
        # RapidOCR 1.4.4's models: the comparison is of engines, not of model generations
        # (bench/ocr_vs_tesseract.py compares the model sets).
        "ocr_models": "ppocr-v4",
    }
    with vo.OcrPool(**settings) as pool:
        run = measure(f"ours ({profile})", call, items, repeats, after)
        if last:
            run.peak_rss_mb = vm_hwm_mb(last["worker"]["pid"])  # before the pool closes
    run.outside_share = shares
    run.info = {
        "settings": settings,
        "worker_pids": sorted(pids),
        "median_timings_ms": {k: statistics.median(v) for k, v in stages.items()},
    }
    if len(pids) > 1:
        print(f"#   note: {len(pids)} worker processes served this run (restarts)", flush=True)
    return run


def run_rapidocr_child(
    items: Sequence[Item], use_cls: bool, threads: int, repeats: int
) -> EngineRun:
    """RapidOCR in a fresh process: this script with --child rapidocr."""
    engine = "RapidOCR" if use_cls else "RapidOCR no-cls"
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        result = Path(tmp) / "result.json"
        spec.write_text(
            json.dumps(
                {
                    "items": [asdict(it) for it in items],
                    "use_cls": use_cls,
                    "threads": threads,
                    "repeats": repeats,
                    "engine": engine,
                    "out": str(result),
                }
            )
        )
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "rapidocr", str(spec)]
        proc = subprocess.run(cmd)
        if proc.returncode != 0 or not result.is_file():
            run = EngineRun(engine)
            run.failures = {it.name: f"child exited with {proc.returncode}" for it in items}
            return run
        data = json.loads(result.read_text())
    return EngineRun(**data)


def child_rapidocr(spec_path: str) -> int:
    """Child process body: run RapidOCR on the spec's items, write an EngineRun as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    items = [Item(**it) for it in spec["items"]]
    threads, use_cls = int(spec["threads"]), bool(spec["use_cls"])
    t0 = time.perf_counter()
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
    init_s = time.perf_counter() - t0

    def call(path: str) -> list[str]:
        result, _elapse = engine(path, use_cls=use_cls)
        return [str(r[1]) for r in (result or [])]

    run = measure(spec["engine"], call, items, int(spec["repeats"]))
    run.peak_rss_mb = vm_hwm_mb("self")
    import onnxruntime

    run.info = {
        "init_s": init_s,
        "pid": os.getpid(),
        "onnxruntime": onnxruntime.__version__,
        "providers": onnxruntime.get_available_providers(),
    }
    Path(spec["out"]).write_text(json.dumps(asdict(run)))
    return 0


class CompilerWatch:
    """Samples /proc every 2 s for a running rustc/cc1/ld: timings beside a compiler are off."""

    NAMES = frozenset({"rustc", "cc1", "cc1plus", "ld", "ld.lld", "mold"})

    def __init__(self) -> None:
        self.samples = 0
        self.busy = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @classmethod
    def running(cls) -> list[str]:
        found = []
        for comm in Path("/proc").glob("[0-9]*/comm"):
            try:
                name = comm.read_text().strip()
            except OSError:
                continue
            if name in cls.NAMES:
                found.append(name)
        return found

    def _loop(self) -> None:
        while not self._stop.wait(2.0):
            self.samples += 1
            self.busy += bool(self.running())

    def __enter__(self) -> CompilerWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- report


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "onnxruntime": version("onnxruntime"),
        "onnxruntime_gpu": version("onnxruntime-gpu"),
        "rapidocr_onnxruntime": version("rapidocr_onnxruntime"),
        "vram_orchestrator": version("vram-orchestrator"),
        "git": commit or None,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def command_line(argv: list[str] | None) -> str:
    """The command of this run: ``argv`` as main() got it, or this process's own."""
    return shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(argv)


def print_header(command: str, facts: dict[str, Any], *notes: str) -> None:
    """A report's first lines: the command, the machine's facts, the ``notes`` lines and a
    warning when a compiler is running."""
    print(f"# command: {command}")
    print("# machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    for note in notes:
        print(note)
    if CompilerWatch.running():
        print("# WARNING: a compiler is running; timings share the CPU with it", flush=True)


def print_compiler_samples(watch: CompilerWatch) -> None:
    print(
        f"\n# compiler (rustc/cc1/ld) seen running in {watch.busy} of {watch.samples} "
        "2-second samples during the run"
    )


def write_json(path: Path | None, out: dict[str, Any]) -> None:
    """``out`` as JSON into ``path`` (--json), when given."""
    if path:
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str) + "\n")
        print(f"# wrote {path}")


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(dataset: str, items: Sequence[Item], rows: list[dict[str, Any]]) -> None:
    has_cer = any(it.lines is not None for it in items)
    print(f"\n## {dataset}: {len(items)} images")
    head = f"{'engine':<18}{'images/s':>9}{'(wall)':>8}{'p50 ms':>9}"
    head += f"{'CER':>8}" if has_cer else ""
    head += f"{'recall':>8}{'precis.':>8}{'RSS MB':>8}{'fails':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        t, a = r["timing"], r["accuracy"]
        line = f"{r['engine']:<18}{fmt(t['images_per_s'], '.3f'):>9}"
        line += f"{fmt(t['images_per_s_wall'], '.3f'):>8}{fmt(t['p50_ms'], '.0f'):>9}"
        line += f"{fmt(a['cer'], '.4f'):>8}" if has_cer else ""
        line += f"{fmt(a['word_recall'], '.3f'):>8}{fmt(a['word_precision'], '.3f'):>8}"
        line += f"{fmt(r['peak_rss_mb'], '.0f'):>8}{len(r['failures']):>6}"
        print(line)
    by = {r["engine"]: r for r in rows}
    ref = by.get("RapidOCR")
    for r in rows:
        if not r["engine"].startswith("ours") or ref is None:
            continue
        ours_tp, ref_tp = r["timing"]["images_per_s"], ref["timing"]["images_per_s"]
        if ours_tp and ref_tp:
            print(f"throughput {r['engine']}/RapidOCR = {ours_tp / ref_tp:.2f}")
        if r["peak_rss_mb"] and ref["peak_rss_mb"]:
            print(f"peak RSS {r['engine']}/RapidOCR = {r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}")
        if r.get("outside_share_median") is not None:
            print(
                f"{r['engine']}: median share of worker time outside session.run = "
                f"{r['outside_share_median']:.3f}"
            )
    for r in rows:
        for name, err in r["failures"].items():
            print(f"FAILED {r['engine']} on {name}: {err}")
    if has_cer:
        print(f"\nper-image CER ({dataset}; '-' = no ground-truth characters, edits counted above)")
        names = [r["engine"] for r in rows]
        print(f"{'image':<26}" + "".join(f"{n[:16]:>17}" for n in names))
        for it in items:
            cells = "".join(
                f"{fmt(r['accuracy']['per_image_cer'].get(it.name), '.4f'):>17}" for r in rows
            )
            print(f"{it.name:<26}{cells}")


def summarise(run: EngineRun, items: Sequence[Item]) -> dict[str, Any]:
    return {
        "engine": run.engine,
        "timing": timing(run),
        "accuracy": accuracy(run, items),
        "peak_rss_mb": run.peak_rss_mb,
        "outside_share_median": (
            statistics.median(run.outside_share) if run.outside_share else None
        ),
        "failures": run.failures,
        "texts": run.texts,
        "info": run.info,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", default="ocrset,pages", help="ocrset, pages or both (%(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each image")
    ap.add_argument("--profiles", default="default", help="our profiles: default,reference")
    ap.add_argument("--pages-dir", type=Path, default=PAGES, help="page set (bench/pages.py)")
    ap.add_argument("--limit", type=int, default=0, help="first N images of each set (smoke test)")
    ap.add_argument("--skip-rapidocr", action="store_true", help="only our engine")
    ap.add_argument("--json", type=Path, help="write every number (and the texts) here")
    ap.add_argument("--child", choices=["rapidocr"], help=argparse.SUPPRESS)
    ap.add_argument("child_spec", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_rapidocr(args.child_spec)

    sets = [s.strip() for s in args.set.replace("both", "ocrset,pages").split(",") if s.strip()]
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if any(s not in ("ocrset", "pages") for s in sets) or not sets:
        ap.error(f"--set: ocrset, pages or both, got {args.set!r}")
    command = command_line(argv)
    facts = machine_facts()
    print_header(
        command,
        facts,
        f"# threads={args.threads} repeats={args.repeats} warm-up={WARMUP_IMAGES} images",
    )

    out: dict[str, Any] = {"command": command, "machine": facts, "args": vars(args), "sets": {}}
    with CompilerWatch() as watch:
        run_sets(args, sets, profiles, out)
    out["compiler_samples"] = {"busy": watch.busy, "total": watch.samples}
    print_compiler_samples(watch)
    write_json(args.json, out)
    return 0


def run_sets(
    args: argparse.Namespace, sets: list[str], profiles: list[str], out: dict[str, Any]
) -> None:
    for dataset in sets:
        items = load_ocrset() if dataset == "ocrset" else load_pages(args.pages_dir)
        if args.limit > 0:
            items = items[: args.limit]
        runs: list[EngineRun] = []
        for profile in profiles:
            print(f"# {dataset}: ours ({profile}) ...", flush=True)
            try:
                runs.append(run_ours(items, profile, args.threads, args.repeats))
            except Exception:
                traceback.print_exc()
                failed = EngineRun(f"ours ({profile})")
                failed.failures = {it.name: "pool failed to start" for it in items}
                runs.append(failed)
        if not args.skip_rapidocr:
            for use_cls in (True, False):
                print(f"# {dataset}: RapidOCR use_cls={use_cls} (child process) ...", flush=True)
                runs.append(run_rapidocr_child(items, use_cls, args.threads, args.repeats))
        rows = [summarise(run, items) for run in runs]
        report(dataset, items, rows)
        out["sets"][dataset] = {"images": [it.name for it in items], "rows": rows}


if __name__ == "__main__":
    sys.exit(main())
