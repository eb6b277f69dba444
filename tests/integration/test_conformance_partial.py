"""Partial successes as RAGFlow's server answers them, over real HTTP on every backend: deletes and parses
act on the ids found, then report the others; an empty ``chunk_ids`` clears that document's chunks only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, eventually, parse, parse_and_wait, upload_one, wait_parsed
from tests.support.server import RunningServer


def _documents(api: httpx.Client, dataset_id: str) -> list[str]:
    return [d["id"] for d in api.get(f"/api/v1/datasets/{dataset_id}/documents").json()["data"]["docs"]]


def _retrieve(api: httpx.Client, dataset_id: str, question: str) -> list[str]:
    res = api.post("/api/v1/retrieval", json={"dataset_ids": [dataset_id], "question": question}).json()
    assert res["code"] == 0, res
    return [c["document_id"] for c in res["data"]["chunks"]]


def test_document_delete_removes_the_found_then_reports_the_missing(api: httpx.Client) -> None:
    ds = create_dataset(api)
    a = upload_one(api, ds["id"], "a.txt", b"alpha")
    b = upload_one(api, ds["id"], "b.txt", b"beta")
    missing = uuid.uuid1().hex
    url = f"/api/v1/datasets/{ds['id']}/documents"
    res = api.request("DELETE", url, json={"ids": [missing, a["id"], a["id"]]}).json()
    assert res == {"code": 102, "message": f"Documents not found: ['{missing}']"}
    assert _documents(api, ds["id"]) == [b["id"]]
    assert api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]["document_count"] == 1
    nothing = api.request("DELETE", url, json={"ids": [missing]}).json()
    assert nothing == {"code": 102, "message": f"Documents not found: ['{missing}']"}
    assert _documents(api, ds["id"]) == [b["id"]]


def test_parse_queues_the_found_then_reports_the_missing(api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "notes.txt", b"Partial parses still parse the documents found.")
    missing = uuid.uuid1().hex
    res = parse(api, ds["id"], doc["id"], missing)
    assert res == {"code": 102, "message": f"Documents not found: ['{missing}']"}
    done = wait_parsed(api, ds["id"], doc["id"])
    assert done["run"] == "DONE" and done["chunk_count"] == 1


def test_parse_of_a_running_document_queues_nothing(api: httpx.Client, server: RunningServer) -> None:
    from shared.repos.documents import DocumentRepository

    ds = create_dataset(api)
    running = upload_one(api, ds["id"], "running.txt", b"Running documents are refused.")
    waiting = upload_one(api, ds["id"], "waiting.txt", b"Never queued.")
    repo = DocumentRepository(server.container.metadata)
    record = repo.get(ds["id"], running["id"])
    assert record is not None
    repo.update(record, {"run": "RUNNING", "update_time": record["update_time"] + 1})  # no worker on it
    res = parse(api, ds["id"], waiting["id"], running["id"])
    assert res == {"code": 102, "message": "Can't parse document that is currently being processed"}
    listed = api.get(f"/api/v1/datasets/{ds['id']}/documents", params={"id": waiting["id"]}).json()
    assert listed["data"]["docs"][0]["run"] == "UNSTART"


@pytest.fixture
def two_parsed(api: httpx.Client) -> dict[str, Any]:
    ds = create_dataset(api, parser_config={"chunk_token_num": 16})
    kept = upload_one(api, ds["id"], "kept.txt", b"Volcanoes erupt molten basalt.\nLava cools into rock.\n" * 3)
    cleared = upload_one(api, ds["id"], "cleared.txt", b"Glaciers carve fjords slowly.\nIce sheets retreat.\n" * 3)
    for doc in (kept, cleared):
        assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
    return {"ds": ds, "kept": kept, "cleared": cleared}


def _chunks_url(ds: dict[str, Any], doc: dict[str, Any]) -> str:
    return f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"


def _chunk_ids(api: httpx.Client, url: str) -> list[str]:
    return [c["id"] for c in api.get(url).json()["data"]["chunks"]]


def test_chunk_delete_removes_the_found_then_reports_the_shortfall(
    api: httpx.Client, two_parsed: dict[str, Any]
) -> None:
    url = _chunks_url(two_parsed["ds"], two_parsed["cleared"])
    ids = _chunk_ids(api, url)
    assert len(ids) >= 2
    res = api.request("DELETE", url, json={"chunk_ids": [ids[0], "not-a-chunk", "nor-this"]}).json()
    assert res == {"code": 102, "message": "rm_chunk deleted chunks 1, expect 3"}
    assert _chunk_ids(api, url) == ids[1:]
    doc = api.get(f"/api/v1/datasets/{two_parsed['ds']['id']}/documents", params={"id": two_parsed["cleared"]["id"]})
    assert doc.json()["data"]["docs"][0]["chunk_count"] == len(ids) - 1


@pytest.mark.parametrize("body", [{"chunk_ids": []}, {"chunk_ids": None}, {}, None])
def test_no_chunk_ids_clears_that_document_only(
    api: httpx.Client, two_parsed: dict[str, Any], body: dict[str, Any] | None
) -> None:
    ds, kept, cleared = two_parsed["ds"], two_parsed["kept"], two_parsed["cleared"]
    kept_ids = _chunk_ids(api, _chunks_url(ds, kept))
    eventually(lambda: _retrieve(api, ds["id"], "glaciers fjords"), lambda found: cleared["id"] in found)
    url = _chunks_url(ds, cleared)
    res = api.request("DELETE", url) if body is None else api.request("DELETE", url, json=body)
    assert res.json() == {"code": 0}
    assert _chunk_ids(api, _chunks_url(ds, cleared)) == []
    assert _chunk_ids(api, _chunks_url(ds, kept)) == kept_ids
    eventually(lambda: _retrieve(api, ds["id"], "glaciers fjords"), lambda found: cleared["id"] not in found)
    assert kept["id"] in _retrieve(api, ds["id"], "volcanoes basalt lava")
    dataset = api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]
    assert dataset["chunk_count"] == len(kept_ids)
