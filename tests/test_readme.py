"""The README and the docs pages: the README's Python examples run as written on a real CPU
pool, the README stays short, and every relative link points at a file (and heading) that
exists."""

from __future__ import annotations

import re
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 170

#: The files the README's examples name, and the test images that stand in for them.
EXAMPLE_FILES = {"page.png": "13_page_paragraph.png", "line.png": "02_line_pangram.png"}

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.M)


def python_blocks(text: str) -> list[str]:
    """Every ```python fenced block of a Markdown text, without its fences."""
    return re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S)


def named_files(code: str) -> set[str]:
    """File names the example passes as string literals (page.png, scan.pdf, ...)."""
    return set(re.findall(r"[\"']([\w.-]+\.(?:png|jpe?g|tiff?|webp|bmp|pdf))[\"']", code))


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def ocr_results(namespace: dict[str, object]) -> Iterator[dict]:
    """The OCR results an example left in its variables: result dicts, or lists of them."""
    for value in namespace.values():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, dict) and "lines" in item:
                yield item


def words(texts: list[str]) -> list[str]:
    return " ".join(texts).lower().split()


README_EXAMPLES = python_blocks(README.read_text())


def test_readme_shows_python_examples_and_names_only_known_files():
    assert README_EXAMPLES, "README.md has no ```python example"
    for code in README_EXAMPLES:
        unknown = named_files(code) - EXAMPLE_FILES.keys()
        assert not unknown, f"give {sorted(unknown)} a stand-in in EXAMPLE_FILES"


@pytest.mark.parametrize(
    "code", README_EXAMPLES, ids=[f"example{i + 1}" for i in range(len(README_EXAMPLES))]
)
def test_readme_python_example_runs_and_reads_its_images(
    code, tmp_path, monkeypatch, ocrset, ground_truth
):
    sources = {}
    for name in named_files(code):
        shutil.copy(ocrset / EXAMPLE_FILES[name], tmp_path / name)
        sources[png_size(tmp_path / name)] = EXAMPLE_FILES[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VRAM_ORCH_DEVICE", "cpu")

    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, f"{README.name} example", "exec"), namespace)

    results = list(ocr_results(namespace))
    assert results, "the example keeps no OCR result (a dict with 'lines') in a variable"
    for result in results:
        assert result["lines"], result
        size = (result["width"], result["height"])
        assert size in sources, f"a result of {size} px matches no image the example names"
        expected = words(ground_truth[sources[size]])
        read = set(words([line["text"] for line in result["lines"]]))
        recall = sum(word in read for word in expected) / len(expected)
        assert recall >= 0.9, (sources[size], recall, [line["text"] for line in result["lines"]])
        assert result["worker"]["device"] == "cpu"


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; move details to docs/ (at most {MAX_README_LINES})"
    )


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def relative_links(page: Path) -> list[str]:
    """Link targets of a page outside code, other than web and mail addresses."""
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_points_at_a_file_that_exists(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading '#{anchor}' in {file.name}")
    assert not broken, broken


def test_readme_links_every_docs_page():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in relative_links(README)}
    missing = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not missing, f"README.md links no {missing}"
