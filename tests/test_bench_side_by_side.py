"""bench/engine_side_by_side.py: how an engine is named on its command line."""

from __future__ import annotations

import argparse

import pytest

from conftest import load_bench

sbs = load_bench("engine_side_by_side")


def test_an_engine_is_name_binary_model_dir_and_an_optional_set():
    old = sbs.engine("old=/b/ocr_files:/models")
    assert (old.name, old.command, old.model_dir) == ("old", ["/b/ocr_files"], "/models")
    new = sbs.engine("new=/b/ocr_files:/m:ppocr-v6-small")
    assert new.command == ["/b/ocr_files", "--models", "ppocr-v6-small"]


@pytest.mark.parametrize("spec", ["/b/ocr_files:/m", "x=/b/ocr_files", "x=:/m", "x=a:b:c:d"])
def test_a_malformed_engine_is_refused_with_the_expected_form(spec):
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=BINARY:MODEL_DIR"):
        sbs.engine(spec)
