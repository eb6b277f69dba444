"""The hybrid scorer (shared/rag/scoring.py): RAGFlow's similarity from raw engine signals."""

from __future__ import annotations

import itertools
import random

import pytest

from shared.ports.search import Candidate
from shared.rag.scoring import (
    ScoredChunk,
    hybrid_scores,
    question_coverage,
    rank,
    reference_score,
    term_similarities,
    term_similarity,
    term_weights,
)

pytestmark = pytest.mark.unit


def cand(
    chunk_id: str,
    text: float | None = None,
    vector: float | None = None,
    terms: tuple[str, ...] = (),
    dataset: str = "ds",
    reference: float | None = None,
) -> Candidate:
    return Candidate(chunk_id, f"doc-{chunk_id}", dataset, text, vector, list(terms), reference)


def corpus() -> list[Candidate]:
    """Text scores built as sums of per-word contributions (rare word 'yeast' 4, 'dough' 2, 'rise' 1)."""
    share = {"yeast": 4.0, "dough": 2.0, "rise": 1.0}
    sets = [("yeast", "dough", "rise"), ("yeast",), ("dough", "rise"), ("dough",), ("rise",), ("yeast", "rise")]
    out = [cand(f"c{i}", sum(share[w] for w in words), 0.1 * i, words) for i, words in enumerate(sets)]
    out.append(cand("v", None, 0.9))  # found by vector search only
    return out


def by_id(scored: list[ScoredChunk]) -> dict[str, ScoredChunk]:
    return {s.chunk_id: s for s in scored}


# == term similarity ===============================================================================
def test_term_weights_recover_additive_contributions() -> None:
    weights = term_weights(corpus())
    assert weights == pytest.approx({"yeast": 4.0, "dough": 2.0, "rise": 1.0})
    assert reference_score(corpus()) == pytest.approx(7.0)


def test_a_chunk_with_every_term_as_typical_scores_one_half() -> None:
    sims = dict(zip([c.chunk_id for c in corpus()], term_similarities(corpus()), strict=True))
    assert sims["c0"] == pytest.approx(0.5)  # all three words: score 7 = R
    assert sims["c1"] == pytest.approx(4 / 11)  # the rare word alone
    assert sims["c4"] == pytest.approx(1 / 8)  # the common word alone
    assert sims["v"] == 0.0  # no text match


def test_range_is_zero_to_one_and_zero_without_text_match() -> None:
    rng = random.Random(7)
    words = ["a", "b", "c", "d", "e"]
    for _ in range(200):
        cands = [
            cand(
                f"c{i}",
                rng.choice([None, 0.0, rng.uniform(0, 50)]),
                rng.uniform(-1, 1),
                tuple(rng.sample(words, rng.randint(0, 5))),
            )
            for i in range(rng.randint(0, 30))
        ]
        for c, t in zip(cands, term_similarities(cands), strict=True):
            assert 0.0 <= t <= 1.0
            if not c.text_score:
                assert t == 0.0
        for s in hybrid_scores(cands, rng.random()):
            assert 0.0 <= s.similarity <= 1.0
            assert 0.0 <= s.vector_similarity <= 1.0  # negative cosines count 0


def test_monotonic_in_bm25_within_a_question() -> None:
    cands = [cand(f"c{i}", score, 0.5, ("x", "y")) for i, score in enumerate([0.5, 1.0, 3.0, 3.0, 9.0, 40.0])]
    sims = term_similarities(cands)
    assert sims == sorted(sims)
    assert sims[2] == sims[3]
    assert all(a < b for a, b in itertools.pairwise(sims[3:]))
    assert all(term_similarity(s, 5.0) < term_similarity(s * 1.01, 5.0) for s in (0.1, 1, 5, 50))


def test_scale_free_and_independent_of_the_other_candidates_best() -> None:
    """Only the question's reference matters: scaling every score keeps the similarities, and a chunk
    that shares one common word with the question is not promoted to 1.0 for being the best match."""
    cands = corpus()
    scaled = [
        cand(c.chunk_id, c.text_score * 3 if c.text_score else None, c.vector_score, tuple(c.matched_terms))
        for c in cands
    ]
    assert term_similarities(scaled) == pytest.approx(term_similarities(cands))
    weak = [c for c in cands if c.chunk_id in ("c4", "v")] + [cand("c9", 2.0, 0.0, ("dough",))]
    # R = 1 + 2 (only the words some candidate matched count: the fit knows no other word); the best match
    # holds 2/3 of it, so every term similarity is discounted by 2/3 (question_coverage), never raised
    assert max(term_similarities(weak)) == pytest.approx(2 / 5 * 2 / 3)


def test_without_matched_terms_the_best_text_score_is_the_reference() -> None:
    cands = [cand("a", 6.0, 0.2), cand("b", 2.0, 0.3), cand("c", None, 0.9)]
    assert reference_score(cands) == 6.0
    assert term_similarities(cands) == pytest.approx([0.5, 0.25, 0.0])
    assert term_similarities([]) == []
    assert term_similarities([cand("v", None, 0.4)]) == [0.0]


def test_non_positive_shares_are_dropped_and_refitted() -> None:
    # 'b' seems to lower the score: its share is set to 0 and 'a' fitted on both rows.
    cands = [cand("1", 6.0, None, ("a",)), cand("2", 5.0, None, ("a", "b"))]
    assert term_weights(cands) == pytest.approx({"a": 5.5, "b": 0.0})


def test_question_coverage_is_the_best_matchs_share_of_the_reference() -> None:
    assert question_coverage(7.0, 7.0) == 1.0
    assert question_coverage(21.0, 7.0) == 1.0  # a denser match than the reference: the whole question
    assert question_coverage(2.0, 8.0) == pytest.approx(0.25)
    assert question_coverage(0.0, 8.0) == 0.0 and question_coverage(3.0, 0.0) == 0.0


def paragraph(reference: float = 40.0) -> list[Candidate]:
    """A question no chunk repeats: its reference match is 40, its best passage scores 10 (a quarter of it)."""
    found = [(10, 0.3), (6, 0.8), (2, 0.6)]
    return [cand(f"p{i}", score, cosine, ("w",), reference=reference) for i, (score, cosine) in enumerate(found)] + [
        cand("v", None, 0.7)
    ]


def test_a_question_its_best_match_covers_in_part_has_its_text_discounted() -> None:
    scored = by_id(hybrid_scores(paragraph(), 0.3))
    assert scored["p0"].term_similarity == pytest.approx(0.25 * 10 / 50)  # coverage x bm25 / (bm25 + R)
    assert scored["p1"].term_similarity == pytest.approx(0.25 * 6 / 46)
    # the vector decides more: p1 (the better cosine) now ranks above p0 (the better text match)
    assert [s.chunk_id for s in hybrid_scores(paragraph(), 0.3)][:2] == ["p1", "v"]
    undiscounted = {
        c.chunk_id: 0.7 * (c.text_score or 0) / ((c.text_score or 0) + 40) + 0.3 * c.vector_score
        for c in paragraph()
        if c.vector_score is not None
    }
    assert all(scored[i].similarity < undiscounted[i] for i in ("p0", "p1", "p2"))  # lowered, never raised
    assert scored["v"].similarity == pytest.approx(undiscounted["v"])


def test_the_discount_keeps_the_weights_meaning() -> None:
    """Weight 0 still ranks by BM25 alone, weight 1 by the cosine alone, and the similarity is the weighted sum
    of the two similarities reported."""
    assert [s.chunk_id for s in hybrid_scores(paragraph(), 0.0)] == ["p0", "p1", "p2", "v"]
    assert [s.chunk_id for s in hybrid_scores(paragraph(), 1.0)] == ["p1", "v", "p2", "p0"]
    for weight in (0.0, 0.3, 0.7, 1.0):
        for s in hybrid_scores(paragraph(), weight):
            assert s.similarity == pytest.approx((1 - weight) * s.term_similarity + weight * s.vector_similarity)
    fully = [Candidate("f", "d", "ds", 40.0, 0.1, ["w"], 40.0), *paragraph()]  # some chunk holds the question
    assert by_id(hybrid_scores(fully, 0.3))["p0"].term_similarity == pytest.approx(10 / 50)


# == hybrid score ================================================================================
def test_similarity_is_the_weighted_sum() -> None:
    for weight in (0.0, 0.3, 0.5, 1.0):
        for s in hybrid_scores(corpus(), weight):
            assert s.similarity == pytest.approx((1 - weight) * s.term_similarity + weight * s.vector_similarity)


def test_weight_zero_ranks_by_terms_only_and_weight_one_by_vectors_only() -> None:
    cands = corpus()
    text_order = [c.chunk_id for c in sorted(cands, key=lambda c: (-(c.text_score or 0), c.chunk_id))]
    assert [s.chunk_id for s in hybrid_scores(cands, 0.0)] == text_order
    vector_order = [c.chunk_id for c in sorted(cands, key=lambda c: (-(c.vector_score or 0), c.chunk_id))]
    scored = hybrid_scores(cands, 1.0)
    assert [s.chunk_id for s in scored] == vector_order
    assert all(s.similarity == pytest.approx(s.vector_similarity) for s in scored)
    assert all(s.similarity == pytest.approx(s.term_similarity) for s in hybrid_scores(cands, 0.0))


def test_threshold_semantics() -> None:
    """The service keeps ``similarity >= threshold``: 0 keeps every candidate (similarity is never
    negative), and a chunk without text match needs a cosine of threshold / weight."""
    cands = [*corpus(), cand("neg", None, -0.4)]
    scored = hybrid_scores(cands, 0.3)
    assert len([s for s in scored if s.similarity >= 0]) == len(cands)
    assert by_id(scored)["c4"].similarity == pytest.approx(0.7 / 8 + 0.3 * 0.4)  # 0.2075
    assert by_id(scored)["v"].similarity == pytest.approx(0.3 * 0.9)  # vector only: 0.27
    kept = {s.chunk_id for s in scored if s.similarity >= 0.25}
    assert kept == {"c0", "c1", "c2", "c5", "v"}  # c3 0.246, c4 0.2075 and neg 0 fall below
    assert not [s for s in hybrid_scores(corpus(), 0.0) if s.similarity >= 1.0]  # term similarity stays < 1


def test_min_similarity_keeps_what_the_threshold_keeps_in_the_same_order() -> None:
    rng = random.Random(5)
    cands = [
        cand(f"k{i % 7}{i}", rng.choice([None, rng.uniform(0, 9)]), rng.uniform(-1, 1), ("x",)) for i in range(200)
    ]
    for threshold in (0.0, 0.1, 0.2, 0.35, 2.0):
        filtered = [s for s in hybrid_scores(cands, 0.3) if s.similarity >= threshold]
        assert hybrid_scores(cands, 0.3, min_similarity=threshold) == filtered
    zero = hybrid_scores(cands, 0.3, pagerank={"ds": 0})
    assert zero == hybrid_scores(cands, 0.3)


def test_stable_order_ties_by_chunk_id() -> None:
    cands = [cand(cid, 2.0, 0.5, ("x",)) for cid in ("b", "c", "a")] + [cand("z", 4.0, 0.5, ("x",))]
    first = hybrid_scores(cands, 0.3)
    assert [s.chunk_id for s in first] == ["z", "a", "b", "c"]
    shuffled = list(reversed(cands))
    assert [s.chunk_id for s in hybrid_scores(shuffled, 0.3)] == ["z", "a", "b", "c"]


def test_rerank_scores_replace_vector_similarity() -> None:
    cands = corpus()
    rerank = {"c4": 1.0, "v": 0.0}
    scored = by_id(hybrid_scores(cands, 0.5, rerank_scores=rerank))
    assert scored["c4"].vector_similarity == 1.0 and scored["v"].vector_similarity == 0.0
    assert scored["c1"].vector_similarity == 0.0  # not reranked: 0, not its cosine
    assert scored["c4"].similarity == pytest.approx(0.5 * scored["c4"].term_similarity + 0.5)
    assert scored["c4"].term_similarity == by_id(hybrid_scores(cands, 0.5))["c4"].term_similarity


def test_pagerank_adds_a_per_dataset_boost() -> None:
    cands = [cand("a", 4.0, 0.2, ("x",), dataset="plain"), cand("b", 3.0, 0.2, ("x",), dataset="ranked")]
    plain = by_id(hybrid_scores(cands, 0.3))
    boosted = hybrid_scores(cands, 0.3, pagerank={"ranked": 50})
    assert [s.chunk_id for s in boosted] == ["b", "a"]
    assert by_id(boosted)["b"].similarity == pytest.approx(plain["b"].similarity + 0.5)
    assert by_id(boosted)["a"].similarity == pytest.approx(plain["a"].similarity)
    assert by_id(boosted)["b"].term_similarity == plain["b"].term_similarity


def test_matched_terms_are_carried() -> None:
    scored = by_id(hybrid_scores(corpus(), 0.3))
    assert scored["c5"].matched_terms == ("yeast", "rise")
    assert scored["v"].matched_terms == ()


def test_a_ranking_pages_what_hybrid_scores_lists() -> None:
    rng = random.Random(7)
    cands = [
        cand(f"c{i}", rng.choice([0.0, 1.0, 2.0, 3.5]), rng.choice([0.1, 0.4, 0.4, 0.9]), ("x",), f"ds{i % 3}")
        for i in range(60)
    ]
    listed = hybrid_scores(cands, 0.3, min_similarity=0.2)
    ranking = rank(cands, 0.3, min_similarity=0.2)
    assert len(ranking) == len(listed) and ranking.page(0, len(ranking)) == listed
    assert ranking.page(5, 17) == listed[5:17] and ranking.page(len(listed), len(listed) + 30) == []
    assert ranking.documents() == [(s.document_id, s.dataset_id) for s in listed]
    assert len(rank([], 0.3)) == 0
