"""A server killed (SIGKILL) in the middle of a knowledge-graph build resumes it when it starts again: the same
task, the documents it had finished are not sent to the model again, and the graph ends whole."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_knowledge_api import ADA, CURIE, extraction_requests, run, wait_task
from tests.integration.test_worker_crash import FLOWLESS, serve
from tests.support import knowledge_model
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.fake_openai import FakeOpenAI

MODEL = "fake-chat@OpenAI-API-Compatible"
SLOW = (
    b"Slow Harbour hosted the Grand Regatta.\n",
    b"Slow Valley grew the Golden Apples.\n",
)


@contextmanager
def serve_as(data_dir: Path, key: str) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """``flowless serve`` on ``data_dir``, and a client with ``key`` (a tenant of our own, with a chat model)."""
    with serve(data_dir) as (proc, default_client):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=default_client.base_url, headers=headers, timeout=30) as api:
            yield proc, api


def test_a_killed_build_resumes_without_redoing_finished_documents(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    release = threading.Event()

    def answer(messages: list[dict[str, Any]]) -> str | None:
        if "Slow " in str(messages[-1].get("content")):
            release.wait(60)  # these documents are still being extracted when the server dies
        return knowledge_model.answer(messages)

    with FakeOpenAI(api_key="sk-test") as llm:
        llm.respond_with(answer)
        created = subprocess.run(
            [
                FLOWLESS,
                "tenant",
                "create",
                "--data-dir",
                str(data_dir),
                "--chat-model",
                MODEL,
                "--model-base-url",
                llm.base_url,
                "--model-api-key",
                "sk-test",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        key = created.stdout.strip().splitlines()[-1]
        try:
            with serve_as(data_dir, key) as (proc, api):
                ds = create_dataset(api)
                fast = []
                for name, data in (("ada.txt", ADA), ("curie.txt", CURIE), ("a.txt", SLOW[0]), ("b.txt", SLOW[1])):
                    doc = upload_one(api, ds["id"], name, data)
                    assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
                    if data not in SLOW:
                        fast.append(doc["id"])
                task_id = run(api, ds["id"], "graphrag")["data"]["graphrag_task_id"]
                deadline = time.monotonic() + 60
                while True:  # the fast documents' subgraphs are done; the slow ones wait on the model
                    trace = api.get(f"/api/v1/datasets/{ds['id']}/trace_graphrag").json()["data"]
                    done = [d for d in fast if f"build_subgraph doc:{d} done" in trace["progress_msg"]]
                    if len(done) == len(fast):
                        break
                    assert time.monotonic() < deadline, trace["progress_msg"]
                    time.sleep(0.05)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        finally:
            release.set()
        before = len(extraction_requests(llm))

        with serve_as(data_dir, key) as (_, api):
            task = wait_task(api, ds["id"], "graphrag", timeout=120)
            assert task["id"] == task_id and task["progress"] == 1.0, task["progress_msg"]
            assert "Worker restarted; building again." in task["progress_msg"] and task["retry_count"] == 2
            again = extraction_requests(llm)[before:]
            assert len(again) == 2 and all("Slow " in text for text in again)  # the fast ones were kept
            graph = api.get(f"/api/v1/datasets/{ds['id']}/knowledge_graph").json()["data"]["graph"]
            names = {n["id"] for n in graph["nodes"]}
            assert {"ADA LOVELACE", "MARIE CURIE", "GRAND REGATTA", "GOLDEN APPLES"} <= names
            assert len(graph["graph"]["source_id"]) == 4
