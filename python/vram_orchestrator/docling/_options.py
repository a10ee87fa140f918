"""Which pipeline runs (``VRAM_ORCH_PIPELINE``) and which conversion options it honours."""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .pipelines import NAMES

__all__ = [
    "PIPELINE_ENV",
    "SUPPORTED_OUTPUTS",
    "UnsupportedOptions",
    "full_pipeline_available",
    "pipeline_mode",
    "unsupported_options",
]

#: ``layout`` (page analysis in our workers: layout, tables, OCR; the default), ``ocr`` (text
#: lines only), ``docling`` (docling's full pipeline, its models set to the CPU, with OCR in
#: our workers) or ``auto`` (= layout).
PIPELINE_ENV = "VRAM_ORCH_PIPELINE"
_PIPELINES = (*NAMES, "auto")

#: The ``to_formats`` the OCR pipeline exports (through docling-core).
SUPPORTED_OUTPUTS = ("md", "json", "text", "html", "doctags")


class UnsupportedOptions(ValueError):
    """Conversion options the chosen pipeline cannot honour (the message lists them)."""


def full_pipeline_available() -> bool:
    """True when docling's full PDF pipeline (it needs torch) can be imported."""
    for name in ("torch", "docling.document_converter"):
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    try:
        import docling.document_converter  # noqa: F401
    except Exception:
        return False
    return True


def pipeline_mode(environ: Mapping[str, str] | None = None, requested: str | None = None) -> str:
    """Resolves ``VRAM_ORCH_PIPELINE`` (or ``requested``) to ``layout``, ``ocr`` or
    ``docling``; ``auto`` is ``layout``, which needs no torch and keeps every model in the
    workers.

    A bad value, or ``docling`` where docling's pipeline cannot be imported, raises
    :class:`~vram_orchestrator.ConfigError` naming the variable, the value and what is allowed.
    """
    env = os.environ if environ is None else environ
    where = "argument pipeline" if requested is not None else PIPELINE_ENV
    raw = requested if requested is not None else env.get(PIPELINE_ENV, "auto")
    value = raw.strip().lower()
    if value not in _PIPELINES:
        raise ConfigError(f"{where}={raw!r} is not allowed: expected layout, ocr, docling or auto")
    if value == "auto":
        return "layout"
    if value == "docling" and not full_pipeline_available():
        raise ConfigError(
            f"{where}={raw!r}: docling's full pipeline is not importable here (it needs torch "
            "and docling with its models: pip install docling). Use layout, ocr or auto."
        )
    return value


def _value(options: Any, name: str, default: Any = None) -> Any:
    with warnings.catch_warnings():  # some fields are deprecated: reading them warns
        warnings.simplefilter("ignore", DeprecationWarning)
        value = getattr(options, name, default)
    return getattr(value, "value", value)


def unsupported_options(options: Any, *, pipeline: str = "ocr") -> list[str]:
    """What in ``options`` (a ``ConvertDocumentsOptions``) the pipeline cannot honour.

    The ``layout`` and ``ocr`` pipelines run no enrichment models (code, formulas, picture
    classification or description, charts). ``ocr`` has no layout model either: it finds no
    tables or pictures, so the options that only shape those (``do_table_structure``,
    ``table_mode``, ``include_images``, ``image_export_mode``) have nothing to act on and are
    accepted. What would change the result and cannot be done is reported.
    """
    if options is None:
        return []
    problems: list[str] = []
    if pipeline in ("ocr", "layout"):
        for flag in (
            "do_code_enrichment",
            "do_formula_enrichment",
            "do_picture_classification",
            "do_picture_description",
            "do_chart_extraction",
            "do_pdf_heading_hierarchy",
            "include_page_images",
        ):
            if _value(options, flag, False):
                problems.append(f"{flag}=true (needs docling's full pipeline)")
        for name in (
            "vlm_pipeline_model",
            "vlm_pipeline_model_local",
            "vlm_pipeline_model_api",
            "vlm_pipeline_preset",
            "vlm_pipeline_custom_config",
            "picture_description_local",
            "picture_description_api",
            "layout_custom_config",
            "table_structure_custom_config",
            "ocr_custom_config",
        ):
            if _value(options, name) not in (None, "", [], {}):
                problems.append(f"{name} is set (needs docling's full pipeline)")
        if _value(options, "pipeline", "standard") != "standard":
            problems.append(f"pipeline={_value(options, 'pipeline')!r} (only 'standard')")
        outputs = [str(getattr(f, "value", f)) for f in (_value(options, "to_formats") or [])]
        bad = [f for f in outputs if f not in SUPPORTED_OUTPUTS]
        if bad:
            problems.append(f"to_formats {bad} (supported: {', '.join(SUPPORTED_OUTPUTS)})")
    for name in ("ocr_preset", "ocr_engine"):
        engine = str(_value(options, name, "auto") or "auto")
        if engine not in ("auto", "vram_orchestrator"):
            problems.append(
                f"{name}={engine!r}: OCR runs in vram-orchestrator's workers "
                "(use 'auto' or 'vram_orchestrator')"
            )
            break
    langs = _value(options, "ocr_lang") or []
    bad_langs = [
        lang
        for lang in langs
        if str(lang).lower() not in ("en", "english", "ch", "chinese", "iso:en", "iso:zh")
    ]
    if bad_langs:
        problems.append(f"ocr_lang {bad_langs}: the PP-OCRv4 models read English and Chinese")
    return problems
