"""How text and vector scores are fused, measured offline on the engine's own candidates.

``bench_scifact.py`` measures the scorer through the API, one full pass of HTTP requests per weight. This
script asks the same questions of the same parsed dataset once, in process, keeps every candidate the
engine returns (its BM25, cosine and the question's reference score ``R``), and then ranks them by
``shared.rag.scoring.hybrid_scores`` at any weight and by the other fusions it is compared with in
``shared/rag/scoring.py``, in seconds. Its text-only, vector-only and default-weight figures are those of
``bench_scifact.py`` on the same folder (same engine, same scorer); each fusion is printed with the paired
bootstrap interval (95 %, 2,000 resamples of the questions) of its difference to the better component.

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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_scifact import COLLECTIONS, DEFAULT_EMBEDDER, condensed, dataset_name, load_collection, ndcg_at
from heldout import Collection

from shared.ports.search import Candidate
from shared.rag import scoring

Floats = npt.NDArray[np.float64]
#: a fusion: (text scores, cosines, the question's R, weight) → the candidates' fused scores
Fusion = Callable[[Floats, Floats, float, float], Floats]
CACHE = "fusion-lab.json.gz"


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
def hybrid(text: Floats, cosine: Floats, reference: float, weight: float) -> Floats:
    """The scorer itself (``shared.rag.scoring.hybrid_scores``), in the candidates' order."""
    candidates = [
        Candidate(str(i), "d", "s", t or None, c, [], reference or None)
        for i, (t, c) in enumerate(zip(text.tolist(), cosine.tolist(), strict=True))
    ]
    fused = np.empty(len(candidates))
    for scored in scoring.hybrid_scores(candidates, weight):
        fused[int(scored.chunk_id)] = scored.similarity
    return fused


def _positive(cosine: Floats) -> Floats:
    return np.maximum(cosine, 0.0)


def _term_similarity(text: Floats, reference: float) -> Floats:
    """The scorer's ``bm25 / (bm25 + R)``, 0 without a text match."""
    return np.divide(text, text + reference, out=np.zeros_like(text), where=(text > 0) & (reference > 0))


def max_normalised(text: Floats, cosine: Floats, reference: float, weight: float) -> Floats:
    return (1 - weight) * text / max(text.max(), 1e-12) + weight * _positive(cosine)


def min_max(text: Floats, cosine: Floats, reference: float, weight: float) -> Floats:
    def scaled(x: Floats) -> Floats:
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    return (1 - weight) * scaled(text) + weight * scaled(cosine)


def z_scores(text: Floats, cosine: Floats, reference: float, weight: float) -> Floats:
    def z(x: Floats) -> Floats:
        spread = x.std()
        return (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)

    return (1 - weight) * z(text) + weight * z(cosine)


def reciprocal_rank(text: Floats, cosine: Floats, reference: float, weight: float) -> Floats:
    """RRF (k = 60) of the two rankings; a candidate a side did not find gets nothing from it."""

    def rrf(x: Floats, found: npt.NDArray[np.bool_]) -> Floats:
        ranks = np.empty(len(x))
        ranks[np.argsort(-x, kind="stable")] = np.arange(1, len(x) + 1)
        return np.where(found, 1 / (60 + ranks), 0.0)

    return (1 - weight) * rrf(text, text > 0) + weight * rrf(cosine, np.ones(len(cosine), dtype=bool))


def relative_cosine(text: Floats, cosine: Floats, reference: float, weight: float) -> Floats:
    """The scorer's term similarity, with the cosine divided by the best candidate's."""
    tsim = _term_similarity(text, reference)
    positive = _positive(cosine)
    return (1 - weight) * tsim + weight * positive / max(positive.max(), 1e-12)


def squared_term_similarity(text: Floats, cosine: Floats, reference: float, weight: float) -> Floats:
    """The term similarity squared: a text match weighs by how much of the question it covers."""
    tsim = _term_similarity(text, reference)
    return (1 - weight) * tsim**2 + weight * _positive(cosine)


FUSIONS: dict[str, Fusion] = {
    "bm25 / best bm25": max_normalised,
    "min-max of both": min_max,
    "z-scores of both": z_scores,
    "reciprocal rank fusion": reciprocal_rank,
    "cosine / best cosine": relative_cosine,
    "term similarity squared": squared_term_similarity,
}


# == measure ========================================================================================
def per_question(
    collection: Collection,
    candidates: dict[str, list[list[object]]],
    fusion: Fusion,
    weight: float,
    judged: frozenset[str] | None = None,
) -> npt.NDArray[np.float64]:
    """Each question's nDCG@10; with ``judged``, of the condensed ranking (only those documents)."""
    scores = []
    for qid, found in candidates.items():
        names = [str(c[0]) for c in found]
        text = np.array([float(c[1] or 0.0) for c in found])  # type: ignore[arg-type]
        cosine = np.array([float(c[2] or 0.0) for c in found])  # type: ignore[arg-type]
        reference = next((float(c[3]) for c in found if c[3]), 0.0)  # type: ignore[arg-type]
        fused = fusion(text, cosine, reference, weight) if found else np.zeros(0)
        order = np.lexsort((np.array(names), -fused)) if found else []
        ranking = [names[i] for i in order if names[i] != collection.excluded.get(qid)]
        scores.append(ndcg_at(condensed(ranking, judged), collection.qrels[qid], 10))
    return np.array(scores)


def interval(diff: Sequence[float], seed: int = 0) -> tuple[float, float]:
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
    candidates = stored[key]
    collection = load_collection(args.collection)
    measures = {"nDCG@10": None}
    if collection.judged is not None:
        measures["nDCG@10 of the condensed rankings (unjudged documents removed)"] = collection.judged
    for measure, judged in measures.items():
        text = per_question(collection, candidates, hybrid, 0.0, judged)
        vector = per_question(collection, candidates, hybrid, 1.0, judged)
        better, better_name = (text, "text") if text.mean() >= vector.mean() else (vector, "vector")
        print(f"{args.collection}: {len(candidates)} questions, {measure}; fusions at weight {args.weight}")
        print(f"{'text only (weight 0)':<40}{text.mean():>8.4f}")
        print(f"{'vector only (weight 1)':<40}{vector.mean():>8.4f}")
        for name, fusion in {"hybrid_scores (the scorer)": hybrid, **FUSIONS}.items():
            fused = per_question(collection, candidates, fusion, args.weight, judged)
            low, high = interval(fused - better)
            print(
                f"{name:<40}{fused.mean():>8.4f}   vs {better_name}: "
                f"{statistics.fmean(fused - better):+.4f} [{low:+.4f}, {high:+.4f}]"
            )


if __name__ == "__main__":
    main()
