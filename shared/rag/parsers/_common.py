"""Helpers shared by the format parsers: cell cleaning, table sections, paragraphs, the final check."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

from shared.rag.types import ExtractedDocument, Section

from .errors import EmptyDocument

_NUMBER = re.compile(r"^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?%?$")
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def cell_text(value: Any) -> str:
    """A spreadsheet/table cell as text: integral floats without ``.0``, dates in ISO form, None as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def normalize_rows(rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    """Cells as text, fully empty rows dropped, trailing empty columns trimmed, rows padded to one width."""
    cleaned = [[cell_text(cell) for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    width = max((max(i + 1 for i, cell in enumerate(row) if cell) for row in cleaned), default=0)
    return [row[:width] + [""] * (width - len(row)) for row in cleaned]


def looks_like_header(rows: Sequence[Sequence[str]]) -> bool:
    """A first row is a header when it has a data row under it and is all non-empty, non-numeric labels."""
    if len(rows) < 2 or not rows[0]:
        return False
    return all(cell and not _NUMBER.match(cell.replace(" ", "")) for cell in rows[0])


def table_text(rows: Sequence[Sequence[str]]) -> str:
    """Plain-text rendering of a table: one line per row, cells separated by `` | ``."""
    return "\n".join(" | ".join(row) for row in rows)


def table_section(
    rows: Iterable[Sequence[Any]],
    *,
    has_header: bool | None = None,
    page: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Section | None:
    """A ``table`` section, or None when the table holds no text. ``has_header=None`` guesses it."""
    cleaned = normalize_rows(rows)
    if not cleaned:
        return None
    header = looks_like_header(cleaned) if has_header is None else has_header
    return Section(
        text=table_text(cleaned), kind="table", page=page, rows=cleaned, has_header=header, meta=dict(meta or {})
    )


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def tidy_text(text: str) -> str:
    """Trailing spaces removed and runs of blank lines collapsed to one, ends stripped."""
    text = _TRAILING_SPACE.sub("\n", normalize_newlines(text))
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


def paragraphs(text: str, *, page: int | None = None) -> list[Section]:
    """Text sections, one per blank-line separated paragraph (line breaks inside a paragraph kept)."""
    return [Section(text=part.strip(), page=page) for part in _BLANK_LINES.split(tidy_text(text)) if part.strip()]


def finish(
    filename: str,
    sections: list[Section],
    *,
    pages: int | None = None,
    meta: dict[str, Any] | None = None,
) -> ExtractedDocument:
    """The document, or EmptyDocument when no section carries text."""
    kept = [section for section in sections if section.text.strip()]
    if not kept:
        raise EmptyDocument(f"{filename}: no text found in the file")
    return ExtractedDocument(filename=filename, sections=kept, pages=pages, meta=dict(meta or {}))
