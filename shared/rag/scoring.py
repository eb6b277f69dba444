"""RAGFlow's hybrid score, computed here identically for every search engine.

``similarity = (1 - w) * term_similarity + w * vector_similarity`` (w = vector_similarity_weight), then
the dataset's pagerank (0-100) adds ``pagerank / 100`` as RAGFlow's rank feature does (scaled to keep
the threshold meaningful). With a rerank model, its relevance score replaces the vector similarity.

``term_similarity`` is in [0, 1] and says how well the chunk's words match the question's: the chunk's
BM25 score relative to the best BM25 score any chunk could get for this question, read off the
candidates (the top text match defines 1.0) and compressed so a close text match keeps most of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.ports.search import Candidate


@dataclass(frozen=True)
class ScoredChunk:
    chunk_id: str
    document_id: str
    dataset_id: str
    similarity: float
    term_similarity: float
    vector_similarity: float
    matched_terms: tuple[str, ...]


def term_similarities(candidates: Sequence[Candidate]) -> list[float]:
    """Each candidate's term similarity in [0, 1] (0 when text search did not match it)."""
    best = max((c.text_score or 0.0 for c in candidates), default=0.0)
    if best <= 0:
        return [0.0 for _ in candidates]
    return [term_similarity(c.text_score or 0.0, best) for c in candidates]


def term_similarity(score: float, best: float) -> float:
    """BM25 ``score`` relative to the query's ``best``, on a concave curve (sqrt): halving the BM25 score
    keeps ~71% of the term similarity, so strong text matches stay close to each other and the vector
    similarity decides between them."""
    if score <= 0 or best <= 0:
        return 0.0
    return math.sqrt(min(1.0, score / best))


def hybrid_scores(
    candidates: Sequence[Candidate],
    vector_weight: float,
    *,
    rerank_scores: Mapping[str, float] | None = None,
    pagerank: Mapping[str, int] | None = None,
) -> list[ScoredChunk]:
    """Score candidates; sorted by similarity, best first (ties by chunk id for stable pages)."""
    terms = term_similarities(candidates)
    scored = []
    for candidate, tsim in zip(candidates, terms, strict=True):
        if rerank_scores is not None:
            vsim = float(rerank_scores.get(candidate.chunk_id, 0.0))
        else:
            vsim = max(0.0, float(candidate.vector_score or 0.0))
        sim = (1 - vector_weight) * tsim + vector_weight * vsim
        if pagerank:
            sim += pagerank.get(candidate.dataset_id, 0) / 100
        scored.append(
            ScoredChunk(
                chunk_id=candidate.chunk_id,
                document_id=candidate.document_id,
                dataset_id=candidate.dataset_id,
                similarity=sim,
                term_similarity=tsim,
                vector_similarity=vsim,
                matched_terms=tuple(candidate.matched_terms),
            )
        )
    scored.sort(key=lambda s: (-s.similarity, s.chunk_id))
    return scored
