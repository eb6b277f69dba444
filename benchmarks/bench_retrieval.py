"""POST /api/v1/retrieval end to end over HTTP (question embedding included) at 100,000 chunks.

Build (in this process, through the project's own services, repositories and index; nothing downloaded):
a fresh data folder (or ``--data-dir``, reused when it already holds the same build) with the local server's
tenant and API key, one dataset on the builtin embedder ``--embedding-model`` (default the tenant default,
``BAAI/bge-small-en-v1.5@Builtin``; ``all-MiniLM-L6-v2@Builtin`` is the cheaper one), and ``--chunks``
chunks (default 100,000) in documents of 100 chunks each (1,000 documents), uploaded as text files by the
document service. Chunk text: SciFact abstracts (``../shared/data/scifact``) split into passages of 1-3
sentences, as ``bench_search_latency.py`` does (every chunk's text distinct, real vocabulary). Chunk
vectors: realistic but cheap — the builtin embedder embeds ``--distinct`` (3,000) distinct passages and
chunk *k* gets passage ``k mod 3000``'s vector plus small Gaussian noise (cosine ~0.95 to it), renormalized;
so question-to-chunk similarities are those of real passages and the 0.2 threshold filters as it would.
The chunks are written by ``DocumentRepository.put_chunks``, the documents marked done with their counts, and
the embedded index built by the server's own startup path (``rebuild_index_if_needed``).

Measure, in two passes with one process at work in each (run side by side, the two copies of the index
evicted each other's caches, which a server never bears): ``flowless serve`` starts on the folder and the
SciFact claims are asked as questions, the two settings interleaved query by query,

* HTTP at RAGFlow's defaults (top_k 1024, page_size 30, similarity_threshold 0.2),
* HTTP at the SciFact benchmark's settings (similarity_threshold 0, page_size 100);

then, the server stopped, the same claims, interleaved per query:

* index-only in this process on the same folder: the embedded index's search + the hybrid scorer, with the
  question's vector computed beforehand (what ``bench_search_latency.py`` calls "scored"),
* the retrieval service in this process (defaults), with its ports wrapped by timers: the phase breakdown
  (embedding the question, index search, scorer, metadata-store reads, the rest = rendering and request
  checks; HTTP/JSON = the HTTP time minus the in-process service time).

    .venv/bin/python benchmarks/bench_retrieval.py [--chunks 100000] [--queries 300] [--data-dir DIR]
    .venv/bin/python benchmarks/bench_retrieval.py --embedding-model all-MiniLM-L6-v2@Builtin

Targets (issue 15): defaults p50 <= 25 ms, p99 <= 60 ms and <= 3x the index-only p50 of the same run;
SciFact settings p50 <= 40 ms. The load average is printed: the machine is shared, the ratio is what holds.
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
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx

# The in-process phases run as `flowless serve` runs them: single-threaded BLAS (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_list_datasets import free_port, start_server  # noqa: E402

from shared.catalog import BUILTIN_EMBEDDING_MODEL  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.constants import LOCAL_API_KEY_FILE  # noqa: E402
from shared.container import Container  # noqa: E402
from shared.ports.embedder import Embedder  # noqa: E402
from shared.ports.search import SearchQuery  # noqa: E402
from shared.rag import scoring  # noqa: E402
from shared.rag.embedding import build_embedder  # noqa: E402
from shared.rag.types import ChunkDraft  # noqa: E402
from shared.schemas.datasets import CreateDatasetRequest  # noqa: E402
from shared.schemas.retrieval import RetrievalRequest  # noqa: E402
from shared.services import retrieval as retrieval_module  # noqa: E402
from shared.services.documents import UploadedFile  # noqa: E402
from shared.services.ingestion import chunk_records  # noqa: E402

SCIFACT = next(
    (p for p in (ROOT.parent / "shared/data/scifact", ROOT.parents[1] / "shared/data/scifact") if p.is_dir()),
    ROOT.parent / "shared/data/scifact",
)
PER_DOCUMENT = 100
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
DEFAULTS = {"top_k": 1024, "page_size": 30, "similarity_threshold": 0.2}
SCIFACT_SETTINGS = {"top_k": 1024, "page_size": 100, "similarity_threshold": 0.0}


def passages(target: int) -> Iterator[str]:
    """SciFact passages of 1-3 sentences; each pass over the corpus groups the sentences differently."""
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        docs = [_SENTENCE_END.split(json.loads(line)["text"]) for line in fh]
    made, walk = 0, 0
    while True:
        rng = random.Random(walk)
        for sentences in docs:
            i = 0
            while i < len(sentences):
                size = rng.randint(1, 3)
                yield " ".join(sentences[i : i + size])
                made += 1
                if made == target:
                    return
                i += size
        walk += 1


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]


def line(label: str, seconds: list[float]) -> float:
    ms = [s * 1000 for s in seconds]
    p50 = percentile(ms, 50)
    print(f"  {label:<44} p50 {p50:6.2f} ms   p99 {percentile(ms, 99):6.2f} ms   mean {statistics.fmean(ms):6.2f} ms")
    return p50


# -- build -------------------------------------------------------------------------------------------------
def build(folder: Path, chunks: int, model: str, distinct: int) -> None:
    from functions.local.server import rebuild_index_if_needed

    marker = folder / "bench_retrieval.json"
    wanted = {"chunks": chunks, "model": model, "distinct": distinct}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"reusing the build in {folder}")
        return
    if any(folder.iterdir()):
        raise SystemExit(f"{folder} holds something else; give an empty or new folder")
    started = time.perf_counter()
    container = Container(Settings(backend="local", data_dir=folder))
    tenant_id, key = container.tenant_service.ensure_default_tenant()
    assert key is not None
    (folder / LOCAL_API_KEY_FILE).write_text(key + "\n")
    dataset = container.datasets.create(
        tenant_id, CreateDatasetRequest.model_validate({"name": "bench-retrieval", "embedding_model": model})
    )
    texts = list(passages(chunks))
    embedder = build_embedder(model)
    base = np.asarray(embedder.embed_documents(texts[:distinct]), dtype=np.float32)
    dim = base.shape[1]
    rng = np.random.default_rng(7)
    print(f"  embedded {distinct:,} distinct passages with {model} ({time.perf_counter() - started:.0f} s)")
    repo = container.document_repo
    for d in range(0, chunks, PER_DOCUMENT):
        own = texts[d : d + PER_DOCUMENT]
        (view,) = container.documents.upload(
            tenant_id, dataset["id"], [UploadedFile(f"doc-{d // PER_DOCUMENT:05d}.txt", "\n\n".join(own).encode())]
        )
        record = repo.get(dataset["id"], view["id"])
        assert record is not None
        noise = rng.standard_normal((len(own), dim), dtype=np.float32) * (0.33 / math.sqrt(dim))
        vectors = base[np.arange(d, d + len(own)) % distinct] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        stored = chunk_records(record, [0, 1], [ChunkDraft(content=t) for t in own], vectors)
        repo.put_chunks(stored)
        tokens = sum(int(c["token_count"]) for c in stored)
        repo.update(
            record,
            {
                "run": "DONE",
                "progress": 1.0,
                "chunk_count": len(stored),
                "token_count": tokens,
                "update_time": record["update_time"] + 1,
            },
            dataset_deltas={"chunk_count": len(stored), "token_num": tokens},
        )
    print(f"  stored {chunks:,} chunks in {chunks // PER_DOCUMENT:,} documents ({time.perf_counter() - started:.0f} s)")
    loaded = rebuild_index_if_needed(container)
    print(f"  index built from the store: {loaded:,} chunks ({time.perf_counter() - started:.0f} s)")
    marker.write_text(json.dumps(wanted))


# -- in-process timers -------------------------------------------------------------------------------------
PHASES: dict[str, float] = defaultdict(float)


class Timed:
    """Wraps an adapter: every method call adds its wall time to ``PHASES[phase]``."""

    def __init__(self, inner: object, phase: str) -> None:
        self._inner, self._phase = inner, phase

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                PHASES[self._phase] += time.perf_counter() - started

        return timed


def timed_function(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES[phase] += time.perf_counter() - started

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=3000, help="distinct passages embedded for the vectors")
    parser.add_argument("--embedding-model", default=BUILTIN_EMBEDDING_MODEL)
    parser.add_argument("--queries", type=int, default=300, help="SciFact claims asked (of 1,109)")
    parser.add_argument("--data-dir", default=None, help="data folder to build in and reuse (default: a temp dir)")
    args = parser.parse_args()
    # The server (a child process) runs this checkout's code, as this process does.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        folder = Path(args.data_dir or tmp).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        print(f"build: {args.chunks:,} chunks, {args.embedding_model}, vectors from {args.distinct:,} passages")
        build(folder, args.chunks, args.embedding_model, args.distinct)
        measure(folder, args.queries)


def measure(folder: Path, queries: int) -> None:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        questions = [json.loads(line)["text"] for line in fh][:queries]
    # Two passes, each with one process at work: first the server over HTTP, then (the server stopped) the
    # same folder opened in this process for the index-only time and the phase breakdown. Interleaved query
    # by query, the two processes each scanned their own copy of the index in turn and evicted each other's
    # caches, which a server never has to bear: both figures came out ~40 % slower.
    times: dict[str, list[float]] = defaultdict(list)
    totals, counts = [], []
    port = free_port()
    proc = start_server(folder, port)
    try:
        key = (folder / LOCAL_API_KEY_FILE).read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
            listed = client.get("/api/v1/datasets", params={"name": "bench-retrieval"}).json()["data"]
            dataset_ids = [listed[0]["id"]]

            def http(question: str, settings: dict[str, Any]) -> tuple[float, dict[str, Any]]:
                body = {"question": question, "dataset_ids": dataset_ids, **settings}
                started = time.perf_counter()
                res = client.post("/api/v1/retrieval", json=body)
                elapsed = time.perf_counter() - started
                answer = res.json()
                assert answer["code"] == 0, answer
                return elapsed, answer["data"]

            for q in questions[:20]:  # warm-up: model, pages, caches
                http(q, DEFAULTS)
                http(q, SCIFACT_SETTINGS)
            http_load_before = os.getloadavg()[0]
            for q in questions:
                elapsed, data = http(q, DEFAULTS)
                times["http_defaults"].append(elapsed)
                totals.append(data["total"])
                elapsed, data = http(q, SCIFACT_SETTINGS)
                times["http_scifact"].append(elapsed)
                counts.append(len(data["doc_aggs"]))
            http_load_after = os.getloadavg()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    plain = Container(Settings(backend="local", data_dir=folder))
    container = Container(
        Settings(backend="local", data_dir=folder),
        overrides={"metadata": Timed(plain.metadata, "store"), "search_index": Timed(plain.search_index, "index")},
    )
    index = plain.search_index
    tenant_id = container.tenant_service.ensure_default_tenant()[0]
    dataset = container.dataset_repo.get_by_name(tenant_id, "bench-retrieval")
    assert dataset is not None and [dataset["id"]] == dataset_ids
    model = dataset["embedding_model"]
    embedder = build_embedder(model)
    retrieval_module.rank = timed_function(scoring.rank, "scorer")  # type: ignore[attr-defined]
    service = container.retrieval
    service._embedder_for = lambda m, t: cast(Embedder, Timed(build_embedder(m), "embed"))

    def index_only(question: str, vector: np.ndarray) -> float:
        started = time.perf_counter()
        query = SearchQuery(tenant_id, dataset_ids, text=question, vector=cast(list[float], vector), top_k=1024)
        found = index.search(query)
        scoring.rank(found, 0.3).page(0, 30)  # what the service ranks and shows
        return time.perf_counter() - started

    def in_process(question: str) -> float:
        request = RetrievalRequest.model_validate({"question": question, "dataset_ids": dataset_ids, **DEFAULTS})
        started = time.perf_counter()
        service.retrieve(tenant_id, request)
        return time.perf_counter() - started

    for q in questions[:20]:  # warm-up
        in_process(q)
    gc.freeze()  # as `flowless serve` does once started: what is loaded stays out of full collections
    PHASES.clear()
    load_before = os.getloadavg()
    for q in questions:
        started = time.perf_counter()
        vector = np.asarray(embedder.embed_query(q), dtype=np.float32)
        times["embed_alone"].append(time.perf_counter() - started)
        times["index_only"].append(index_only(q, vector))
        times["service"].append(in_process(q))
    load_after = os.getloadavg()

    n = len(questions)
    print(
        f"\n{n} SciFact claims, model {model}; {os.cpu_count()} cores; load average (1 min) over HTTP "
        f"{http_load_before:.2f} -> {http_load_after:.2f}, in process {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    print(
        f"  defaults: mean total above threshold {statistics.fmean(totals):.0f}; "
        f"SciFact settings: mean documents in doc_aggs {statistics.fmean(counts):.0f}"
    )
    http_defaults = line("HTTP, RAGFlow defaults (k 1024, page 30, 0.2)", times["http_defaults"])
    http_scifact = line("HTTP, SciFact settings (k 1024, page 100, 0)", times["http_scifact"])
    index_p50 = line("index-only (search + scorer, in process)", times["index_only"])
    line("question embedding alone (in process)", times["embed_alone"])
    line("retrieval service in process (defaults)", times["service"])
    print(f"  ratio HTTP defaults / index-only (p50): {http_defaults / index_p50:.2f}x  (target <= 3x)")
    print(
        f"  targets: defaults p50 <= 25 ms, p99 <= 60 ms; SciFact settings p50 <= 40 ms "
        f"(here {http_defaults:.1f} / {http_scifact:.1f} ms)"
    )
    print("  phase breakdown of the in-process service (mean ms per request, defaults):")
    per = {k: v * 1000 / n for k, v in PHASES.items()}
    service_mean = statistics.fmean(times["service"]) * 1000
    rest = service_mean - sum(per.values())
    for phase in ("embed", "index", "scorer", "store"):
        print(f"    {phase:<10} {per.get(phase, 0.0):6.2f}")
    print(f"    {'rendering':<10} {rest:6.2f}   (the rest: request checks, filtering, answer building)")
    print(
        f"    {'HTTP/JSON':<10} {statistics.fmean(times['http_defaults']) * 1000 - service_mean:6.2f}   "
        "(HTTP mean minus in-process mean, a difference of noisy means: FastAPI, JSON, the socket)"
    )


if __name__ == "__main__":
    main()
