"""Time to the first SSE frame of a chat answer, with the chat model answering instantly.

Starts `flowless serve` on a fresh data folder and the repo's OpenAI-compatible test server as the
chat model, parses a dataset of ~1,000 chunks with the builtin embedder, then asks questions through
POST /api/v1/chats/{id}/completions and times request → first `data:` frame (retrieval and embedding
of the question included).

    .venv/bin/python benchmarks/bench_first_frame.py [--questions 50]

Each question is also asked of POST /api/v1/retrieval just before (same dataset, RAGFlow's defaults): the
same run's baseline, so what the chat adds to its retrieval shows apart from the machine's load.

Targets: issue 5: first frame <= 150 ms; issue 15: <= 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_list_datasets import free_port, start_server  # noqa: E402

from tests.support.fake_openai import FakeOpenAI  # noqa: E402

TOPICS = ["bread", "yeast", "rockets", "orbits", "cats", "rivers", "volcanoes", "violins", "glaciers", "bees"]


def corpus(lines: int) -> bytes:
    out = []
    for i in range(lines):
        topic = TOPICS[i % len(TOPICS)]
        out.append(f"Fact {i} about {topic}: the {topic} item number {i} has property {i * 7 % 13} and more.")
    return ("\n".join(out) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(api_key="sk-bench") as llm:
        data_dir = Path(tmp)
        exe = Path(sys.executable).parent / "flowless"
        key = subprocess.run(
            [
                str(exe),
                "tenant",
                "create",
                "--data-dir",
                str(data_dir),
                "--chat-model",
                "bench-chat@OpenAI-API-Compatible",
                "--model-base-url",
                llm.base_url,
                "--model-api-key",
                "sk-bench",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        proc = start_server(data_dir, port)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as client:
                ds = client.post(
                    "/api/v1/datasets",
                    json={"name": "facts", "parser_config": {"chunk_token_num": 24, "delimiter": "\\n"}},
                ).json()["data"]
                doc = client.post(
                    f"/api/v1/datasets/{ds['id']}/documents", files=[("file", ("facts.txt", corpus(1000)))]
                ).json()["data"][0]
                client.post(f"/api/v1/datasets/{ds['id']}/chunks", json={"document_ids": [doc["id"]]})
                while True:
                    d = client.get(f"/api/v1/datasets/{ds['id']}/documents", params={"id": doc["id"]}).json()
                    d = d["data"]["docs"][0]
                    if d["run"] in ("DONE", "FAIL"):
                        break
                    time.sleep(0.2)
                chunks = d["chunk_count"]
                chat = client.post("/api/v1/chats", json={"name": "bench", "dataset_ids": [ds["id"]]}).json()["data"]
                firsts, retrievals = [], []
                for i in range(args.questions + 3):
                    topic = TOPICS[i % len(TOPICS)]
                    question = f"What property does the {topic} item {i} have?"
                    started = time.perf_counter()  # the same run's baseline: the retrieval the answer waits on
                    found = client.post("/api/v1/retrieval", json={"question": question, "dataset_ids": [ds["id"]]})
                    assert found.json()["code"] == 0, found.text
                    if i >= 3:
                        retrievals.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    with client.stream(
                        "POST",
                        f"/api/v1/chats/{chat['id']}/completions",
                        json={"question": question},
                    ) as res:
                        first = None
                        for line in res.iter_lines():
                            if first is None and line.startswith("data:"):
                                first = (time.perf_counter() - started) * 1000
                        if i >= 3 and first is not None:  # the first answers warm the embedder and the client
                            firsts.append(first)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    firsts.sort()
    p95 = firsts[int(len(firsts) * 0.95) - 1]
    print(
        f"first SSE frame ({chunks} chunks, instant test LLM, builtin embedder): "
        f"p50 {statistics.median(firsts):.0f} ms, p95 {p95:.0f} ms, max {firsts[-1]:.0f} ms over {len(firsts)}"
    )
    print(
        f"same run, POST /api/v1/retrieval of each question (what the first frame waits on): p50 "
        f"{statistics.median(retrievals):.0f} ms; first frame - retrieval: "
        f"{statistics.median(firsts) - statistics.median(retrievals):.0f} ms   (target: first frame <= 50 ms)"
    )


if __name__ == "__main__":
    main()
