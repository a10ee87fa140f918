"""No value a caller passes (settings, time limits, images, profiles) makes the public API
raise anything but a vram_orchestrator error: no PanicException, no bare TypeError or
ValueError from deep inside, no hang."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import vram_orchestrator as vo
from vram_orchestrator.settings import Settings

ODD_VALUES = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    0,
    1e30,
    2**64,
    -(2**63),
    "",
    "abc",
    "\x00",
    "1e999",
    True,
    [],
    {},
    object(),
]
# Settings whose odd values would change which files or executables a pool uses: covered by
# their own tests (a missing path is a SetupError naming it).
PATH_SETTINGS = {"model_dir", "ort_dylib", "peaks_dir", "graph_cache_dir", "worker_bin"}
SETTINGS = [
    f.name for f in dataclasses.fields(Settings) if f.name not in PATH_SETTINGS | {"sources"}
]


def _is_ours(error: BaseException) -> bool:
    return isinstance(error, vo.VramOrchestratorError) and type(error).__name__ != (
        "PanicException"
    )


@pytest.mark.parametrize("name", SETTINGS)
def test_an_odd_setting_is_refused_with_our_error_or_taken(name):
    for value in ODD_VALUES:
        try:
            pool = vo.OcrPool(**{"device": "cpu", "standby": False, name: value})
        except BaseException as e:  # the point is which class it is
            assert _is_ours(e), f"{name}={value!r} raised {type(e).__module__}.{e!r}"
            assert name in str(e) or name.upper() in str(e), f"{name}={value!r}: {e}"
        else:
            assert pool.close(timeout_s=30)


@pytest.fixture(scope="module")
def pool():
    p = vo.OcrPool(device="cpu", max_workers=1, free_vram_on_idle=False, standby=False)
    yield p
    p.close(cancel_pending=True, timeout_s=30)


IMAGES = [
    None,
    7,
    3.5,
    object(),
    [[0, 1], [2, 3]],
    b"",
    b"\x89PNG\r\n\x1a\n",
    np.zeros((0, 0), np.uint8),
    np.zeros((), np.uint8),
    np.zeros((2, 2, 2, 2), np.uint8),
    np.zeros((4, 4, 5), np.uint8),
    np.zeros((4, 4), np.float32),
    np.zeros((4, 4), bool),
    # A view of 10^10 pixels over 1 byte: refused by its shape, never copied.
    np.broadcast_to(np.zeros((1, 1), np.uint8), (100_000, 100_000)),
    "/nonexistent/page.png",
    "/dev/zero",
    "/",
]


@pytest.mark.parametrize("image", IMAGES, ids=lambda v: type(v).__name__ + repr(v)[:30])
def test_an_odd_image_is_refused_with_our_error(pool, image):
    with pytest.raises(vo.VramOrchestratorError) as info:
        pool.ocr(image, timeout_s=60)
    assert _is_ours(info.value)


@pytest.mark.parametrize("value", [math.nan, -1, -math.inf, "1", [], object()])
def test_an_odd_time_limit_is_refused_with_our_error(pool, value):
    for keyword in ("timeout_s", "queue_timeout_s"):
        with pytest.raises(vo.VramOrchestratorError) as info:
            pool.submit(b"x", **{keyword: value})
        assert keyword in str(info.value)


@pytest.mark.parametrize("value", ["", "fast", 3, b"default"])
def test_an_odd_profile_is_refused_with_our_error(pool, value):
    with pytest.raises(vo.VramOrchestratorError) as info:
        pool.submit(b"x", profile=value)
    assert "profile" in str(info.value)


def test_huge_time_limits_mean_no_limit(pool, ocrset):
    for value in (math.inf, 1e19, 2**70):
        result = pool.ocr(ocrset / "01_line_short.png", timeout_s=value, queue_timeout_s=value)
        assert result["lines"]


@pytest.mark.parametrize("value", [math.nan, -1, "1", [], object()])
def test_an_odd_close_time_limit_is_refused_and_the_pool_stays_usable(value, ocrset):
    p = vo.OcrPool(device="cpu", max_workers=1, standby=False)
    try:
        with pytest.raises(vo.ConfigError, match="timeout_s"):
            p.close(timeout_s=value)
        assert not p.closed and p.ocr(ocrset / "01_line_short.png")["lines"]
    finally:
        assert p.close(timeout_s=30)


@pytest.mark.parametrize("value", [-1, 2**64, 2**31, math.nan, math.inf, 1.5, "2", True, object()])
def test_an_odd_warm_up_count_is_refused_with_our_error(pool, value):
    with pytest.raises(vo.ConfigError, match="workers"):
        pool.warm_up(value)


@pytest.mark.parametrize("cells", [5, "text", [5], [("a",)], [("a", (1, 2))], [{"text": "a"}]])
def test_odd_text_cells_are_refused_with_our_error(pool, cells):
    with pytest.raises(vo.InvalidInput, match="text_cells"):
        pool.analyze(np.full((32, 32), 255, np.uint8), text_cells=cells)
