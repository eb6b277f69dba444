"""Retrieval quality on SciFact (BEIR) and held-out collections through the public API of a local `flowless serve`.

Starts `flowless serve` on a data folder (a fresh temporary one unless ``--data-dir`` is given) and a free
port, creates a dataset (chunk_method "one": one chunk per abstract; embedding model ``--embedding-model``,
default the builtin all-MiniLM-L6-v2@Builtin), uploads every corpus document as ``<doc_id>.txt``
("title\\n\\nabstract"), parses them, then asks POST /api/v1/retrieval every test question (the 300 queries
of qrels/test.tsv) at several ``vector_similarity_weight`` values and scores the rankings with nDCG@10 and
Recall@100.

The dataset is created with ``parser_config.filename_embd_weight = 0``: the file names are corpus ids, they
carry no meaning, so none of the name is mixed into the chunk vectors (the default would be 0.1).

    .venv/bin/python benchmarks/bench_scifact.py                       # full run (~5,183 docs; minutes)
    .venv/bin/python benchmarks/bench_scifact.py --limit-docs 500      # smoke run
    .venv/bin/python benchmarks/bench_scifact.py --data-dir /tmp/scifact-data   # keep / reuse the ingest
    .venv/bin/python benchmarks/bench_scifact.py --embedding-model BAAI/bge-small-en-v1.5@Builtin
    .venv/bin/python benchmarks/bench_scifact.py --collection wiki-sections     # held-out: paragraph questions
    .venv/bin/python benchmarks/bench_scifact.py --collection lee               # held-out: human-judged, small

``--collection`` picks the collection: ``scifact`` (default; ``../shared/data/scifact``), or one of the held-out
collections of ``benchmarks/heldout.py`` (built from text the ``gensim`` wheel ships; ``pip install --no-deps
gensim==4.4.0``, the ``bench`` extra): ``wiki-sections`` (373 paragraph-long questions over 4,041 Wikipedia
passages; judgments from the articles' structure) and ``lee`` (39 news paragraphs as questions over 350 news
documents; human similarity judgments). Their questions are whole paragraphs (~80-300 words), unlike
SciFact's one-sentence claims. The held-out collections are measured on every release beside SciFact.

With ``--data-dir``, a later run on the same folder finds the parsed dataset and only asks the questions
(the server, and so the scorer in ``shared/rag/scoring.py``, is started fresh every run). Nothing else is
cached between runs.

Metrics follow BEIR / trec_eval: nDCG@10 with linear gain (the qrels grade) and log2 discount, the ideal
DCG from the judged relevant documents; Recall@100 = relevant documents in the top 100 / relevant
documents (grade > 0). Queries with no relevant document found score 0; every test query counts.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout
from bench_list_datasets import free_port, start_server

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data beside the repository (a worktree under wt/ finds it two levels further up)
DATA = next(
    (p for p in (ROOT.parent / "shared/data/scifact", ROOT.parents[1] / "shared/data/scifact") if p.is_dir()),
    ROOT.parent / "shared/data/scifact",
)
MAIN_WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)
SWEEP_WEIGHTS = (0.1, 0.2, 0.4, 0.6, 0.8, 0.9)
UPLOAD_BATCH = 50
PARSE_BATCH = 500
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2@Builtin"
COLLECTIONS = ("scifact", "wiki-sections", "lee")


# == data ============================================================================================
def load_corpus(path: Path) -> dict[str, tuple[str, str]]:
    corpus: dict[str, tuple[str, str]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            corpus[str(doc["_id"])] = (doc.get("title") or "", doc.get("text") or "")
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        return {str(q["_id"]): q["text"] for q in map(json.loads, fh)}


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or parts[0] == "query-id":
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def doc_text(title: str, abstract: str) -> bytes:
    return (f"{title}\n\n{abstract}" if title else abstract).encode()


# == metrics (BEIR / trec_eval definitions) ============================================================
def ndcg_at(ranking: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k, linear gain: sum(rel_i / log2(i + 1)) over the top k, divided by the ideal ordering's."""
    dcg = sum(judged.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    relevant = {doc for doc, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# == API ===========================================================================================
def check(response: httpx.Response) -> object:
    body = response.json()
    if body.get("code") != 0:
        raise SystemExit(f"{response.request.method} {response.request.url.path}: {body}")
    return body.get("data")


def dataset_name(collection: str, documents: int, embedder: str) -> str:
    """One dataset per collection, corpus size and model, so runs with different models can share a
    ``--data-dir``."""
    if embedder == DEFAULT_EMBEDDER:
        return f"{collection}-{documents}"  # the name runs before --embedding-model used
    return f"{collection}-{documents}-" + "".join(c if c.isalnum() or c in "-." else "-" for c in embedder)


def find_or_create_dataset(client: httpx.Client, name: str, embedder: str) -> tuple[str, bool]:
    """The dataset's id, and whether it already existed."""
    found = client.get("/api/v1/datasets", params={"name": name}).json()
    if found.get("code") == 0 and found.get("data"):
        dataset = found["data"][0]
        if dataset.get("embedding_model") != embedder:
            raise SystemExit(f"dataset {name} embeds with {dataset.get('embedding_model')}, not {embedder}")
        return dataset["id"], True
    created = check(
        client.post(
            "/api/v1/datasets",
            json={
                "name": name,
                "embedding_model": embedder,
                "chunk_method": "one",
                "parser_config": {"filename_embd_weight": 0.0},
            },
        )
    )
    assert isinstance(created, dict)
    if created.get("chunk_method") != "one" or (created.get("parser_config") or {}).get("filename_embd_weight") != 0.0:
        raise SystemExit(f"dataset settings not applied: {created.get('chunk_method')} {created.get('parser_config')}")
    return created["id"], False


def count_documents(client: httpx.Client, dataset_id: str, run: Sequence[str] = ()) -> int:
    params: list[tuple[str, str | int | float | bool | None]] = [("page_size", 1)] + [("run", r) for r in run]
    data = check(client.get(f"/api/v1/datasets/{dataset_id}/documents", params=params))
    assert isinstance(data, dict)
    return int(data["total"])


def list_documents(client: httpx.Client, dataset_id: str) -> Iterator[dict[str, object]]:
    page = 1
    while True:
        data = check(client.get(f"/api/v1/datasets/{dataset_id}/documents", params={"page": page, "page_size": 1000}))
        assert isinstance(data, dict)
        yield from data["docs"]
        if len(data["docs"]) < 1000:
            return
        page += 1


def ingest(client: httpx.Client, dataset_id: str, corpus: Mapping[str, tuple[str, str]]) -> float:
    """Upload and parse every document; returns the seconds from the first upload to all DONE."""
    started = time.perf_counter()
    ids = list(corpus)
    document_ids: list[str] = []
    for i in range(0, len(ids), UPLOAD_BATCH):
        files = [("file", (f"{d}.txt", doc_text(*corpus[d]), "text/plain")) for d in ids[i : i + UPLOAD_BATCH]]
        uploaded = check(client.post(f"/api/v1/datasets/{dataset_id}/documents", files=files))
        assert isinstance(uploaded, list) and len(uploaded) == len(files), uploaded
        document_ids.extend(str(doc["id"]) for doc in uploaded)
    uploaded_at = time.perf_counter()
    print(f"  uploaded {len(document_ids)} documents in {uploaded_at - started:.1f} s", flush=True)
    for i in range(0, len(document_ids), PARSE_BATCH):
        check(
            client.post(
                f"/api/v1/datasets/{dataset_id}/chunks", json={"document_ids": document_ids[i : i + PARSE_BATCH]}
            )
        )
    last_report = 0.0
    while True:
        done = count_documents(client, dataset_id, ["DONE"])
        failed = count_documents(client, dataset_id, ["FAIL", "CANCEL"])
        if failed:
            raise SystemExit(f"{failed} documents failed to parse")
        if done == len(document_ids):
            break
        now = time.perf_counter()
        if now - last_report >= 30:
            print(f"  parsing: {done}/{len(document_ids)} DONE after {now - started:.0f} s", flush=True)
            last_report = now
        time.sleep(1)
    return time.perf_counter() - started


def retrieve(client: httpx.Client, dataset_id: str, question: str, weight: float) -> tuple[list[str], float]:
    """Ranked corpus ids (from the document names) and the request's latency in seconds."""
    started = time.perf_counter()
    response = client.post(
        "/api/v1/retrieval",
        json={
            "question": question,
            "dataset_ids": [dataset_id],
            "page_size": 100,
            "top_k": 1024,
            "similarity_threshold": 0,
            "vector_similarity_weight": weight,
        },
    )
    elapsed = time.perf_counter() - started
    data = check(response)
    assert isinstance(data, dict)
    ranking: list[str] = []
    for chunk in data["chunks"]:
        name = str(chunk["document_keyword"])
        doc = name[:-4] if name.endswith(".txt") else name
        if doc not in ranking:  # one chunk per document ("one"), but stay correct if not
            ranking.append(doc)
    return ranking, elapsed


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far; None where /proc is not there (not Linux).

    The server parses in its own process, so its CPU time per document says what ingestion costs even when
    other programs compete for the cores (its wall-clock rate then says more about them than about it).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def data_folder(path: str | None) -> Iterator[Path]:
    if path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="scifact-") as tmp:
        yield Path(tmp)


def load_collection(name: str) -> heldout.Collection:
    """A collection by name: SciFact's test split (``../shared/data/scifact``) or a held-out one."""
    if name == "scifact":
        corpus, queries = load_corpus(DATA / "corpus.jsonl.gz"), load_queries(DATA / "queries.jsonl")
        return heldout.Collection(name, corpus, queries, load_qrels(DATA / "qrels" / "test.tsv"), {})
    return heldout.wiki_sections() if name == "wiki-sections" else heldout.lee()


def condensed(ranking: Sequence[str], judged: frozenset[str] | None) -> list[str]:
    """The ranking without the documents nobody judged (all of it when every document was judged)."""
    return list(ranking) if judged is None else [doc for doc in ranking if doc in judged]


# == main ==========================================================================================
def select_documents(
    corpus: dict[str, tuple[str, str]], qrels: Mapping[str, Mapping[str, int]], limit: int | None
) -> dict[str, tuple[str, str]]:
    """The whole corpus, or (smoke run) the judged documents first, then corpus order, up to ``limit``."""
    if not limit or limit >= len(corpus):
        return corpus
    judged = [d for q in qrels.values() for d in q if d in corpus]
    order = list(dict.fromkeys([*judged, *corpus]))[:limit]
    return {d: corpus[d] for d in order}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-docs", type=int, default=None, help="index only N documents (judged ones first)")
    parser.add_argument("--data-dir", default=None, help="server data folder to keep and reuse (default: a temp dir)")
    parser.add_argument("--limit-queries", type=int, default=None, help="ask only the first N test queries")
    parser.add_argument("--no-sweep", action="store_true", help="only the weights 0, 0.3, 0.5, 0.7, 1")
    parser.add_argument("--collection", choices=COLLECTIONS, default="scifact")
    parser.add_argument(
        "--embedding-model", default=DEFAULT_EMBEDDER, help=f"the dataset's model (default {DEFAULT_EMBEDDER})"
    )
    args = parser.parse_args()

    collection = load_collection(args.collection)
    corpus, queries, qrels, excluded = collection.corpus, collection.queries, collection.qrels, collection.excluded
    test_ids = [q for q in qrels if q in queries][: args.limit_queries]
    docs = select_documents(corpus, qrels, args.limit_docs)
    weights = sorted(set(MAIN_WEIGHTS) | (set() if args.no_sweep else set(SWEEP_WEIGHTS)))

    print(
        f"{args.collection} test: {len(test_ids)} queries, {sum(len(qrels[q]) for q in test_ids)} judgments; "
        f"{len(docs)} of {len(corpus)} documents indexed"
        + (" (judged documents first: smoke run, scores are optimistic)" if len(docs) < len(corpus) else "")
    )
    print(
        f"dataset: chunk_method 'one' (one chunk per abstract), embedding {args.embedding_model}, "
        "filename_embd_weight 0 (file names are corpus ids and carry no meaning)",
        flush=True,
    )

    with data_folder(args.data_dir) as folder:
        port = free_port()
        proc = start_server(folder, port)
        try:
            key = (folder / "api_key").read_text().strip()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300) as client:
                name = dataset_name(args.collection, len(docs), args.embedding_model)
                dataset_id, existed = find_or_create_dataset(client, name, args.embedding_model)
                ingest_seconds: float | None = None
                ingest_cpu: float | None = None
                if existed:
                    total, done = count_documents(client, dataset_id), count_documents(client, dataset_id, ["DONE"])
                    if total != len(docs) or done != total:
                        raise SystemExit(
                            f"dataset {name} in {folder} is incomplete ({done}/{total} DONE); use a new --data-dir"
                        )
                    print(f"reusing the parsed dataset {name} in {folder} (no ingestion this run)")
                else:
                    print(f"ingesting {len(docs)} documents ...", flush=True)
                    cpu_before = cpu_seconds(proc.pid)
                    ingest_seconds = ingest(client, dataset_id, docs)
                    cpu_after = cpu_seconds(proc.pid)
                    if cpu_before is not None and cpu_after is not None:
                        ingest_cpu = cpu_after - cpu_before
                    tokens = sum(len(doc_text(*d)) for d in docs.values()) / 4  # rough: ~4 bytes per token
                    print(
                        f"ingested in {ingest_seconds:.1f} s ({len(docs) / ingest_seconds:.1f} docs/s, "
                        f"~{tokens / ingest_seconds:,.0f} tokens/s by a 4-bytes-per-token estimate)"
                    )
                names_ok = {str(d["name"])[:-4] for d in list_documents(client, dataset_id)} == set(docs)
                if not names_ok:
                    raise SystemExit("document names do not match the corpus ids")

                retrieve(client, dataset_id, "warm-up question", 0.3)
                results: dict[float, tuple[float, float, float]] = {}
                latencies: list[float] = []
                started = time.perf_counter()
                for weight in weights:
                    ndcgs, recalls, condensed_ndcgs = [], [], []
                    for qid in test_ids:
                        ranking, elapsed = retrieve(client, dataset_id, queries[qid], weight)
                        ranking = [doc for doc in ranking if doc != excluded.get(qid)]  # the question itself
                        latencies.append(elapsed)
                        ndcgs.append(ndcg_at(ranking, qrels[qid], 10))
                        recalls.append(recall_at(ranking, qrels[qid], 100))
                        condensed_ndcgs.append(ndcg_at(condensed(ranking, collection.judged), qrels[qid], 10))
                    results[weight] = (
                        statistics.fmean(ndcgs),
                        statistics.fmean(recalls),
                        statistics.fmean(condensed_ndcgs),
                    )
                    print(
                        f"  w={weight:.1f}: nDCG@10 {results[weight][0]:.4f}  Recall@100 {results[weight][1]:.4f}"
                        + (f"  nDCG'@10 {results[weight][2]:.4f}" if collection.judged is not None else ""),
                        flush=True,
                    )
                query_seconds = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    print()
    print(
        f"{args.collection} ({len(test_ids)} queries, {len(docs)} docs, {args.embedding_model}), "
        "POST /api/v1/retrieval, page_size 100, top_k 1024"
    )
    with_condensed = collection.judged is not None
    print(
        f"{'vector_similarity_weight':<34}{'nDCG@10':>9}{'Recall@100':>12}"
        + (f"{'nDCG@10 condensed':>19}" * with_condensed)
    )

    def row(label: str, weight: float) -> str:
        ndcg, recall, condensed_ndcg = results[weight]
        return f"{label:<34}{ndcg:>9.4f}{recall:>12.4f}" + (f"{condensed_ndcg:>19.4f}" if with_condensed else "")

    labels = {0.0: "0.0 (text only)", 0.3: "0.3 (default)", 1.0: "1.0 (vector only)"}
    for weight in MAIN_WEIGHTS:
        print(row(labels.get(weight, f"{weight:.1f}"), weight))
    best = max(results, key=lambda w: (results[w][0], -abs(w - 0.3)))
    print(row(f"best of {len(weights)} weights: {best:.1f}", best))
    if len(weights) > len(MAIN_WEIGHTS):
        print("sweep: " + ", ".join(f"{w:.1f} {results[w][0]:.4f}" for w in weights))
    if with_condensed:
        print(
            "condensed: unjudged documents removed from each ranking before nDCG (Sakai 2007); this collection "
            "judged only some documents (benchmarks/heldout.py)"
        )
    print()
    if ingest_seconds is not None:
        print(
            f"ingestion (upload + parse to DONE): {ingest_seconds:.1f} s for {len(docs)} documents "
            f"({len(docs) / ingest_seconds:.1f} docs/s)"
            + (
                f"; the server used {ingest_cpu:.0f} CPU-s ({len(docs) / ingest_cpu:.1f} docs per CPU-second)"
                if ingest_cpu
                else ""
            )
        )
    else:
        print("ingestion: skipped (dataset reused from --data-dir)")
    print(
        f"/retrieval latency over {len(latencies)} sequential requests: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms ({query_seconds:.0f} s; cores {os.cpu_count()})"
    )


if __name__ == "__main__":
    main()
