"""Small helpers for API tests: create a dataset, upload files, wait for parses and for searches to agree."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def create_dataset(api: httpx.Client, name: str = "docs", **fields: Any) -> dict[str, Any]:
    res = api.post("/api/v1/datasets", json={"name": name, **fields}).json()
    assert res["code"] == 0, res
    data: dict[str, Any] = res["data"]
    return data


def upload(api: httpx.Client, dataset_id: str, *files: tuple[str, bytes]) -> dict[str, Any]:
    parts = [("file", (name, data)) for name, data in files]
    result: dict[str, Any] = api.post(f"/api/v1/datasets/{dataset_id}/documents", files=parts).json()
    return result


def upload_one(api: httpx.Client, dataset_id: str, name: str, data: bytes) -> dict[str, Any]:
    res = upload(api, dataset_id, (name, data))
    assert res["code"] == 0, res
    doc: dict[str, Any] = res["data"][0]
    return doc


def get_document(api: httpx.Client, dataset_id: str, document_id: str) -> dict[str, Any]:
    res = api.get(f"/api/v1/datasets/{dataset_id}/documents", params={"id": document_id}).json()
    assert res["code"] == 0, res
    doc: dict[str, Any] = res["data"]["docs"][0]
    return doc


def parse(api: httpx.Client, dataset_id: str, *document_ids: str) -> dict[str, Any]:
    result: dict[str, Any] = api.post(
        f"/api/v1/datasets/{dataset_id}/chunks", json={"document_ids": list(document_ids)}
    ).json()
    return result


def wait_parsed(api: httpx.Client, dataset_id: str, document_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll until the document leaves RUNNING; returns the document."""
    deadline = time.monotonic() + timeout
    while True:
        doc = get_document(api, dataset_id, document_id)
        if doc["run"] in ("DONE", "FAIL", "CANCEL"):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"still {doc['run']} after {timeout}s: {doc['progress_msg']}")
        time.sleep(0.05)


def parse_and_wait(api: httpx.Client, dataset_id: str, document_id: str) -> dict[str, Any]:
    res = parse(api, dataset_id, document_id)
    assert res == {"code": 0}, res
    return wait_parsed(api, dataset_id, document_id)


def eventually(fetch: Callable[[], T], until: Callable[[T], bool], timeout: float = 15) -> T:
    """Ask ``fetch`` again until ``until`` holds for its answer, and return that answer.

    For searches after a write: the search index may make writes searchable only after a delay (OpenSearch
    Serverless does, and so does its stand-in in these tests), while the metadata store answers at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = fetch()
        if until(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {timeout}s: {answer!r}")
        time.sleep(0.05)
