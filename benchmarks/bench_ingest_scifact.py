"""Ingestion throughput on SciFact end to end, beside the raw embedder on the same texts, in one run.

(a) end to end: a fresh `flowless serve` on a temporary folder; every corpus document (5,183) uploaded as
    ``<id>.txt`` ("title\\n\\nabstract", 50 files a request) and parsed (500 ids a request) through the API
    until all are DONE. Dataset as benchmarks/bench_scifact.py makes it: chunk_method "one",
    all-MiniLM-L6-v2@Builtin (``--model`` for another), filename_embd_weight 0.
(b) raw: the same model alone in this process (built as the server builds it, so the same batch policy),
    embedding the chunk texts the server stored, in calls of as many texts as the worker gathers for one
    call. Half of the sample runs before (a), half after, so load that changes during the run hits both.

Figures are given per wall-clock second and per CPU-second (the server's, read from /proc, for (a); this
process's for (b)). The machine may be shared: the load average is printed, and where other programs
compete for the cores the CPU-second figures are the comparable ones (x cores = what the cores would do
undisturbed). Ratio (a)/(b): the share of the model's own speed the whole pipeline keeps.

    .venv/bin/python benchmarks/bench_ingest_scifact.py                    # the whole corpus
    .venv/bin/python benchmarks/bench_ingest_scifact.py --limit-docs 1000  # quicker

Targets (issue 15): (a) >= 30 documents/s on 2 cores; (a) >= 85 % of (b).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_list_datasets import free_port, start_server  # noqa: E402

from shared.adapters.local.worker import BATCH_TEXTS  # noqa: E402

# ../shared/data beside the repository (a worktree under wt/ finds it two levels further up)
DATA = next(
    (p for p in (ROOT.parent / "shared/data/scifact", ROOT.parents[1] / "shared/data/scifact") if p.is_dir()),
    ROOT.parent / "shared/data/scifact",
)
UPLOAD_BATCH = 50
PARSE_BATCH = 500
MODEL = "all-MiniLM-L6-v2@Builtin"


def load_corpus(limit: int | None) -> dict[str, bytes]:
    corpus: dict[str, bytes] = {}
    with gzip.open(DATA / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            corpus[str(doc["_id"])] = f"{doc.get('title') or ''}\n\n{doc.get('text') or ''}".encode()
            if limit and len(corpus) >= limit:
                break
    return corpus


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ok(response: httpx.Response) -> object:
    body = response.json()
    if body.get("code") != 0:
        raise SystemExit(f"{response.request.method} {response.request.url.path}: {body}")
    return body.get("data")


def count(client: httpx.Client, dataset_id: str, runs: list[str]) -> int:
    params: list[tuple[str, str | int | float | bool | None]] = [("page_size", 1), *(("run", run) for run in runs)]
    data = ok(client.get(f"/api/v1/datasets/{dataset_id}/documents", params=params))
    assert isinstance(data, dict)
    return int(data["total"])


def ingest(client: httpx.Client, dataset_id: str, corpus: dict[str, bytes]) -> tuple[float, float]:
    """Upload everything, then parse everything; seconds spent uploading and from then to all DONE."""
    started = time.perf_counter()
    ids: list[str] = []
    names = list(corpus)
    for i in range(0, len(names), UPLOAD_BATCH):
        files = [("file", (f"{n}.txt", corpus[n], "text/plain")) for n in names[i : i + UPLOAD_BATCH]]
        uploaded = ok(client.post(f"/api/v1/datasets/{dataset_id}/documents", files=files))
        assert isinstance(uploaded, list)
        ids.extend(str(doc["id"]) for doc in uploaded)
    uploaded_at = time.perf_counter()
    for i in range(0, len(ids), PARSE_BATCH):
        ok(client.post(f"/api/v1/datasets/{dataset_id}/chunks", json={"document_ids": ids[i : i + PARSE_BATCH]}))
    # Polled cheaply, so that watching does not cost the server what it measures: the dataset's chunk count
    # (one read; "one" makes one chunk a document, counted when the document is DONE); failures now and then.
    polls = 0
    while (chunks := dataset_chunks(client, dataset_id)) < len(ids):
        polls += 1
        if polls % 20 == 0:
            if count(client, dataset_id, ["FAIL", "CANCEL"]):
                raise SystemExit("some documents failed to parse")
            print(f"  {chunks}/{len(ids)} DONE after {time.perf_counter() - started:.0f} s", flush=True)
        time.sleep(0.5)
    finished = time.perf_counter()
    if count(client, dataset_id, ["DONE"]) != len(ids):
        raise SystemExit("not every document is DONE")
    return uploaded_at - started, finished - uploaded_at


def dataset_chunks(client: httpx.Client, dataset_id: str) -> int:
    data = ok(client.get("/api/v1/datasets", params={"id": dataset_id}))
    assert isinstance(data, list)
    return int(data[0]["chunk_count"])


def chunk_texts(name: str, data: bytes, parser_config: dict[str, object]) -> list[str]:
    """What the server embeds for one file: its chunks' texts, from the same parser and chunker."""
    from shared.rag.chunkers import chunk_document
    from shared.rag.parsers import extract
    from shared.services.ingestion import embedding_text

    drafts = chunk_document(extract(name, data), "one", parser_config)
    return [embedding_text(d.content, d.questions) for d in drafts]


class Raw:
    """The model alone: ``embed_documents`` in calls of the worker's batch size, timed in wall and CPU."""

    def __init__(self, model: str) -> None:
        from shared.rag.embedding import build_embedder

        self.embedder = build_embedder(model)
        self.embedder.embed_documents(["warm up the model"] * 8)
        self.texts = 0
        self.wall = 0.0
        self.cpu = 0.0

    def run(self, texts: list[str]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(texts), BATCH_TEXTS):
            self.embedder.embed_documents(texts[i : i + BATCH_TEXTS])
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.texts += len(texts)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-docs", type=int, default=None, help="only the first N corpus documents")
    parser.add_argument("--raw-sample", type=int, default=1024, help="documents the raw model embeds (default 1024)")
    parser.add_argument("--model", default=MODEL, help=f"embedding model (default {MODEL})")
    args = parser.parse_args()

    corpus = load_corpus(args.limit_docs)
    cores = len(os.sched_getaffinity(0))
    print(f"SciFact: {len(corpus)} documents, {args.model}, {cores} cores; {load()}", flush=True)
    config: dict[str, object] = {"filename_embd_weight": 0}
    names = list(corpus)
    step = max(1, len(names) // args.raw_sample)
    sample = [chunk_texts(f"{n}.txt", corpus[n], config) for n in names[::step][: args.raw_sample]]
    raw = Raw(args.model)
    half = len(sample) // 2
    raw.run([text for texts in sample[:half] for text in texts])

    with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
        folder = Path(tmp)
        port = free_port()
        proc = start_server(folder, port)
        try:
            key = (folder / "api_key").read_text().strip()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300) as client:
                body = {
                    "name": "scifact",
                    "chunk_method": "one",
                    "embedding_model": args.model,
                    "parser_config": config,
                }
                dataset = ok(client.post("/api/v1/datasets", json=body))
                assert isinstance(dataset, dict)
                print(f"(a) uploading and parsing through the API; {load()}", flush=True)
                cpu_before = cpu_seconds(proc.pid)
                upload_s, parse_s = ingest(client, dataset["id"], corpus)
                server_cpu = cpu_seconds(proc.pid) - cpu_before
                chunks = ok(client.get("/api/v1/datasets", params={"id": dataset["id"]}))
                assert isinstance(chunks, list)
                chunk_count = int(chunks[0]["chunk_count"])
                print(f"    done; {load()}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"(b) raw embedder, second half; {load()}", flush=True)
    raw.run([text for texts in sample[half:] for text in texts])

    docs = len(corpus)
    e2e_wall, e2e_cpu = docs / (upload_s + parse_s), docs / server_cpu
    raw_docs = len(sample)
    raw_wall, raw_cpu = raw_docs / raw.wall, raw_docs / raw.cpu
    print(f"{'':36}{'docs/s':>9}{'docs/CPU-s':>12}{f'x {cores} cores':>12}")
    print(f"{'(a) end to end (upload + parse)':36}{e2e_wall:9.1f}{e2e_cpu:12.1f}{e2e_cpu * cores:12.1f}")
    print(f"{'    uploads alone':36}{docs / upload_s:9.1f}")
    print(f"{'    parse to DONE after the uploads':36}{docs / parse_s:9.1f}")
    print(f"{'(b) raw embedder, same texts':36}{raw_wall:9.1f}{raw_cpu:12.1f}{raw_cpu * cores:12.1f}")
    print(f"{'ratio (a)/(b)':36}{e2e_wall / raw_wall:9.1%}{e2e_cpu / raw_cpu:12.1%}")
    print("targets: (a) >= 30 docs/s on 2 cores; (a)/(b) >= 85 %")
    print(
        f"{docs} documents, {chunk_count} chunks; upload {upload_s:.1f} s, parse {parse_s:.1f} s, the server used "
        f"{server_cpu:.0f} CPU-s; raw: {raw_docs} documents ({raw.texts} texts) in {raw.wall:.1f} s, "
        f"{raw.cpu:.1f} CPU-s"
    )


if __name__ == "__main__":
    main()
