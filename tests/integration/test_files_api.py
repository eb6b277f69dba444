"""The file manager (``/api/v1/file/*``) over real HTTP: every endpoint's answers and messages, folder sizes,
moves, removal, and tenant isolation."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import create_dataset
from tests.support.files import entry, listing, make_folder, post, put_file, root, upload_files


# -- root, create -------------------------------------------------------------------------------------
def test_the_root_folder_is_made_once_and_is_its_own_parent(api: httpx.Client) -> None:
    first, again = root(api), root(api)
    assert first == again
    assert first["name"] == "/" and first["type"] == "folder" and first["parent_id"] == first["id"]
    assert first["size"] == 0 and first["source_type"] == ""
    assert {"id", "tenant_id", "created_by", "location", "create_time", "create_date", "update_time"} <= set(first)


def test_create_makes_folders_case_insensitively_and_virtual_files_otherwise(api: httpx.Client) -> None:
    folder = make_folder(api, "New Folder")
    assert folder["type"] == "folder" and folder["parent_id"] == root(api)["id"] and folder["size"] == 0
    lower = post(api, "create", {"name": "sub", "type": "folder", "parent_id": folder["id"]})["data"]
    assert lower["type"] == "folder" and lower["parent_id"] == folder["id"]
    virtual = post(api, "create", {"name": "notes", "type": "VIRTUAL", "parent_id": folder["id"]})["data"]
    assert virtual["type"] == "virtual" and virtual["size"] == 0
    untyped = post(api, "create", {"name": "plain"})["data"]
    assert untyped["type"] == "virtual" and untyped["parent_id"] == root(api)["id"]
    assert api.get(f"/api/v1/file/get/{virtual['id']}").content == b""


def test_create_refusals(api: httpx.Client) -> None:
    folder = make_folder(api, "Docs")
    file = put_file(api, "a.txt", b"hello")
    assert post(api, "create", {"name": "docs", "type": "FOLDER"}) == {
        "code": 409,
        "message": "Duplicated folder name in the same folder.",
    }
    assert post(api, "create", {"name": "A.TXT", "type": "VIRTUAL"})["code"] == 409
    for parent in ("no-such-folder", file["id"]):
        assert post(api, "create", {"name": "x", "type": "FOLDER", "parent_id": parent}) == {
            "code": 400,
            "message": "Parent Folder Doesn't Exist!",
        }
    missing = post(api, "create", {"type": "FOLDER"})
    assert missing["code"] == 101 and "Field: <name>" in missing["message"]
    assert post(api, "create", {"name": "  ", "type": "FOLDER"}) == {
        "code": 101,
        "message": "File name can't be empty.",
    }
    assert post(api, "create", {"name": "a/b", "type": "FOLDER"})["code"] == 101
    assert post(api, "create", {"name": 7, "type": "FOLDER"})["code"] == 101
    assert [f["name"] for f in listing(api, folder["id"])["files"]] == []


# -- upload ---------------------------------------------------------------------------------------------
def test_upload_answers_the_rows_and_renames_repeated_names(api: httpx.Client) -> None:
    res = upload_files(api, ("test1.txt", b"0123456789"), ("test1.txt", b"abc"), ("pic.PNG", b"\x89PNG"))
    assert res["code"] == 0, res
    first, second, picture = res["data"]
    assert first["name"] == "test1.txt" and second["name"] == "test1(1).txt"
    assert first["size"] == 10 and first["type"] == "doc" and first["location"] == "test1.txt"
    assert first["parent_id"] == root(api)["id"] and first["source_type"] == ""
    assert picture["type"] == "visual"
    third = put_file(api, "TEST1.txt", b"x")
    assert third["name"] == "TEST1(2).txt"
    download = api.get(f"/api/v1/file/get/{first['id']}")
    assert download.content == b"0123456789" and download.headers["content-type"].startswith("text/plain")
    assert put_file(api, "report.pdf", b"%PDF-1.4")["type"] == "pdf"
    assert put_file(api, "blob.bin", b"")["type"] == "other"


def test_upload_into_a_folder_and_folder_paths(api: httpx.Client) -> None:
    folder = make_folder(api, "inbox")
    inside = put_file(api, "x.md", b"# x", parent_id=folder["id"])
    assert inside["parent_id"] == folder["id"]
    res = upload_files(api, ("tree/a/one.txt", b"111"), ("tree/a/two.txt", b"22"), ("tree/b.txt", b"4444"))
    assert res["code"] == 0, res
    tree = entry(api, None, "tree")
    assert tree["type"] == "folder" and tree["size"] == 9 and tree["has_child_folder"] is True
    a = entry(api, tree["id"], "a")
    assert a["size"] == 5 and a["has_child_folder"] is False
    assert sorted(f["name"] for f in listing(api, a["id"])["files"]) == ["one.txt", "two.txt"]
    # A second upload reuses the folders of the path.
    assert put_file(api, "tree/a/three.txt", b"3")["parent_id"] == a["id"]
    assert entry(api, None, "tree")["size"] == 10


def test_upload_refusals_change_nothing(api: httpx.Client) -> None:
    assert api.post("/api/v1/file/upload", data={"parent_id": "x"}).json() == {"code": 400, "message": "No file part!"}
    assert api.post("/api/v1/file/upload", json={"file": "x"}).json()["message"] == "No file part!"
    # A browser's empty file input: a part with an empty file name.
    empty = b'--b\r\nContent-Disposition: form-data; name="file"; filename=""\r\n\r\n\r\n--b--\r\n'
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    assert api.post("/api/v1/file/upload", content=empty, headers=headers).json() == {
        "code": 400,
        "message": "No selected file!",
    }
    assert api.post("/api/v1/file/upload", content=b"--b\r\ngarbage", headers=headers).json()["code"] == 400
    assert upload_files(api, ("a.txt", b"x"), parent_id="nowhere") == {
        "code": 404,
        "message": "Can't find this folder!",
    }
    assert upload_files(api, ("../a.txt", b"x"))["code"] == 101
    put_file(api, "taken.txt", b"x")
    clash = upload_files(api, ("ok.txt", b"fine"), ("taken.txt/inner.txt", b"x"))
    assert clash == {"code": 409, "message": "Duplicated folder name in the same folder."}
    assert [f["name"] for f in listing(api)["files"] if f["name"] != ".knowledgebase"] == ["taken.txt"]


# -- list -----------------------------------------------------------------------------------------------
def test_list_pages_orders_and_filters(api: httpx.Client) -> None:
    folder = make_folder(api, "many")
    for name in ("b.txt", "a.txt", "c.md", "d.txt"):
        put_file(api, name, name.encode() * 3, parent_id=folder["id"])
    make_folder(api, "zsub", folder["id"])
    data = listing(api, folder["id"])
    assert data["total"] == 5 and data["files"][0]["name"] == "zsub"  # newest first
    assert data["parent_folder"]["id"] == root(api)["id"]
    oldest = listing(api, folder["id"], desc="false", page=1, page_size=2)
    assert [f["name"] for f in oldest["files"]] == ["b.txt", "a.txt"] and oldest["total"] == 5
    assert [f["name"] for f in listing(api, folder["id"], desc="false", page=3, page_size=2)["files"]] == ["zsub"]
    by_name = listing(api, folder["id"], orderby="name", desc="false")
    assert [f["name"] for f in by_name["files"]] == ["a.txt", "b.txt", "c.md", "d.txt", "zsub"]
    found = listing(api, folder["id"], keywords="TXT")
    assert found["total"] == 3 and {f["name"] for f in found["files"]} == {"a.txt", "b.txt", "d.txt"}
    assert listing(api, folder["id"], page=0, page_size=1)["files"][0]["name"] == "zsub"
    file = next(f for f in data["files"] if f["name"] == "a.txt")
    assert file["kbs_info"] == [] and "has_child_folder" not in file
    assert listing(api, folder["id"], unknown="ignored")["total"] == 5


def test_list_refusals(api: httpx.Client) -> None:
    file = put_file(api, "a.txt", b"x")
    for parent in ("nope", file["id"]):
        assert api.get("/api/v1/file/list", params={"parent_id": parent}).json() == {
            "code": 404,
            "message": "Folder not found!",
        }
    assert api.get("/api/v1/file/list", params={"page_size": "-1"}).json()["code"] == 101
    assert api.get("/api/v1/file/list", params={"orderby": "nonsense"}).json()["code"] == 101


def test_folder_sizes_are_recursive(api: httpx.Client) -> None:
    top = make_folder(api, "top")
    mid = make_folder(api, "mid", top["id"])
    low = make_folder(api, "low", mid["id"])
    put_file(api, "a.txt", b"x" * 100, parent_id=low["id"])
    put_file(api, "b.txt", b"x" * 10, parent_id=mid["id"])
    assert entry(api, None, "top")["size"] == 110
    assert entry(api, top["id"], "mid")["size"] == 110
    assert entry(api, mid["id"], "low")["size"] == 100
    assert root(api)["size"] >= 110


# -- parents ----------------------------------------------------------------------------------------------
def test_parent_folder_and_all_parent_folders(api: httpx.Client) -> None:
    top = make_folder(api, "top")
    sub = make_folder(api, "sub", top["id"])
    file = put_file(api, "deep.txt", b"x", parent_id=sub["id"])
    home = root(api)
    parent = api.get("/api/v1/file/parent_folder", params={"file_id": file["id"]}).json()
    assert parent["code"] == 0 and parent["data"]["parent_folder"]["id"] == sub["id"]
    own = api.get("/api/v1/file/parent_folder", params={"file_id": home["id"]}).json()
    assert own["data"]["parent_folder"]["id"] == home["id"]
    chain = api.get("/api/v1/file/all_parent_folder", params={"file_id": file["id"]}).json()
    assert [f["id"] for f in chain["data"]["parent_folders"]] == [file["id"], sub["id"], top["id"], home["id"]]
    for path in ("parent_folder", "all_parent_folder"):
        assert api.get(f"/api/v1/file/{path}", params={"file_id": "nope"}).json() == {
            "code": 404,
            "message": "Folder not found!",
        }
        assert api.get(f"/api/v1/file/{path}").json()["code"] == 101


# -- rename -------------------------------------------------------------------------------------------------
def test_rename(api: httpx.Client) -> None:
    folder = make_folder(api, "f")
    file = put_file(api, "a.txt", b"x", parent_id=folder["id"])
    put_file(api, "b.txt", b"y", parent_id=folder["id"])
    assert post(api, "rename", {"file_id": file["id"], "name": "a.md"}) == {
        "code": 400,
        "message": "The extension of file can't be changed",
    }
    assert post(api, "rename", {"file_id": file["id"], "name": "B.txt"}) == {
        "code": 409,
        "message": "Duplicated file name in the same folder.",
    }
    assert post(api, "rename", {"file_id": "nope", "name": "c.txt"}) == {"code": 404, "message": "File not found!"}
    assert post(api, "rename", {"file_id": file["id"], "name": "renamed.txt"}) == {"code": 0, "data": True}
    assert post(api, "rename", {"file_id": file["id"], "name": "RENAMED.txt"}) == {"code": 0, "data": True}
    assert post(api, "rename", {"file_id": folder["id"], "name": "folder.v2"}) == {"code": 0, "data": True}
    assert sorted(f["name"] for f in listing(api, folder["id"])["files"]) == ["RENAMED.txt", "b.txt"]
    assert entry(api, None, "folder.v2")["id"] == folder["id"]
    # The same name is free in another folder.
    assert put_file(api, "b.txt", b"z")["name"] == "b.txt"
    assert post(api, "rename", {"file_id": root(api)["id"], "name": "x"})["code"] == 102
    assert post(api, "rename", {"file_id": file["id"]})["code"] == 101


def test_download_refusals(api: httpx.Client) -> None:
    folder = make_folder(api, "f")
    for file_id in ("nope", folder["id"]):
        assert api.get(f"/api/v1/file/get/{file_id}").json() == {"code": 404, "message": "Document not found!"}


# -- move -----------------------------------------------------------------------------------------------------
def test_move_files_and_folders_with_their_sizes(api: httpx.Client) -> None:
    src = make_folder(api, "src")
    dst = make_folder(api, "dst")
    inner = make_folder(api, "inner", src["id"])
    put_file(api, "deep.txt", b"x" * 7, parent_id=inner["id"])
    loose = put_file(api, "loose.txt", b"x" * 3, parent_id=src["id"])
    assert post(api, "mv", {"src_file_ids": [inner["id"], loose["id"]], "dest_file_id": dst["id"]}) == {
        "code": 0,
        "data": True,
    }
    assert entry(api, None, "src")["size"] == 0 and entry(api, None, "src")["has_child_folder"] is False
    assert entry(api, None, "dst")["size"] == 10 and entry(api, None, "dst")["has_child_folder"] is True
    assert [f["name"] for f in listing(api, inner["id"])["files"]] == ["deep.txt"]
    chain = api.get("/api/v1/file/all_parent_folder", params={"file_id": inner["id"]}).json()["data"]
    assert [f["name"] for f in chain["parent_folders"]] == ["inner", "dst", "/"]
    # A whole tree moves up to the root.
    assert post(api, "mv", {"src_file_ids": [dst["id"]], "dest_file_id": root(api)["id"]})["code"] == 0
    assert post(api, "mv", {"src_file_ids": [inner["id"]], "dest_file_id": src["id"]})["code"] == 0
    assert entry(api, None, "src")["size"] == 7 and entry(api, None, "dst")["size"] == 3


def test_move_of_a_folder_and_something_inside_it(api: httpx.Client) -> None:
    outer = make_folder(api, "outer")
    inner = make_folder(api, "inner", outer["id"])
    put_file(api, "a.txt", b"x" * 5, parent_id=inner["id"])
    put_file(api, "b.txt", b"x" * 2, parent_id=outer["id"])
    dst = make_folder(api, "dst")
    assert post(api, "mv", {"src_file_ids": [outer["id"], inner["id"]], "dest_file_id": dst["id"]})["code"] == 0
    assert sorted(f["name"] for f in listing(api, dst["id"])["files"]) == ["inner", "outer"]
    assert entry(api, dst["id"], "outer")["size"] == 2 and entry(api, dst["id"], "inner")["size"] == 5
    assert entry(api, None, "dst")["size"] == 7


def test_move_refusals_change_nothing(api: httpx.Client) -> None:
    top = make_folder(api, "top")
    sub = make_folder(api, "sub", top["id"])
    other = make_folder(api, "other")
    file = put_file(api, "a.txt", b"x", parent_id=top["id"])
    put_file(api, "a.txt", b"y", parent_id=other["id"])
    assert post(api, "mv", {"src_file_ids": ["nope"], "dest_file_id": other["id"]}) == {
        "code": 102,
        "message": "File or Folder not found!",
    }
    assert post(api, "mv", {"src_file_ids": [file["id"]], "dest_file_id": "nope"}) == {
        "code": 404,
        "message": "Parent Folder not found!",
    }
    assert post(api, "mv", {"src_file_ids": [sub["id"]], "dest_file_id": file["id"]})["code"] == 404
    for dest in (top["id"], sub["id"]):
        refused = post(api, "mv", {"src_file_ids": [top["id"]], "dest_file_id": dest})
        assert refused == {"code": 102, "message": "A folder can't be moved into itself or one of its sub-folders."}
    assert post(api, "mv", {"src_file_ids": [file["id"]], "dest_file_id": other["id"]}) == {
        "code": 409,
        "message": "Duplicated file name in the same folder.",
    }
    assert post(api, "mv", {"src_file_ids": "abc", "dest_file_id": other["id"]})["code"] == 101
    assert sorted(f["name"] for f in listing(api, top["id"])["files"]) == ["a.txt", "sub"]
    assert entry(api, None, "top")["size"] == 1 and entry(api, None, "other")["size"] == 1


# -- rm ---------------------------------------------------------------------------------------------------------
def test_rm_removes_files_and_whole_trees(api: httpx.Client) -> None:
    keep = put_file(api, "keep.txt", b"kept")
    top = make_folder(api, "top")
    sub = make_folder(api, "sub", top["id"])
    deep = put_file(api, "deep.txt", b"x" * 9, parent_id=sub["id"])
    loose = put_file(api, "loose.txt", b"abc")
    assert post(api, "rm", {"file_ids": [loose["id"]]}) == {"code": 0, "data": True}
    assert post(api, "rm", {"file_ids": [top["id"], deep["id"]]}) == {"code": 0, "data": True}
    names = [f["name"] for f in listing(api)["files"]]
    assert "top" not in names and "loose.txt" not in names and "keep.txt" in names
    for gone in (top, sub, deep, loose):
        assert api.get("/api/v1/file/parent_folder", params={"file_id": gone["id"]}).json()["code"] == 404
    assert api.get(f"/api/v1/file/get/{keep['id']}").content == b"kept"
    assert root(api)["size"] == 4
    # The names are free again.
    assert make_folder(api, "top")["name"] == "top"


def test_rm_refusals_change_nothing(api: httpx.Client) -> None:
    file = put_file(api, "a.txt", b"x")
    assert post(api, "rm", {"file_ids": [file["id"], "nope"]}) == {
        "code": 404,
        "message": "File or Folder not found!",
    }
    assert post(api, "rm", {"file_ids": [root(api)["id"]]})["code"] == 102
    assert post(api, "rm", {"file_ids": file["id"]})["code"] == 101
    assert post(api, "rm", {})["code"] == 101
    assert api.get(f"/api/v1/file/get/{file['id']}").content == b"x"
    assert post(api, "rm", {"file_ids": []}) == {"code": 0, "data": True}


# -- convert (answers; parsing and retrieval are in test_files_conversion) -----------------------------------
def test_convert_answers_links_and_refuses_unknown_ids(api: httpx.Client) -> None:
    ds = create_dataset(api, "target")
    folder = make_folder(api, "f")
    a = put_file(api, "a.txt", b"alpha", parent_id=folder["id"])
    b = put_file(api, "b.png", b"\x89PNG", parent_id=folder["id"])
    assert post(api, "convert", {"file_ids": ["nope"], "kb_ids": [ds["id"]]}) == {
        "code": 404,
        "message": "File not found!",
    }
    assert post(api, "convert", {"file_ids": [a["id"]], "kb_ids": ["nope"]}) == {
        "code": 404,
        "message": "Can't find this dataset!",
    }
    assert post(api, "convert", {"file_ids": [a["id"]]})["code"] == 101
    res = post(api, "convert", {"file_ids": [folder["id"]], "kb_ids": [ds["id"]]})
    assert res["code"] == 0, res
    links = {link["file_id"]: link for link in res["data"]}
    assert set(links) == {a["id"], b["id"]} and all(link["id"] and link["document_id"] for link in links.values())
    docs = api.get(f"/api/v1/datasets/{ds['id']}/documents").json()["data"]["docs"]
    by_id = {doc["id"]: doc for doc in docs}
    text_doc, picture = by_id[links[a["id"]]["document_id"]], by_id[links[b["id"]]["document_id"]]
    assert text_doc["run"] == "UNSTART" and text_doc["chunk_method"] == "naive" and text_doc["size"] == 5
    assert picture["chunk_method"] == "picture" and picture["type"] == "visual"
    assert "source_file_id" not in text_doc and "blob_key" not in text_doc
    assert entry(api, folder["id"], "a.txt")["kbs_info"] == [
        {"kb_id": ds["id"], "kb_name": "target", "document_id": text_doc["id"]}
    ]
    download = api.get(f"/api/v1/datasets/{ds['id']}/documents/{text_doc['id']}")
    assert download.content == b"alpha"
    # Converting again replaces the earlier documents.
    again = post(api, "convert", {"file_ids": [a["id"]], "kb_ids": [ds["id"]]})["data"]
    docs = api.get(f"/api/v1/datasets/{ds['id']}/documents").json()["data"]["docs"]
    assert {doc["id"] for doc in docs} == {again[0]["document_id"], picture["id"]}
    assert next(d for d in api.get("/api/v1/datasets").json()["data"] if d["id"] == ds["id"])["document_count"] == 2
    # Renaming the file renames its document.
    assert post(api, "rename", {"file_id": a["id"], "name": "alpha.txt"})["code"] == 0
    names = {doc["name"] for doc in api.get(f"/api/v1/datasets/{ds['id']}/documents").json()["data"]["docs"]}
    assert names == {"alpha.txt", "b.png"}


# -- tenant isolation ---------------------------------------------------------------------------------------------
def test_another_tenants_ids_answer_like_missing_ones(api: httpx.Client, other_api: httpx.Client) -> None:
    folder = make_folder(api, "private")
    file = put_file(api, "secret.txt", b"secret", parent_id=folder["id"])
    ds = create_dataset(api, "mine")
    assert root(other_api)["id"] != root(api)["id"]
    assert upload_files(other_api, ("x.txt", b"x"), parent_id=folder["id"])["message"] == "Can't find this folder!"
    assert post(other_api, "create", {"name": "x", "type": "FOLDER", "parent_id": folder["id"]})["code"] == 400
    assert other_api.get("/api/v1/file/list", params={"parent_id": folder["id"]}).json()["code"] == 404
    for path in ("parent_folder", "all_parent_folder"):
        assert other_api.get(f"/api/v1/file/{path}", params={"file_id": file["id"]}).json()["code"] == 404
    assert other_api.get(f"/api/v1/file/get/{file['id']}").json() == {"code": 404, "message": "Document not found!"}
    assert post(other_api, "rename", {"file_id": file["id"], "name": "x.txt"})["code"] == 404
    other_folder = make_folder(other_api, "theirs")
    assert post(other_api, "mv", {"src_file_ids": [file["id"]], "dest_file_id": other_folder["id"]})["code"] == 102
    assert post(other_api, "mv", {"src_file_ids": [other_folder["id"]], "dest_file_id": folder["id"]})["code"] == 404
    assert post(other_api, "rm", {"file_ids": [file["id"]]})["code"] == 404
    assert post(other_api, "convert", {"file_ids": [file["id"]], "kb_ids": [ds["id"]]})["code"] == 404
    theirs = put_file(other_api, "t.txt", b"t")
    assert post(other_api, "convert", {"file_ids": [theirs["id"]], "kb_ids": [ds["id"]]}) == {
        "code": 404,
        "message": "Can't find this dataset!",
    }
    assert api.get(f"/api/v1/file/get/{file['id']}").content == b"secret"
    assert [f["name"] for f in listing(api, folder["id"])["files"]] == ["secret.txt"]


def test_requests_need_an_api_key(anon: httpx.Client) -> None:
    missing = anon.get("/api/v1/file/root_folder").json()
    assert missing == {"code": 109, "message": "`Authorization` can't be empty"}
    bad_key = anon.get("/api/v1/file/root_folder", headers={"Authorization": "Bearer ragflow-nope"}).json()
    assert bad_key["code"] == 109


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("rm", {"file_ids": [1]}),
        ("mv", {"src_file_ids": [], "dest_file_id": None}),
        ("convert", {"file_ids": [], "kb_ids": "x"}),
        ("rename", {"file_id": ["x"], "name": "a.txt"}),
    ],
)
def test_wrong_types_are_refused_with_101(api: httpx.Client, path: str, body: dict[str, object]) -> None:
    assert post(api, path, body)["code"] == 101
