"""Chunking: an extracted document → chunk drafts, by RAGFlow's built-in chunk methods.

``chunk_document`` is the entry point; ``CHUNK_METHODS`` maps each ``chunk_method`` name to its function.
Chunking is pure and deterministic (the pipeline derives chunk ids from the chunk index and content), makes
no model calls except ``describe_image`` for ``picture``, and leaves ``auto_keywords``/``auto_questions``
to the pipeline (see ``wants_llm_enrichment``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.rag.types import ChunkDraft, ExtractedDocument

from .errors import (
    ChunkingError,
    InvalidParserConfig,
    ModelRequired,
    NothingToChunk,
    UnknownChunkMethod,
    UnsupportedDocument,
)
from .general import chunk_naive, chunk_one
from .mail import chunk_email
from .media import chunk_picture, chunk_presentation
from .options import ChunkOptions, DescribeImage, parse_options, wants_llm_enrichment
from .paper import chunk_paper
from .structured import chunk_book, chunk_laws, chunk_manual
from .tabular import chunk_qa, chunk_table, chunk_tag

ChunkMethod = Callable[[ExtractedDocument, ChunkOptions], list[ChunkDraft]]

CHUNK_METHODS: dict[str, ChunkMethod] = {
    "naive": chunk_naive,
    "book": chunk_book,
    "email": chunk_email,
    "laws": chunk_laws,
    "manual": chunk_manual,
    "one": chunk_one,
    "paper": chunk_paper,
    "picture": chunk_picture,
    "presentation": chunk_presentation,
    "qa": chunk_qa,
    "table": chunk_table,
    "tag": chunk_tag,
    # RAGFlow's knowledge_graph method chunks as naive (its task executor maps it so); the graph is built apart.
    "knowledge_graph": chunk_naive,
}

__all__ = [
    "CHUNK_METHODS",
    "ChunkMethod",
    "ChunkOptions",
    "ChunkingError",
    "DescribeImage",
    "InvalidParserConfig",
    "ModelRequired",
    "NothingToChunk",
    "UnknownChunkMethod",
    "UnsupportedDocument",
    "chunk_document",
    "parse_options",
    "wants_llm_enrichment",
]


def chunk_document(
    doc: ExtractedDocument,
    chunk_method: str,
    parser_config: Mapping[str, Any],
    *,
    describe_image: DescribeImage | None = None,
    language: str = "English",
) -> list[ChunkDraft]:
    """Cut ``doc`` into chunks the way RAGFlow's ``chunk_method`` does.

    ``parser_config`` is the document's (``chunk_token_num``, ``delimiter``, ``html4excel`` are read);
    ``describe_image`` is the tenant's image2text model, needed by ``picture``; ``language`` is the
    dataset's (it picks the Q&A labels). Raises a ``ChunkingError`` subclass with a user-facing message:
    ``UnknownChunkMethod``, ``InvalidParserConfig``, ``ModelRequired``, ``UnsupportedDocument``, or
    ``NothingToChunk`` when no chunk comes out.
    """
    method = CHUNK_METHODS.get(chunk_method)
    if method is None:
        raise UnknownChunkMethod(chunk_method)
    options = parse_options(parser_config, language=language, describe_image=describe_image)
    if not _has_content(doc):
        raise NothingToChunk(f"'{doc.filename}' has no text to chunk")
    chunks = [chunk for chunk in method(doc, options) if chunk.content.strip()]
    if not chunks:
        raise NothingToChunk(f"The {chunk_method} chunk method found nothing to chunk in '{doc.filename}'")
    return chunks


def _has_content(doc: ExtractedDocument) -> bool:
    if isinstance(doc.meta.get("image"), bytes | bytearray):
        return True
    return any(
        section.text.strip() or section.rows or isinstance(section.meta.get("image"), bytes | bytearray)
        for section in doc.sections
    )
