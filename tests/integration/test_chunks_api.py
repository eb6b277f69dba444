"""The chunk endpoints over real HTTP on every backend: add, list, update, delete, with counts kept right."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, get_document, parse_and_wait, upload_one


@pytest.fixture
def parsed(api: httpx.Client) -> dict[str, Any]:
    ds = create_dataset(api, parser_config={"chunk_token_num": 16})
    doc = upload_one(api, ds["id"], "notes.txt", b"Alpha beta gamma.\nDelta epsilon.\nZeta eta theta.\n" * 3)
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "DONE"
    return {"ds": ds, "doc": done, "url": f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"}


def _dataset(api: httpx.Client, dataset_id: str) -> dict[str, Any]:
    data: dict[str, Any] = api.get("/api/v1/datasets", params={"id": dataset_id}).json()["data"][0]
    return data


def test_list_chunks_in_document_order_with_doc_and_total(api: httpx.Client, parsed: dict[str, Any]) -> None:
    res = api.get(parsed["url"]).json()
    assert res["code"] == 0
    data = res["data"]
    assert data["total"] == parsed["doc"]["chunk_count"] == len(data["chunks"])
    assert data["doc"]["id"] == parsed["doc"]["id"] and data["doc"]["run"] == "DONE"
    first = data["chunks"][0]
    assert first["content"].startswith("Alpha beta gamma")
    assert set(first) >= {
        "id",
        "content",
        "document_id",
        "docnm_kwd",
        "important_keywords",
        "questions",
        "dataset_id",
        "image_id",
        "available",
        "positions",
    }
    assert first["docnm_kwd"] == "notes.txt" and first["available"] is True
    one = api.get(parsed["url"], params={"id": first["id"]}).json()["data"]
    assert one["total"] == 1 and one["chunks"][0]["id"] == first["id"]
    paged = api.get(parsed["url"], params={"page": 2, "page_size": 1}).json()["data"]
    assert [c["id"] for c in paged["chunks"]] == [data["chunks"][1]["id"]]
    found = api.get(parsed["url"], params={"keywords": "ZETA"}).json()["data"]
    assert found["total"] >= 1 and all("Zeta" in c["content"] for c in found["chunks"])
    assert api.get(parsed["url"], params={"id": "nope"}).json()["code"] == 404


def test_add_chunk_is_listed_by_the_next_request_and_counted(api: httpx.Client, parsed: dict[str, Any]) -> None:
    before = _dataset(api, parsed["ds"]["id"])
    res = api.post(
        parsed["url"], json={"content": "who are you", "important_keywords": ["identity"], "questions": ["Who is it?"]}
    ).json()
    assert res["code"] == 0, res
    chunk = res["data"]["chunk"]
    assert set(chunk) == {
        "id",
        "content",
        "document_id",
        "dataset_id",
        "important_keywords",
        "questions",
        "create_time",
        "create_timestamp",
    }
    assert chunk["content"] == "who are you" and chunk["questions"] == ["Who is it?"]
    assert len(chunk["create_time"]) == 19 and isinstance(chunk["create_timestamp"], float)
    listed = api.get(parsed["url"]).json()["data"]
    assert listed["chunks"][-1]["id"] == chunk["id"]
    assert listed["doc"]["chunk_count"] == parsed["doc"]["chunk_count"] + 1
    after = _dataset(api, parsed["ds"]["id"])
    assert after["chunk_count"] == before["chunk_count"] + 1 and after["token_num"] > before["token_num"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "`content` is required"),
        ({"content": "   "}, "`content` is required"),
        ({"content": "x", "important_keywords": "k"}, "`important_keywords` is required to be a list"),
        ({"content": "x", "questions": "q"}, "`questions` is required to be a list"),
    ],
)
def test_add_chunk_errors(api: httpx.Client, parsed: dict[str, Any], payload: dict[str, Any], message: str) -> None:
    assert api.post(parsed["url"], json=payload).json() == {"code": 102, "message": message}
    assert api.get(parsed["url"]).json()["data"]["total"] == parsed["doc"]["chunk_count"]


def test_foreign_document_is_refused(api: httpx.Client, other_api: httpx.Client, parsed: dict[str, Any]) -> None:
    res = other_api.get(parsed["url"]).json()
    assert res == {"code": 102, "message": f"You don't own the dataset {parsed['ds']['id']}."}
    assert other_api.post(parsed["url"], json={"content": "x"}).json()["code"] == 102


def test_update_chunk(api: httpx.Client, parsed: dict[str, Any]) -> None:
    chunk = api.get(parsed["url"]).json()["data"]["chunks"][0]
    url = f"{parsed['url']}/{chunk['id']}"
    assert api.put(url, json={"content": "ragflow123", "important_keywords": ["k1"]}).json() == {"code": 0}
    listed = api.get(parsed["url"], params={"id": chunk["id"]}).json()["data"]["chunks"][0]
    assert listed["content"] == "ragflow123" and listed["important_keywords"] == ["k1"]
    assert api.put(url, json={"available": False}).json() == {"code": 0}
    assert api.get(parsed["url"], params={"id": chunk["id"]}).json()["data"]["chunks"][0]["available"] is False
    assert api.put(f"{parsed['url']}/missing", json={"content": "x"}).json() == {
        "code": 102,
        "message": "Can't find this chunk missing",
    }
    assert api.put(url, json={"important_keywords": "x"}).json()["code"] == 102


def test_delete_chunks(api: httpx.Client, parsed: dict[str, Any]) -> None:
    chunks = api.get(parsed["url"]).json()["data"]["chunks"]
    missing = api.request("DELETE", parsed["url"], json={"chunk_ids": [chunks[0]["id"], "nope"]}).json()
    assert missing == {"code": 102, "message": "rm_chunk deleted chunks 1, expect 2"}  # the found one is gone
    assert api.get(parsed["url"]).json()["data"]["total"] == len(chunks) - 1
    doc = get_document(api, parsed["ds"]["id"], parsed["doc"]["id"])
    assert doc["chunk_count"] == len(chunks) - 1
    assert api.request("DELETE", parsed["url"], json={}).json() == {"code": 0}  # all of them
    assert api.get(parsed["url"]).json()["data"]["total"] == 0
    dataset = _dataset(api, parsed["ds"]["id"])
    assert dataset["chunk_count"] == 0 and dataset["token_num"] == 0
    assert get_document(api, parsed["ds"]["id"], parsed["doc"]["id"])["token_count"] == 0
