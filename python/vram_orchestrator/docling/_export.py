"""Exports of converted documents (docling-core) and the task result models of jobkit."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import PurePosixPath
from typing import Any

from ._pages import ConvertedDocument

__all__ = ["build_task_result", "export_content"]

_FILE_SUFFIX = {
    "md": ".md",
    "json": ".json",
    "html": ".html",
    "text": ".txt",
    "doctags": ".doctags.txt",
}


def _formats(options: Any) -> list[str]:
    formats = getattr(options, "to_formats", None) if options is not None else None
    values = [str(getattr(f, "value", f)) for f in (formats or ["md"])]
    return list(dict.fromkeys(values))


def _image_mode(options: Any) -> Any:
    from docling_core.types.doc import ImageRefMode

    mode = getattr(options, "image_export_mode", None) if options is not None else None
    return ImageRefMode(getattr(mode, "value", mode) or "placeholder")


def _rendered(doc: Any, fmt: str, options: Any) -> Any:
    placeholder = getattr(options, "md_page_break_placeholder", "") if options else ""
    image_mode = _image_mode(options)
    if fmt == "json":
        return doc
    if fmt == "md":
        return doc.export_to_markdown(
            image_mode=image_mode, page_break_placeholder=placeholder or None
        )
    if fmt == "html":
        return doc.export_to_html(image_mode=image_mode)
    if fmt == "text":
        return doc.export_to_text()
    if fmt == "doctags":
        return doc.export_to_doctags()
    raise ValueError(f"to_formats {fmt!r} is not supported")


def export_content(converted: ConvertedDocument, options: Any) -> Any:
    """An ``ExportDocumentResponse`` with the formats of ``options.to_formats``."""
    from docling.datamodel.service.responses import ExportDocumentResponse

    response = ExportDocumentResponse(filename=converted.name)
    if converted.document is None:
        return response
    fields = {"md": "md_content", "json": "json_content", "html": "html_content"}
    fields |= {"text": "text_content", "doctags": "doctags_content"}
    for fmt in _formats(options):
        setattr(response, fields[fmt], _rendered(converted.document, fmt, options))
    return response


def _error_items(converted: ConvertedDocument) -> list[Any]:
    from docling.datamodel.base_models import DoclingComponentType, ErrorItem

    return [
        ErrorItem(
            component_type=DoclingComponentType.MODEL,
            module_name="vram_orchestrator.docling",
            error_message=message,
            page_no=page_no,
        )
        for page_no, message in converted.errors
    ]


def _export_result(converted: ConvertedDocument, options: Any) -> Any:
    from docling.datamodel.base_models import ConversionStatus
    from docling.datamodel.service.responses import ExportResult

    return ExportResult(
        document=export_content(converted, options),
        status=ConversionStatus(converted.status),
        errors=_error_items(converted),
    )


def _zip(docs: list[ConvertedDocument], options: Any, doc_version: str | None) -> bytes:
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for converted in docs:
            if converted.document is None:
                continue
            stem = PurePosixPath(converted.name).stem or "document"
            base, n = stem, 1
            while stem in used:
                n += 1
                stem = f"{base}_{n}"
            used.add(stem)
            for fmt in _formats(options):
                if fmt == "json":
                    data = converted.document.export_to_dict()
                    if doc_version:
                        from docling_jobkit.datamodel.exportable_document import (
                            project_document_dict,
                        )

                        data = project_document_dict(converted.document, doc_version) or data
                    text = json.dumps(data, indent=2)
                else:
                    text = _rendered(converted.document, fmt, options)
                archive.writestr(stem + _FILE_SUFFIX[fmt], text)
    return buffer.getvalue()


def build_task_result(
    docs: list[ConvertedDocument],
    options: Any,
    target_kind: str,
    seconds: float,
    doc_version: str | None = None,
) -> Any:
    """``DoclingTaskResult``: ``ExportResult`` for one document in the body, else a zip."""
    from docling.datamodel.service.responses import DoclingTaskResult, ZipArchiveResult

    succeeded = sum(d.status == "success" for d in docs)
    partial = sum(d.status == "partial_success" for d in docs)
    if target_kind == "inbody" and len(docs) == 1:
        result: Any = _export_result(docs[0], options)
    else:
        name = f"{PurePosixPath(docs[0].name).stem}.zip" if len(docs) == 1 else None
        result = ZipArchiveResult(content=_zip(docs, options, doc_version), filename=name)
    return DoclingTaskResult(
        result=result,
        num_converted=len(docs),
        num_succeeded=succeeded,
        num_partially_succeeded=partial,
        num_failed=len(docs) - succeeded - partial,
        processing_time=seconds,
    )
