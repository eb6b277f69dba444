"""Search index port. The index is derived data: the metadata store holds every chunk (with its vector),
so the index can always be rebuilt, and read-after-write API calls never depend on index refresh.

The index finds candidates; it does not decide the final ranking. ``search`` returns raw per-chunk
signals (a text-match score and the cosine similarity of the vectors) for the top candidates of
each kind, and ``shared/rag`` turns them into RAGFlow's ``similarity`` identically for every engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

ChunkKind = Literal["chunk", "entity", "relation", "community_report"]
#: Ordinary chunks: the only kind plain retrieval ever returns.
CHUNK: Final = "chunk"
#: Knowledge-graph records (``shared.rag.graphrag``): searched only when asked for by kind.
GRAPH_KINDS: Final[tuple[ChunkKind, ...]] = ("entity", "relation", "community_report")
CHUNK_KINDS: Final[tuple[ChunkKind, ...]] = (CHUNK, *GRAPH_KINDS)


@dataclass
class IndexedChunk:
    """What the index stores for one chunk. ``vector`` is L2-normalized (cosine = dot product).

    ``kind`` separates the knowledge graph's records (entities, relations, community reports; their
    ``document_id`` is empty) from ordinary chunks: a search finds one kind only, chunks by default.
    """

    id: str
    tenant_id: str
    dataset_id: str
    document_id: str
    document_name: str
    content: str
    vector: Sequence[float]
    keywords: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    available: bool = True
    page_numbers: list[int] = field(default_factory=list)
    create_time: int = 0
    kind: ChunkKind = CHUNK


#: The most text matches a search returns (RAGFlow's default ``top_k``), whatever ``top_k`` a query asks for.
TEXT_CANDIDATES = 1024


@dataclass
class SearchQuery:
    """Candidate recall within one tenant's datasets (and optionally some of their documents).

    ``text`` drives full-text matching (content, keywords and questions), ``vector`` the k-NN part;
    either may be absent. ``top_k`` bounds the vector candidates only, as in RAGFlow's Elasticsearch search
    (a k-NN clause beside the text query); text matches are bounded by ``text_limit``, a fixed guard on the
    merge's cost. ``top_k`` ≤ 0 finds nothing. Unavailable chunks never match.
    ``kind`` picks the records searched: ordinary chunks unless a knowledge-graph kind is asked for.
    """

    tenant_id: str
    dataset_ids: Sequence[str]
    text: str = ""
    vector: Sequence[float] | None = None
    document_ids: Sequence[str] | None = None
    top_k: int = 1024
    text_limit: int = TEXT_CANDIDATES
    kind: ChunkKind = CHUNK


@dataclass
class Candidate:
    """One chunk found by text and/or vector search, with the raw signals the scorer needs.

    ``text_score`` is the engine's full-text relevance (BM25 or equivalent, ≥ 0; None when the chunk
    was not matched by text); ``vector_score`` is the cosine similarity to the query vector (None
    when no vector was given). ``matched_terms`` lists query terms found in the chunk (for highlights).
    ``text_reference`` is the question's reference text score (the same for every candidate of a search):
    the BM25 of a chunk of average length holding each searched term once, from the IDF the engine used
    (``QueryPlan.reference_score``); None when the engine did not report it.
    """

    chunk_id: str
    document_id: str
    dataset_id: str
    text_score: float | None = None
    vector_score: float | None = None
    matched_terms: list[str] = field(default_factory=list)
    text_reference: float | None = None


class SearchIndex(ABC):
    @abstractmethod
    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Add or replace chunks (by id). Idempotent."""

    @abstractmethod
    def delete_chunks(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str]) -> None:
        """Remove chunks (of any kind) by id; unknown ids are ignored."""

    @abstractmethod
    def delete_document(self, tenant_id: str, dataset_id: str, document_id: str) -> None:
        """Remove every chunk of a document."""

    @abstractmethod
    def delete_dataset(self, tenant_id: str, dataset_id: str) -> None:
        """Remove every chunk of a dataset, of every kind."""

    @abstractmethod
    def set_available(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str], available: bool) -> None:
        """Switch chunks in or out of search results."""

    @abstractmethod
    def search(self, query: SearchQuery) -> list[Candidate]:
        """Text candidates (up to ``text_limit``) and vector candidates (up to ``top_k``), merged by chunk id."""

    @abstractmethod
    def ping(self) -> None:
        """Raise when the index cannot serve requests."""
