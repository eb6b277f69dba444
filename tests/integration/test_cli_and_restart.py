"""The `flowless` console script: first start, restart with data kept, tenant administration."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

FLOWLESS = str(Path(sys.executable).parent / "flowless")


@dataclass
class ServeRun:
    base: str
    output: str = ""  # everything the process printed, filled in when it has stopped


@contextmanager
def serve(data_dir: Path) -> Iterator[ServeRun]:
    port = free_port()
    proc = subprocess.Popen(
        [FLOWLESS, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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
