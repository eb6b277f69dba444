"""Tables as chunk text.

Tables render as HTML ``<table>`` (as RAGFlow stores them), except spreadsheet rows in the general method
when ``html4excel`` is off: those become ``"header: value; header: value"`` lines, as RAGFlow's Excel
parser makes them. Columns without a header are named ``column_1``, ``column_2`` ...
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from shared.rag.tokens import count_tokens
from shared.rag.types import ChunkDraft, Section

from .options import ChunkOptions
from .packing import Piece, pack

SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xls", ".xlsm", ".xlsb", ".ods", ".csv", ".tsv"})


def is_spreadsheet(filename: str) -> bool:
    return PurePosixPath(filename.lower()).suffix in SPREADSHEET_SUFFIXES


def header_names(cells: Sequence[str], width: int) -> list[str]:
    """Column names: the header cells, ``column_N`` where a cell is blank, duplicates suffixed ``_2``..."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for index in range(width):
        name = cells[index].strip() if index < len(cells) else ""
        name = name or f"column_{index + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        names.append(name)
    return names


def table_parts(section: Section) -> tuple[list[str] | None, list[list[str]]]:
    """(header cells or None, data rows), cells stripped."""
    rows = [[str(cell).strip() for cell in row] for row in section.rows or []]
    if section.has_header and rows:
        return rows[0], rows[1:]
    return None, rows


def column_names(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> list[str]:
    width = max([len(header or [])] + [len(row) for row in rows])
    return header_names(header or [], width)


def row_fields(names: Sequence[str], row: Sequence[str]) -> dict[str, str]:
    """Non-empty cells of ``row`` by column name."""
    return {names[i]: cell for i, cell in enumerate(row) if cell and i < len(names)}


def row_text(fields: Mapping[str, str]) -> str:
    return "; ".join(f"{name}: {value}" for name, value in fields.items())


def table_html(section: Section) -> str:
    """The whole table as one HTML ``<table>``."""
    header, rows = table_parts(section)
    return _opening(section, header) + "".join(_row_html(row) for row in rows) + "</table>"


def table_lines(section: Section) -> list[str]:
    """One ``"header: value; ..."`` line per data row (rows without a value are left out)."""
    header, rows = table_parts(section)
    names = column_names(header, rows)
    return [text for text in (row_text(row_fields(names, row)) for row in rows) if text]


def render_table(section: Section, options: ChunkOptions, filename: str) -> str:
    """A table as chunk text: row lines for spreadsheets without ``html4excel``, else HTML."""
    if not section.rows:
        return section.text
    if is_spreadsheet(filename) and not options.html4excel:
        return "\n".join(table_lines(section))
    return table_html(section)


def table_chunks(
    section: Section, limit: int, *, prefix: str = "", meta: Mapping[str, Any] | None = None
) -> list[ChunkDraft]:
    """An HTML table as chunks of at most ``limit`` tokens: whole rows, the header row repeated in each.

    A row too large for a chunk on its own is written as ``header: value`` text and split by tokens.
    """
    header, rows = table_parts(section)
    opening, closing = _opening(section, header), "</table>"
    room = limit - count_tokens((prefix.strip() + "\n" if prefix.strip() else "") + opening + closing)
    if room < 1:
        # Header alone doesn't fit: fall back to text rows, the only form that can be cut anywhere.
        return pack(_row_pieces(section, header, rows), limit, prefix=prefix, meta=meta)
    chunks: list[ChunkDraft] = []
    run: list[Piece] = []
    names = column_names(header, rows)
    for row in rows:
        row_markup = _row_html(row)
        tokens = count_tokens(row_markup)
        if tokens <= room:
            run.append(Piece(row_markup, tokens, section.page))
            continue
        chunks.extend(pack(run, limit, prefix=prefix, opening=opening, closing=closing, meta=meta))
        run = []
        text = row_text(row_fields(names, row))
        chunks.extend(pack([Piece(text, count_tokens(text), section.page)], limit, prefix=prefix, meta=meta))
    chunks.extend(pack(run, limit, prefix=prefix, opening=opening, closing=closing, meta=meta))
    if not rows and header:
        # A header without data rows still says something (column names); keep it if it fits.
        content = (prefix.strip() + "\n" if prefix.strip() else "") + opening + closing
        pages = [section.page] if section.page is not None else []
        chunks.append(ChunkDraft(content=content, page_numbers=pages, meta=dict(meta or {})))
    return chunks


def _row_pieces(section: Section, header: list[str] | None, rows: list[list[str]]) -> list[Piece]:
    names = column_names(header, rows)
    pieces: list[Piece] = []
    for row in rows:
        text = row_text(row_fields(names, row))
        if text:
            pieces.append(Piece(text + "\n", count_tokens(text + "\n"), section.page))
    return pieces


def _opening(section: Section, header: Sequence[str] | None) -> str:
    caption = section.meta.get("caption")
    markup = "<table>"
    if isinstance(caption, str) and caption.strip():
        markup += f"<caption>{html.escape(caption.strip())}</caption>"
    if header:
        markup += "<tr>" + "".join(f"<th>{html.escape(cell)}</th>" for cell in header) + "</tr>"
    return markup


def _row_html(row: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
