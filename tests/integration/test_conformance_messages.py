"""RAGFlow's server's messages for datasets and documents, over real HTTP: UUID1 ids, empty bodies, the three
wordings of "you don't own the dataset", an empty rename, and repeated dataset names (``name(1)``…)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.api import create_dataset, upload_one

JSON = {"Content-Type": "application/json"}
MALFORMED = {"code": 101, "message": "Malformed JSON syntax: Missing commas/brackets or invalid encoding"}


@pytest.mark.parametrize("bad_id", ["not-a-uuid", uuid.uuid4().hex, str(uuid.uuid4()), "", "12"])
def test_an_id_that_is_not_a_uuid1_is_one_message(api: httpx.Client, bad_id: str) -> None:
    deleted = api.request("DELETE", "/api/v1/datasets", json={"ids": [bad_id]}).json()
    assert deleted["code"] == 101 and "Message: <Invalid UUID1 format>" in deleted["message"], deleted
    listed = api.get("/api/v1/datasets", params={"id": bad_id}).json()
    assert listed["code"] == 101 and "Message: <Invalid UUID1 format>" in listed["message"], listed
    if bad_id:
        updated = api.put(f"/api/v1/datasets/{bad_id}", json={"name": "x"}).json()
        assert updated["code"] == 101 and "Message: <Invalid UUID1 format>" in updated["message"], updated


def test_an_empty_body_on_dataset_delete_and_update_is_malformed_json(api: httpx.Client) -> None:
    ds = create_dataset(api)
    assert api.request("DELETE", "/api/v1/datasets", content=b"", headers=JSON).json() == MALFORMED
    assert api.put(f"/api/v1/datasets/{ds['id']}", content=b"", headers=JSON).json() == MALFORMED
    assert api.get("/api/v1/datasets").json()["total"] == 1


def test_unknown_dataset_messages_of_the_document_endpoints(api: httpx.Client, other_api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents"
    own_space = {"code": 102, "message": f"You don't own the dataset {ds['id']}. "}  # sic: a trailing space
    assert other_api.get(url).json() == own_space
    assert other_api.request("DELETE", url, json={"ids": [doc["id"]]}).json() == own_space
    assert other_api.get(f"{url}/{doc['id']}").json() == {
        "code": 102,
        "message": f"You do not own the dataset {ds['id']}.",
    }
    assert other_api.put(f"{url}/{doc['id']}", json={"name": "b.txt"}).json() == {
        "code": 102,
        "message": "You don't own the dataset.",
    }
    missing = uuid.uuid1().hex  # a dataset nobody has is answered the same way
    assert api.get(f"/api/v1/datasets/{missing}/documents").json() == {
        "code": 102,
        "message": f"You don't own the dataset {missing}. ",
    }
    assert api.get(f"{url}/{doc['id']}").status_code == 200  # all still there for its owner


@pytest.mark.parametrize("name", ["", "   "])
def test_renaming_a_document_to_nothing_is_an_extension_change(api: httpx.Client, name: str) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}"
    assert api.put(url, json={"name": name}).json() == {
        "code": 101,
        "message": "The extension of file can't be changed",
    }
    assert api.put(url, json={"name": None}).json() == {"code": 101, "message": "File name can't be empty."}


def test_a_repeated_dataset_name_is_numbered(api: httpx.Client, other_api: httpx.Client) -> None:
    names = [create_dataset(api, name=name)["name"] for name in ("Papers", "papers", "PAPERS", "papers(1)")]
    assert names == ["Papers", "papers(1)", "PAPERS(2)", "papers(3)"]
    assert create_dataset(api, name="v1.2")["name"] == "v1.2"
    assert create_dataset(api, name="V1.2")["name"] == "V1(1).2"  # RAGFlow numbers before the last dot
    assert create_dataset(other_api, name="Papers")["name"] == "Papers"


def test_a_name_clash_on_update_is_still_refused(api: httpx.Client) -> None:
    create_dataset(api, name="taken")
    ds = create_dataset(api, name="free")
    res = api.put(f"/api/v1/datasets/{ds['id']}", json={"name": "TAKEN"}).json()
    assert res == {"code": 102, "message": "Dataset name 'TAKEN' already exists"}
    assert api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]["name"] == "free"
