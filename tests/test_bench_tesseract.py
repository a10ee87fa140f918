"""bench/ocr_vs_tesseract.py: its pure parts (Tesseract output parsing, run order, row
set-up, tables) on fixed inputs. Needs neither Tesseract nor RapidOCR nor a worker."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

import vram_orchestrator as vo
from conftest import load_bench

vt = load_bench("ocr_vs_tesseract")
base = load_bench("ocr_vs_rapidocr")  # the module vt imported

TSV = "\n".join(
    [
        "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext",
        "1\t1\t0\t0\t0\t0\t0\t0\t577\t249\t-1\t",
        "2\t1\t1\t0\t0\t0\t32\t35\t516\t131\t-1\t",
        "3\t1\t1\t1\t0\t0\t32\t35\t516\t131\t-1\t",
        "4\t1\t1\t1\t1\t0\t33\t35\t341\t27\t-1\t",
        "5\t1\t1\t1\t1\t1\t33\t35\t107\t27\t95.8\tMeeting",
        "5\t1\t1\t1\t1\t2\t155\t37\t81\t23\t95.8\tnotes,",
        "5\t1\t1\t1\t1\t3\t250\t36\t31\t20\t96.3\t14",
        "4\t1\t1\t1\t2\t0\t33\t87\t364\t27\t-1\t",
        "5\t1\t1\t1\t2\t1\t33\t88\t21\t20\t96.3\t1.",
        "5\t1\t1\t1\t2\t2\t66\t88\t81\t26\t96.4\t ",
        "5\t1\t1\t1\t2\t3\t66\t88\t81\t26\t96.4\tAgree",
        # a second block whose line numbers start again at 1: a line of its own
        "2\t1\t2\t0\t0\t0\t32\t300\t516\t30\t-1\t",
        "5\t1\t2\t1\t1\t1\t32\t300\t60\t20\t91.0\tPage",
        "5\t1\t2\t1\t1\t2\t100\t300\t20\t20\t90.0\t3",
        # an empty line of Tesseract's (no word with text)
        "4\t1\t3\t1\t1\t0\t0\t400\t10\t10\t-1\t",
        "",
    ]
)


def test_tsv_words_grouped_into_lines_in_tesseract_order():
    assert vt.parse_tesseract_tsv(TSV) == ["Meeting notes, 14", "1. Agree", "Page 3"]


def test_tsv_without_words_gives_no_lines():
    header = TSV.splitlines()[0]
    assert vt.parse_tesseract_tsv(header + "\n1\t1\t0\t0\t0\t0\t0\t0\t5\t5\t-1\t\n") == []
    assert vt.parse_tesseract_tsv("") == []


def test_plain_text_lines_collapsed_and_form_feed_dropped():
    text = "Hello   World\n\n  second\tline  \n\f"
    assert vt.parse_tesseract_text(text) == ["Hello World", "second line"]


def test_tesseract_command_is_lstm_auto_layout_english():
    tsv = vt.tesseract_command("a.png")
    assert tsv[:3] == ["tesseract", "a.png", "stdout"]
    assert tsv[3:] == ["--oem", "1", "--psm", "3", "-l", "eng", "tsv"]
    assert vt.tesseract_command("a.png", "txt")[-1] == "eng"


def test_engine_order_rotates_one_step_per_image_and_per_pass():
    orders = [vt.engine_order(3, i) for i in range(6)]
    assert orders[:3] == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    assert orders[3:] == orders[:3]
    assert all(sorted(o) == [0, 1, 2] for o in orders)
    # every engine leads, and comes last, equally often
    assert [o[0] for o in orders].count(1) == 2
    assert [o[-1] for o in orders].count(0) == 2
    assert vt.engine_order(3, 0, rep=1) == [1, 2, 0]
    assert vt.engine_order(0, 5) == []
    assert vt.engine_order(1, 7) == [0]


def test_unknown_keyword_recognised_from_config_and_type_errors():
    unknown = vo.ConfigError("unknown setting(s) ocr_models; allowed: device, threads")
    assert vt.keyword_unknown(unknown)
    assert vt.keyword_unknown(TypeError("__init__() got an unexpected keyword 'ocr_models'"))
    bad_name = vo.ConfigError("argument ocr_models='ppocr-v9' is not allowed: unknown set")
    assert not vt.keyword_unknown(bad_name)
    assert not vt.keyword_unknown(vo.ConfigError("unknown setting(s) foo; allowed: ..."))


class _FakePool:
    """OcrPool stand-in of a package that does not know ocr_models yet."""

    made: ClassVar[list[dict]] = []

    def __init__(self, **settings):
        if "ocr_models" in settings:
            raise vo.ConfigError("unknown setting(s) ocr_models; allowed: device, threads")
        _FakePool.made.append(settings)

    def close(self):
        pass


def test_ours_without_the_keyword_v4_falls_back_others_not_available(monkeypatch):
    monkeypatch.setattr(vo, "OcrPool", _FakePool)
    monkeypatch.setattr(_FakePool, "made", [])
    v4 = vt.OursEngine("ppocr-v4", 2)
    v4.start()
    assert v4.unavailable is None
    assert "ocr_models" not in _FakePool.made[0]
    assert _FakePool.made[0]["threads"] == 2
    assert _FakePool.made[0]["free_vram_on_idle"] is False
    assert "PP-OCRv4" in v4.info["note"]
    v6 = vt.OursEngine("ppocr-v6-small", 2)
    v6.start()
    assert v6.unavailable.startswith("not available: ConfigError: unknown setting(s) ocr_models")
    assert len(_FakePool.made) == 1
    v4.close()
    v6.close()


def test_rapidocr_row_skipped_with_pip_command_when_missing(monkeypatch):
    monkeypatch.setattr(vt, "version", lambda dist: "not installed")
    engine = vt.RapidOcrEngine(2)
    engine.start()
    assert engine.name == "RapidOCR 3.10.0"
    assert "pip install rapidocr==3.10.0" in engine.unavailable
    assert engine.proc is None


def test_missing_tesseract_exits_2_with_the_apt_command(monkeypatch, capsys):
    monkeypatch.setattr(vt.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as info:
        vt.need_tesseract(install=False)
    assert info.value.code == 2
    assert "apt-get install -y tesseract-ocr tesseract-ocr-eng" in capsys.readouterr().err


class _Scripted(vt.Engine):
    """An engine that logs its calls into a shared list and answers from a table."""

    def __init__(self, name, log, answers, fail_on=()):
        super().__init__(name, 2)
        self.log, self.answers, self.fail_on = log, answers, set(fail_on)

    def ocr(self, path):
        self.log.append((self.name, Path(path).name))
        if Path(path).name in self.fail_on:
            raise RuntimeError("boom")
        return self.answers[Path(path).name]

    def peak_rss_mb(self):
        return 10.0


def _items(n):
    return [base.Item(f"i{k}.png", f"/x/i{k}.png", ["a", "b"], ["a b"]) for k in range(n)]


def test_interleaved_loop_warms_up_rotates_and_skips_unavailable():
    log: list[tuple[str, str]] = []
    answers = {f"i{k}.png": ["a b"] for k in range(3)}
    a = _Scripted("A", log, answers)
    b = _Scripted("B", log, answers, fail_on={"i2.png"})
    off = _Scripted("off", log, answers)
    off.unavailable = "not available: test"
    runs, orders = vt.run_interleaved([a, off, b], _items(3), repeats=1)
    warm, timed = log[:4], log[4:]
    assert warm == [("A", "i0.png"), ("B", "i0.png"), ("B", "i1.png"), ("A", "i1.png")]
    assert timed == [
        ("A", "i0.png"),
        ("B", "i0.png"),
        ("B", "i1.png"),
        ("A", "i1.png"),
        ("A", "i2.png"),
        ("B", "i2.png"),
    ]
    assert orders == [["A", "B"], ["B", "A"], ["A", "B"]]
    by = {r.engine: r for r in runs}
    assert set(by["A"].latencies_ms) == {"i0.png", "i1.png", "i2.png"}
    assert by["B"].failures == {"i2.png": "RuntimeError: boom"}
    assert by["off"].latencies_ms == {} and by["off"].peak_rss_mb is None
    assert by["A"].peak_rss_mb == 10.0
    # accuracy is ocr_vs_rapidocr's, imported, not a copy
    assert vt.accuracy is base.accuracy
    acc = vt.accuracy(by["B"], _items(3))
    assert acc["word_recall"] == pytest.approx(4 / 6)
    assert acc["cer"] == pytest.approx(3 / 9)


def test_image_groups_split_clean_damaged_and_sources():
    names = ["cpp_p0086.png", "cpp_p0086_scan.png", "rl_p0025.png", "rl_p0058.png"]
    items = [base.Item(n, n, [], None) for n in names]
    groups = {k: [it.name for it in v] for k, v in vt.image_groups(items).items()}
    assert groups == {
        "clean": ["cpp_p0086.png", "rl_p0025.png", "rl_p0058.png"],
        "damaged": ["cpp_p0086_scan.png"],
        "cpp": ["cpp_p0086.png", "cpp_p0086_scan.png"],
        "rl": ["rl_p0025.png", "rl_p0058.png"],
    }
    legacy = [base.Item(n, n, [], None) for n in ["p033.png", "p033_scan.png", "p077.png"]]
    assert list(vt.image_groups(legacy)) == ["clean", "damaged"]


def _row(engine, **acc):
    return {
        "engine": engine,
        "threads": 2,
        "unavailable": None,
        "timing": {"images_per_s": 1.2344, "p50_ms": 812.0},
        "accuracy": {"cer": acc.get("cer"), "word_recall": 0.9, "word_precision": 0.95},
        "peak_rss_mb": 401.6,
        "failures": {"x.png": "err"},
    }


def test_markdown_table_rows_cells_and_unavailable_reason():
    rows = [
        _row("ours ppocr-v4", cer=0.01234),
        {"engine": "RapidOCR 3.10.0", "threads": 2, "unavailable": "not available: a | b"},
    ]
    lines = vt.markdown_table(rows, with_cer=True).splitlines()
    assert lines[0] == (
        "| engine | threads | images/s | median s/image | CER | word recall | word precision "
        "| peak RSS MB | fails |"
    )
    assert lines[1] == "|---|" + "--:|" * 8
    assert lines[2] == "| ours ppocr-v4 | 2 | 1.234 | 0.812 | 0.0123 | 0.900 | 0.950 | 402 | 1 |"
    assert lines[3] == "| RapidOCR 3.10.0 | 2 | not available: a \\| b | - | - | - | - | - | - |"
    no_cer = vt.markdown_table([_row("t")], with_cer=False).splitlines()
    assert "CER" not in no_cer[0]
    assert no_cer[2] == "| t | 2 | 1.234 | 0.812 | 0.900 | 0.950 | 402 | 1 |"


def test_folded_quotes_count_a_straight_quote_as_the_typographic_one():
    items = [vt.Item("p.png", "p.png", ["it\u2019s", "\u201cfoo\u201d", "bar"], None)]
    runs = {"e": vt.EngineRun("e", texts={"p.png": ['it\'s "foo" baz']})}
    raw = vt.accuracy(runs["e"], items)
    assert raw["words_matched"] == 0
    folded_runs, folded_items = vt.fold_quotes(runs, items)
    folded = vt.accuracy(folded_runs["e"], folded_items)
    assert folded["words_matched"] == 2 and folded["word_recall"] == 2 / 3
    table = vt.folded_table(runs, items, [{"engine": "e"}, {"engine": "x", "unavailable": "no"}])
    assert table.splitlines()[2] == "| e | 0.667 | 0.667 |" and len(table.splitlines()) == 3
