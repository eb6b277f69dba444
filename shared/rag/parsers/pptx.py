"""PowerPoint .pptx (python-pptx): one ``slide`` section per slide with the text of all its shapes.

Shapes are read top-to-bottom, left-to-right (their z-order is not the reading order), group shapes are
opened, tables are rendered as `` | `` rows (and kept as rows in ``meta["tables"]``), and the speaker notes
close the slide's text.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import pptx
from lxml.etree import XMLSyntaxError
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.exc import PackageNotFoundError
from pptx.shapes.base import BaseShape

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, normalize_rows, table_text, tidy_text
from .errors import CorruptDocument

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def _position(shape: BaseShape) -> tuple[int, int]:
    try:
        return (shape.top or 0, shape.left or 0)
    except (KeyError, ValueError, AttributeError):  # a placeholder whose layout lost its twin
        return (0, 0)


def _shapes(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    for shape in sorted(shapes, key=_position):
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)  # type: ignore[attr-defined]
        else:
            yield shape


def _slide_section(slide: Any, number: int) -> Section | None:
    parts: list[str] = []
    tables: list[list[list[str]]] = []
    for shape in _shapes(slide.shapes):
        if getattr(shape, "has_table", False):
            rows = normalize_rows([cell.text for cell in row.cells] for row in shape.table.rows)  # type: ignore[attr-defined]
            if rows:
                tables.append(rows)
                parts.append(table_text(rows))
        elif shape.has_text_frame:
            text = tidy_text(shape.text_frame.text)  # type: ignore[attr-defined]
            if text:
                parts.append(text)
    meta: dict[str, Any] = {}
    title = slide.shapes.title
    if title is not None and title.has_text_frame and title.text_frame.text.strip():
        meta["title"] = title.text_frame.text.strip()
    if tables:
        meta["tables"] = tables
    if slide.has_notes_slide:
        notes_frame = slide.notes_slide.notes_text_frame
        notes = tidy_text(notes_frame.text) if notes_frame is not None else ""
        if notes:
            meta["notes"] = notes
            parts.append(f"Notes: {notes}")
    if not parts:
        return None
    return Section(text="\n".join(parts), kind="slide", page=number, meta=meta)


def parse(filename: str, data: bytes) -> ExtractedDocument:
    if data.startswith(_OLE_MAGIC):
        raise CorruptDocument(f"{filename}: this is a legacy PowerPoint .ppt file, not .pptx; save it as .pptx")
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
        slides = list(presentation.slides)
        sections = [
            section
            for number, slide in enumerate(slides, start=1)
            if (section := _slide_section(slide, number)) is not None
        ]
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise CorruptDocument(f"{filename}: the file is damaged or is not a PowerPoint .pptx presentation") from exc
    return finish(filename, sections, pages=len(slides))
