"""The streaming function's own entry point — `uvicorn functions.completions.app:app`, what the Lambda Web
Adapter runs — serves answers and its stream is read incrementally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.services.tenants import ModelSetting
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.fake_openai import FakeOpenAI, Gate
from tests.support.server import RunningServer, free_port


@pytest.fixture
def streaming_app(server: RunningServer) -> Iterator[str]:
    """The completions app in its own uvicorn process, on the same data folder as the local server."""
    port = free_port()
    env = {**os.environ, "FLOWLESS_BACKEND": "local", "FLOWLESS_DATA_DIR": str(server.data_dir)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "functions.completions.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(f"{base}/api/v1/sessions/related_questions", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError("streaming app did not start") from None
            time.sleep(0.1)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_lambda_web_adapter_app_streams_incrementally(server: RunningServer, streaming_app: str) -> None:
    with FakeOpenAI(api_key="sk-lwa") as llm:
        _, key = server.container.tenant_service.create(
            "lwa", [ModelSetting("lwa-chat@OpenAI-API-Compatible", "chat", api_base=llm.base_url, api_key="sk-lwa")]
        )
        with server.client(key) as api:
            ds = create_dataset(api, chunk_method="one")
            doc = upload_one(api, ds["id"], "bread.txt", b"Bread rises because yeast ferments sugar.")
            parse_and_wait(api, ds["id"], doc["id"])
            chat = api.post("/api/v1/chats", json={"name": "lwa", "dataset_ids": [ds["id"]]}).json()["data"]
        tokens = ["Yeast ", "makes ", "it ", "rise."]
        gate = Gate()
        llm.script_chat(tokens, gate=gate)
        gate.release()  # the answer starts with its first token
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream(
            "POST",
            f"{streaming_app}/api/v1/chats/{chat['id']}/completions",
            headers=headers,
            json={"question": "Why does bread rise?"},
            timeout=30,  # what ends the test if a frame waits for tokens the model holds back
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = (json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:"))
            for produced in range(1, len(tokens) + 1):
                # Each frame leaves the app while the model holds back everything after its token.
                assert next(lines)["data"]["answer"] == "".join(tokens[:produced])
                assert gate.wait_holding(30)
                assert llm.streams[-1].tokens == tokens[:produced]
                gate.release()
            frames = list(lines)
    assert frames[-1] == {"code": 0, "message": "", "data": True}
    assert frames[-2]["data"]["answer"].startswith("Yeast makes it rise.")


def test_the_lambda_web_adapter_app_runs_agents(server: RunningServer, streaming_app: str) -> None:
    spec = json.loads((Path(__file__).resolve().parents[2] / "docs" / "agents" / "customer_service.json").read_text())
    with FakeOpenAI(api_key="sk-lwa") as llm:
        _, key = server.container.tenant_service.create(
            "lwa-agent",
            [ModelSetting("lwa-chat@OpenAI-API-Compatible", "chat", api_base=llm.base_url, api_key="sk-lwa")],
        )
        with server.client(key) as api:
            assert api.post("/api/v1/agents", json=spec).json()["code"] == 0
            agent_id = api.get("/api/v1/agents").json()["data"][0]["id"]
        llm.script_chat(["shipping"])
        llm.script_chat(["Three ", "to ", "five ", "days."])
        events = []
        with httpx.stream(
            "POST",
            f"{streaming_app}/api/v1/agents/{agent_id}/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"question": "When will my parcel arrive?"},
            timeout=30,
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [line[5:] for line in response.iter_lines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    messages = [json.loads(e)["data"]["content"] for e in events[:-1] if json.loads(e)["event"] == "message"]
    assert messages == ["Three ", "to ", "five ", "days."]
