"""``vram-orchestrator``: OCR files from the command line, or print runtime facts."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import Future, as_completed
from typing import Any

from . import model_sets
from .errors import VramOrchestratorError
from .pool import OcrPool


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
    ocr.add_argument(
        "--models", choices=model_sets.names(), help="model set (VRAM_ORCH_OCR_MODELS)"
    )
    ocr.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    ocr.add_argument("--workers", type=int, default=None, help="worker processes at most")
    sub.add_parser("info", help="print runtime_info() as JSON")
    return p


class _Progress:
    """A one-line counter on stderr, only when it is a terminal."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.enabled = sys.stderr.isatty()

    def step(self) -> None:
        self.done += 1
        if self.enabled:
            end = "\n" if self.done == self.total else ""
            print(f"\rOCR {self.done}/{self.total}", end=end, file=sys.stderr, flush=True)


def _ocr(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.device:
        overrides["device"] = args.device
    if args.workers:
        overrides["max_workers"] = args.workers
    if args.models:
        overrides["ocr_models"] = args.models
    if args.profile == "reference" and not args.models:
        overrides["ocr_models"] = model_sets.REFERENCE_SET
    failures = 0
    with OcrPool(**overrides) as pool:
        futures: dict[Future[dict[str, Any]], str] = {
            pool.submit(path, profile=args.profile): path for path in args.files
        }
        results: dict[str, dict[str, Any] | BaseException] = {}
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


def _info() -> int:
    with OcrPool() as pool:
        print(json.dumps(pool.runtime_info(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _ocr(args) if args.command == "ocr" else _info()
    except VramOrchestratorError as e:
        print(f"vram-orchestrator: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
