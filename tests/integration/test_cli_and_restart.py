"""The `flowless` console script: first start, restart with data kept, tenant administration."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.server import free_port

FLOWLESS = str(Path(sys.executable).parent / "flowless")


@dataclass
class ServeRun:
    base: str
    output: str = ""  # everything the process printed, filled in when it has stopped


@contextmanager
def serve(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[ServeRun]:
    port = free_port()
    proc = subprocess.Popen(
        [FLOWLESS, "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    run = ServeRun(f"http://127.0.0.1:{port}")
    base = run.base
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/v1/system/ping", timeout=1).text == "pong":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("server did not start")
            time.sleep(0.1)
        yield run
    finally:
        proc.terminate()
        run.output, _ = proc.communicate(timeout=15)


def test_first_start_creates_a_tenant_and_data_survives_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve(data_dir) as first:
        base = first.base
        key = (data_dir / "api_key").read_text().strip()
        assert key.startswith("ragflow-")
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(f"{base}/api/v1/datasets", json={"name": "kept"}, headers=headers).json()
        assert created["code"] == 0
    assert key in first.output and "api_key" in first.output
    assert (data_dir / "api_key").stat().st_mode & 0o077 == 0  # the key file is private

    with serve(data_dir) as second:
        listed = httpx.get(f"{second.base}/api/v1/datasets", headers=headers).json()
        assert listed["code"] == 0 and [d["name"] for d in listed["data"]] == ["kept"]
        assert listed["data"][0]["id"] == created["data"]["id"]
        assert (data_dir / "api_key").read_text().strip() == key  # no second tenant on restart
    assert key not in second.output


def test_tenant_create_prints_only_the_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = subprocess.run(
        [
            FLOWLESS,
            "tenant",
            "create",
            "--data-dir",
            str(data_dir),
            "--name",
            "acme",
            "--chat-model",
            "gpt-4o-mini@OpenAI",
            "--embedding-model",
            "text-embedding-3-small@OpenAI",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragflow-")
    with serve(data_dir) as run:
        headers = {"Authorization": f"Bearer {lines[0]}"}
        data = httpx.post(f"{run.base}/api/v1/datasets", json={"name": "x"}, headers=headers).json()["data"]
        assert data["embedding_model"] == "text-embedding-3-small@OpenAI"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chat-model", "nope@Nowhere"], "Unsupported model: <nope@Nowhere>"),
        (["--embedding-model", "gpt-4o@OpenAI"], "Unsupported model: <gpt-4o@OpenAI>"),
    ],
)
def test_tenant_create_rejects_unknown_models(tmp_path: Path, args: list[str], message: str) -> None:
    out = subprocess.run(
        [FLOWLESS, "tenant", "create", "--data-dir", str(tmp_path), *args], capture_output=True, text=True
    )
    assert out.returncode == 2 and out.stdout == "" and message in out.stderr


# -- first chat without ceremony ---------------------------------------------------------------------------


def _first_chat(base: str, key: str, name: str = "first") -> dict[str, Any]:
    """A chat with the defaults, a session, one question: what a first-time user does."""
    headers = {"Authorization": f"Bearer {key}"}
    chat = httpx.post(f"{base}/api/v1/chats", json={"name": name}, headers=headers).json()
    assert chat["code"] == 0, chat
    session = httpx.post(f"{base}/api/v1/chats/{chat['data']['id']}/sessions", json={}, headers=headers).json()
    answer: dict[str, Any] = httpx.post(
        f"{base}/api/v1/chats/{chat['data']['id']}/completions",
        json={"question": "Hello?", "session_id": session["data"]["id"], "stream": False},
        headers=headers,
        timeout=30,
    ).json()
    return answer


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible server standing in for Ollama (or OpenAI) on this machine."""
    with FakeOpenAI(api_key=None) as fake:
        yield fake


def test_serve_takes_its_chat_model_from_the_environment(tmp_path: Path, llm: FakeOpenAI) -> None:
    data_dir = tmp_path / "data"
    env = {"FLOWLESS_CHAT_MODEL": "llama3.2@Ollama", "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": ""}
    with serve(data_dir, env=env) as run:
        key = (data_dir / "api_key").read_text().strip()
        llm.script_chat(["Hello from llama."])
        answer = _first_chat(run.base, key)
        assert answer["code"] == 0 and answer["data"]["answer"].startswith("Hello from llama."), answer
        headers = {"Authorization": f"Bearer {key}"}
        chat = httpx.get(f"{run.base}/api/v1/chats", headers=headers).json()["data"][0]
        assert chat["llm"]["model_name"] == "llama3.2@Ollama"
        # a model RAGFlow knows that this tenant has not configured
        other = {"name": "other", "llm": {"model_name": "gpt-4o@OpenAI"}}
        res = httpx.post(f"{run.base}/api/v1/chats", json=other, headers=headers).json()
        assert res == {"code": 101, "message": "Unauthorized model: <gpt-4o@OpenAI>"}
    assert f"llama3.2@Ollama ({llm.base_url})" in run.output


def test_serve_flags_win_and_a_restart_can_change_the_model(tmp_path: Path, llm: FakeOpenAI) -> None:
    data_dir = tmp_path / "data"
    flags = ["--chat-model", "gpt-4o-mini@OpenAI", "--model-base-url", llm.base_url, "--model-api-key", "sk-flag"]
    with serve(data_dir, *flags, env={"FLOWLESS_CHAT_MODEL": "llama3.2@Ollama"}) as run:
        key = (data_dir / "api_key").read_text().strip()
        llm.script_chat(["From the flag's model."])
        assert _first_chat(run.base, key)["data"]["answer"].startswith("From the flag's model.")
    assert llm.chat_requests[-1].body["model"] == "gpt-4o-mini"
    assert llm.chat_requests[-1].headers.get("authorization") == "Bearer sk-flag"
    with serve(data_dir, env={"FLOWLESS_CHAT_MODEL": "qwen2.5@Ollama", "OPENAI_BASE_URL": llm.base_url}) as run:
        llm.script_chat(["Now qwen."])
        assert _first_chat(run.base, key, "second")["data"]["answer"].startswith("Now qwen.")
    assert llm.chat_requests[-1].body["model"] == "qwen2.5"


def serve_refused(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``flowless serve`` run with ``env`` added, expected to stop before serving."""
    return subprocess.run(
        [FLOWLESS, "serve", "--data-dir", str(data_dir), "--port", str(free_port())],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_serve_refuses_a_model_the_catalog_does_not_know(tmp_path: Path) -> None:
    out = serve_refused(tmp_path, {"FLOWLESS_CHAT_MODEL": "gpt-9@OpenAI"})
    assert out.returncode == 2 and "Unsupported model: <gpt-9@OpenAI>" in out.stderr


def test_serve_reads_the_settings_the_environment_gives(tmp_path: Path) -> None:
    """README's local variables reach the server (``FLOWLESS_WEBHOOK_ALLOW_PRIVATE``, ``FLOWLESS_MAX_UPLOAD_BYTES``);
    ``FLOWLESS_BACKEND`` does not turn it into something other than the local server."""
    data_dir = tmp_path / "data"
    hook = {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32}
    env = {"FLOWLESS_WEBHOOK_ALLOW_PRIVATE": "true", "FLOWLESS_MAX_UPLOAD_BYTES": "64", "FLOWLESS_BACKEND": "aws"}
    with serve(data_dir, env=env) as run:
        headers = {"Authorization": f"Bearer {(data_dir / 'api_key').read_text().strip()}"}
        assert httpx.post(f"{run.base}/api/v1/flowless/webhooks", json=hook, headers=headers).json()["code"] == 0
        ds = httpx.post(f"{run.base}/api/v1/datasets", json={"name": "limits"}, headers=headers).json()["data"]
        files = [("file", ("big.txt", b"x" * 65, "text/plain"))]
        too_big = httpx.post(f"{run.base}/api/v1/datasets/{ds['id']}/documents", files=files, headers=headers)
        assert too_big.json()["message"] == "<RequestEntityTooLarge '413: Request Entity Too Large'>"
    with serve(data_dir) as run:  # unset: loopback targets refused again, as by default
        refused = httpx.post(f"{run.base}/api/v1/flowless/webhooks", json=hook, headers=headers).json()
        assert refused["code"] == 101 and "loopback" in refused["message"], refused


def test_serve_names_a_setting_with_an_invalid_value(tmp_path: Path) -> None:
    out = serve_refused(tmp_path, {"FLOWLESS_MAX_UPLOAD_BYTES": "lots"})
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: FLOWLESS_MAX_UPLOAD_BYTES must be") and "Traceback" not in out.stderr
