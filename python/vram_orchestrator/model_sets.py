"""OCR model sets: named groups of det, cls and rec models (with the page orientation, layout
and table models) and their publisher's settings.

The catalogue is ``model_sets.json`` beside this file; the worker embeds the same file, so
the files fetched here and the settings the engine applies come from one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["ModelFile", "ModelSet", "default_name", "get", "names"]

CATALOGUE = Path(__file__).with_name("model_sets.json")
#: The set the reference profile (RapidOCR 1.4.4 parity) runs on.
REFERENCE_SET = "ppocr-v4"


@dataclass(frozen=True)
class ModelFile:
    """One file of a set: its role (det, cls, rec, rec_fallback, dict, orientation, layout,
    table), its name in the model folder, and where it comes from (a file inside a PyPI
    wheel) with its sha256."""

    role: str
    name: str
    package: str
    path: str
    sha256: str


@dataclass(frozen=True)
class ModelSet:
    """A named model set (see ``model_sets.json`` for each one's settings and sources)."""

    name: str
    summary: str
    config: str
    files: tuple[ModelFile, ...]

    @property
    def packages(self) -> list[str]:
        """The wheels (``name==version``) its files come from, in first-use order."""
        return list(dict.fromkeys(f.package for f in self.files))


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return data


def names() -> list[str]:
    """Every set's name."""
    return sorted(_catalogue()["sets"])


def default_name() -> str:
    """The set used when none is chosen."""
    name: str = _catalogue()["default"]
    return name


def get(name: str) -> ModelSet:
    """The set called ``name`` (KeyError for an unknown one)."""
    raw = _catalogue()["sets"][name]
    files = tuple(
        ModelFile(role, f["name"], f["package"], f["path"], f["sha256"])
        for role, f in raw["files"].items()
    )
    return ModelSet(name, raw["summary"], raw["config"], files)
