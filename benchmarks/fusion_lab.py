"""How text and vector scores are fused, measured offline on the engine's own candidates.

``bench_scifact.py`` measures the scorer through the API, one full pass of HTTP requests per weight. This
script asks the same questions of the same parsed dataset once, in process, keeps every candidate the
engine returns (its BM25, cosine and the question's reference score ``R``), and then ranks them by
``shared.rag.scoring.hybrid_scores`` at any weight and by the other fusions it is compared with in
``shared/rag/scoring.py``, in seconds. Its text-only, vector-only and default-weight figures are those of
``bench_scifact.py`` on the same folder (same engine, same scorer); each fusion is printed with the paired
bootstrap interval (95 %, 2,000 resamples of the questions) of its difference to the better component and,
for the fusions whose score is a similarity on RAGFlow's scale, what RAGFlow's default ``similarity_threshold``
(0.2) keeps of it: the median number of candidates a question keeps and the share of questions that keep none
(a chat then answers its ``empty_response``). RAGFlow's own term similarity is among the fusions
(``ragflow_term_similarity``): the question-weight share of the question's terms the chunk holds.

    .venv/bin/python benchmarks/bench_scifact.py --collection wiki-sections --data-dir /tmp/wiki --no-sweep
    .venv/bin/python benchmarks/fusion_lab.py --collection wiki-sections --data-dir /tmp/wiki

The first command ingests the collection (kept in ``--data-dir``); the second reads its candidates (cached in
the folder as ``fusion-lab.json.gz``; ``--refresh`` asks again, e.g. after a change to the engine's text
search) and prints the table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_scifact import (
    COLLECTIONS,
    DEFAULT_EMBEDDER,
    condensed,
    dataset_name,
    doc_text,
    load_collection,
    ndcg_at,
)
from heldout import Collection

from shared.ports.search import Candidate
from shared.rag import scoring
from shared.rag.text_analysis import analyze, analyze_query, bm25_idf, query_weight

Floats = npt.NDArray[np.float64]
CACHE = "fusion-lab.json.gz"
#: RAGFlow's default ``similarity_threshold``
THRESHOLD = 0.2


@dataclass(frozen=True)
class Signals:
    """One question's candidates: their document names, BM25 (0 without a text match), cosine (None read as 0),
    the question's ``R``, and the share of the question's term weight each candidate's document holds."""

    names: list[str]
    text: Floats
    cosine: Floats
    reference: float
    coverage: Floats


#: a fusion: (a question's signals, weight) → the candidates' fused scores
Fusion = Callable[[Signals, float], Floats]


def dump(folder: Path, collection: str, embedder_id: str) -> dict[str, list[list[object]]]:
    """Every test question's candidates, as the engine returns them for /retrieval (top_k 1024):
    [document name, text score or None, cosine or None, R or None] each."""
    from functions.local.server import rebuild_index_if_needed
    from shared.config import Settings
    from shared.container import Container
    from shared.ports.search import SearchQuery
    from shared.rag.embedding import build_embedder

    corpus, queries, qrels = (c := load_collection(collection)).corpus, c.queries, c.qrels
    container = Container(Settings(backend="local", data_dir=folder))
    tenant_id = container.tenant_service.ensure_default_tenant()[0]
    dataset = container.dataset_repo.get_by_name(tenant_id, dataset_name(collection, len(corpus), embedder_id))
    if dataset is None:
        raise SystemExit(f"no {collection} dataset in {folder}: run bench_scifact.py --data-dir {folder} first")
    rebuild_index_if_needed(container)
    names = {d["id"]: str(d["name"]).removesuffix(".txt") for d in container.document_repo.list_all(dataset["id"])}
    embedder = build_embedder(dataset["embedding_model"])
    found: dict[str, list[list[object]]] = {}
    for qid in (q for q in qrels if q in queries):
        vector = [float(x) for x in embedder.embed_query(queries[qid])]
        query = SearchQuery(tenant_id, [dataset["id"]], text=queries[qid], vector=vector, top_k=1024)
        found[qid] = [
            [names[c.document_id], c.text_score, c.vector_score, c.text_reference]
            for c in container.search_index.search(query)
        ]
    return found


# == fusions ========================================================================================
def hybrid(signals: Signals, weight: float) -> Floats:
    """The scorer itself (``shared.rag.scoring.hybrid_scores``), in the candidates' order."""
    candidates = [
        Candidate(str(i), "d", "s", t or None, c, [], signals.reference or None)
        for i, (t, c) in enumerate(zip(signals.text.tolist(), signals.cosine.tolist(), strict=True))
    ]
    fused = np.empty(len(candidates))
    for scored in scoring.hybrid_scores(candidates, weight):
        fused[int(scored.chunk_id)] = scored.similarity
    return fused


def _positive(cosine: Floats) -> Floats:
    return np.maximum(cosine, 0.0)


def _term_similarity(signals: Signals) -> Floats:
    """``bm25 / (bm25 + R)``, 0 without a text match: the scorer's curve before ``question_coverage``."""
    text, reference = signals.text, signals.reference
    return np.divide(text, text + reference, out=np.zeros_like(text), where=(text > 0) & (reference > 0))


def undiscounted(signals: Signals, weight: float) -> Floats:
    """The scorer without ``question_coverage``'s discount (as it was before it): ``bm25 / (bm25 + R)`` as is."""
    return (1 - weight) * _term_similarity(signals) + weight * _positive(signals.cosine)


def max_normalised(signals: Signals, weight: float) -> Floats:
    return (1 - weight) * signals.text / max(float(signals.text.max()), 1e-12) + weight * _positive(signals.cosine)


def min_max(signals: Signals, weight: float) -> Floats:
    def scaled(x: Floats) -> Floats:
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    return (1 - weight) * scaled(signals.text) + weight * scaled(signals.cosine)


def z_scores(signals: Signals, weight: float) -> Floats:
    def z(x: Floats) -> Floats:
        spread = x.std()
        return (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)

    return (1 - weight) * z(signals.text) + weight * z(signals.cosine)


def reciprocal_rank(signals: Signals, weight: float) -> Floats:
    """RRF (k = 60) of the two rankings; a candidate a side did not find gets nothing from it."""

    def rrf(x: Floats, found: npt.NDArray[np.bool_]) -> Floats:
        ranks = np.empty(len(x))
        ranks[np.argsort(-x, kind="stable")] = np.arange(1, len(x) + 1)
        return np.where(found, 1 / (60 + ranks), 0.0)

    text, cosine = signals.text, signals.cosine
    return (1 - weight) * rrf(text, text > 0) + weight * rrf(cosine, np.ones(len(cosine), dtype=bool))


def relative_cosine(signals: Signals, weight: float) -> Floats:
    """The scorer's term similarity, with the cosine divided by the best candidate's."""
    positive = _positive(signals.cosine)
    return (1 - weight) * _term_similarity(signals) + weight * positive / max(float(positive.max()), 1e-12)


def squared_term_similarity(signals: Signals, weight: float) -> Floats:
    """The term similarity squared: a text match weighs by how much of the question it covers."""
    return (1 - weight) * _term_similarity(signals) ** 2 + weight * _positive(signals.cosine)


def ragflow_term_similarity(signals: Signals, weight: float) -> Floats:
    """RAGFlow's own term similarity (``FulltextQueryer.token_similarity``): the share of the question's term
    weight the chunk holds, 1.0 for a chunk holding every term; here weighted by query weight x IDF, the
    weights this project's BM25 gives the terms."""
    return (1 - weight) * signals.coverage + weight * _positive(signals.cosine)


#: name → (fusion, whether its score is a similarity on RAGFlow's scale, so that a threshold reads it)
FUSIONS: dict[str, tuple[Fusion, bool]] = {
    "R without the coverage discount": (undiscounted, True),
    "bm25 / best bm25": (max_normalised, True),
    "min-max of both": (min_max, False),
    "z-scores of both": (z_scores, False),
    "reciprocal rank fusion": (reciprocal_rank, False),
    "cosine / best cosine": (relative_cosine, True),
    "term similarity squared": (squared_term_similarity, True),
    "RAGFlow's term similarity": (ragflow_term_similarity, True),
}


def signals_of(collection: Collection, candidates: dict[str, list[list[object]]]) -> dict[str, Signals]:
    """Each question's signals; the coverage from the collection's own text (one chunk per document, analyzed
    as the engine analyzes it, document frequencies over the corpus as the engine counts them)."""
    terms = {doc: set(analyze(doc_text(*collection.corpus[doc]).decode())) for doc in collection.corpus}
    doc_freq = Counter(term for held in terms.values() for term in held)
    found_signals = {}
    for qid, found in candidates.items():
        weights = {
            t.term: query_weight(t.count) * bm25_idf(doc_freq[t.term], len(terms))
            for t in analyze_query(collection.queries[qid])
            if doc_freq[t.term]
        }
        total = sum(weights.values()) or 1.0
        names = [str(c[0]) for c in found]
        found_signals[qid] = Signals(
            names=names,
            text=np.array([float(c[1] or 0.0) for c in found]),  # type: ignore[arg-type]
            cosine=np.array([float(c[2] or 0.0) for c in found]),  # type: ignore[arg-type]
            reference=next((float(c[3]) for c in found if c[3]), 0.0),  # type: ignore[arg-type]
            coverage=np.array([sum(w for term, w in weights.items() if term in terms[name]) / total for name in names]),
        )
    return found_signals


# == measure ========================================================================================
def per_question(
    collection: Collection,
    signals: dict[str, Signals],
    fusion: Fusion,
    weight: float,
    judged: frozenset[str] | None = None,
) -> tuple[Floats, list[int]]:
    """Each question's nDCG@10 (with ``judged``, of the condensed ranking: only those documents), and how many
    of its candidates reach ``THRESHOLD``."""
    scores, kept = [], []
    for qid, found in signals.items():
        fused = fusion(found, weight) if found.names else np.zeros(0)
        order: list[int] = np.lexsort((np.array(found.names), -fused)).tolist() if found.names else []
        ranking = [found.names[i] for i in order if found.names[i] != collection.excluded.get(qid)]
        scores.append(ndcg_at(condensed(ranking, judged), collection.qrels[qid], 10))
        kept.append(int((fused >= THRESHOLD).sum()))
    return np.array(scores), kept


def interval(diff: Sequence[float] | Floats, seed: int = 0) -> tuple[float, float]:
    values = np.asarray(diff)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (2000, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", choices=COLLECTIONS, default="scifact")
    parser.add_argument("--data-dir", required=True, help="a folder bench_scifact.py ingested the collection into")
    parser.add_argument("--embedding-model", default=DEFAULT_EMBEDDER)
    parser.add_argument("--weight", type=float, default=0.3, help="vector_similarity_weight (default 0.3)")
    parser.add_argument("--refresh", action="store_true", help="ask the engine again (ignore the cached candidates)")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    folder = Path(args.data_dir)
    cache = folder / CACHE
    stored = json.loads(gzip.decompress(cache.read_bytes())) if cache.exists() and not args.refresh else {}
    key = f"{args.collection}/{args.embedding_model}"
    if key not in stored:
        stored[key] = dump(folder, args.collection, args.embedding_model)
        cache.write_bytes(gzip.compress(json.dumps(stored).encode()))
    collection = load_collection(args.collection)
    signals = signals_of(collection, stored[key])
    measures: dict[str, frozenset[str] | None] = {"nDCG@10": None}
    if collection.judged is not None:
        measures["nDCG@10 of the condensed rankings (unjudged documents removed)"] = collection.judged
    for measure, judged in measures.items():
        text = per_question(collection, signals, hybrid, 0.0, judged)[0]
        vector = per_question(collection, signals, hybrid, 1.0, judged)[0]
        better, better_name = (text, "text") if text.mean() >= vector.mean() else (vector, "vector")
        print(f"{args.collection}: {len(signals)} questions, {measure}; fusions at weight {args.weight}")
        print(f"{'':<40}{'nDCG':>8}   {'vs ' + better_name + ' (95% CI)':<28}at threshold {THRESHOLD}: kept, none")
        print(f"{'text only (weight 0)':<40}{text.mean():>8.4f}")
        print(f"{'vector only (weight 1)':<40}{vector.mean():>8.4f}")
        for name, (fusion, on_scale) in {"hybrid_scores (the scorer)": (hybrid, True), **FUSIONS}.items():
            fused, kept = per_question(collection, signals, fusion, args.weight, judged)
            low, high = interval(fused - better)
            line = f"{name:<40}{fused.mean():>8.4f}   {statistics.fmean(fused - better):+.4f} [{low:+.4f}, {high:+.4f}]"
            if on_scale:
                line += f"   median {statistics.median(kept):g}, {sum(k == 0 for k in kept) / len(kept):.0%}"
            print(line)


if __name__ == "__main__":
    main()
