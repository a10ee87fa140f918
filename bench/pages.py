"""Build a deterministic set of real document pages with ground truth for the OCR benchmark.

    python bench/pages.py [--out bench/.data/pages] [--deb FILE.deb] [--install] [--force]
    python bench/pages.py --source heldout [--out bench/.data/pages-heldout] [--deb FILE.deb]...

Two sets (``--source``):

``debian-reference`` (default): the PDF manual of the Debian package ``debian-reference-en``
(``/usr/share/debian-reference/debian-reference.en.pdf``), 12 pages. It is the set that
settings are tuned and compared on.

``heldout``: pages of three other English PDF manuals shipped in Debian main, 5 pages each:
``r-doc-pdf`` (R-intro.pdf: a Texinfo manual, code and tables), ``c++-annotations-pdf``
(cplusplus.pdf: a LaTeX book, prose and code) and ``python-reportlab-doc``
(reportlab-userguide.pdf: typeset by ReportLab itself, not TeX). It is never used to choose
settings, so accuracy measured on it is not tuned to it. Its pages also pass stricter checks
(no garbled pdftotext output, no table of contents or index pages).

The .deb files are fetched with ``apt-get download`` unless ``--deb`` names local copies.
Pages are rendered with poppler's ``pdftoppm`` at 150 dpi (grayscale PNG); the ground truth of
a page is the text ``pdftotext -layout`` extracts from it (lines, and words split on
whitespace with punctuation left attached). Some pages (half of the debian-reference set, a
third of the held-out set; seeded) also get a "scan damage" variant (rotation, blur,
contrast loss, noise, JPEG re-encode) with the same ground truth. Everything is written to
``--out`` together with ``manifest.json``; running again with the same arguments reuses
what is there.

Exit status 2 when poppler-utils or apt-get is missing (with the command to fix it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

PACKAGE = "debian-reference-en"
PDF_IN_DEB = "usr/share/debian-reference/debian-reference.en.pdf"
DEFAULT_OUT = Path(__file__).resolve().parent / ".data" / "pages"
DPI = 150
N_PAGES = 12
SEED = 20261122
FORMAT_VERSION = 1
# A page qualifies when pdftotext finds this many words on it: skips near-empty pages, and
# the table of contents / index pages whose dot leaders and tiny print make them atypical.
MIN_WORDS = 200
MAX_WORDS = 900
FRONT_MATTER_FRACTION = 0.06  # title page, table of contents

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Source:
    """One PDF manual inside one Debian package; ``tag`` prefixes its image names."""

    tag: str
    package: str
    pdf: str  # path inside the .deb
    kind: str  # what its typography is like, for the manifest and the README


@dataclass(frozen=True)
class PageSet:
    """A page set: its sources, how many pages and damaged copies, where it is cached."""

    name: str
    sources: tuple[Source, ...]
    n_pages: int
    damage_share: float
    out: Path
    purpose: str


HELDOUT = PageSet(
    name="heldout",
    sources=(
        Source(
            "rintro",
            "r-doc-pdf",
            "usr/share/R/doc/manual/R-intro.pdf",
            "Texinfo/pdfTeX manual, US letter: prose, R code, small tables, some formulas",
        ),
        Source(
            "cppannot",
            "c++-annotations-pdf",
            "usr/share/doc/c++-annotations/cplusplus.pdf",
            "LaTeX book, A4: long prose paragraphs, C++ listings, inline code",
        ),
        Source(
            "reportlab",
            "python-reportlab-doc",
            "usr/share/doc/python-reportlab-doc/reportlab-userguide.pdf",
            "typeset by the ReportLab library (not TeX), A4: Helvetica/Times/Courier, "
            "code boxes, tables",
        ),
    ),
    n_pages=15,
    damage_share=1 / 3,
    out=HERE / ".data" / "pages-heldout",
    purpose="held out: never used to choose or tune settings; accuracy claims are measured here",
)
SETS = ("debian-reference", HELDOUT.name)

# Held-out page checks, on top of MIN_WORDS..MAX_WORDS and "no dot leaders".
# Garbled extraction: control characters (other than tab, newline, form feed), private-use
# or unassigned code points, U+FFFD, ligature code points (pdftotext normally expands them)
# and glyph names that leak when a font has no usable ToUnicode map.
GLYPH_NAMES = re.compile(
    r"\(cid:\d+\)|\buni[0-9A-F]{4,6}\b|\bglyph\d+\b|/(?:f_)+[fil]\b|/f[fil]{1,2}\b"
)
LIGATURES = frozenset(chr(c) for c in range(0xFB00, 0xFB07))
MAX_GARBAGE = 0  # any of the above rejects a page
# Dot leaders, also spaced (". . . ." in Texinfo's and LaTeX's contents and indexes).
LEADERS = re.compile(r"\.{4,}|(?:\. ){3,}\.")
MAX_LEADERS = 4
# Index or contents pages without leaders: most lines end in a page number.
MAX_NUMBER_LINE_SHARE = 0.5


class BuildError(RuntimeError):
    """A step of the build failed; the message says which and how to fix it."""


def apt_install(packages: list[str], have: Callable[[], bool], install: bool) -> bool:
    """Whether ``have()`` holds, after installing ``packages`` with apt-get when asked (root
    only; apt-get update once if the first try fails)."""
    if have():
        return True
    if not (install and os.geteuid() == 0 and shutil.which("apt-get")):
        return False
    cmd = ["apt-get", "install", "-y", *packages]
    print(f"installing: {' '.join(cmd)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=False)
        subprocess.run(cmd, env=env, check=False)
    return have()


def need_tools(install: bool) -> None:
    """Make sure pdftoppm and pdftotext exist; install poppler-utils when asked (root only)."""
    tools = ("pdftoppm", "pdftotext", "pdfinfo")
    if apt_install(["poppler-utils"], lambda: all(shutil.which(t) for t in tools), install):
        return
    missing = [t for t in tools if shutil.which(t) is None]
    print(
        f"missing {', '.join(missing)} (Debian package poppler-utils). Install it with:\n"
        "    sudo apt-get install -y poppler-utils\n"
        "or run this script as root with --install.",
        file=sys.stderr,
    )
    sys.exit(2)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_deb(dest: Path, package: str = PACKAGE) -> Path:
    """apt-get download the package into dest (apt-get update once if that fails)."""
    if shutil.which("apt-get") is None:
        print(
            f"apt-get not found: pass --deb with a copy of {package}_*.deb",
            file=sys.stderr,
        )
        sys.exit(2)
    cmd = ["apt-get", "download", package]
    dest.chmod(0o755)  # lets apt's unprivileged _apt user write there (no sandbox warning)
    print(f"downloading: {' '.join(cmd)}", file=sys.stderr)
    if subprocess.run(cmd, cwd=dest).returncode != 0:
        if os.geteuid() != 0:
            raise BuildError(
                f"'{' '.join(cmd)}' failed; run 'sudo apt-get update' and try again, "
                "or pass --deb FILE"
            )
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(cmd, cwd=dest, check=True)
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        raise BuildError(f"apt-get download left no {package}_*.deb in {dest}")
    return debs[-1]


def get_pdf(out: Path, deb: Path | None) -> tuple[Path, str]:
    """The manual's PDF under out/src (extracted from the .deb once) and the .deb's name."""
    src = out / "src"
    pdf = src / "debian-reference.en.pdf"
    return extract_pdf(src, pdf, PDF_IN_DEB, lambda tmpdir: deb or download_deb(tmpdir))


def extract_pdf(
    src: Path, pdf: Path, member: str, deb_for: Callable[[Path], Path]
) -> tuple[Path, str]:
    """``member`` of a .deb copied to ``pdf`` once (``src/origin.txt`` names the .deb), and
    the .deb's name. ``deb_for(tmpdir)`` gives the .deb, downloading into tmpdir if need be."""
    origin = src / "origin.txt"
    if pdf.is_file() and origin.is_file():
        return pdf, origin.read_text().strip()
    src.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        deb = deb_for(tmpdir)
        root = tmpdir / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        found = root / member
        if not found.is_file():
            raise BuildError(f"{deb.name} has no {member}")
        shutil.copyfile(found, pdf)
        origin.write_text(deb.name + "\n")
        return pdf, deb.name


def deb_package(deb: Path) -> str:
    """The Package field of a .deb."""
    cmd = ["dpkg-deb", "-f", str(deb), "Package"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def get_source_pdf(out: Path, source: Source, debs: dict[str, Path]) -> tuple[Path, str]:
    """A source's PDF under out/src/PACKAGE/ (extracted once) and the .deb's name.

    ``debs`` maps package names to local .deb files; others are fetched with apt-get.
    """
    src = out / "src" / source.package
    return extract_pdf(
        src,
        src / Path(source.pdf).name,
        source.pdf,
        lambda tmpdir: debs.get(source.package) or download_deb(tmpdir, source.package),
    )


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    for line in info.stdout.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise BuildError(f"pdfinfo gave no page count for {pdf}")


def page_text(pdf: Path, page: int) -> str:
    cmd = ["pdftotext", "-layout", "-enc", "UTF-8", "-f", str(page), "-l", str(page), str(pdf), "-"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def ground_truth(text: str) -> tuple[list[str], list[str]]:
    """Words (split on whitespace) and non-empty lines (stripped, inner spacing collapsed)."""
    lines = [" ".join(line.split()) for line in text.replace("\f", "\n").splitlines()]
    lines = [line for line in lines if line]
    words = [w for line in lines for w in line.split()]
    return words, lines


def choose_pages(
    pdf: Path,
    n: int,
    rng: random.Random,
    accept: Callable[[str], bool] | None = None,
) -> list[tuple[int, str]]:
    """n text-rich pages spread through the book: one seeded pick per equal stratum.

    A page qualifies when it has MIN_WORDS..MAX_WORDS words and no dot leaders, and
    ``accept`` (when given) takes its text.
    """
    total = page_count(pdf)
    first = max(1, int(total * FRONT_MATTER_FRACTION)) + 1
    bounds = np.linspace(first, total + 1, n + 1).astype(int)
    chosen: list[tuple[int, str]] = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        candidates = list(range(int(lo), int(hi)))
        rng.shuffle(candidates)
        for page in candidates:
            text = page_text(pdf, page)
            count = len(text.split())
            if MIN_WORDS <= count <= MAX_WORDS and text.count("....") < 5:
                if accept is None or accept(text):
                    chosen.append((page, text))
                    break
    if len(chosen) < n // 2:
        raise BuildError(f"only {len(chosen)} text-rich pages found in {pdf}")
    return chosen


def garbage_count(text: str) -> int:
    """Characters and tokens that show a garbled text extraction (see GLYPH_NAMES)."""
    bad = 0
    for ch in text:
        if ch in "\t\n\f":
            continue
        if ch in LIGATURES or ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Co", "Cn"):
            bad += 1
    return bad + len(GLYPH_NAMES.findall(text))


def number_line_share(text: str) -> float:
    """Share of the non-empty lines that end in a number (index and contents pages)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return 0.0
    return sum(line[-1].isdigit() for line in lines) / len(lines)


def strict_reject(text: str) -> str | None:
    """Why a page fails the held-out checks (None: it passes)."""
    if garbage_count(text) > MAX_GARBAGE:
        return "garbled text extraction"
    if len(LEADERS.findall(text)) > MAX_LEADERS:
        return "dot leaders"
    if number_line_share(text) > MAX_NUMBER_LINE_SHARE:
        return "index or contents"
    return None


def render(pdf: Path, page: int, dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "p"
        cmd = ["pdftoppm", "-gray", "-png", "-r", str(DPI), "-f", str(page), "-l", str(page)]
        subprocess.run([*cmd, str(pdf), str(prefix)], check=True)
        (produced,) = list(Path(tmp).glob("p*.png"))
        shutil.move(str(produced), dest)


def damage(src: Path, dest: Path, rng: random.Random) -> dict[str, float]:
    """Seeded scan damage: rotation, blur, contrast loss, Gaussian noise, JPEG re-encode."""
    params = {
        "rotate_deg": round(rng.uniform(-1.0, 1.0), 3),
        "blur_radius": round(rng.uniform(0.8, 1.2), 3),
        "contrast": round(rng.uniform(0.7, 0.85), 3),
        "noise_sigma": round(rng.uniform(8.0, 12.0), 3),
        "jpeg_quality": rng.randint(35, 50),
        "noise_seed": rng.randrange(2**31),
    }
    img = Image.open(src).convert("L")
    img = img.rotate(
        params["rotate_deg"], resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255
    )
    img = img.filter(ImageFilter.GaussianBlur(params["blur_radius"]))
    img = ImageEnhance.Contrast(img).enhance(params["contrast"])
    noise = np.random.default_rng(params["noise_seed"]).normal(
        0.0, params["noise_sigma"], (img.height, img.width)
    )
    arr = np.clip(np.asarray(img, np.float64) + noise, 0, 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=params["jpeg_quality"])
    buf.seek(0)
    # Stored as PNG of the decoded JPEG: the JPEG artefacts, read the same by every engine.
    Image.open(buf).convert("L").save(dest)
    return params


def build(out: Path, deb: Path | None, n: int, seed: int, force: bool) -> Path:
    """Build (or reuse) the page set under out; returns the manifest path."""
    manifest_path = out / "manifest.json"
    if manifest_path.is_file() and not force:
        old = json.loads(manifest_path.read_text())
        if old.get("params") == {"n": n, "seed": seed, "dpi": DPI, "version": FORMAT_VERSION}:
            if all((out / name).is_file() for name in old["images"]):
                return manifest_path
    out.mkdir(parents=True, exist_ok=True)
    pdf, origin = get_pdf(out, deb)
    rng = random.Random(seed)
    pages = choose_pages(pdf, n, rng)
    damaged = set(rng.sample(range(len(pages)), len(pages) // 2))
    images: dict[str, dict[str, Any]] = {}
    for i, (page, text) in enumerate(pages):
        words, lines = ground_truth(text)
        name = f"p{page:03d}.png"
        render(pdf, page, out / name)
        entry = {"page": page, "words": words, "lines": lines, "damage": None}
        images[name] = entry
        if i in damaged:
            dname = f"p{page:03d}_scan.png"
            params = damage(out / name, out / dname, rng)
            images[dname] = {**entry, "damage": params}
        print(f"page {page}: {len(words)} words{' (+ damaged)' if i in damaged else ''}")
    manifest = {
        "params": {"n": n, "seed": seed, "dpi": DPI, "version": FORMAT_VERSION},
        "source": {"deb": origin, "pdf": PDF_IN_DEB, "pdf_sha256": sha256(pdf)},
        "images": images,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest_path


def heldout_params(pset: PageSet, n: int, seed: int) -> dict[str, Any]:
    """Everything that decides the held-out set's content (the manifest's cache key)."""
    return {
        "set": pset.name,
        "n": n,
        "seed": seed,
        "dpi": DPI,
        "version": FORMAT_VERSION,
        "damage_share": round(pset.damage_share, 4),
        "sources": [[src.tag, src.package, src.pdf] for src in pset.sources],
        "rules": {
            "words": [MIN_WORDS, MAX_WORDS],
            "front_matter_fraction": FRONT_MATTER_FRACTION,
            "max_garbage": MAX_GARBAGE,
            "max_dot_leaders": MAX_LEADERS,
            "max_number_line_share": MAX_NUMBER_LINE_SHARE,
        },
    }


def split_pages(n: int, k: int) -> list[int]:
    """n pages over k sources: as equal as possible, the first sources get the remainder."""
    return [n // k + (i < n % k) for i in range(k)]


def build_set(
    pset: PageSet, out: Path, debs: dict[str, Path], n: int, seed: int, force: bool
) -> Path:
    """Build (or reuse) a multi-source page set (the held-out one) under out.

    Each source gets its share of the n pages, picked as in choose_pages with its own rng
    (seeded by seed and its tag, so one source's picks do not depend on another's) and the
    stricter checks of strict_reject. Then a seeded sample of round(damage_share * pages)
    pages gets a damaged copy. Image names: TAG_pNNNN.png and TAG_pNNNN_scan.png.
    """
    manifest_path = out / "manifest.json"
    params = heldout_params(pset, n, seed)
    if manifest_path.is_file() and not force:
        old = json.loads(manifest_path.read_text())
        if old.get("params") == params and all((out / name).is_file() for name in old["images"]):
            return manifest_path
    out.mkdir(parents=True, exist_ok=True)
    picked: list[tuple[Source, Path, int, str]] = []
    sources: list[dict[str, Any]] = []
    for source, count in zip(pset.sources, split_pages(n, len(pset.sources))):
        pdf, origin = get_source_pdf(out, source, debs)
        rejected: dict[str, int] = {}

        def accept(text: str, rejected: dict[str, int] = rejected) -> bool:
            why = strict_reject(text)
            if why is not None:
                rejected[why] = rejected.get(why, 0) + 1
            return why is None

        pages = choose_pages(pdf, count, random.Random(f"{seed}/{source.tag}"), accept)
        picked += [(source, pdf, page, text) for page, text in pages]
        sources.append(
            {
                **asdict(source),
                "deb": origin,
                "pdf_sha256": sha256(pdf),
                "pdf_pages": page_count(pdf),
                "pages": [page for page, _ in pages],
                "rejected_by_checks": rejected,
            }
        )
    rng = random.Random(seed)
    damaged = set(rng.sample(range(len(picked)), round(len(picked) * pset.damage_share)))
    images: dict[str, dict[str, Any]] = {}
    for i, (source, pdf, page, text) in enumerate(picked):
        words, lines = ground_truth(text)
        name = f"{source.tag}_p{page:04d}.png"
        render(pdf, page, out / name)
        entry = {"source": source.tag, "page": page, "words": words, "lines": lines}
        images[name] = {**entry, "damage": None}
        if i in damaged:
            dname = f"{source.tag}_p{page:04d}_scan.png"
            images[dname] = {**entry, "damage": damage(out / name, out / dname, rng)}
        print(
            f"{source.tag} page {page}: {len(words)} words{' (+ damaged)' if i in damaged else ''}"
        )
    manifest = {
        "params": params,
        "purpose": pset.purpose,
        "sources": sources,
        "images": images,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--source",
        choices=SETS,
        default=SETS[0],
        help="which set: %(choices)s (%(default)s)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        help=f"cache folder ({DEFAULT_OUT}; heldout: {HELDOUT.out})",
    )
    ap.add_argument(
        "--deb",
        type=Path,
        action="append",
        help="local .deb of a source package (else apt-get download); repeat for several",
    )
    ap.add_argument(
        "--pages",
        type=int,
        help=f"pages to pick ({N_PAGES}; heldout: {HELDOUT.n_pages}, split over its sources)",
    )
    ap.add_argument("--seed", type=int, default=SEED, help="page choice and damage seed")
    ap.add_argument("--install", action="store_true", help="apt-get install poppler-utils (root)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the manifest matches")
    args = ap.parse_args(argv)
    need_tools(args.install)
    try:
        if args.source == HELDOUT.name:
            debs = {deb_package(deb): deb for deb in args.deb or []}
            path = build_set(
                HELDOUT,
                args.out or HELDOUT.out,
                debs,
                args.pages or HELDOUT.n_pages,
                args.seed,
                args.force,
            )
        else:
            if args.deb and len(args.deb) > 1:
                ap.error("--deb: the debian-reference set has one source package")
            deb = args.deb[0] if args.deb else None
            path = build(args.out or DEFAULT_OUT, deb, args.pages or N_PAGES, args.seed, args.force)
    except (BuildError, subprocess.CalledProcessError) as e:
        print(f"pages.py: {e}", file=sys.stderr)
        return 1
    n = len(json.loads(path.read_text())["images"])
    print(f"{n} images, manifest: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
