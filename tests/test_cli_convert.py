"""``vram-orchestrator convert``: PDFs and images to documents from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DOCUMENTS = Path(__file__).parent / "data" / "documents"
ENV = {**os.environ, "VRAM_ORCH_DEVICE": "cpu", "VRAM_ORCH_MAX_WORKERS": "1"}


def convert(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vram_orchestrator", "convert", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )


def test_a_pdf_becomes_markdown_with_headings_and_a_table():
    done = convert(str(DOCUMENTS / "d05_benchmark_twocol.pdf"))
    assert done.returncode == 0, done.stderr
    md = done.stdout
    assert "# Scaling a Query Engine on One Machine" in md
    assert "## 3 Conclusion" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert any("Threads" in row and "Queries/s" in row for row in rows), rows


def test_several_files_go_to_a_folder_in_the_chosen_format(tmp_path):
    files = [DOCUMENTS / "d01_storage_report.pdf", DOCUMENTS / "d06_design_memo-scan.jpg"]
    done = convert(*map(str, files), "--to", "json", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["d01_storage_report.json", "d06_design_memo-scan.json"]
    doc = json.loads((tmp_path / "d01_storage_report.json").read_text())
    assert doc["tables"] and doc["texts"]
    assert any(t["label"] == "title" for t in doc["texts"])


def test_a_missing_file_fails_alone_with_its_reason(tmp_path):
    done = convert("/no/such.pdf", str(DOCUMENTS / "d01_storage_report.pdf"), "--to", "text")
    assert done.returncode == 1
    assert "/no/such.pdf" in done.stderr and "No such file" in done.stderr
    assert "Write Amplification in Log-Structured Storage" in done.stdout
