"""RAGFlow's hybrid score, computed here identically for every search engine.

``similarity = (1 - w) * term_similarity + w * vector_similarity`` (w = vector_similarity_weight), then
the dataset's pagerank (0-100) adds ``pagerank / 100`` as RAGFlow's rank feature does (scaled to keep
the threshold meaningful). With a rerank model, its relevance score replaces the vector similarity.
``vector_similarity`` is the cosine of the question's and the chunk's vectors (negative cosines count 0).

Term similarity
---------------
``term_similarity`` is in [0, 1] and says how well the chunk's words match the question's, on a scale
that belongs to the question, not to the other candidates::

    term_similarity = bm25 / (bm25 + R)

``bm25`` is the engine's full-text score of the chunk (0 when it matched no query term) and ``R`` is the
question's *reference match*: the score of a chunk that contains every query term, each about as strongly
as the chunks containing that term typically do. So 0.5 means "matches the question's terms as well as a
chunk holding all of them"; a chunk whose terms are worth half of ``R`` (say the rare, informative words
of the question but not the common ones) gets 1/3, one sharing a single common word with the question a
few hundredths; more (repeated, denser) matches approach 1. The curve is BM25's own term-frequency
saturation ``x / (x + k)`` applied to the whole score, with the question's reference match as the
half-way point: no constant to tune, and monotonic in bm25, so weight 0 ranks exactly by BM25.

``R`` is read off the candidates, because the search port's ``Candidate`` carries each chunk's bm25 and
``matched_terms`` but not the terms' IDF: a chunk's BM25 is a sum of one contribution per matched term,
so a least-squares fit of the candidates' scores on their matched-term sets (``term_weights``) gives
what a match of each query term typically adds, and ``R`` is their sum (a word whose fitted share is not
positive gets 0). It needs no engine formula or constant, so it holds for the embedded index and for
OpenSearch alike (whose BM25 adds per-field scores), and it hardly depends on ``top_k``: on SciFact the
median ``R`` stays within 4% of its top_k-1024 value from top_k 30 up, and 80% of the questions stay
within ±20% even at top_k 5. Without any matched terms to fit (an engine that reports none), the best
text score stands in for ``R``. Limitation: a query word found in no candidate adds nothing to ``R``, so
a chunk that is the only text match gets 0.5 however many other words of the question it lacks; a
per-term IDF from the engine (see below) removes that.

Why not "relative to the best candidate" (the previous design, ``sqrt(bm25 / best bm25)``): the top
text match always scored 1.0, even when it shared a single common word with the question, so
``term_similarity`` meant nothing across questions and the threshold could not filter weak matches.

Measured on SciFact (test split: 300 questions; 5,183 abstracts, one chunk each; embedded index with this
project's Porter analyzer; builtin int8 all-MiniLM-L6-v2), nDCG@10 by vector_similarity_weight; vector
only (w = 1) is 0.647 for every design::

    term_similarity                                     w=0    w=0.3  w=0.5  w=0.7
    bm25 / best bm25 (max-normalised)                   0.687  0.716  0.736  0.741
    sqrt(bm25 / best bm25) (previous design)            0.687  0.728  0.746  0.737
    idf-weighted query-term coverage (RAGFlow's kind;   0.647  0.711  0.738  0.727
        exact IDF from the index, tf ignored)
    bm25 / sum of the query terms' IDF (BM25's bound)   0.687  0.738  0.734  0.715
    bm25 / (bm25 + R), R = sum(idf) / (1 + k1) exact    0.687  0.741  0.735  0.709
    bm25 / (bm25 + R), R fitted on candidates (this)    0.687  0.744  0.737  0.707

(the last row through the API with ``benchmarks/bench_scifact.py``: Recall@100 0.962 at w = 0.3; the
others offline on the same candidates). Normalising by the question rather than by the best candidate is
what lifts the default weight: a question's best text match now scores 0.35-0.52 (10th-90th percentile,
median 0.44) instead of 1.0, so 0.3 of cosine (0.59 median for a relevant abstract) is enough to reorder
the close text matches. It is not tuned to SciFact: R scaled by 0.5 or by 2 gives 0.744 / 0.741 at 0.3.

Port change that would make ``R`` exact (recommended, not made here): the search port would report the
IDF of every analysed query term, including terms no chunk contains (their IDF is the largest), as
``Candidate.term_idf: Mapping[str, float]`` (query word → IDF, the same dict shared by every candidate of
a search; keys are the words ``matched_terms`` uses). The embedded index has them in ``_score_text``
(``log1p((N - df + 0.5) / (df + 0.5))`` over the datasets searched, df = 0 for words outside the
vocabulary); OpenSearch would add to its text query a ``filters`` aggregation (one ``term`` filter on
``content`` per analysed query term, inside the search's tenant/dataset/document filters) and
``track_total_hits`` for N, and compute the same formula. Then ``R = sum(idf) / (1 + k1)`` (every term
once, average length; measured above) and RAGFlow's idf-weighted coverage are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shared.ports.search import Candidate


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    chunk_id: str
    document_id: str
    dataset_id: str
    similarity: float
    term_similarity: float
    vector_similarity: float
    matched_terms: tuple[str, ...]


def term_weights(candidates: Sequence[Candidate]) -> dict[str, float]:
    """What a match of each query word typically adds to the text score, fitted on the candidates.

    Least squares of each text-matched candidate's score on the set of words it matched (candidates with
    the same set are one row, weighted by their count: the same fit, fewer rows). Words whose share comes
    out not positive get 0 and the rest are fitted again (non-negative least squares, active-set style).
    Words of no candidate are absent.
    """
    groups: dict[tuple[str, ...], list[float]] = {}  # matched words → [sum of scores, count]
    for candidate in candidates:
        score = candidate.text_score or 0.0
        if score > 0 and candidate.matched_terms:
            group = groups.setdefault(tuple(sorted(set(candidate.matched_terms))), [0.0, 0.0])
            group[0] += score
            group[1] += 1
    words = sorted({word for key in groups for word in key})
    if not words:
        return {}
    column = {word: i for i, word in enumerate(words)}
    x = np.zeros((len(groups), len(words)))
    y = np.empty(len(groups))
    for row, (key, (total, count)) in enumerate(groups.items()):
        x[row, [column[word] for word in key]] = np.sqrt(count)
        y[row] = total / np.sqrt(count)  # mean score * sqrt(count)
    weights = np.zeros(len(words))
    active = np.arange(len(words))
    while len(active):
        solution = np.linalg.lstsq(x[:, active], y, rcond=None)[0]
        positive = solution > 0
        if positive.all():
            weights[active] = solution
            break
        active = active[positive]
    return {word: float(weights[i]) for i, word in enumerate(words)}


def reference_score(candidates: Sequence[Candidate]) -> float:
    """The question's reference match ``R``: the engine's ``text_reference`` when it reports one; else the text
    score of a chunk holding every query word as fitted by ``term_weights``; else the best text score; 0
    without text matches."""
    reported = next((c.text_reference for c in candidates if c.text_reference), None)
    if reported:
        return reported
    reference = sum(term_weights(candidates).values())
    if reference > 0:
        return reference
    return max((c.text_score or 0.0 for c in candidates), default=0.0)


def term_similarities(candidates: Sequence[Candidate]) -> list[float]:
    """Each candidate's term similarity in [0, 1] (0 when text search did not match it)."""
    reference = reference_score(candidates)
    return [term_similarity(c.text_score or 0.0, reference) for c in candidates]


def term_similarity(score: float, reference: float) -> float:
    """``score / (score + reference)``: 0.5 for a chunk matching as well as the question's reference match."""
    if score <= 0 or reference <= 0:
        return 0.0
    return score / (score + reference)


def hybrid_scores(
    candidates: Sequence[Candidate],
    vector_weight: float,
    *,
    rerank_scores: Mapping[str, float] | None = None,
    pagerank: Mapping[str, int] | None = None,
) -> list[ScoredChunk]:
    """Score candidates; sorted by similarity, best first (ties by chunk id for stable pages)."""
    if not candidates:
        return []
    reference = reference_score(candidates)
    text = np.fromiter((c.text_score or 0.0 for c in candidates), dtype=np.float64, count=len(candidates))
    tsims = np.divide(text, text + reference, out=np.zeros_like(text), where=(text > 0) & (reference > 0))
    if rerank_scores is not None:
        vsims = np.fromiter((rerank_scores.get(c.chunk_id, 0.0) for c in candidates), dtype=np.float64)
    else:
        vsims = np.fromiter((c.vector_score or 0.0 for c in candidates), dtype=np.float64, count=len(candidates))
        np.maximum(vsims, 0.0, out=vsims)
    sims = (1 - vector_weight) * tsims + vector_weight * vsims
    if pagerank:
        sims += np.fromiter((pagerank.get(c.dataset_id, 0) / 100 for c in candidates), dtype=np.float64)
    order = np.lexsort((np.array([c.chunk_id for c in candidates]), -sims))
    sim_list, tsim_list, vsim_list = sims.tolist(), tsims.tolist(), vsims.tolist()
    return [
        ScoredChunk(
            chunk_id=(c := candidates[i]).chunk_id,
            document_id=c.document_id,
            dataset_id=c.dataset_id,
            similarity=sim_list[i],
            term_similarity=tsim_list[i],
            vector_similarity=vsim_list[i],
            matched_terms=tuple(c.matched_terms),
        )
        for i in order.tolist()
    ]
