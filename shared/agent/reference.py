"""The chunks a turn retrieved, as an answer's ``reference``: RAGFlow's agent shape, chunks keyed by a small
number (the ``ID`` the model cites as ``[ID:n]``) and documents keyed by name."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

#: RAGFlow numbers an agent's chunks by a hash of their id modulo 500, so a chunk keeps its number across
#: the retrievals of one turn however many components fetched it.
ID_SPACE = 500
CITATION = re.compile(r"\[ID:\s*(\d+)\]")


def reference_number(chunk_id: str) -> int:
    """The number RAGFlow gives chunk ``chunk_id`` in an agent's reference (before collisions are resolved)."""
    return int(hashlib.sha1(chunk_id.encode("utf-8")).hexdigest(), 16) % ID_SPACE


def cites(text: str) -> bool:
    """True when ``text`` cites a chunk (``[ID:n]``)."""
    return CITATION.search(text) is not None


def reference_chunk(chunk: Mapping[str, Any]) -> dict[str, Any]:
    """A retrieved chunk in the reference's shape."""
    return {
        "id": chunk.get("id"),
        "content": chunk.get("content"),
        "document_id": chunk.get("document_id"),
        "document_name": chunk.get("document_keyword", chunk.get("document_name", "")),
        "dataset_id": chunk.get("dataset_id"),
        "image_id": chunk.get("image_id", ""),
        "positions": chunk.get("positions", []),
        "url": None,
        "similarity": chunk.get("similarity"),
        "vector_similarity": chunk.get("vector_similarity"),
        "term_similarity": chunk.get("term_similarity"),
        "doc_type": "",
    }


class Reference:
    """The chunks of one turn. Components may add to it from parallel branches."""

    def __init__(self, stored: Mapping[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self.chunks: dict[str, dict[str, Any]] = dict((stored or {}).get("chunks") or {})
        self.doc_aggs: dict[str, dict[str, Any]] = dict((stored or {}).get("doc_aggs") or {})
        self._numbers = {str(chunk.get("id")): key for key, chunk in self.chunks.items()}

    def add(self, chunks: Sequence[Mapping[str, Any]], doc_aggs: Sequence[Mapping[str, Any]]) -> list[int]:
        """Add retrieved chunks; returns their numbers, in order. Colliding hashes take the next free number."""
        numbers = []
        with self._lock:
            for chunk in chunks:
                chunk_id = str(chunk.get("id"))
                key = self._numbers.get(chunk_id)
                if key is None:
                    number = reference_number(chunk_id)
                    while str(number) in self.chunks:
                        number = (number + 1) % ID_SPACE if len(self.chunks) < ID_SPACE else number + 1
                    key = str(number)
                    self._numbers[chunk_id] = key
                    self.chunks[key] = reference_chunk(chunk)
                numbers.append(int(key))
            for doc in doc_aggs:
                name = str(doc.get("doc_name", ""))
                if name not in self.doc_aggs:
                    self.doc_aggs[name] = {"doc_name": name, "doc_id": doc.get("doc_id"), "count": doc.get("count", 0)}
        return numbers

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"chunks": dict(self.chunks), "doc_aggs": dict(self.doc_aggs)}

    def __bool__(self) -> bool:
        return bool(self.chunks)


def knowledge_text(chunks: Sequence[Mapping[str, Any]], numbers: Sequence[int]) -> str:
    """Retrieved chunks as a model reads them: RAGFlow's ``ID: n`` blocks with the document's title."""
    blocks = []
    for chunk, number in zip(chunks, numbers, strict=True):
        title = chunk.get("document_keyword") or chunk.get("document_name") or ""
        blocks.append(f"ID: {number}\n├── Title: {title}\n└── Content:\n{chunk.get('content', '')}")
    return "\n\n".join(blocks)


CITATION_GUIDE = (
    "\n\n# Citations\n"
    "The knowledge passages you were given are numbered (`ID: n`). When a sentence of your answer uses a "
    "passage, end that sentence with its citation in the form [ID:n], for example [ID:12]. Cite only "
    "passages you used, at most four per sentence, and never invent an ID."
)
