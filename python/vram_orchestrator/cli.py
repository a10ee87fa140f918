"""``vram-orchestrator``: OCR or convert files from the command line, or print runtime
facts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Any

from . import model_sets
from .errors import SetupError, VramOrchestratorError
from .pool import OcrPool
from .readiness import cuda_report
from .results import AnalysisResult, OcrResult


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vram-orchestrator",
        description="OCR in worker processes that free GPU memory when idle.",
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    ocr = sub.add_parser("ocr", help="OCR image files and print their text")
    ocr.add_argument("files", nargs="+", metavar="FILE")
    ocr.add_argument("--json", action="store_true", help="one JSON result per line")
    ocr.add_argument("--profile", choices=["default", "reference"], default=None)
    ocr.add_argument("--models", choices=model_sets.names(), help="model set (VRAM_ORCH_MODEL_SET)")
    ocr.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    ocr.add_argument("--workers", type=int, default=None, help="worker processes at most")
    convert = sub.add_parser(
        "convert",
        help="convert PDFs and images to documents (layout, tables, reading order)",
    )
    convert.add_argument("files", nargs="+", metavar="FILE")
    convert.add_argument("--to", choices=_FORMATS, default="md", help="output format (default: md)")
    convert.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write FILE's stem + extension into DIR (default: print to stdout)",
    )
    convert.add_argument("--force-ocr", action="store_true", help="OCR even pages with text")
    convert.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    convert.add_argument("--workers", type=int, default=None, help="worker processes at most")
    sub.add_parser(
        "info",
        help="print runtime_info() and whether CUDA would start (and why not) as JSON; "
        "starts no worker",
    )
    rq = sub.add_parser(
        "rq-worker",
        help="take conversions from docling-serve's RQ engine (DOCLING_SERVE_ENG_RQ_* "
        "variables), one at a time, pages in parallel through the OCR pool",
    )
    rq.add_argument("--name", default=None, help="worker name in RQ (default: RQ's)")
    rq.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    return p


#: ``--to`` choices and their file extensions.
_FORMATS = {"md": ".md", "json": ".json", "html": ".html", "text": ".txt", "doctags": ".doctags"}


class _Progress:
    """A one-line counter on stderr, only when it is a terminal."""

    def __init__(self, total: int, what: str = "OCR") -> None:
        self.total, self.done, self.what = total, 0, what
        self.enabled = sys.stderr.isatty()
        self.detail = ""

    def step(self, detail: str = "") -> None:
        self.done += 1
        self.show(detail)

    def show(self, detail: str = "") -> None:
        if detail:
            self.detail = detail
        if self.enabled:
            end = "\n" if self.done == self.total else ""
            line = f"\r{self.what} {self.done}/{self.total} {self.detail}".rstrip()
            print(f"{line}\x1b[K", end=end, file=sys.stderr, flush=True)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.device:
        overrides["device"] = args.device
    if args.workers:
        overrides["max_workers"] = args.workers
    return overrides


def _ocr(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    if args.models:
        overrides["model_set"] = args.models
    if args.profile == "reference" and not args.models:
        overrides["model_set"] = model_sets.REFERENCE_SET
    failures = 0
    with OcrPool(**overrides) as pool:
        futures: dict[Future[OcrResult], str] = {
            pool.submit(path, profile=args.profile): path for path in args.files
        }
        results: dict[str, OcrResult | BaseException] = {}
        progress = _Progress(len(futures))
        for future in as_completed(futures):
            path = futures[future]
            try:
                results[path] = future.result()
            except VramOrchestratorError as e:
                results[path] = e
            progress.step()
    for path in args.files:  # input order, whatever the completion order
        outcome = results[path]
        if isinstance(outcome, BaseException):
            failures += 1
            if args.json:
                print(
                    json.dumps(
                        {"file": path, "error": type(outcome).__name__, "message": str(outcome)}
                    )
                )
            else:
                print(f"{path}: {type(outcome).__name__}: {outcome}", file=sys.stderr)
        elif args.json:
            print(json.dumps({"file": path, **outcome}))
        else:
            if len(args.files) > 1:
                print(f"==> {path} <==")
            for line in outcome["lines"]:
                print(line["text"])
    return 1 if failures else 0


def _export(document: Any, fmt: str) -> str:
    if fmt == "md":
        return str(document.export_to_markdown())
    if fmt == "json":
        return str(document.model_dump_json(indent=2))
    if fmt == "html":
        return str(document.export_to_html())
    if fmt == "text":
        return str(document.export_to_text())
    return str(document.export_to_doctags())


class _CountingPages:
    """The pool as the layout pipeline sees it, showing progress page by page."""

    def __init__(self, pool: OcrPool, progress: _Progress) -> None:
        self.pool, self.progress, self.pages = pool, progress, 0

    async def ocr_async(self, image: Any) -> OcrResult:
        return await self.pool.ocr_async(image)

    async def analyze_async(self, image: Any, *, text_cells: Any = None) -> AnalysisResult:
        result = await self.pool.analyze_async(image, text_cells=text_cells)
        self.pages += 1
        self.progress.show(f"({self.pages} page(s))")
        return result


def _convert(args: argparse.Namespace) -> int:
    from .docling._pages import ConversionSettings
    from .docling._sources import LoadedSource
    from .docling.pipelines import layout

    settings = ConversionSettings(force_ocr=args.force_ocr)
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    progress = _Progress(len(args.files), "convert")
    failures = 0
    with OcrPool(**_overrides(args)) as pool:
        workers = _CountingPages(pool, progress)
        for path in args.files:
            try:
                limit = pool.settings.max_input_bytes
                if Path(path).stat().st_size > limit:
                    raise ValueError(f"larger than the limit of {limit} bytes (max_input_bytes)")
                source = LoadedSource(Path(path).name, Path(path).read_bytes())
                converted = asyncio.run(layout.convert(source, workers, settings))
                if converted.document is None:
                    raise ValueError("; ".join(m for _, m in converted.errors) or "no document")
                for page_no, message in converted.errors:
                    print(f"{path}: page {page_no}: {message}", file=sys.stderr)
                text = _export(converted.document, args.to)
            except (VramOrchestratorError, OSError, ValueError) as e:
                failures += 1
                progress.step()
                print(f"{path}: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            progress.step()
            if out_dir is None:
                if len(args.files) > 1:
                    print(f"==> {path} <==")
                print(text)
            else:
                target = out_dir / (Path(path).stem + _FORMATS[args.to])
                target.write_text(text, encoding="utf-8")
                print(f"{path} -> {target}", file=sys.stderr)
    return 1 if failures else 0


def _info() -> int:
    """runtime_info() of a pool built from the environment (no standby, so no worker starts),
    plus ``cuda``: whether CUDA would start and why not. A pool that cannot be built is
    reported, not raised: that is when this is needed most."""
    try:
        with OcrPool(standby="off") as pool:
            info = pool.runtime_info()
    except VramOrchestratorError as e:
        info = {"error": f"{type(e).__name__}: {e}"}
    info["cuda"] = cuda_report()
    print(json.dumps(info, indent=2))
    print(f"CUDA: {info['cuda']['reason']}", file=sys.stderr)
    return 2 if "error" in info else 0


def _rq_worker(args: argparse.Namespace) -> int:
    try:
        from .docling.rq import VramRQWorker
    except ImportError as e:
        raise SetupError(
            f"the rq-worker needs the rq extra ({e}): pip install 'vram-orchestrator[rq]'"
        ) from None
    worker = VramRQWorker(name=args.name)
    logging.getLogger("vram_orchestrator").info(
        "rq-worker %s: queues %s at %s",
        worker.name,
        ", ".join(q.name for q in worker.queues),
        worker.rq_config.redis_url,
    )
    worker.work(burst=args.burst, with_scheduler=False)
    # Stopped by a signal during a job (that job failed): the shell's code for that signal.
    return 0 if worker.stopped_by is None else 128 + int(worker.stopped_by)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "ocr":
            return _ocr(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "rq-worker":
            return _rq_worker(args)
        return _info()
    except VramOrchestratorError as e:
        print(f"vram-orchestrator: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
