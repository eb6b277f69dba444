"""The ``naive`` (General) and ``one`` methods, and the text flow every structure-aware method reuses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.rag.types import ChunkDraft, ExtractedDocument, Section

from .options import ChunkOptions
from .packing import PieceStream, pack
from .tables import is_spreadsheet, render_table, table_chunks, table_lines


def flow_chunks(
    sections: Iterable[Section],
    options: ChunkOptions,
    *,
    filename: str,
    prefix: str = "",
    meta: Mapping[str, Any] | None = None,
) -> list[ChunkDraft]:
    """Sections in reading order → chunks of at most ``chunk_token_num`` tokens.

    Text is cut at the delimiters and merged greedily; headings stay with the text after them; a table
    is a chunk (or several) of its own, except spreadsheet rows without ``html4excel``, which merge like
    text lines. ``prefix`` (a title path) opens every chunk.
    """
    limit = options.chunk_token_num
    spreadsheet = is_spreadsheet(filename)
    chunks: list[ChunkDraft] = []
    stream = PieceStream(options.delimiters)

    def flush() -> None:
        chunks.extend(pack(stream.take(), limit, prefix=prefix, meta=meta))

    for section in sections:
        if section.kind == "table" and section.rows:
            if spreadsheet and not options.html4excel:
                stream.cut()
                for line in table_lines(section):
                    stream.add_piece(line, page=section.page)
                stream.cut()
            else:
                flush()
                chunks.extend(table_chunks(section, limit, prefix=prefix, meta=meta))
            continue
        if not section.text.strip():
            continue
        if section.kind == "heading":
            stream.add_piece(" ".join(section.text.split()), page=section.page, heading=True)
        else:
            stream.add_text(section.text, page=section.page)
    flush()
    return chunks


def chunk_naive(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """General: delimiter pieces merged up to ``chunk_token_num``; tables on their own."""
    return flow_chunks(doc.sections, options, filename=doc.filename)


def chunk_one(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """One: the whole document as a single chunk, whatever its size (as RAGFlow does)."""
    parts: list[str] = []
    for section in doc.sections:
        text = render_table(section, options, doc.filename) if section.kind == "table" else section.text
        if text.strip():
            parts.append(text.strip())
    if not parts:
        return []
    pages = sorted({s.page for s in doc.sections if s.page is not None})
    return [ChunkDraft(content="\n".join(parts), page_numbers=pages)]
