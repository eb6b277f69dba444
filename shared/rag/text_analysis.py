"""Full-text analysis shared by every search engine: how text becomes index terms and query terms.

One analyzer for chunks and queries (as Lucene's ``english`` analyzer, which OpenSearch uses):

1. NFKC normalisation (full-width forms and ligatures fold to plain letters; skipped for ASCII text),
   lowercase, and the curly apostrophe read as ``'``;
2. a Unicode word split close to Lucene's standard tokenizer (UAX #29): runs of letters/digits, joined
   across an inner ``.`` or ``'`` ("e.g", "1.8", "don't"), everything else separates;
3. CJK (Han, kana, Hangul) runs become overlapping character bigrams, a lone character stays a unigram
   (OpenSearch's ``cjk_bigram`` filter);
4. the English possessive ``'s`` is dropped, English stopwords are removed;
5. the Porter stemmer (Snowball's ``porter``, the algorithm behind Lucene's ``PorterStemFilter`` and
   OpenSearch's ``stemmer``/``english``) reduces words to their stem. BM25 over this analyzer (the
   embedded index, title + abstract) scores nDCG@10 0.687 on the SciFact test queries, 0.665 without
   stemming (published Anserini BM25: 0.679).

``opensearch_analysis()`` gives the equivalent OpenSearch analyzer so both engines match the same terms;
``FIELD_BOOSTS`` says how much a keyword or a generated question counts against the chunk's content
(RAGFlow boosts ``important_kwd`` and ``question_tks`` far above ``content_ltks``).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import snowballstemmer

STEMMER = "porter"

# How much one occurrence in each field weighs against one in the content (BM25F: weighted term
# frequencies and lengths). Kept mild on purpose: BM25 saturates, so 3x a term's frequency is ~1.4x its score.
FIELD_BOOSTS: dict[str, float] = {"content": 1.0, "keywords": 3.0, "questions": 2.0}

# NLTK's English list (a superset of Lucene's 33 words). Measured on SciFact passages (100k, embedded index):
# the same nDCG@10 as Lucene's list (0.687; 0.690 keeping every word), while keeping every word costs 38% more
# postings and doubles the text-query time (p50 2.5 ms -> 5.0 ms).
_STOPWORD_LIST = """
    a about above after again against ain all am an and any are aren aren't as at be because been before being
    below between both but by can couldn couldn't d did didn didn't do does doesn doesn't doing don don't down
    during each few for from further had hadn hadn't has hasn hasn't have haven haven't having he her here hers
    herself him himself his how i if in into is isn isn't it it's its itself just ll m ma me mightn mightn't
    more most mustn mustn't my myself needn needn't no nor not now o of off on once only or other our ours
    ourselves out over own re s same shan shan't she she's should should've shouldn shouldn't so some such t
    than that that'll the their theirs them themselves then there these they this those through to too under
    until up ve very was wasn wasn't we were weren weren't what when where which while who whom why will with
    won won't wouldn wouldn't y you you'd you'll you're you've your yours yourself yourselves
"""
ENGLISH_STOPWORDS: frozenset[str] = frozenset(_STOPWORD_LIST.split())

# Han (with extensions and compatibility ideographs), Hiragana, Katakana (and half-width), Bopomofo, Hangul.
_CJK = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_WORD = rf"[^\W{_CJK}]+(?:['.][^\W{_CJK}]+)*"
_TOKEN_RE = re.compile(rf"([{_CJK}]+)|({_WORD})")

_ASCII_WORD_RE = re.compile(r"[a-z0-9_]+(?:['.][a-z0-9_]+)*")  # _WORD on lowercase ASCII text, faster

_CACHE_LIMIT = 500_000
# word → (surface word, term), term "" for a stopword: one dict lookup per token on the hot path.
_cache: dict[str, tuple[str, str]] = {}
# Snowball stemmer objects keep their working string on the instance: one per thread.
_local = threading.local()


def stem(word: str) -> str:
    """The Porter stem of a lowercase word."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer(STEMMER)
    result: str = stemmer.stemWord(word)
    return result


def _lookup(word: str) -> tuple[str, str]:
    found = _cache.get(word)
    if found is None:
        surface = word[:-2] if word.endswith("'s") else word
        found = (surface, "" if surface in ENGLISH_STOPWORDS else stem(surface))
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[word] = found
    return found


def _normalize(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    return text.lower()


def _words(text: str) -> list[tuple[str, str]]:
    """(surface word, term) pairs of ``text``, stopwords removed, in order of appearance."""
    text = _normalize(text)
    if text.isascii():
        pairs = [_cache.get(word) or _lookup(word) for word in _ASCII_WORD_RE.findall(text)]
        return [pair for pair in pairs if pair[1]]
    out: list[tuple[str, str]] = []
    for cjk, word in _TOKEN_RE.findall(text):
        if not cjk:
            pair = _cache.get(word) or _lookup(word)
            if pair[1]:
                out.append(pair)
        elif len(cjk) == 1:
            out.append((cjk, cjk))
        else:
            out.extend((cjk[i : i + 2], cjk[i : i + 2]) for i in range(len(cjk) - 1))
    return out


def analyze(text: str) -> list[str]:
    """Index terms of ``text`` in order (repeats kept: their count is the term frequency)."""
    return [term for _, term in _words(text)]


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """One distinct term of a query, the first word of the query it came from (for highlighting), and how
    many times the query holds it (its query term frequency)."""

    term: str
    word: str
    count: int = 1


def analyze_query(text: str) -> list[QueryTerm]:
    """Distinct terms of a query, in order of first appearance, with their counts. Only stopwords → []."""
    seen: dict[str, QueryTerm] = {}
    for word, term in _words(text):
        found = seen.get(term)
        seen[term] = QueryTerm(term=term, word=word) if found is None else replace(found, count=found.count + 1)
    return list(seen.values())


# == query plan: which terms a search sends, and how many of them a chunk must match ==================
#: A question searches at most this many of its terms: those it weighs most (query weight x IDF). Lucene's
#: MoreLikeThis, the query for "find text like this text", keeps 25 (OpenSearch's ``more_like_this``
#: ``max_query_terms``); RAGFlow's query analysis also caps and weighs terms rather than OR-ing every word.
MAX_QUERY_TERMS: Final = 25
#: BM25's k1 (Lucene's default, both engines): a term found once in a chunk of average length scores
#: ``idf / (1 + k1)``.
BM25_K1: Final = 1.2


def bm25_idf(doc_freq: float, docs: float) -> float:
    """Lucene's BM25 IDF: ``ln(1 + (N - df + 0.5) / (df + 0.5))``."""
    return math.log1p((docs - doc_freq + 0.5) / (doc_freq + 0.5))


def query_weight(count: int) -> float:
    """How much a word the question holds ``count`` times weighs: ``count * (k1 + 1) / (count + k1)``.

    BM25's query-term saturation (Robertson et al.'s ``k3``, "Okapi at TREC-3"), with the same constant
    the chunk's side uses, ``k1``: a repeated question word is read as a repeated chunk word is. Once → 1
    (a short question's terms weigh exactly their IDF, as before), twice → 1.38, sixteen times → 2.05,
    never above 2.2. Lucene and Anserini count a repeated word linearly (one clause per occurrence), which
    is harmless in a one-line question and not in a paragraph: a word the paragraph says sixteen times
    outweighed the rest of it ("bank" in a section on a country's banks ranked every passage on banking
    anywhere above the country's own). Measured through the API (``benchmarks/bench_scifact.py``, nDCG@10
    at weight 0.3, linear → saturated): SciFact 0.7403 → 0.7408, wiki-sections 0.7941 → 0.7997, lee
    0.5611 → 0.5952; text alone 0.6828 → 0.6861, 0.6787 → 0.6759, 0.5486 → 0.5749.
    """
    return count * (1 + BM25_K1) / (count + BM25_K1)


@dataclass(frozen=True, slots=True)
class WeightedTerm:
    """A term a search sends: its query weight (``query_weight`` of the question's count of it) and its IDF
    over the chunks searched."""

    term: QueryTerm
    idf: float

    @property
    def weight(self) -> float:
        return query_weight(self.term.count)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What a full-text search sends: the chosen terms, in the question's order (a chunk holding any of them
    is a text match; engines score ``sum(weight * idf * tf-saturation)`` over the chosen terms it holds),
    and the question's reference score.

    ``reference_score`` is the BM25 of a chunk of average length holding every term of the question once
    (each by its query weight; terms no chunk holds left out): the scale on which the scorer
    reads a text score (``shared/rag/scoring.py``). It covers the terms the cap left out too: the cap
    decides which terms are worth *searching* (a left-out term would add little to any chunk's score), not
    what matching the whole question would be worth.
    """

    terms: tuple[WeightedTerm, ...]
    reference_score: float


def plan_query(terms: Sequence[QueryTerm], doc_freqs: Sequence[float], docs: float) -> QueryPlan:
    """Choose the terms a search sends, given each term's document frequency among the ``docs`` chunks searched.

    Terms no chunk holds are dropped (they match nothing); of the rest, at most ``MAX_QUERY_TERMS`` with the
    highest query weight x IDF are kept (ties: earlier in the question). A short question keeps all its terms.
    """
    present = [WeightedTerm(term, bm25_idf(df, docs)) for term, df in zip(terms, doc_freqs, strict=True) if df > 0]
    reference = sum(t.weight * t.idf for t in present) / (1 + BM25_K1)
    if len(present) <= MAX_QUERY_TERMS:
        return QueryPlan(tuple(present), reference)
    best = sorted(range(len(present)), key=lambda i: (-present[i].weight * present[i].idf, i))[:MAX_QUERY_TERMS]
    return QueryPlan(tuple(present[i] for i in sorted(best)), reference)


def opensearch_analysis() -> dict[str, Any]:
    """Index ``settings.analysis`` for OpenSearch giving the terms ``analyze`` gives (analyzer ``flowless_text``).

    The standard tokenizer emits one token per ideograph and ``cjk_bigram`` pairs them; ``stemmer`` with
    language ``english`` is Lucene's Porter stemmer.
    """
    return {
        "filter": {
            "flowless_possessive": {"type": "stemmer", "language": "possessive_english"},
            "flowless_stop": {"type": "stop", "stopwords": sorted(ENGLISH_STOPWORDS)},
            "flowless_porter": {"type": "stemmer", "language": "english"},
        },
        "analyzer": {
            "flowless_text": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": [
                    "cjk_width",
                    "lowercase",
                    "cjk_bigram",
                    "flowless_possessive",
                    "flowless_stop",
                    "flowless_porter",
                ],
            }
        },
    }
