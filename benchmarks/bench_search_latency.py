"""Embedded search index: latency, exactness, memory, load time and insert rate (100,000 chunks by default).

Corpus: SciFact abstracts (``../shared/data/scifact``) split into passages of 1-3 sentences; the corpus is
walked several times with different random groupings until there are ``--chunks`` passages (real
scientific text and vocabulary, overlapping passages). Vectors are random unit float32 vectors (384 dims):
latency and exactness of a brute-force scan do not depend on their content. Queries are the 1,109 SciFact
claims, each with a random unit query vector (query embedding is not part of the measure).

Long questions: SciFact abstracts of 150-250 words (mean ~195) asked as questions, each with a random query
vector: the paragraph-long questions whose latency must not explode with their length (RAGFlow-style query
analysis: at most 25 terms are searched). Claims and long questions are timed by the index alone and with
the hybrid scorer (``shared/rag/scoring.py``, weight 0.3), as /retrieval runs them.

Steps: bulk load with ``rebuild`` (90%), then ``upsert`` the rest in batches of 256 (the worker's path);
then a fresh process opens the index (load time, RSS) and measures hybrid, text-only and vector-only
searches of the claims and hybrid searches of the long questions (top_k 1024, one tenant, one dataset
holding every chunk) interleaved query by query with a plain numpy brute-force scan of the same matrix (so
load from other processes weighs on all alike), checking that the vector part returns exactly the
brute-force top 1024 (recall 1.0; recall@10 printed too). Ratios against the same run's brute force and
claims are printed. The machine's load average is printed: on the shared 2-core machine every figure, the
brute-force baseline included, scales with it.
Finally (``--quality``, on by default) BM25 alone is scored on the SciFact test queries (nDCG@10, one
chunk per abstract, title + text) as a check of the text ranking against the published 0.679.

    .venv/bin/python benchmarks/bench_search_latency.py [--chunks 100000] [--dim 384] [--queries N] [--no-quality]
    .venv/bin/python benchmarks/bench_search_latency.py --chunks 10000 --no-quality      # long-question target
    .venv/bin/python benchmarks/bench_search_latency.py --chunks 1000000 --queries 200 --no-quality   # scale

Targets (issue): hybrid p50 <= 20 ms, p99 <= 60 ms; vector part exact and (at 100k chunks) within 2x of brute force;
RSS <= 1 GB after load; long questions (index + scorer) p50 <= 60 ms at 10k chunks. At 1M chunks: hybrid
p50 <= 80 ms, RSS <= 2.5 GB, recall@10 against exact >= 0.98.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import math
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.adapters.local.embedded_index import EmbeddedSearchIndex  # noqa: E402
from shared.ports.search import Candidate, IndexedChunk, SearchQuery  # noqa: E402
from shared.rag.scoring import hybrid_scores  # noqa: E402

# ../shared/data beside the repository (a worktree under wt/ finds it two levels further up)
SCIFACT = next(
    (p for p in (ROOT.parent / "shared/data/scifact", ROOT.parents[1] / "shared/data/scifact") if p.is_dir()),
    ROOT.parent / "shared/data/scifact",
)
TENANT, DATASET = "bench-tenant", "bench-dataset"
TOP_K = 1024
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


def abstracts() -> list[dict[str, str]]:
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def passages(target: int) -> Iterator[tuple[str, str]]:
    """(document id, passage) pairs: each pass over the corpus groups sentences differently."""
    docs = [(d["_id"], _SENTENCE_END.split(d["text"])) for d in abstracts()]
    made, walk = 0, 0
    while True:
        rng = random.Random(walk)
        for doc_id, sentences in docs:
            i = 0
            while i < len(sentences):
                size = rng.randint(1, 3)
                yield f"{doc_id}-{walk}", " ".join(sentences[i : i + size])
                made += 1
                if made == target:
                    return
                i += size
        walk += 1


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(label: str, seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    out = {"p50": percentile(ms, 50), "p99": percentile(ms, 99), "mean": statistics.fmean(ms)}
    print(f"  {label:<34} p50 {out['p50']:6.2f} ms   p99 {out['p99']:6.2f} ms   mean {out['mean']:6.2f} ms")
    return out


# -- build (parent process) ---------------------------------------------------------------------------
def records(chunks: int, dim: int) -> Iterator[IndexedChunk]:
    """The chunks, streamed (vectors drawn a block at a time: a million chunks never sit in memory twice)."""
    rng = np.random.default_rng(7)
    vectors = np.zeros((0, dim), dtype=np.float32)
    for i, (doc_id, text) in enumerate(passages(chunks)):
        if i % 65536 == 0:
            vectors = unit_vectors(rng, min(65536, chunks - i), dim)
        yield IndexedChunk(
            id=f"chunk-{i}",
            tenant_id=TENANT,
            dataset_id=DATASET,
            document_id=doc_id,
            document_name=f"{doc_id}.txt",
            content=text,
            vector=vectors[i % 65536],
        )


def build(index_dir: Path, chunks: int, dim: int) -> None:
    print(f"corpus: {chunks:,} SciFact passages, random unit vectors of {dim} dims")
    stream = records(chunks, dim)
    bulk = int(chunks * 0.9)
    with EmbeddedSearchIndex(index_dir) as index:
        started = time.perf_counter()
        index.rebuild(islice(stream, bulk))
        elapsed = time.perf_counter() - started
        print(f"  rebuild (bulk load) of {bulk:,} chunks: {elapsed:.1f} s = {bulk / elapsed:,.0f} chunks/s")
        started = time.perf_counter()
        while batch := list(islice(stream, 256)):
            index.upsert(batch)
        elapsed = time.perf_counter() - started
        rest = chunks - bulk
        print(f"  upsert of {rest:,} more in batches of 256: {elapsed:.1f} s = {rest / elapsed:,.0f} chunks/s")
        assert index.count() == chunks
    size = sum(p.stat().st_size for p in index_dir.iterdir())
    print(f"  on disk: {size / 2**20:.0f} MiB")


# -- measure (fresh child process: clean RSS and load time) -------------------------------------------
def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def long_questions(count: int) -> list[str]:
    """SciFact abstracts of 150-250 words, used as questions (paragraph-long questions)."""
    found = [d["text"] for d in abstracts() if 150 <= len(d["text"].split()) <= 250]
    return found[:count]


def measure(index_dir: Path, dim: int, limit: int | None) -> None:
    before = rss_mib()
    started = time.perf_counter()
    index = EmbeddedSearchIndex(index_dir)
    load = time.perf_counter() - started
    after = rss_mib()
    print(f"  open (load from disk): {load:.2f} s; RSS {after:.0f} MiB ({after - before:.0f} MiB for the index)")

    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh][:limit]
    longs = long_questions(len(texts))
    qvecs = unit_vectors(np.random.default_rng(11), len(texts), dim)
    view = index._catalog.shards[(TENANT, DATASET)].view  # the same matrix, for the baseline
    block = view.vectors_of(dim)
    assert block is not None
    matrix, rows = block.matrix[: block.count], block.ords[: block.count]

    def brute_force(q: np.ndarray) -> np.ndarray:
        sims = matrix @ q
        top = np.argpartition(-sims, TOP_K - 1)[:TOP_K]
        return top[np.argsort(-sims[top])]

    def search(text: str, vector: np.ndarray | None) -> list[Candidate]:
        return index.search(SearchQuery(TENANT, [DATASET], text=text, vector=cast(list[float] | None, vector)))

    for i in range(min(50, len(texts))):  # warm-up: page in, BLAS threads, caches
        search(texts[i], qvecs[i])
        brute_force(qvecs[i])
    gc.freeze()  # as `flowless serve` does once started: the loaded index stays out of full collections
    # Interleaved per query, so that load from other processes on the machine weighs on every kind alike.
    kinds = ("hybrid", "scored", "long", "long_scored", "text", "vector", "brute")
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    recall: list[float] = []
    recall10: list[float] = []
    sizes: list[int] = []
    long_sizes: list[int] = []
    for i in range(len(texts)):
        started = time.perf_counter()
        expected = brute_force(qvecs[i])
        times["brute"].append(time.perf_counter() - started)
        started = time.perf_counter()
        found = [c.chunk_id for c in search("", qvecs[i])]
        times["vector"].append(time.perf_counter() - started)
        for kind, question, counts in (("hybrid", texts[i], sizes), ("long", longs[i % len(longs)], long_sizes)):
            started = time.perf_counter()
            candidates = search(question, qvecs[i])
            middle = time.perf_counter()
            hybrid_scores(candidates, 0.3)
            times[kind].append(middle - started)
            times["scored" if kind == "hybrid" else "long_scored"].append(time.perf_counter() - started)
            counts.append(len(candidates))
        started = time.perf_counter()
        search(texts[i], None)
        times["text"].append(time.perf_counter() - started)
        expected_ids = [view.ids[int(r)] for r in rows[expected]]
        recall.append(len(set(found) & set(expected_ids)) / len(expected_ids))
        recall10.append(len(set(found[:10]) & set(expected_ids[:10])) / 10)

    words = statistics.fmean(len(q.split()) for q in longs)
    print(f"search, {len(texts)} SciFact claims, top_k {TOP_K}, {view.n:,} chunks in one dataset:")
    results = {
        "hybrid": summary("hybrid (text + vector)", times["hybrid"]),
        "scored": summary("hybrid + hybrid_scores (w 0.3)", times["scored"]),
        "text": summary("text only (BM25)", times["text"]),
        "vector": summary("vector only (exact k-NN)", times["vector"]),
        "brute": summary("numpy brute force (M @ q, top 1024)", times["brute"]),
    }
    print(f"long questions: {len(times['long'])} searches, SciFact abstracts as questions (mean {words:.0f} words):")
    results["long"] = summary("hybrid (text + vector)", times["long"])
    results["long_scored"] = summary("hybrid + hybrid_scores (w 0.3)", times["long_scored"])
    print(f"  candidates per query: claims {statistics.fmean(sizes):.0f}, long {statistics.fmean(long_sizes):.0f}")
    ratio = results["vector"]["p50"] / results["brute"]["p50"]
    long_ratio = results["long_scored"]["p50"] / results["scored"]["p50"]
    print(f"  vector recall@{TOP_K} vs brute force: {statistics.fmean(recall):.4f} (min {min(recall):.4f}); ", end="")
    print(f"recall@10 {statistics.fmean(recall10):.4f} (min {min(recall10):.4f})")
    print(f"  vector-only p50 / brute-force p50: {ratio:.2f}x (same run)")
    print(f"  long-question p50 / claim p50 (hybrid + scoring): {long_ratio:.2f}x (same run)")
    print(
        f"  hybrid + scoring p50 / brute-force p50: claims {results['scored']['p50'] / results['brute']['p50']:.2f}x, ",
        end="",
    )
    print(f"long questions {results['long_scored']['p50'] / results['brute']['p50']:.2f}x")
    load_avg = os.getloadavg()
    loads = " / ".join(f"{value:.1f}" for value in load_avg)
    print(f"  machine load average (1, 5, 15 min) at the end: {loads} on {os.cpu_count()} cores")
    if view.n >= 1_000_000:
        met = results["hybrid"]["p50"] <= 80 and statistics.fmean(recall10) >= 0.98 and after <= 2560
        label = "1M chunks: hybrid p50<=80 ms, recall@10>=0.98, RSS<=2.5 GB"
    else:
        # The brute-force ratio is a target at the default 100k chunks: below, a brute-force product takes a
        # fraction of a millisecond and the search's fixed costs (query, candidate lists) are the ratio.
        ratio_applies = view.n >= 100_000
        met = (
            results["hybrid"]["p50"] <= 20
            and results["hybrid"]["p99"] <= 60
            and results["long_scored"]["p50"] <= 60
            and min(recall) == 1.0
            and (ratio <= 2 or not ratio_applies)
            and after <= 1024
        )
        label = "hybrid p50<=20, p99<=60 ms, long questions p50<=60 ms, recall 1.0, " + (
            "<=2x brute force, RSS<=1 GB" if ratio_applies else "RSS<=1 GB; <=2x brute force from 100k chunks"
        )
    print(f"targets ({label}): {'met' if met else 'MISSED'}")
    index.close()


# -- BM25 quality on SciFact (nDCG@10) -----------------------------------------------------------------
def quality() -> None:
    qrels: dict[str, dict[str, int]] = {}
    for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, doc_id, score = line.split("\t")
        qrels.setdefault(qid, {})[doc_id] = int(score)
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = {q["_id"]: q["text"] for q in map(json.loads, fh) if q["_id"] in qrels}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedSearchIndex(Path(tmp)) as index:
        index.rebuild(
            IndexedChunk(d["_id"], "t", "scifact", d["_id"], "", f"{d['title']} {d['text']}", []) for d in abstracts()
        )
        scores = []
        for qid, text in queries.items():
            ranked = index.search(SearchQuery("t", ["scifact"], text=text, top_k=10))
            dcg = sum(qrels[qid].get(c.chunk_id, 0) / math.log2(r + 2) for r, c in enumerate(ranked))
            ideal = sorted(qrels[qid].values(), reverse=True)[:10]
            scores.append(dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal)))
    print(f"BM25 nDCG@10 on SciFact test ({len(queries)} queries): {statistics.fmean(scores):.3f} (published 0.679)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=None, help="ask only the first N claims (e.g. at 1M chunks)")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child mode: open and query
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.dim, args.queries)
        return
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        build(index_dir, args.chunks, args.dim)
        print("fresh process:")
        child = [sys.executable, __file__, "--measure", str(index_dir), "--dim", str(args.dim)]
        subprocess.run(child + (["--queries", str(args.queries)] if args.queries else []), check=True)
    if not args.no_quality:
        quality()


if __name__ == "__main__":
    main()
