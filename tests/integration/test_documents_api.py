"""The documents endpoints over real HTTP: upload, list filters, download, update, delete, metadata."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support import docs
from tests.support.api import create_dataset, get_document, upload, upload_one


def _list(api: httpx.Client, dataset_id: str, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.get(f"/api/v1/datasets/{dataset_id}/documents", params=params).json()
    return result


def test_upload_several_files_with_ragflow_names(api: httpx.Client) -> None:
    ds = create_dataset(api, chunk_method="qa")
    res = upload(api, ds["id"], ("a.txt", b"alpha"), ("a.txt", b"beta"), ("b.md", b"# t\nbody"))
    assert res["code"] == 0, res
    names = [d["name"] for d in res["data"]]
    assert names == ["a.txt", "a(1).txt", "b.md"]
    first = res["data"][0]
    assert first["run"] == "UNSTART" and first["size"] == 5 and first["type"] == "doc"
    assert first["dataset_id"] == ds["id"] and first["location"] == "a.txt"
    assert first["chunk_method"] == "qa" and first["parser_config"] == ds["parser_config"]
    assert "blob_key" not in first and "task_id" not in first
    assert upload(api, ds["id"], ("a.txt", b"gamma"))["data"][0]["name"] == "a(2).txt"
    listed = api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]
    assert listed["document_count"] == 4


@pytest.mark.parametrize(
    ("files", "code", "message"),
    [
        ([], 101, "No file part!"),
        ([("", b"x")], 101, "No file part!"),
        ([("x" * 256 + ".txt", b"x")], 101, "File name must be 255 bytes or less."),
        ([("virus.exe", b"MZ")], 500, "virus.exe: This type of file has not been supported yet!"),
        ([("ok.txt", b"fine"), ("virus.exe", b"MZ")], 500, "virus.exe: This type of file has not been supported"),
    ],
)
def test_upload_errors_keep_nothing(api: httpx.Client, files: list[tuple[str, bytes]], code: int, message: str) -> None:
    ds = create_dataset(api)
    res = upload(api, ds["id"], *files) if files else api.post(f"/api/v1/datasets/{ds['id']}/documents").json()
    assert res["code"] == code and message in res["message"], res
    assert _list(api, ds["id"])["data"]["total"] == 0


def test_upload_to_foreign_or_missing_dataset(api: httpx.Client, other_api: httpx.Client) -> None:
    foreign = create_dataset(other_api)["id"]
    for dataset_id in (foreign, uuid.uuid1().hex):
        res = upload(api, dataset_id, ("a.txt", b"x"))
        assert res == {"code": 102, "message": f"You don't own the dataset {dataset_id}."}
    assert _list(other_api, foreign)["data"]["total"] == 0


def test_download_returns_the_original_bytes(api: httpx.Client, other_api: httpx.Client) -> None:
    ds = create_dataset(api)
    pdf = docs.make_pdf()
    doc = upload_one(api, ds["id"], "report é.pdf", pdf)
    res = api.get(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}")
    assert res.status_code == 200 and res.content == pdf
    assert res.headers["content-type"] == "application/pdf"
    assert "report%20%C3%A9.pdf" in res.headers["content-disposition"]
    foreign = other_api.get(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}").json()
    assert foreign == {"code": 102, "message": f"You do not own the dataset {ds['id']}."}
    missing = uuid.uuid1().hex
    assert api.get(f"/api/v1/datasets/{ds['id']}/documents/{missing}").json()["code"] == 102


def test_list_filters(api: httpx.Client) -> None:
    ds = create_dataset(api)
    a = upload_one(api, ds["id"], "alpha report.txt", b"a")
    b = upload_one(api, ds["id"], "beta.pdf", docs.make_pdf())
    c = upload_one(api, ds["id"], "gamma report.md", b"c")
    ids = lambda res: [d["id"] for d in res["data"]["docs"]]  # noqa: E731
    everything = _list(api, ds["id"])
    assert ids(everything) == [c["id"], b["id"], a["id"]] and everything["data"]["total"] == 3
    assert ids(_list(api, ds["id"], desc="false")) == [a["id"], b["id"], c["id"]]
    assert ids(_list(api, ds["id"], keywords="REPORT")) == [c["id"], a["id"]]
    assert ids(_list(api, ds["id"], suffix=["pdf", "md"])) == [c["id"], b["id"]]
    assert ids(_list(api, ds["id"], name="beta.pdf")) == [b["id"]]
    assert ids(_list(api, ds["id"], id=a["id"])) == [a["id"]]
    assert ids(_list(api, ds["id"], run=["UNSTART"])) == ids(everything)
    assert ids(_list(api, ds["id"], run=["0", "DONE"])) == ids(everything)
    assert ids(_list(api, ds["id"], run=["DONE", "4"])) == []
    page = _list(api, ds["id"], page=2, page_size=2)
    assert ids(page) == [a["id"]] and page["data"]["total"] == 3
    created = get_document(api, ds["id"], b["id"])["create_time"]
    assert ids(_list(api, ds["id"], create_time_from=created, create_time_to=created)) == [b["id"]]
    assert _list(api, ds["id"], name="nope.txt")["code"] == 102
    assert _list(api, ds["id"], id=uuid.uuid1().hex)["code"] == 102
    assert _list(api, ds["id"], run=["SOMETIMES"])["code"] == 101
    assert _list(api, ds["id"], page=-1)["code"] == 101


def test_metadata_filtering_summary_and_update(api: httpx.Client) -> None:
    ds = create_dataset(api)
    first = upload_one(api, ds["id"], "one.txt", b"1")
    second = upload_one(api, ds["id"], "two.txt", b"2")
    third = upload_one(api, ds["id"], "three.txt", b"3")
    for doc, meta in (
        (first, {"author": "alice", "tags": ["foo", "bar"], "year": 2024}),
        (second, {"author": "bob", "tags": ["bar"], "year": 9}),
        (third, {"author": "alice", "tags": ["baz"]}),
    ):
        res = api.put(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}", json={"meta_fields": meta}).json()
        assert res["code"] == 0 and res["data"]["meta_fields"] == meta
    condition = (
        '{"logic":"and","conditions":[{"name":"tags","comparison_operator":"is","value":"bar"},'
        '{"name":"author","comparison_operator":"is","value":"alice"}]}'
    )
    found = _list(api, ds["id"], metadata_condition=condition)["data"]["docs"]
    assert [d["id"] for d in found] == [first["id"]]
    numeric = '{"conditions":[{"name":"year","comparison_operator":">","value":"10"}]}'
    assert [d["id"] for d in _list(api, ds["id"], metadata_condition=numeric)["data"]["docs"]] == [first["id"]]
    assert _list(api, ds["id"], metadata_condition="{oops")["code"] == 102

    summary = api.get(f"/api/v1/datasets/{ds['id']}/metadata/summary").json()["data"]["summary"]
    assert summary["author"] == [["alice", 2], ["bob", 1]]
    assert summary["tags"] == [["bar", 2], ["baz", 1], ["foo", 1]]

    res = api.post(
        f"/api/v1/datasets/{ds['id']}/metadata/update",
        json={
            "selector": {
                "metadata_condition": {
                    "conditions": [{"name": "author", "comparison_operator": "is", "value": "alice"}]
                }
            },
            "updates": [{"key": "tags", "match": "foo", "value": "foo_new"}],
            "deletes": [{"key": "year"}],
        },
    ).json()
    assert res == {"code": 0, "data": {"updated": 1, "matched_docs": 2}}  # the third had nothing to change
    assert get_document(api, ds["id"], first["id"])["meta_fields"] == {"author": "alice", "tags": ["foo_new", "bar"]}
    assert get_document(api, ds["id"], second["id"])["meta_fields"]["year"] == 9
    by_ids = api.post(
        f"/api/v1/datasets/{ds['id']}/metadata/update",
        json={"selector": {"document_ids": [second["id"]]}, "updates": [{"key": "author", "value": "carol"}]},
    ).json()
    assert by_ids["data"] == {"updated": 1, "matched_docs": 1}
    bad = api.post(
        f"/api/v1/datasets/{ds['id']}/metadata/update", json={"selector": {"document_ids": [uuid.uuid1().hex]}}
    ).json()
    assert bad["code"] == 102 and "do not belong to dataset" in bad["message"]
    assert (
        api.post(f"/api/v1/datasets/{ds['id']}/metadata/update", json={"updates": [{"key": "x"}]}).json()["code"] == 102
    )


def test_update_document_rules(api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "manual.txt", b"some text")
    upload_one(api, ds["id"], "taken.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}"
    renamed = api.put(url, json={"name": "guide.txt"}).json()
    assert renamed["code"] == 0 and renamed["data"]["name"] == "guide.txt"
    assert api.put(url, json={"name": "guide.pdf"}).json() == {
        "code": 101,
        "message": "The extension of file can't be changed",
    }
    assert api.put(url, json={"name": "taken.txt"}).json() == {
        "code": 102,
        "message": "Duplicated document name in the same dataset.",
    }
    assert api.put(url, json={"chunk_count": 5}).json() == {"code": 102, "message": "Can't change `chunk_count`."}
    assert api.put(url, json={"meta_fields": "x"}).json()["code"] == 102
    assert api.put(url, json={"chunk_method": "nope"}).json() == {
        "code": 102,
        "message": "`chunk_method` nope doesn't exist",
    }
    changed = api.put(url, json={"chunk_method": "manual", "parser_config": {"chunk_token_num": 128}}).json()
    assert changed["data"]["chunk_method"] == "manual"
    assert changed["data"]["parser_config"]["chunk_token_num"] == 128
    assert api.put(url, json={"enabled": 0}).json() == {"code": 0, "data": True}
    assert get_document(api, ds["id"], doc["id"])["status"] == "0"
    assert api.put(url, json={"enabled": 3}).json()["code"] == 101
    assert api.put(url, json={"unknown": 1}).json()["code"] == 101
    missing = api.put(f"/api/v1/datasets/{ds['id']}/documents/{uuid.uuid1().hex}", json={"name": "x.txt"}).json()
    assert missing == {"code": 102, "message": "The dataset doesn't own the document."}


def test_delete_documents(api: httpx.Client, other_api: httpx.Client) -> None:
    ds = create_dataset(api)
    a = upload_one(api, ds["id"], "a.txt", b"a")
    b = upload_one(api, ds["id"], "b.txt", b"b")
    c = upload_one(api, ds["id"], "c.txt", b"c")
    url = f"/api/v1/datasets/{ds['id']}/documents"
    missing = uuid.uuid1().hex
    assert other_api.request("DELETE", url, json={"ids": [a["id"]]}).json()["code"] == 102
    res = api.request("DELETE", url, json={"ids": [a["id"], missing]}).json()
    assert res == {"code": 102, "message": f"Documents not found: ['{missing}']"}  # a is deleted all the same
    assert _list(api, ds["id"])["data"]["total"] == 2
    assert api.get(f"{url}/{a['id']}").json()["code"] == 102  # the blob is gone with it
    assert api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]["document_count"] == 2
    dup = api.request("DELETE", url, json={"ids": [b["id"], b["id"]]}).json()
    assert dup["code"] == 0 and dup["data"]["errors"] == [f"Duplicate document ids: {b['id']}"]
    assert api.request("DELETE", url).json() == {"code": 0}  # no body: every document
    assert _list(api, ds["id"])["data"]["total"] == 0
    assert c["id"] not in str(_list(api, ds["id"]))
    assert api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]["document_count"] == 0
