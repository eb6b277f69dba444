"""Chunk use cases: add, list, update, delete. The metadata store answers reads (read-after-write holds
even when the search index lags); every write goes to the store first, then to the index."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.errors import DataError, FlowlessError, RetCode
from shared.ids import new_id, now_ms
from shared.ports.embedder import EmbeddingError
from shared.ports.search import SearchIndex
from shared.rag.embedding import embed_with_title
from shared.rag.vectors import decode_vector, encode_vector
from shared.repos.datasets import DatasetRepository
from shared.repos.documents import DocumentRepository, Record
from shared.repos.tenants import TenantRepository
from shared.schemas.chunks import AddChunkRequest, DeleteChunksRequest, ListChunksQuery, UpdateChunkRequest
from shared.services.documents import document_view
from shared.services.ingestion import EmbedderFactory, embedding_text, title_weight, to_indexed


class ChunkNotFound(FlowlessError):
    code = RetCode.NOT_FOUND


#: Share of a search's terms a chunk must hold to match (RAGFlow's full-text ``minimum_should_match``).
MIN_TERM_MATCH = 0.3


def keyword_filter(keywords: str) -> Callable[[Mapping[str, Any], str], bool] | None:
    """The chunk list's ``keywords`` as RAGFlow's full-text match: a chunk matches when it holds at least 30%
    of the search's terms (analyzed as the search index does) in its content, important keywords or
    questions — or, for a chunk made by parsing, in its document's name (RAGFlow indexes the title with
    parsed chunks only). ``None`` when the keywords hold no term (e.g. only stopwords): no filter."""
    from shared.rag.text_analysis import analyze

    terms = set(analyze(keywords))
    if not terms:
        return None
    needed = max(1, math.floor(MIN_TERM_MATCH * len(terms)))

    def matches(chunk: Mapping[str, Any], document_name: str) -> bool:
        fields = [chunk["content"], *chunk.get("important_keywords", []), *chunk.get("questions", [])]
        if not chunk.get("added_by_hand"):
            fields.append(document_name)
        return len(terms.intersection(analyze("\n".join(fields)))) >= needed

    return matches


def chunk_view(chunk: Mapping[str, Any], document_name: str) -> dict[str, Any]:
    """A stored chunk as the list endpoint shows it."""
    return {
        "id": chunk["id"],
        "content": chunk["content"],
        "document_id": chunk["document_id"],
        "docnm_kwd": document_name,
        "important_keywords": list(chunk.get("important_keywords") or []),
        "questions": list(chunk.get("questions") or []),
        "dataset_id": chunk["dataset_id"],
        "image_id": chunk.get("image_id", ""),
        "available": bool(chunk.get("available", True)),
        "positions": list(chunk.get("positions") or []),
    }


class ChunkService:
    def __init__(
        self,
        *,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        tenants: TenantRepository,
        index: Callable[[], SearchIndex],
        embedder_for: EmbedderFactory,
    ) -> None:
        self._datasets = datasets
        self._documents = documents
        self._tenants = tenants
        self._index = index
        self._embedder_for = embedder_for

    def _owned(self, tenant_id: str, dataset_id: str, document_id: str) -> tuple[Record, Record]:
        dataset = self._datasets.get(tenant_id, dataset_id)
        if dataset is None:
            raise DataError(f"You don't own the dataset {dataset_id}.")
        document = self._documents.get(dataset_id, document_id)
        if document is None:
            raise DataError(f"You don't own the document {document_id}.")
        return dataset, document

    def _vector(self, dataset: Record, document: Record, content: str, questions: list[str]) -> list[float]:
        tenant = self._tenants.get(document["tenant_id"])
        if tenant is None:
            raise DataError("Tenant not found")
        try:
            embedder = self._embedder_for(dataset["embedding_model"], tenant)
            vectors = embed_with_title(
                embedder, document["name"], [embedding_text(content, questions)], title_weight(document)
            )
        except EmbeddingError as exc:
            raise DataError(f"Embedding failed: {exc.message}") from exc
        return [float(x) for x in vectors[0]]

    def add(self, tenant_id: str, dataset_id: str, document_id: str, request: AddChunkRequest) -> dict[str, Any]:
        """Add a chunk by hand; its vector is computed from its questions when given, else its content."""
        from shared.rag.tokens import count_tokens

        dataset, document = self._owned(tenant_id, dataset_id, document_id)
        content, keywords, questions = request.content, request.important_keywords, request.questions
        vector = self._vector(dataset, document, content, questions)
        now = datetime.now()
        chunk: Record = {
            "id": hashlib.blake2b(f"{document_id}:{new_id()}".encode(), digest_size=8).hexdigest(),
            "document_id": document_id,
            "dataset_id": dataset_id,
            "tenant_id": tenant_id,
            "content": content,
            "important_keywords": keywords,
            "questions": questions,
            "tag_kwd": [],
            "page_numbers": [],
            "positions": [],
            "image_id": "",
            "available": True,
            "added_by_hand": True,  # not matched through the document's name (see keyword_filter)
            "token_count": count_tokens(content),
            "create_time": now.strftime("%Y-%m-%d %H:%M:%S"),
            "create_timestamp": now.timestamp(),
            # hand-added chunks list after the parsed ones, in the order they were added
            "order": f"9{now_ms():013d}",
            "vector": encode_vector(vector),
        }
        self._documents.add_chunk(document, chunk)
        self._index().upsert([to_indexed(chunk, document["name"], vector, enabled=document["status"] == "1")])
        return {
            "chunk": {
                key: chunk[key]
                for key in (
                    "id",
                    "content",
                    "document_id",
                    "dataset_id",
                    "important_keywords",
                    "questions",
                    "create_time",
                    "create_timestamp",
                )
            }
        }

    def list_chunks(self, tenant_id: str, dataset_id: str, document_id: str, query: ListChunksQuery) -> dict[str, Any]:
        """A page of a document's chunks in document order, with the document and the total."""
        _, document = self._owned(tenant_id, dataset_id, document_id)
        page, size = query.page, query.page_size
        result: dict[str, Any] = {"total": 0, "chunks": [], "doc": document_view(document)}
        chunk_id = query.id
        if chunk_id:
            chunk = self._documents.get_chunk(document_id, chunk_id)
            if chunk is None:
                raise ChunkNotFound(f"Chunk not found: {dataset_id}/{chunk_id}")
            result.update(total=1, chunks=[chunk_view(chunk, document["name"])])
            return result
        chunks = self._documents.chunks_of(document_id)
        matches = keyword_filter(query.keywords)
        if matches is not None:
            chunks = [c for c in chunks if matches(c, document["name"])]
        start = (page - 1) * size
        result.update(total=len(chunks), chunks=[chunk_view(c, document["name"]) for c in chunks[start : start + size]])
        return result

    def update(
        self, tenant_id: str, dataset_id: str, document_id: str, chunk_id: str, request: UpdateChunkRequest
    ) -> None:
        """Change a chunk's content (re-embedded), keywords, questions, positions or availability."""
        from shared.rag.tokens import count_tokens

        dataset, document = self._owned(tenant_id, dataset_id, document_id)
        current = self._documents.get_chunk(document_id, chunk_id)
        if current is None:
            raise DataError(f"Can't find this chunk {chunk_id}")
        new = {**current, **request.changes()}
        if document["chunk_method"] == "qa" and new["content"] != current["content"]:
            parts = [p for p in new["content"].replace("\t", "\n").split("\n") if len(p) > 1]
            if len(parts) != 2:
                raise DataError("Q&A must be separated by TAB/ENTER key.")
        reembed = new["content"] != current["content"] or new.get("questions") != current.get("questions")
        vector: list[float] | None = None
        if reembed:
            vector = self._vector(dataset, document, new["content"], list(new.get("questions") or []))
            new["vector"] = encode_vector(vector)
            new["token_count"] = count_tokens(new["content"])
        self._documents.replace_chunk(document, current, new)
        if vector is None:
            vector = [float(x) for x in decode_vector(new["vector"])]
        self._index().upsert([to_indexed(new, document["name"], vector, enabled=document["status"] == "1")])

    def delete(
        self, tenant_id: str, dataset_id: str, document_id: str, request: DeleteChunksRequest
    ) -> dict[str, Any] | None:
        """Delete chunks (``request.scope()``: the listed ones, all of this document's, or none). Like RAGFlow,
        the chunks found are deleted before a shortfall is reported. Never beyond this document (RAGFlow's
        engine wipes the tenant's whole index when no ids are given)."""
        _, document = self._owned(tenant_id, dataset_id, document_id)
        scope = request.scope()
        if scope == "none":
            return None
        existing = {c["id"]: c for c in self._documents.chunks_of(document_id)}
        duplicates: list[str] = []
        unique: list[str] = []
        if scope == "listed":
            unique, duplicates = request.unique_ids()
            targets = [existing[i] for i in unique if i in existing]
        else:
            targets = list(existing.values())
        self._documents.remove_chunks(document, targets)
        self._index().delete_chunks(tenant_id, dataset_id, [c["id"] for c in targets])
        if scope == "listed" and len(targets) != len(unique):
            raise DataError(f"rm_chunk deleted chunks {len(targets)}, expect {len(unique)}")
        if duplicates:
            return {"success_count": len(targets), "errors": duplicates}
        return None
