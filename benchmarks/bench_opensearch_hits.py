"""What the OpenSearch engine (AWS) spends reading a search's text hits, beside the same hits with JSON vectors.

A hybrid /retrieval on AWS reads up to 1,024 text hits from OpenSearch Serverless, each with the vector its
cosine is computed from. Stored packed (``PACKED_VECTOR``: base64 of the float32s), a hit is ~2 KB; as the
JSON list of numbers that copies written before it carry (and that the engine once read for every hit, with
the texts it analyzed for the matched terms, now the named clauses' ``matched_queries``), ~8 KB. This times,
in one run, parsing the response body and turning the hits into candidates (``merge_hits``) both ways, for
1,024 SciFact abstracts with 384-dim vectors; the network time of the bytes comes on top on AWS.

    .venv/bin/python benchmarks/bench_opensearch_hits.py [--hits 1024] [--runs 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from shared.adapters.aws.opensearch_index import PACKED_VECTOR, merge_hits  # noqa: E402
from shared.rag.text_analysis import analyze_query, plan_query  # noqa: E402
from shared.rag.vectors import encode_vector  # noqa: E402

SCIFACT = next(
    (p for p in (ROOT.parent / "shared/data/scifact", ROOT.parents[1] / "shared/data/scifact") if p.is_dir()),
    ROOT.parent / "shared/data/scifact",
)
QUESTION = "0-dimensional biomaterials show inductive properties."


def response(hits: int, packed: bool) -> bytes:
    """An OpenSearch answer with ``hits`` text hits, vectors packed or as JSON numbers."""
    rng = np.random.default_rng(0)
    out: list[dict[str, Any]] = []
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= hits:
                break
            vector = rng.standard_normal(384)
            vector /= np.linalg.norm(vector)
            source: dict[str, Any] = {
                "chunk_id": f"c{i}",
                "dataset_id": "d",
                "document_id": str(json.loads(line)["_id"]),
            }
            if packed:
                source |= {"copy_id": f"copy{i}", PACKED_VECTOR: encode_vector(vector.tolist())}
            else:
                source["vector"] = vector.tolist()
            out.append(
                {
                    "_index": "flowless-chunks-384",
                    "_id": str(i),
                    "_score": 3.5,
                    "_source": source,
                    "matched_queries": ["t0", "t2"],
                }
            )
    return json.dumps({"took": 5, "hits": {"hits": out}}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    terms = analyze_query(QUESTION)
    plan = plan_query(terms, [10] * len(terms), 5000)
    query = (np.ones(384) / np.sqrt(384)).tolist()
    bodies = {"packed vectors (written now)": response(args.hits, True), "JSON vectors": response(args.hits, False)}
    times: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(args.runs):
        for name, body in bodies.items():
            started = time.perf_counter()
            hits = json.loads(body)["hits"]["hits"]
            found = merge_hits(hits, [], plan, query)
            times[name].append(time.perf_counter() - started)
            assert len(found) == args.hits and all(c.vector_score is not None for c in found)
    print(f"{args.hits} text hits, 384 dims: parse the answer and merge the hits, median of {args.runs}")
    for name, body in bodies.items():
        print(f"  {name:<30} {len(body) / 1e6:6.2f} MB   {statistics.median(times[name]) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
