"""Image formats and hostile inputs through the whole stack."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import vram_orchestrator as vo

PANGRAM = "The quick brown fox jumps over the lazy dog."


def _encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pangram(ocrset):
    with Image.open(ocrset / "02_line_pangram.png") as im:
        return im.convert("RGB")


@pytest.fixture(scope="module")
def pool():
    with vo.OcrPool(device="cpu", max_workers=1, free_vram_on_idle=False) as p:
        yield p


@pytest.mark.parametrize(
    "variant",
    ["jpeg", "cmyk_jpeg", "png16", "palette_png", "rgba_png", "tiff", "bmp", "webp", "gray_png"],
)
def test_formats_decode_as_a_person_sees_them(pool, pangram, variant):
    if variant == "jpeg":
        data = _encode(pangram, "JPEG", quality=95)
    elif variant == "cmyk_jpeg":
        data = _encode(pangram.convert("CMYK"), "JPEG", quality=95)
    elif variant == "png16":
        gray16 = np.asarray(pangram.convert("L"), np.uint16) * 257
        data = _encode(Image.fromarray(gray16), "PNG")
        assert data[24:26] == b"\x10\x00", "a 16-bit grayscale PNG"
    elif variant == "palette_png":
        data = _encode(pangram.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")
    elif variant == "rgba_png":
        data = _encode(pangram.convert("RGBA"), "PNG")
    elif variant == "gray_png":
        data = _encode(pangram.convert("L"), "PNG")
    else:
        data = _encode(pangram, variant.upper())
    texts = [line["text"] for line in pool.ocr(data)["lines"]]
    assert texts == [PANGRAM], (variant, texts)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_decompression_bomb_is_refused_before_allocation(pool):
    started = time.monotonic()
    with pytest.raises(vo.InvalidInput, match="100000"):
        pool.ocr(_png_header_only(100_000, 100_000))
    assert time.monotonic() - started < 1.0
    # The same header with honest dimensions passes the size check and is named for what it
    # is: a PNG that ends early (no IEND).
    with pytest.raises(vo.InvalidInput, match=r"ends early.*truncated PNG"):
        pool.ocr(_png_header_only(64, 64))


@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (40, 4000), (4000, 40)])
def test_degenerate_shapes_give_sane_results_fast(pool, shape):
    started = time.monotonic()
    result = pool.ocr(np.full((*shape, 3), 255, np.uint8))
    assert (result["height"], result["width"]) == shape and result["lines"] == []
    assert time.monotonic() - started < 5.0


def test_limits_are_configurable(ocrset):
    with vo.OcrPool(device="cpu", max_workers=1, max_pixels=10_000) as small:
        with pytest.raises(vo.InvalidInput, match=r"pixels"):
            small.ocr(ocrset / "02_line_pangram.png")
        assert small.ocr(np.full((50, 50), 255, np.uint8))["lines"] == []
    with vo.OcrPool(device="cpu", max_workers=1, max_input_bytes=1000) as tiny:
        with pytest.raises(vo.InvalidInput, match=r"bytes"):
            tiny.ocr((ocrset / "02_line_pangram.png").read_bytes())


def test_a_fortran_ordered_array_reads_like_a_c_ordered_one(pool, pangram):
    array = np.asarray(pangram)
    fortran = np.asfortranarray(array)
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    assert [line["text"] for line in pool.ocr(fortran)["lines"]] == [PANGRAM]


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.bool_])
def test_arrays_of_other_types_are_invalid_input(pool, dtype):
    with pytest.raises(vo.InvalidInput, match="must be uint8"):
        pool.ocr(np.zeros((40, 40, 3), dtype))


def test_a_file_name_that_is_not_utf8_is_invalid_input(pool, tmp_path):
    path = os.path.join(os.fsencode(tmp_path), b"\xff-page.png")
    with open(path, "wb") as f:
        f.write(b"not read")
    with pytest.raises(vo.InvalidInput, match="not UTF-8"):
        pool.ocr(os.fsdecode(path))


@pytest.mark.parametrize("limit", [float("inf"), 1e19, 1e300])
def test_unbounded_time_limits_mean_no_limit(pool, pangram, limit):
    array = np.asarray(pangram)
    result = pool.ocr(array, timeout_s=limit, queue_timeout_s=limit)
    assert [line["text"] for line in result["lines"]] == [PANGRAM]


@pytest.mark.parametrize("limit", [float("nan"), -1.0])
def test_a_time_limit_that_is_no_number_of_seconds_is_a_config_error(pool, limit):
    with pytest.raises(vo.ConfigError, match="timeout_s"):
        pool.ocr(b"x", timeout_s=limit)


def test_a_pool_with_unbounded_limits_serves(pangram):
    with vo.OcrPool(
        device="cpu",
        max_workers=1,
        task_timeout_s=float("inf"),
        admission_timeout_s=float("inf"),
        startup_timeout_s=1e19,
        idle_timeout_s=1e19,
    ) as pool:
        assert pool.ocr(np.asarray(pangram))["lines"][0]["text"] == PANGRAM


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_paths_that_are_not_files_are_invalid_input_at_once(pool, tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "page.png"
        os.mkfifo(path)  # nobody writes to it: reading would block for ever
    elif kind == "device":
        path = "/dev/zero"  # reading would never end
    else:
        path = tmp_path
    started = time.monotonic()
    with pytest.raises(vo.InvalidInput, match="not a regular file"):
        pool.ocr(path, timeout_s=30)
    assert time.monotonic() - started < 10


def test_an_input_too_big_for_a_worker_is_invalid_input_at_submit(make_pool, tmp_path):
    """Bytes, arrays and text layers beyond VRAM_ORCH_MAX_INPUT_BYTES (+1 MiB for the request)
    are refused before any worker sees them: a worker's frame reader would have died on them,
    and the retry killed the next worker too."""
    from vram_orchestrator.testing import ScriptedWorker

    worker = ScriptedWorker(tmp_path)
    pool = make_pool(max_input_bytes=1 << 20, max_workers=1, worker_bin=str(worker.path))
    too_big = [
        b"\x89PNG" + bytes(3 << 20),
        np.zeros((1200, 1200, 3), np.uint8),  # 4.3 MB of pixels, within max_pixels
    ]
    for image in too_big:
        with pytest.raises(vo.InvalidInput, match="VRAM_ORCH_MAX_INPUT_BYTES"):
            pool.submit(image)
    cells = [{"text": "x" * 200, "box": (0, 0, 1, 1)}] * 12_000  # a 2.6 MB text layer
    with pytest.raises(vo.InvalidInput, match="VRAM_ORCH_MAX_INPUT_BYTES"):
        pool.submit_analyze(np.zeros((100, 100, 3), np.uint8), text_cells=cells)
    assert pool.runtime_info()["counters"]["spawned"] == 0 and worker.calls() == []
    # Just within the limit still goes through.
    assert pool.ocr(b"\x89PNG" + bytes((1 << 20) - 100))["lines"][0]["text"] == "scripted"
