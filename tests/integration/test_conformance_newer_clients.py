"""RAGFlow v0.25+ clients against this v0.23.1 API, over real HTTP: a delete body carrying ``delete_all``
follows the newer rules (nothing is deleted unless ``delete_all`` is true) on datasets, documents and chunks,
so a v0.27 SDK's default ``{"ids": null, "delete_all": false}`` never wipes data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, upload_one

NOTHING = [{"ids": None, "delete_all": False}, {"delete_all": False}, {"ids": [], "delete_all": False}]
NOTHING_DOCS = [*NOTHING, {"ids": None, "delete_all": None}]


def _dataset_ids(api: httpx.Client) -> set[str]:
    return {d["id"] for d in api.get("/api/v1/datasets", params={"page_size": 100}).json()["data"]}


@pytest.mark.parametrize("body", NOTHING)
def test_dataset_delete_with_delete_all_false_deletes_nothing(api: httpx.Client, body: dict[str, Any]) -> None:
    ids = {create_dataset(api, name=name)["id"] for name in ("a", "b")}
    assert api.request("DELETE", "/api/v1/datasets", json=body).json() == {"code": 0}
    assert _dataset_ids(api) == ids


@pytest.mark.parametrize(
    "body", [{"ids": None, "delete_all": True}, {"delete_all": True}, {"ids": [], "delete_all": True}]
)
def test_dataset_delete_all_true_deletes_every_dataset(
    api: httpx.Client, other_api: httpx.Client, body: dict[str, Any]
) -> None:
    create_dataset(api, name="a")
    create_dataset(api, name="b")
    theirs = create_dataset(other_api, name="theirs")["id"]
    assert api.request("DELETE", "/api/v1/datasets", json=body).json() == {"code": 0}
    assert _dataset_ids(api) == set()
    assert _dataset_ids(other_api) == {theirs}


def test_dataset_delete_listed_ids_whatever_delete_all_says(api: httpx.Client) -> None:
    a = create_dataset(api, name="a")["id"]
    b = create_dataset(api, name="b")["id"]
    assert api.request("DELETE", "/api/v1/datasets", json={"ids": [a], "delete_all": False}).json() == {"code": 0}
    assert _dataset_ids(api) == {b}
    assert api.request("DELETE", "/api/v1/datasets", json={"ids": [b], "delete_all": True}).json() == {"code": 0}
    assert _dataset_ids(api) == set()


def test_v023_rules_without_the_key(api: httpx.Client) -> None:
    create_dataset(api, name="a")
    assert api.request("DELETE", "/api/v1/datasets", json={"ids": []}).json() == {"code": 0}
    assert len(_dataset_ids(api)) == 1
    assert api.request("DELETE", "/api/v1/datasets", json={"ids": None}).json() == {"code": 0}
    assert _dataset_ids(api) == set()


@pytest.mark.parametrize("value", ["true", 1, [True]])
def test_delete_all_must_be_a_boolean(api: httpx.Client, value: Any) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    urls = [
        "/api/v1/datasets",
        f"/api/v1/datasets/{ds['id']}/documents",
        f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks",
    ]
    for url in urls:
        res = api.request("DELETE", url, json={"delete_all": value}).json()
        assert res["code"] == 101 and "delete_all" in res["message"], (url, res)
    assert _dataset_ids(api) == {ds["id"]}


def _documents(api: httpx.Client, dataset_id: str) -> list[str]:
    return [d["id"] for d in api.get(f"/api/v1/datasets/{dataset_id}/documents").json()["data"]["docs"]]


@pytest.fixture
def dataset_with_documents(api: httpx.Client) -> tuple[str, list[str]]:
    ds = create_dataset(api)
    return ds["id"], [upload_one(api, ds["id"], f"{n}.txt", b"x")["id"] for n in range(2)]


@pytest.mark.parametrize("body", NOTHING_DOCS)
def test_document_delete_with_delete_all_false_deletes_nothing(
    api: httpx.Client, dataset_with_documents: tuple[str, list[str]], body: dict[str, Any]
) -> None:
    dataset_id, ids = dataset_with_documents
    assert api.request("DELETE", f"/api/v1/datasets/{dataset_id}/documents", json=body).json() == {"code": 0}
    assert sorted(_documents(api, dataset_id)) == sorted(ids)


def test_document_delete_all_true_and_listed_ids(
    api: httpx.Client, dataset_with_documents: tuple[str, list[str]]
) -> None:
    dataset_id, ids = dataset_with_documents
    url = f"/api/v1/datasets/{dataset_id}/documents"
    assert api.request("DELETE", url, json={"ids": [ids[0]], "delete_all": False}).json() == {"code": 0}
    assert _documents(api, dataset_id) == [ids[1]]
    assert api.request("DELETE", url, json={"ids": None, "delete_all": True}).json() == {"code": 0}
    assert _documents(api, dataset_id) == []


@pytest.fixture
def document_with_chunks(api: httpx.Client) -> tuple[str, list[str]]:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    added = [api.post(url, json={"content": f"chunk {n}"}).json()["data"]["chunk"]["id"] for n in range(2)]
    return url, added


def _chunks(api: httpx.Client, url: str) -> list[str]:
    return [c["id"] for c in api.get(url).json()["data"]["chunks"]]


@pytest.mark.parametrize("body", [{"chunk_ids": None, "delete_all": False}, {"delete_all": False}])
def test_chunk_delete_with_delete_all_false_deletes_nothing(
    api: httpx.Client, document_with_chunks: tuple[str, list[str]], body: dict[str, Any]
) -> None:
    url, ids = document_with_chunks
    assert api.request("DELETE", url, json=body).json() == {"code": 0}
    assert _chunks(api, url) == ids


@pytest.mark.parametrize(
    ("body", "left"),
    [
        (lambda ids: {"chunk_ids": [ids[0]], "delete_all": False}, lambda ids: ids[1:]),
        (lambda ids: {"chunk_ids": [], "delete_all": True}, lambda ids: []),
    ],
)
def test_chunk_delete_all_true_and_listed_ids(
    api: httpx.Client,
    document_with_chunks: tuple[str, list[str]],
    body: Callable[[list[str]], dict[str, Any]],
    left: Callable[[list[str]], list[str]],
) -> None:
    url, ids = document_with_chunks
    assert api.request("DELETE", url, json=body(ids)).json() == {"code": 0}
    assert _chunks(api, url) == left(ids)
