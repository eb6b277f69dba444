"""A worker killed mid-parse leaves the document re-parseable, with no duplicate chunks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shared.adapters.local.sqlite_store import SqliteMetadataStore
from shared.constants import LOCAL_DB_FILE
from shared.repos.documents import DocumentRepository
from tests.support import docs
from tests.support.api import create_dataset, get_document, parse, upload_one, wait_parsed
from tests.support.server import free_port

FLOWLESS = str(Path(sys.executable).parent / "flowless")


@contextmanager
def serve(data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    port = free_port()
    proc = subprocess.Popen(
        [FLOWLESS, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/v1/system/ping", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError("server did not start") from None
            time.sleep(0.1)
    key = (data_dir / "api_key").read_text().strip()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        try:
            yield proc, client
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)


def test_killed_worker_resumes_without_duplicates(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve(data_dir) as (proc, api):
        ds = create_dataset(api, parser_config={"task_page_size": 3, "chunk_token_num": 128})
        doc = upload_one(api, ds["id"], "long.pdf", docs.make_long_pdf(24, words_per_page=300))
        assert parse(api, ds["id"], doc["id"]) == {"code": 0}
        # wait until some ranges are indexed, then kill the process without a chance to clean up
        deadline = time.monotonic() + 60
        while "Indexing done" not in get_document(api, ds["id"], doc["id"])["progress_msg"]:
            assert time.monotonic() < deadline, "parse never got going"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    store = SqliteMetadataStore(data_dir / LOCAL_DB_FILE)
    interrupted = DocumentRepository(store).get(ds["id"], doc["id"])
    assert interrupted is not None and interrupted["run"] == "RUNNING"
    partial = len(DocumentRepository(store).chunks_of(doc["id"]))
    assert partial > 0  # the kill landed mid-parse, with chunks of finished ranges stored

    with serve(data_dir) as (_, api):
        done = wait_parsed(api, ds["id"], doc["id"], timeout=120)
        assert done["run"] == "DONE", done["progress_msg"]
        assert "Worker restarted" in done["progress_msg"]
        chunks = DocumentRepository(store).chunks_of(doc["id"])
        ids = [c["id"] for c in chunks]
        assert len(ids) == len(set(ids)) == done["chunk_count"]
        pages = {p for c in chunks for p in c["page_numbers"]}
        assert pages == set(range(1, 25))
        dataset = api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]
        assert dataset["chunk_count"] == done["chunk_count"]  # counted once despite the crash
        # and it can be parsed again from scratch
        assert parse(api, ds["id"], doc["id"]) == {"code": 0}
        again = wait_parsed(api, ds["id"], doc["id"], timeout=120)
        assert again["run"] == "DONE" and again["chunk_count"] == done["chunk_count"]


def test_a_missing_index_is_rebuilt_from_the_metadata_store(tmp_path: Path) -> None:
    import shutil

    from shared.constants import LOCAL_INDEX_DIR

    data_dir = tmp_path / "data"
    question = {"question": "yeast ferments sugar", "similarity_threshold": 0}
    with serve(data_dir) as (_, api):
        ds = create_dataset(api)
        doc = upload_one(api, ds["id"], "bread.txt", b"Bread rises because yeast ferments sugar.")
        assert parse(api, ds["id"], doc["id"]) == {"code": 0}
        assert wait_parsed(api, ds["id"], doc["id"])["run"] == "DONE"
        before = api.post("/api/v1/retrieval", json={**question, "dataset_ids": [ds["id"]]}).json()["data"]
        assert before["total"] == 1
    shutil.rmtree(data_dir / LOCAL_INDEX_DIR)
    with serve(data_dir) as (_, api):
        after = api.post("/api/v1/retrieval", json={**question, "dataset_ids": [ds["id"]]}).json()["data"]
        assert [c["id"] for c in after["chunks"]] == [c["id"] for c in before["chunks"]]
        assert after["chunks"][0]["similarity"] == before["chunks"][0]["similarity"]
