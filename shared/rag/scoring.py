"""RAGFlow's hybrid score, computed here identically for every search engine.

``similarity = (1 - w) * term_similarity + w * vector_similarity`` (w = vector_similarity_weight), then
the dataset's pagerank (0-100) adds ``pagerank / 100`` as RAGFlow's rank feature does (scaled to keep
the threshold meaningful). With a rerank model, its relevance score replaces the vector similarity.
``vector_similarity`` is the cosine of the question's and the chunk's vectors (negative cosines count 0).

Term similarity
---------------
``term_similarity`` is in [0, 1] and says how well the chunk's words match the question's, on a scale
that belongs to the question, not to the other candidates::

    term_similarity = coverage * bm25 / (bm25 + R)

``bm25`` is the engine's full-text score of the chunk (0 when it matched no searched term) and ``R`` is the
question's *reference match*: the BM25 of a chunk of average length that holds every term of the question
once (each weighted by the question's count of it; terms no chunk of the datasets holds are left out):
``R = sum(count * idf) / (1 + k1)``. So ``bm25 / (bm25 + R)`` is 0.5 for a chunk that "matches the question
as well as a chunk holding all of its words"; a chunk whose terms are worth half of ``R`` (say the rare,
informative words of the question but not the common ones) gets 1/3, one sharing a single common word with
the question a few hundredths; more (repeated, denser) matches approach 1. The curve is BM25's own
term-frequency saturation ``x / (x + k)`` applied to the whole score, with the question's reference match as
the half-way point: no constant to tune, and monotonic in bm25.

``R`` comes from the engine with the candidates (``Candidate.text_reference``, from the IDF the engine
scored with: ``QueryPlan.reference_score`` in ``shared/rag/text_analysis.py``, the same on both engines).
It covers the whole question although a long question searches only its 25 most informative terms: the cap
decides what is worth searching, not what matching the whole question is worth. Without a reported ``R`` (a
hand-made candidate list), it is fitted: a least-squares fit of the candidates' scores on their matched-term
sets (``term_weights``; a chunk's BM25 is a sum of one contribution per matched term), and without matched
terms the best text score stands in.

The question's coverage
-----------------------
``coverage = min(1, best bm25 / R)`` (``question_coverage``) is how much of the question the best text match
among the candidates holds. It is 1 when some chunk matches the question as well as its reference match: a
short question whose words some chunk holds together, the question RAGFlow's formula was made for, which is
scored exactly as without it. When no chunk does, as for a paragraph-long question (a passage holds a part of
a paragraph's words), it is the share of ``R`` the best passage reaches, and every text match of the question
says that much less; the vector, which reads the whole question, decides more. In IR terms it is a
post-retrieval query-performance predictor (the question's top retrieval score, normalised by the score of a
match of all of it; Carmel & Yom-Tov 2010 survey the family) setting the sparse side's weight per question, as
query-dependent hybrid weights do (Arabzadeh et al. 2021 pick sparse or dense per query by such predictors).
It has no constant and is computed from the question's own scale. Being the same for every chunk of a
question, it keeps weight 0 ranking exactly by BM25 and weight 1 by the cosine, and the reported similarity
stays the weighted sum of the reported term and vector similarities. It only ever lowers a similarity: no
chunk passes the threshold that did not before (an off-topic question keeps no more chunks); what it costs is
fewer chunks over the threshold for paragraph questions (below).

Why not "relative to the best candidate" (``sqrt(bm25 / best bm25)``, an earlier design): the top text
match always scored 1.0, even when it shared a single common word with the question, so
``term_similarity`` meant nothing across questions and the threshold could not filter weak matches (the
coverage is a share of the question's own ``R``: a best match sharing one common word makes it small, not 1).
And the vector part stays the plain cosine (as RAGFlow reports it) for the same reason: normalising it by the
best candidate's cosine (Bruch et al. 2023's theoretical-min-max) would score the nearest chunk of an
unrelated question 1.0 and let it through the default threshold.

Measured through the API, nDCG@10 (``benchmarks/bench_scifact.py --collection C``; builtin int8
all-MiniLM-L6-v2, BM25 over this project's Porter analyzer, one chunk per document, top_k 1024; 2026-12-05)::

    collection (questions)                         BM25    vector  fused w=0.3   fused - better (95% CI)
    SciFact test (300 one-sentence claims)          0.686   0.647   0.742         +0.056 [+0.038, +0.073]
    wiki-sections (373 paragraphs, ~124 words)      0.676   0.814   0.812         -0.002 [-0.006, +0.002]
    lee (39 news paragraphs, human judgments)       0.575   0.510   0.588         +0.013 [-0.060, +0.083]
    lee, condensed rankings                         0.717   0.833   0.828         -0.005 [-0.038, +0.024]

(``benchmarks/heldout.py`` builds the two held-out collections; the intervals are paired bootstrap intervals
from ``benchmarks/fusion_lab.py``, on the same candidates.) lee's 300 background documents were never judged;
counted as not relevant (BEIR's convention) they mark down every background story a ranker finds on the
question's subject, and the vector finds more of them; the condensed rankings (unjudged documents removed;
Sakai 2007) read it like wiki-sections, vector-led. Without the coverage the fused score was 0.741 / 0.800 /
0.595 / 0.828: on wiki-sections -0.014 [-0.023, -0.005] below the vector, the gap this closes. So the fused
score is above both components on SciFact and within its interval of the better one on the paragraph
collections, none of them significantly below. With the tenants' default model, bge-small-en-v1.5
(``--embedding-model BAAI/bge-small-en-v1.5@Builtin``), wiki-sections reads vector 0.816, fused 0.810 (-0.006
[-0.012, +0.001]; without the coverage 0.773, -0.044 [-0.056, -0.031]), a paragraph keeping a median of 59
chunks over the default threshold and none keeping nothing: BGE's higher cosines carry it.

``benchmarks/fusion_lab.py`` measures other fusions on the same candidates (same figures as the API),
fused at w=0.3: nDCG@10 on SciFact / wiki-sections / lee (condensed) / lee (BEIR convention), and what RAGFlow's
default threshold (0.2) keeps: the median number of chunks a SciFact claim keeps, and the median and the share
of wiki-sections paragraphs that keep none (a chat then answers its ``empty_response``)::

                                                                        nDCG@10                 kept: claim, paragraph
    this scorer (R, coverage, plain cosine)                0.742 / 0.812 / 0.828 / 0.588    116    4 (15% none)
    without the coverage (bm25 / (bm25 + R) as is)         0.741 / 0.800 / 0.828 / 0.595    153   15 (2% none)
    RAGFlow's term similarity (weighted share of the
      question's terms the chunk holds; 1.0 for all)       0.707 / 0.778 / 0.830 / 0.462    154   26 (0% none)
    bm25 / best bm25 (max-normalised; an earlier design)   0.716 / 0.725 / 0.829 / 0.594    262  101 (0% none)
    min-max of both signals (OpenSearch's ``min_max``)     0.723 / 0.731 / 0.820 / 0.605      -      -
    z-scores of both signals                               0.722 / 0.724 / 0.810 / 0.631      -      -
    reciprocal rank fusion, k = 60 (ranks only)            0.715 / 0.756 / 0.775 / 0.591      -      -
    R, with the cosine divided by the best candidate's     0.740 / 0.807 / 0.828 / 0.595    406   47 (0% none)
    the term similarity squared                            0.741 / 0.813 / 0.839 / 0.535      8    3 (17% none)

(better component: 0.686 BM25 / 0.814 vector / 0.833 vector / 0.575 BM25.) None is at or above the better
component on all four; this scorer is the only one not significantly below it on any. The normalisations over
the candidate set lose 0.02-0.03 on SciFact and 0.05-0.09 on wiki-sections. RAGFlow's own term similarity
ranks below this scorer everywhere but condensed lee. The relative cosine lets the nearest chunk of any
question through the default threshold. Squaring the term similarity (a partial match says little) ranks
paragraphs as well but drops lee under BEIR's convention below BM25 (-0.040 [-0.135, +0.052]) and changes
the scale the threshold reads for short claims too (8 chunks kept instead of 153). Two variants of the
coverage were measured and not taken: handing the text's lost share to the cosine (``(1 - w) * (coverage *
t + (1 - coverage) * cosine) + w * cosine``: 0.740 / 0.812 / 0.831 / 0.580, 172 paragraph chunks kept) and
the coverage-weighted mean (``((1 - w) * coverage * t + w * cosine) / ((1 - w) * coverage + w)``, the same
ranking as this scorer, 116 kept): both *raise* the similarity of a question whose words match badly towards
its plain cosine, so with a model whose unrelated cosines are high an off-topic question would pass the
default threshold with every chunk (the tenants' default builtin model, bge-small-en-v1.5, puts five off-topic
questions at a median cosine of 0.37 from 300 SciFact abstracts, every one of them at 0.2 or more;
all-MiniLM-L6-v2 at -0.01); and the first ranks by the cosine at weight 0. Measured
before the query weights saturated (``query_weight`` in ``text_analysis.py``), ``R`` over the searched terms
only (not the whole question) gave 0.740 / 0.757 on SciFact / wiki-sections.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.ports.search import Candidate


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~6x, and a query builds ~2,000
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
    """Each candidate's term similarity in [0, 1] (0 when text search did not match it): its
    ``term_similarity`` discounted by the question's ``question_coverage``."""
    return _term_similarities(candidates).tolist()  # type: ignore[no-any-return]


def _term_similarities(candidates: Sequence[Candidate]) -> np.ndarray[Any, np.dtype[np.float64]]:
    reference = reference_score(candidates)
    text = np.fromiter((c.text_score or 0.0 for c in candidates), dtype=np.float64, count=len(candidates))
    tsims = np.divide(text, text + reference, out=np.zeros_like(text), where=(text > 0) & (reference > 0))
    coverage = question_coverage(float(text.max(initial=0.0)), reference)
    if coverage < 1.0:
        tsims *= coverage
    return tsims


def question_coverage(best_score: float, reference: float) -> float:
    """How much of the question the best text match holds: ``min(1, best bm25 / R)``, 0 without a text match.

    1 when some chunk matches the question as well as its reference match (a short question's words found
    together); a paragraph no chunk repeats gets the share of it its best passage holds."""
    if best_score <= 0 or reference <= 0:
        return 0.0
    return min(1.0, best_score / reference)


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
    min_similarity: float | None = None,
) -> list[ScoredChunk]:
    """Score candidates; sorted by similarity, best first (ties by chunk id for stable pages). With
    ``min_similarity``, only the candidates whose similarity reaches it (RAGFlow's ``similarity_threshold``):
    the others are dropped before sorting."""
    ranking = rank(
        candidates, vector_weight, rerank_scores=rerank_scores, pagerank=pagerank, min_similarity=min_similarity
    )
    return ranking.page(0, len(ranking))


class Ranking:
    """The scored candidates best first, as ``hybrid_scores`` lists them, but a ``ScoredChunk`` is built only
    for the ones asked for (``page``): a question keeps ~1,700 of its ~2,000 candidates and shows 30."""

    __slots__ = ("_candidates", "_order", "_sims", "_tsims", "_vsims")

    def __init__(
        self,
        candidates: Sequence[Candidate],
        order: list[int],
        sims: list[float],
        tsims: list[float],
        vsims: list[float],
    ) -> None:
        self._candidates, self._order = candidates, order
        self._sims, self._tsims, self._vsims = sims, tsims, vsims

    def __len__(self) -> int:
        return len(self._order)

    def page(self, start: int, stop: int) -> list[ScoredChunk]:
        """The scored chunks ranked ``start`` to ``stop`` (excluded)."""
        return [
            ScoredChunk(
                (c := self._candidates[i]).chunk_id,
                c.document_id,
                c.dataset_id,
                self._sims[i],
                self._tsims[i],
                self._vsims[i],
                tuple(c.matched_terms),
            )
            for i in self._order[max(start, 0) : max(stop, 0)]
        ]

    def documents(self) -> list[tuple[str, str]]:
        """(document id, dataset id) of every ranked chunk, best first."""
        candidates = self._candidates
        return [(candidates[i].document_id, candidates[i].dataset_id) for i in self._order]


def rank(
    candidates: Sequence[Candidate],
    vector_weight: float,
    *,
    rerank_scores: Mapping[str, float] | None = None,
    pagerank: Mapping[str, int] | None = None,
    min_similarity: float | None = None,
) -> Ranking:
    """``hybrid_scores``' ranking, the scored chunks built on demand."""
    if not candidates:
        return Ranking(candidates, [], [], [], [])
    tsims = _term_similarities(candidates)
    if rerank_scores is not None:
        vsims = np.fromiter((rerank_scores.get(c.chunk_id, 0.0) for c in candidates), dtype=np.float64)
    else:
        vsims = np.fromiter((c.vector_score or 0.0 for c in candidates), dtype=np.float64, count=len(candidates))
        np.maximum(vsims, 0.0, out=vsims)
    sims = (1 - vector_weight) * tsims + vector_weight * vsims
    if pagerank and any(pagerank.values()):  # adding 0.0 everywhere changes nothing
        sims += np.fromiter((pagerank.get(c.dataset_id, 0) / 100 for c in candidates), dtype=np.float64)
    kept = np.arange(len(candidates)) if min_similarity is None else np.flatnonzero(sims >= min_similarity)
    order = kept[_best_first(sims[kept], lambda: [candidates[i].chunk_id for i in kept.tolist()])]
    return Ranking(candidates, order.tolist(), sims.tolist(), tsims.tolist(), vsims.tolist())


def _best_first(
    sims: np.ndarray[Any, np.dtype[np.float64]], chunk_ids: Callable[[], list[str]]
) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Positions by descending ``sims``, equal ones by chunk id (``chunk_ids()``, read only when two are equal:
    the ids' array costs more than the sort)."""
    order = np.argsort(-sims, kind="stable")
    ranked = sims[order]
    if len(ranked) > 1 and bool(np.any(ranked[1:] == ranked[:-1])):
        return np.lexsort((np.array(chunk_ids()), -sims))
    return order
