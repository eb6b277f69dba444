"""``email``: the header block (From/To/Subject/Date, attachment names), the body, then each attachment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.rag.types import ChunkDraft, ExtractedDocument, Section

from .general import flow_chunks
from .options import ChunkOptions
from .packing import PieceStream, pack

_HEADER_FIELDS = ("From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date")


def chunk_email(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Email: a header chunk, body chunks as in General, and each attachment's text under its name."""
    header_lines = [s.text.strip() for s in doc.sections if s.kind == "email_header" and s.text.strip()]
    if not header_lines:
        header_lines = _header_from_meta(doc.meta)
    attachments: dict[str, list[Section]] = {name: [] for name in _listed_attachments(doc.meta)}
    body: list[Section] = []
    for section in doc.sections:
        name = section.meta.get("attachment")
        if isinstance(name, str) and name:
            attachments.setdefault(name, []).append(section)
        elif section.kind != "email_header":
            body.append(section)
    if attachments:
        header_lines.append("Attachments: " + ", ".join(attachments))
    chunks: list[ChunkDraft] = []
    stream = PieceStream(options.delimiters)
    for line in "\n".join(header_lines).split("\n"):
        stream.add_piece(line)
    chunks.extend(pack(stream.take(), options.chunk_token_num, meta={"part": "header"}))
    chunks.extend(flow_chunks(body, options, filename=doc.filename, meta={"part": "body"}))
    for name, sections in attachments.items():
        meta = {"part": "attachment", "attachment": name}
        chunks.extend(flow_chunks(sections, options, filename=name, prefix=f"Attachment: {name}", meta=meta))
    return chunks


def _header_from_meta(meta: Mapping[str, Any]) -> list[str]:
    by_key = {str(key).casefold(): value for key, value in meta.items()}
    lines = []
    for name in _HEADER_FIELDS:
        value = by_key.get(name.casefold())
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        if value:
            lines.append(f"{name}: {value}")
    return lines


def _listed_attachments(meta: Mapping[str, Any]) -> list[str]:
    listed = meta.get("attachments")
    names: list[str] = []
    if isinstance(listed, list | tuple):
        for item in listed:
            name = item.get("filename") or item.get("name") if isinstance(item, Mapping) else item
            if isinstance(name, str) and name.strip() and name.strip() not in names:
                names.append(name.strip())
    return names
