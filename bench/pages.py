"""Build a deterministic set of real document pages with ground truth for the OCR benchmark.

    python bench/pages.py [--out bench/.data/pages] [--deb FILE.deb] [--install] [--force]

Source: the PDF manual of the Debian package ``debian-reference-en``
(``/usr/share/debian-reference/debian-reference.en.pdf``), fetched with ``apt-get download``
unless ``--deb`` names a local copy. Pages are rendered with poppler's ``pdftoppm`` at 150 dpi
(grayscale PNG); the ground truth of a page is the text ``pdftotext -layout`` extracts from it
(lines, and words split on whitespace with punctuation left attached). About half of the
pages also get a seeded "scan damage" variant (rotation, blur, contrast loss, noise, JPEG
re-encode) with the same ground truth. Everything is written to ``--out`` together with
``manifest.json``; running again with the same arguments reuses what is there.

Exit status 2 when poppler-utils or apt-get is missing (with the command to fix it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
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


class BuildError(RuntimeError):
    """A step of the build failed; the message says which and how to fix it."""


def need_tools(install: bool) -> None:
    """Make sure pdftoppm and pdftotext exist; install poppler-utils when asked (root only)."""
    missing = [t for t in ("pdftoppm", "pdftotext", "pdfinfo") if shutil.which(t) is None]
    if not missing:
        return
    cmd = ["apt-get", "install", "-y", "poppler-utils"]
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing poppler-utils: {' '.join(cmd)}", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=False)
            subprocess.run(cmd, env=env, check=False)
        if all(shutil.which(t) for t in ("pdftoppm", "pdftotext", "pdfinfo")):
            return
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


def download_deb(dest: Path) -> Path:
    """apt-get download debian-reference-en into dest (apt-get update once if that fails)."""
    if shutil.which("apt-get") is None:
        print(
            "apt-get not found: pass --deb with a copy of debian-reference-en_*.deb",
            file=sys.stderr,
        )
        sys.exit(2)
    cmd = ["apt-get", "download", PACKAGE]
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
    debs = sorted(dest.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise BuildError(f"apt-get download left no {PACKAGE}_*.deb in {dest}")
    return debs[-1]


def get_pdf(out: Path, deb: Path | None) -> tuple[Path, str]:
    """The manual's PDF under out/src (extracted from the .deb once) and the .deb's name."""
    src = out / "src"
    pdf = src / "debian-reference.en.pdf"
    origin = src / "origin.txt"
    if pdf.is_file() and origin.is_file():
        return pdf, origin.read_text().strip()
    src.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        if deb is None:
            deb = download_deb(tmpdir)
        root = tmpdir / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        found = root / PDF_IN_DEB
        if not found.is_file():
            raise BuildError(f"{deb.name} has no {PDF_IN_DEB}")
        shutil.copyfile(found, pdf)
        origin.write_text(deb.name + "\n")
        return pdf, deb.name


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


def choose_pages(pdf: Path, n: int, rng: random.Random) -> list[tuple[int, str]]:
    """n text-rich pages spread through the book: one seeded pick per equal stratum."""
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
                chosen.append((page, text))
                break
    if len(chosen) < n // 2:
        raise BuildError(f"only {len(chosen)} text-rich pages found in {pdf}")
    return chosen


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="cache folder (%(default)s)")
    ap.add_argument(
        "--deb", type=Path, help="local debian-reference-en_*.deb (else apt-get download)"
    )
    ap.add_argument("--pages", type=int, default=N_PAGES, help="pages to pick (%(default)s)")
    ap.add_argument("--seed", type=int, default=SEED, help="page choice and damage seed")
    ap.add_argument("--install", action="store_true", help="apt-get install poppler-utils (root)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the manifest matches")
    args = ap.parse_args(argv)
    need_tools(args.install)
    try:
        path = build(args.out, args.deb, args.pages, args.seed, args.force)
    except (BuildError, subprocess.CalledProcessError) as e:
        print(f"pages.py: {e}", file=sys.stderr)
        return 1
    n = len(json.loads(path.read_text())["images"])
    print(f"{n} images, manifest: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
