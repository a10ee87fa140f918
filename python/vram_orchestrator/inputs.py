"""What callers hand the pool, checked before anything is queued: images, time limits and
a page's own text. Anything unusable is ``InvalidInput`` (the input) or ``ConfigError`` (an
argument), naming it, never a bare ``TypeError`` or ``ValueError``."""

from __future__ import annotations

import os
from typing import Any, Union

from .errors import ConfigError, InvalidInput
from .settings import INT_MAX

#: What ``ocr``/``submit`` accept: a path, encoded image bytes, or a numpy uint8 array
#: (HxW gray, HxWx3 RGB, HxWx4 RGBA).
ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Any]

#: Text the caller already has for a page (a PDF's text layer), for ``analyze``: dicts with
#: ``text`` and ``box`` (l, t, r, b in image pixels), or ``(text, (l, t, r, b))`` pairs.
TextCells = Any


def time_limit(name: str, value: Any) -> float | None:
    """A per-task time limit: None or seconds >= 0 (huge values, inf included, mean none)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if seconds >= 0:  # NaN fails this too
            return seconds
    raise ConfigError(f"{name}={value!r}: expected seconds >= 0 (inf: no limit)")


def worker_count(value: Any) -> int:
    """A number of workers: an int from 0 to the settings' largest integer."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT_MAX:
        return value
    raise ConfigError(f"workers={value!r}: expected a number of workers >= 0")


def image_source(image: ImageSource, max_pixels: int) -> Any:
    """Paths become absolute strings; buffers bytes; arrays pass through (read in place).
    What cannot be an image, of any type, is ``InvalidInput``."""
    if isinstance(image, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(image))
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"{path!r}: the file name is not UTF-8, so it cannot be sent to a worker; "
                "pass the file's bytes instead"
            ) from None
        return path
    if isinstance(image, memoryview):
        return image.tobytes()
    if isinstance(image, (bytes, bytearray)):
        return image
    if hasattr(image, "__array_interface__") and hasattr(image, "dtype"):
        if str(image.dtype) != "uint8":
            raise InvalidInput(
                f"numpy images must be uint8 (0-255), not {image.dtype}: convert with "
                "np.clip(a, 0, 255).astype(np.uint8) or scale first"
            )
        shape = tuple(image.shape)
        if len(shape) in (2, 3) and shape[0] * shape[1] > max_pixels:
            # Refused before the copy into the frame: a broadcast view may be small in
            # memory and huge as pixels.
            raise InvalidInput(
                f"image is {shape[1]}x{shape[0]} = {shape[0] * shape[1]} pixels, more than "
                f"the limit of {max_pixels} (max_pixels)"
            )
        return image
    raise InvalidInput(
        f"cannot OCR a {type(image).__name__}: pass a path, encoded image bytes "
        "or a numpy uint8 array"
    )


def text_cells(cells: TextCells | None) -> list[tuple[str, list[float]]] | None:
    """``text_cells`` as the native layer takes them; a bad entry is ``InvalidInput``."""
    if cells is None:
        return None
    if isinstance(cells, (str, bytes)) or not hasattr(cells, "__iter__"):
        raise InvalidInput(f"text_cells={cells!r}: expected a list of cells")
    out = []
    for i, cell in enumerate(cells):
        try:
            text, box = (cell["text"], cell["box"]) if isinstance(cell, dict) else cell
            left, top, right, bottom = (float(v) for v in box)
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(
                f"text_cells[{i}] = {cell!r}: expected {{'text': str, 'box': (l, t, r, b)}} "
                "or (text, (l, t, r, b))"
            ) from e
        out.append((str(text), [left, top, right, bottom]))
    return out
