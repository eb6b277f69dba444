"""Time to the first SSE frame of an agent run, with the chat model answering instantly.

Starts `flowless serve` on a fresh data folder and the repo's OpenAI-compatible test server as the chat
model, parses a dataset of ~1,000 chunks with the builtin embedder, installs the retrieval Q&A example agent
(docs/agents/retrieval_qa.json: Begin → Retrieval → LLM → Message), then asks questions through
POST /api/v1/agents/{id}/completions (each in a new session, as a client without a session id does) and
times request → first `data:` frame, and request → first `message` event (retrieval, embedding of the
question, the model's first token included).

    .venv/bin/python benchmarks/bench_agent_first_frame.py [--questions 50]

Target (issue 8): first frame <= 150 ms.
"""

from __future__ import annotations

import argparse
import json
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
from bench_first_frame import TOPICS, corpus  # noqa: E402
from bench_list_datasets import free_port, start_server  # noqa: E402

from tests.support.fake_openai import FakeOpenAI  # noqa: E402


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[max(0, int(len(values) * 0.95) - 1)]
    return f"p50 {statistics.median(values):.0f} ms, p95 {p95:.0f} ms, max {values[-1]:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args()
    agent = json.loads((ROOT / "docs" / "agents" / "retrieval_qa.json").read_text())
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
                assert client.post("/api/v1/agents", json=agent).json()["code"] == 0
                agent_id = client.get("/api/v1/agents").json()["data"][0]["id"]
                firsts, first_messages = [], []
                for i in range(args.questions + 3):
                    topic = TOPICS[i % len(TOPICS)]
                    started = time.perf_counter()
                    first = first_message = None
                    with client.stream(
                        "POST",
                        f"/api/v1/agents/{agent_id}/completions",
                        json={
                            "question": f"What property does the {topic} item {i} have?",
                            "inputs": {"dataset": "facts"},
                        },
                    ) as res:
                        for line in res.iter_lines():
                            if not line.startswith("data:"):
                                continue
                            now = (time.perf_counter() - started) * 1000
                            if first is None:
                                first = now
                            if first_message is None and '"event": "message"' in line:
                                first_message = now
                    if i >= 3 and first is not None and first_message is not None:  # 3 warm-up runs
                        firsts.append(first)
                        first_messages.append(first_message)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(
        f"agent run, retrieval Q&A example ({chunks} chunks, instant test LLM, builtin embedder), "
        f"over {len(firsts)} questions:\n"
        f"  first SSE frame:     {percentiles(firsts)}\n"
        f"  first message event: {percentiles(first_messages)}"
    )


if __name__ == "__main__":
    main()
