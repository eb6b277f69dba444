"""Query analysis shared by both engines (shared/rag/text_analysis.py): counts, the term cap, the reference."""

from __future__ import annotations

import math

import pytest

from shared.rag.text_analysis import BM25_K1, MAX_QUERY_TERMS, analyze_query, bm25_idf, plan_query, query_weight

pytestmark = pytest.mark.unit


def test_query_terms_are_distinct_with_their_counts_and_first_words() -> None:
    terms = analyze_query("Solar panels: the solar panel market and SOLAR farms")
    assert [(t.term, t.word, t.count) for t in terms] == [
        ("solar", "solar", 3),
        ("panel", "panels", 2),
        ("market", "market", 1),
        ("farm", "farms", 1),
    ]
    assert analyze_query("the of and") == []


def test_bm25_idf_is_lucenes() -> None:
    assert bm25_idf(10, 1000) == pytest.approx(math.log(1 + (1000 - 10 + 0.5) / (10 + 0.5)))
    assert bm25_idf(1000, 1000) > 0  # a term in every chunk still counts a little


def test_a_short_question_keeps_every_term_a_chunk_holds() -> None:
    terms = analyze_query("solar wind zebra solar")
    plan = plan_query(terms, [10, 300, 0], 1000)
    assert [(t.term.term, t.weight) for t in plan.terms] == [("solar", query_weight(2)), ("wind", 1.0)]  # zebra: none
    assert plan.reference_score == pytest.approx(
        (query_weight(2) * bm25_idf(10, 1000) + bm25_idf(300, 1000)) / (1 + BM25_K1)
    )


def test_a_repeated_question_word_saturates_as_a_repeated_chunk_word_does() -> None:
    assert query_weight(1) == 1.0  # a one-line question's terms weigh their IDF
    assert query_weight(2) == pytest.approx(2 * (1 + BM25_K1) / (2 + BM25_K1))
    weights = [query_weight(n) for n in range(1, 50)]
    assert weights == sorted(weights) and weights[-1] < 1 + BM25_K1  # more is more, never past k1 + 1
    assert query_weight(16) < 3 * query_weight(1)  # a word said 16 times does not outweigh three others


def test_a_long_question_searches_its_highest_count_x_idf_terms_in_question_order() -> None:
    words = [f"w{i}x" for i in range(MAX_QUERY_TERMS + 10)]
    terms = analyze_query(" ".join(words) + " " + words[-1])  # the last word twice
    doc_freqs = [1 + i for i in range(len(words))]  # later words are more common
    plan = plan_query(terms, doc_freqs, 10_000)
    chosen = [t.term.word for t in plan.terms]
    assert len(chosen) == MAX_QUERY_TERMS and chosen[-1] == words[-1]  # count 2 beats the commoner singles
    assert chosen[:-1] == words[: MAX_QUERY_TERMS - 1]
    # the reference is the whole question's, searched or not
    everything = sum(query_weight(t.count) * bm25_idf(df, 10_000) for t, df in zip(terms, doc_freqs, strict=True))
    assert plan.reference_score == pytest.approx(everything / (1 + BM25_K1))


def test_ties_keep_the_earlier_words() -> None:
    words = [f"t{i}x" for i in range(MAX_QUERY_TERMS + 3)]
    plan = plan_query(analyze_query(" ".join(words)), [5] * len(words), 100)
    assert [t.term.word for t in plan.terms] == words[:MAX_QUERY_TERMS]
