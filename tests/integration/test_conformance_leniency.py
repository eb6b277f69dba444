"""What RAGFlow's server lets through (and the one thing it is stricter about), over real HTTP:
page 0 and page size 0, unknown list parameters, the knowledge_graph method, case-variant renames, empty
files, an empty name filter, blank keywords; and ``permission`` taken exactly as sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, get_document, parse_and_wait, upload, upload_one


def _docs(api: httpx.Client, dataset_id: str, **params: Any) -> dict[str, Any]:
    res: dict[str, Any] = api.get(f"/api/v1/datasets/{dataset_id}/documents", params=params).json()
    assert res["code"] == 0, res
    return res["data"]


def test_document_list_page_zero_is_the_first_and_page_size_zero_is_empty(api: httpx.Client) -> None:
    ds = create_dataset(api)
    ids = [upload_one(api, ds["id"], f"{n}.txt", b"x")["id"] for n in range(3)]
    first = _docs(api, ds["id"], page=1, page_size=2)
    assert [d["id"] for d in _docs(api, ds["id"], page=0, page_size=2)["docs"]] == [d["id"] for d in first["docs"]]
    empty = _docs(api, ds["id"], page_size=0)
    assert empty["docs"] == [] and empty["total"] == 3
    assert _docs(api, ds["id"], page=0, page_size=0)["docs"] == []
    assert {d["id"] for d in _docs(api, ds["id"])["docs"]} == set(ids)


def test_document_list_ignores_unknown_parameters(api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    listed = _docs(api, ds["id"], type="doc", limit=5, sort="name")
    assert [d["id"] for d in listed["docs"]] == [doc["id"]]


@pytest.mark.parametrize("params", [{"page": -1}, {"page_size": -1}, {"page": "a"}])
def test_negative_or_non_numeric_paging_is_still_refused(api: httpx.Client, params: dict[str, Any]) -> None:
    ds = create_dataset(api)
    assert api.get(f"/api/v1/datasets/{ds['id']}/documents", params=params).json()["code"] == 101


def test_chunk_list_page_zero_and_page_size_zero_give_the_first_page(api: httpx.Client) -> None:
    ds = create_dataset(api, parser_config={"chunk_token_num": 4, "delimiter": "\n"})
    text = "".join(f"Line number {n} stands alone.\n" for n in range(40)).encode()
    doc = parse_and_wait(api, ds["id"], upload_one(api, ds["id"], "lines.txt", text)["id"])
    assert doc["chunk_count"] > 30
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"

    def ids(**params: Any) -> list[str]:
        data = api.get(url, params=params).json()["data"]
        assert data["total"] == doc["chunk_count"]
        return [c["id"] for c in data["chunks"]]

    default = ids()
    assert len(default) == 30  # RAGFlow's server's default page size
    assert ids(page=0) == default and ids(page_size=0) == default and ids(page=0, page_size=0) == default
    assert ids(page=2, page_size=5) == default[5:10]


def test_knowledge_graph_chunk_method_on_a_document(api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "graph.txt", b"Ada Lovelace worked with Charles Babbage in London.")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}"
    res = api.put(url, json={"chunk_method": "knowledge_graph"}).json()
    assert res["code"] == 0, res
    config = res["data"]["parser_config"]
    assert res["data"]["chunk_method"] == "knowledge_graph" and config["chunk_token_num"] == 8192
    assert config["entity_types"] == ["organization", "person", "location", "event", "time"]
    assert config["raptor"] == {"use_raptor": False} and config["graphrag"] == {"use_graphrag": False}
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "DONE" and done["chunk_count"] == 1  # chunked as naive, as RAGFlow does
    # the dataset's chunk methods stay RAGFlow's dataset list
    assert api.put(f"/api/v1/datasets/{ds['id']}", json={"chunk_method": "knowledge_graph"}).json()["code"] == 101


def test_rename_to_another_documents_name_in_another_case(api: httpx.Client) -> None:
    ds = create_dataset(api)
    upload_one(api, ds["id"], "Report.txt", b"a")
    doc = upload_one(api, ds["id"], "draft.txt", b"b")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}"
    res = api.put(url, json={"name": "REPORT.txt"}).json()
    assert res["code"] == 0 and res["data"]["name"] == "REPORT.txt"
    assert sorted(d["name"] for d in _docs(api, ds["id"])["docs"]) == ["REPORT.txt", "Report.txt"]
    assert api.put(url, json={"name": "Report.txt"}).json() == {
        "code": 102,
        "message": "Duplicated document name in the same dataset.",
    }
    assert api.put(url, json={"name": "report.txt"}).json()["data"]["name"] == "report.txt"  # its own case
    # uploads still pick a name free in any case
    assert upload_one(api, ds["id"], "REPORT.TXT", b"c")["name"] == "REPORT(1).TXT"
    assert upload_one(api, ds["id"], "REPORT.txt", b"d")["name"] == "REPORT(2).txt"
    assert upload_one(api, ds["id"], "Draft.TXT", b"e")["name"] == "Draft.TXT"  # the renamed one's old name is free


def test_an_empty_file_uploads_with_size_zero_and_its_parse_fails_clearly(api: httpx.Client) -> None:
    ds = create_dataset(api)
    res = upload(api, ds["id"], ("empty.txt", b""), ("full.txt", b"content"))
    assert res["code"] == 0, res
    empty = res["data"][0]
    assert empty["name"] == "empty.txt" and empty["size"] == 0
    done = parse_and_wait(api, ds["id"], empty["id"])
    assert done["run"] == "FAIL" and done["chunk_count"] == 0
    assert "[ERROR] empty.txt: the file is empty" in done["progress_msg"], done["progress_msg"]
    download = api.get(f"/api/v1/datasets/{ds['id']}/documents/{empty['id']}").json()
    assert download == {"code": 102, "message": "This file is empty."}


def test_empty_dataset_name_filter_is_no_filter(api: httpx.Client) -> None:
    create_dataset(api, name="one")
    create_dataset(api, name="two")
    res = api.get("/api/v1/datasets", params={"name": ""}).json()
    assert res["code"] == 0 and res["total"] == 2 and len(res["data"]) == 2


def test_blank_important_keywords_are_kept_and_non_strings_refused(api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
    added = api.post(url, json={"content": "chunk", "important_keywords": [""]}).json()
    assert added["code"] == 0 and added["data"]["chunk"]["important_keywords"] == [""]
    chunk_id = added["data"]["chunk"]["id"]
    assert api.get(url, params={"id": chunk_id}).json()["data"]["chunks"][0]["important_keywords"] == [""]
    for bad in ([1], ["ok", None], [["nested"]]):
        res = api.post(url, json={"content": "chunk", "important_keywords": bad}).json()
        assert res["code"] == 101 and "important_keywords" in res["message"], res
        res = api.put(f"{url}/{chunk_id}", json={"important_keywords": bad}).json()
        assert res["code"] == 101 and "important_keywords" in res["message"], res
    assert get_document(api, ds["id"], doc["id"])["chunk_count"] == 1


@pytest.mark.parametrize("permission", ["ME", "TEAM", " me ", "team ", None, 1])
def test_permission_is_exactly_me_or_team(api: httpx.Client, permission: Any) -> None:
    res = api.post("/api/v1/datasets", json={"name": "perm", "permission": permission}).json()
    assert res["code"] == 101 and "Field: <permission> - Message: <Input should be 'me' or 'team'>" in res["message"]
    assert api.get("/api/v1/datasets").json()["total"] == 0
    ds = create_dataset(api)
    res = api.put(f"/api/v1/datasets/{ds['id']}", json={"permission": permission}).json()
    assert res["code"] == 101 and "Input should be 'me' or 'team'" in res["message"]
    assert api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]["permission"] == "me"


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/api/v1/datasets/{ds}/chunks", {"document_ids": "{doc}"}, "`document_ids` should be a list"),
        ("DELETE", "/api/v1/datasets/{ds}/chunks", {"document_ids": "{doc}"}, "`document_ids` should be a list"),
        ("DELETE", "/api/v1/datasets/{ds}/documents", {"ids": "{doc}"}, "`ids` should be a list of document ids"),
        ("DELETE", "/api/v1/datasets/{ds}/documents/{doc}/chunks", {"chunk_ids": "{doc}"}, "`chunk_ids` should be"),
    ],
)
def test_a_string_where_a_list_is_required_is_refused_not_iterated(
    api: httpx.Client, method: str, path: str, body: dict[str, str], message: str
) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "a.txt", b"x")
    api.post(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks", json={"content": "kept"})

    def fill(text: str) -> str:
        return text.replace("{ds}", ds["id"]).replace("{doc}", doc["id"])

    sent = {key: fill(value) for key, value in body.items()}
    res = api.request(method, fill(path), json=sent).json()
    assert res["code"] == 101 and message in res["message"], res
    listed = get_document(api, ds["id"], doc["id"])
    assert listed["run"] == "UNSTART" and listed["chunk_count"] == 1
