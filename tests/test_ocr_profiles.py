"""Both OCR profiles through the whole stack (pool → worker → engine → dict)."""

from __future__ import annotations

import json


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_edit_distance_counts_edits():
    assert _edit_distance("kitten", "sitting") == 3 and _edit_distance("", "ab") == 2


def test_reference_profile_reproduces_rapidocr_text_and_boxes(make_pool, ocrset):
    recorded = json.loads((ocrset / "rapidocr_1.4.4_outputs.json").read_text())["images"]
    pool = make_pool(max_workers=2, ocr_profile="reference")
    futures = {name: pool.submit(ocrset / name) for name in sorted(recorded)}
    for name, future in futures.items():
        ours = future.result(timeout=300)["lines"]
        ref = recorded[name]["result"] or []
        assert [line["text"] for line in ours] == [r[1] for r in ref], name
        for line, r in zip(ours, ref):
            deviation = max(abs(a - b) for p, q in zip(line["box"], r[0]) for a, b in zip(p, q))
            assert deviation <= 2.0, (name, line["text"], deviation)


def test_default_profile_micro_cer_is_at_most_003(make_pool, ocrset, ground_truth):
    pool = make_pool(max_workers=2)
    futures = {name: pool.submit(ocrset / name) for name in sorted(ground_truth)}
    edits = chars = 0
    for name, future in futures.items():
        text = "\n".join(line["text"] for line in future.result(timeout=300)["lines"])
        truth = "\n".join(ground_truth[name])
        edits += _edit_distance(text, truth)
        chars += len(truth)
    cer = edits / chars
    print(f"default profile micro CER {cer:.4f} ({edits} edits / {chars} chars)")
    assert cer <= 0.03
