"""Dense-only retrieval quality on SciFact (BEIR) of each builtin embedder, run directly (no API, no text search).

Embeds the 5,183 abstracts ("title abstract", as BEIR's evaluation does) with ``BuiltinEmbedder.embed_documents``
and the 300 test questions with ``embed_query``, ranks by cosine and scores nDCG@10 / Recall@100 with the same
functions as ``bench_scifact.py``. Comparable to published BEIR/MTEB figures (bge-small-en-v1.5 0.713,
all-MiniLM-L6-v2 0.645 nDCG@10), so it checks that the shipped weights are the real models, and it measures
BGE's query instruction: ``--instruction`` also scores each model with BGE's retrieval instruction prepended
to the questions (the passages' vectors are the same, so they are embedded once).

    .venv/bin/python benchmarks/bench_scifact_dense.py [--model ID] [--instruction] [--limit-docs N]

The whole corpus takes ~9 minutes per model on 2 cores for bge-small-en-v1.5 (512-token abstracts), less
for all-MiniLM-L6-v2 (cut at 256 tokens).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scifact import DATA, load_corpus, load_qrels, load_queries, ndcg_at, recall_at, select_documents  # noqa: E402

from shared.adapters.local.builtin_embedder import (  # noqa: E402
    BGE_QUERY_INSTRUCTION,
    BUILTIN_MODELS,
    BuiltinEmbedder,
    BuiltinModel,
)


def score(
    embedder: BuiltinEmbedder,
    doc_ids: list[str],
    doc_vectors: np.ndarray,
    questions: dict[str, str],
    qrels: dict[str, dict[str, int]],
) -> tuple[float, float]:
    ndcgs, recalls = [], []
    for qid, question in questions.items():
        similarities = doc_vectors @ embedder.embed_query(question)
        top = np.argsort(-similarities, kind="stable")[:100]
        ranking = [doc_ids[i] for i in top]
        ndcgs.append(ndcg_at(ranking, qrels[qid], 10))
        recalls.append(recall_at(ranking, qrels[qid], 100))
    return statistics.fmean(ndcgs), statistics.fmean(recalls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", choices=sorted(BUILTIN_MODELS), help="only this model")
    parser.add_argument("--instruction", action="store_true", help="also score BGE models with their query instruction")
    parser.add_argument("--limit-docs", type=int, default=None, help="index only N documents (judged ones first)")
    args = parser.parse_args()

    corpus = load_corpus(DATA / "corpus.jsonl.gz")
    queries = load_queries(DATA / "queries.jsonl")
    qrels = load_qrels(DATA / "qrels" / "test.tsv")
    questions = {q: queries[q] for q in qrels if q in queries}
    docs = select_documents(corpus, qrels, args.limit_docs)
    doc_ids = list(docs)
    texts = [f"{title} {abstract}".strip() for title, abstract in docs.values()]
    print(f"SciFact test: {len(questions)} queries, {len(docs)} of {len(corpus)} documents; dense only", flush=True)

    rows: list[tuple[str, str, float, float]] = []
    for model_id in args.model or BUILTIN_MODELS:
        model: BuiltinModel = BUILTIN_MODELS[model_id]
        embedder = BuiltinEmbedder(model)
        embedder.load()
        wall, cpu = time.perf_counter(), time.process_time()
        doc_vectors = embedder.embed_documents(texts)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{model_id}: {len(texts)} documents in {wall:.0f} s ({len(texts) / wall:.1f} docs/s, "
            f"{len(texts) / cpu:.1f} docs/CPU-s)",
            flush=True,
        )
        variants = [("as shipped" + (" (instruction)" if model.query_instruction else ""), embedder)]
        if args.instruction and model_id.startswith("BAAI/bge") and not model.query_instruction:
            instructed = dataclasses.replace(model, query_instruction=BGE_QUERY_INSTRUCTION)
            variants.append(("with BGE's query instruction", BuiltinEmbedder(instructed)))
        for label, variant in variants:
            ndcg, recall = score(variant, doc_ids, doc_vectors, questions, qrels)
            rows.append((model_id, label, ndcg, recall))
            print(f"  {label}: nDCG@10 {ndcg:.4f}  Recall@100 {recall:.4f}", flush=True)

    print()
    print(f"{'model':<34}{'queries':<32}{'nDCG@10':>9}{'Recall@100':>12}")
    for model_id, label, ndcg, recall in rows:
        print(f"{model_id:<34}{label:<32}{ndcg:>9.4f}{recall:>12.4f}")


if __name__ == "__main__":
    main()
