"""Two builds of the OCR engine side by side on the same pages: each an ``ocr_files --stdin``
process (crates/ocr/examples/ocr_files.rs, no IPC, no pool), fed one page at a time, the
order alternating per page and round, after two warm-up pages each. Prints per page the
median wall time of each and their ratio, then the median s/page and the ratio of medians.

    python bench/engine_side_by_side.py --pages bench/.data/pages --rounds 2 \\
        --a "old=/tmp/ocr_files_old:/tmp/v6asv4" \\
        --b "new=target/worker/release/examples/ocr_files:MODEL_DIR:ppocr-v6-small"

An engine is ``NAME=BINARY:MODEL_DIR[:MODEL_SET]`` (the set is passed as ``--models``; builds
from before model sets take none). ONNX Runtime is the package's (``resources.ort_dylib``)
unless ``VRAM_ORCH_ORT_DYLIB`` is set. Build an older engine with ``git worktree add DIR
COMMIT`` and ``cargo build --release --manifest-path DIR/crates/worker/Cargo.toml -p
vram-orch-ocr --example ocr_files`` (docs/profiles.md has the comparison this was made for).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Engine:
    name: str
    command: list[str]
    model_dir: str
    ms: dict[str, list[float]] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None

    def start(self, ort: str, threads: int) -> None:
        env = dict(
            os.environ,
            VRAM_ORCH_MODEL_DIR=self.model_dir,
            VRAM_ORCH_ORT_DYLIB=ort,
            ORT_DISABLE_TELEMETRY="1",
        )
        self.proc = subprocess.Popen(
            [*self.command, "--threads", str(threads), "--stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def read(self, page: Path) -> float:
        """Wall milliseconds for one page, from writing its name to its answer."""
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        started = time.monotonic()
        self.proc.stdin.write(f"{page}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        elapsed = (time.monotonic() - started) * 1e3
        if not answer:
            raise SystemExit(f"{self.name} ended on {page.name} (exit {self.proc.wait()})")
        if "error" in json.loads(answer):
            raise SystemExit(f"{self.name} failed on {page.name}: {answer.strip()}")
        return elapsed

    def stop(self) -> None:
        if self.proc is not None and self.proc.stdin:
            self.proc.stdin.close()
            self.proc.wait()


def engine(spec: str) -> Engine:
    name, _, rest = spec.partition("=")
    parts = rest.split(":")
    if not name or len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"{spec!r}: expected NAME=BINARY:MODEL_DIR[:SET]")
    binary, model_dir, *model_set = parts
    command = [binary, *(["--models", model_set[0]] if model_set else [])]
    return Engine(name, command, model_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", type=Path, required=True, help="folder of page images (*.png)")
    ap.add_argument("--a", type=engine, required=True, help="NAME=BINARY:MODEL_DIR[:SET]")
    ap.add_argument("--b", type=engine, required=True, help="the engine compared with --a")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ort = os.environ.get("VRAM_ORCH_ORT_DYLIB")
    if not ort:
        from vram_orchestrator import resources

        ort = str(resources.ort_dylib(None))
    pages = sorted(args.pages.glob("*.png"))
    if len(pages) < 2:
        raise SystemExit(f"no pages in {args.pages} (bench/pages.py builds them)")
    a, b = args.a, args.b
    print(
        f"# {a.name} {a.command} vs {b.name} {b.command}; {len(pages)} pages, "
        f"{args.rounds} rounds, {args.threads} threads, load {os.getloadavg()[0]:.2f}"
    )
    for e in (a, b):
        e.start(ort, args.threads)
        e.read(pages[0])
        e.read(pages[1])
    try:
        for r in range(args.rounds):
            for i, page in enumerate(pages):
                for e in (a, b) if (i + r) % 2 == 0 else (b, a):
                    e.ms.setdefault(page.name, []).append(e.read(page))
    finally:
        a.stop()
        b.stop()
    med = {e.name: {k: statistics.median(v) for k, v in e.ms.items()} for e in (a, b)}
    for page in med[a.name]:
        ta, tb = med[a.name][page], med[b.name][page]
        print(f"{page:20s} {a.name} {ta:7.0f} ms  {b.name} {tb:7.0f} ms  {ta / tb:.2f}x")
    ma, mb = (statistics.median(med[e.name].values()) / 1e3 for e in (a, b))
    ratios = [med[a.name][k] / med[b.name][k] for k in med[a.name]]
    print(
        f"median s/page: {a.name} {ma:.2f}, {b.name} {mb:.2f}; ratio of medians "
        f"{ma / mb:.2f}x; median per-page ratio {statistics.median(ratios):.2f}x; "
        f"load at the end {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
