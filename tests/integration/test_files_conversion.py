"""Files and dataset documents together, on every backend: convert → parse → retrieval, removal that
leaves no documents, chunks, index entries or blobs, and dataset documents shown under /.knowledgebase."""

from __future__ import annotations

from typing import Any

import httpx

from shared.ports.search import SearchQuery
from tests.support.api import create_dataset, eventually, get_document, parse_and_wait, upload_one
from tests.support.files import entry, listing, make_folder, post, put_file, root
from tests.support.server import RunningServer, stored_blob_keys

BREAD = b"Bread dough rises because yeast ferments sugar and releases carbon dioxide."
ROCKETS = b"Rockets burn liquid oxygen and kerosene to reach orbit around the Earth."


def documents_of(api: httpx.Client, dataset_id: str) -> list[dict[str, Any]]:
    res = api.get(f"/api/v1/datasets/{dataset_id}/documents").json()
    assert res["code"] == 0, res
    docs: list[dict[str, Any]] = res["data"]["docs"]
    return docs


def dataset(api: httpx.Client, dataset_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in api.get("/api/v1/datasets").json()["data"] if d["id"] == dataset_id)
    return found


def blobs_of(server: RunningServer, tenant_id: str) -> list[str]:
    """Every blob the store keeps for a tenant (originals, files, parse artifacts)."""
    return sorted(
        key
        for prefix in ("docs", "files", "work", "ingest")
        for key in stored_blob_keys(server.container, f"{prefix}/{tenant_id}/")
    )


def indexed(server: RunningServer, tenant_id: str, dataset_ids: list[str], text: str) -> list[str]:
    found = server.container.search_index.search(SearchQuery(tenant_id=tenant_id, dataset_ids=dataset_ids, text=text))
    return [candidate.chunk_id for candidate in found]


def index_shows(server: RunningServer, tenant_id: str, dataset_ids: list[str], text: str) -> list[str]:
    """The chunks matching ``text`` once the index shows them (OpenSearch makes writes searchable after a delay)."""
    return eventually(lambda: indexed(server, tenant_id, dataset_ids, text), bool)


def index_drops(server: RunningServer, tenant_id: str, dataset_ids: list[str], text: str) -> list[str]:
    """No chunk matches ``text`` any more, once the index has caught up with the deletes."""
    return eventually(lambda: indexed(server, tenant_id, dataset_ids, text), lambda found: found == [])


def test_a_converted_file_parses_and_is_retrieved(api: httpx.Client, server: RunningServer) -> None:
    ds = create_dataset(api, "kitchen", chunk_method="one")
    file = put_file(api, "bread.txt", BREAD)
    other = put_file(api, "rockets.txt", ROCKETS)
    link = post(api, "convert", {"file_ids": [file["id"]], "kb_ids": [ds["id"]]})["data"][0]
    document_id = link["document_id"]
    assert get_document(api, ds["id"], document_id)["run"] == "UNSTART"
    done = parse_and_wait(api, ds["id"], document_id)
    assert done["run"] == "DONE" and done["chunk_count"] > 0, done["progress_msg"]
    question = {"question": "why does yeast make dough rise?", "dataset_ids": [ds["id"]], "similarity_threshold": 0}
    res = eventually(lambda: api.post("/api/v1/retrieval", json=question).json(), lambda r: bool(r["data"]["chunks"]))
    top = res["data"]["chunks"][0]
    assert top["document_id"] == document_id and "yeast" in top["content"]
    # The document read the file's own blob: no copy was made under the dataset.
    tenant_id = root(api)["tenant_id"]
    assert blobs_of(server, tenant_id) == sorted(f"files/{tenant_id}/{f['id']}" for f in (file, other))


def test_rm_of_a_folder_with_converted_files_leaves_nothing_behind(api: httpx.Client, server: RunningServer) -> None:
    first, second = create_dataset(api, "first", chunk_method="one"), create_dataset(api, "second", chunk_method="one")
    folder = make_folder(api, "library")
    inner = make_folder(api, "shelf", folder["id"])
    bread = put_file(api, "bread.txt", BREAD, parent_id=folder["id"])
    put_file(api, "rockets.txt", ROCKETS, parent_id=inner["id"])
    links = post(api, "convert", {"file_ids": [folder["id"]], "kb_ids": [first["id"], second["id"]]})["data"]
    assert len(links) == 4
    for link in links:
        ds_id = next(
            ds["id"] for ds in (first, second) if link["document_id"] in {d["id"] for d in documents_of(api, ds["id"])}
        )
        assert parse_and_wait(api, ds_id, link["document_id"])["run"] == "DONE"
    tenant_id = root(api)["tenant_id"]
    dataset_ids = [first["id"], second["id"]]
    for ds_id in dataset_ids:  # each document's chunk is searchable (OpenSearch: after a delay) before the rm
        for word in ("yeast", "kerosene"):
            assert index_shows(server, tenant_id, [ds_id], word)
    assert entry(api, folder["id"], "bread.txt")["kbs_info"] and dataset(api, first["id"])["chunk_count"] > 0
    kept = put_file(api, "kept.txt", b"kept outside the folder")

    assert post(api, "rm", {"file_ids": [folder["id"]]}) == {"code": 0, "data": True}

    for ds_id in dataset_ids:
        assert documents_of(api, ds_id) == []
        counts = dataset(api, ds_id)
        assert (counts["document_count"], counts["chunk_count"], counts["token_num"]) == (0, 0, 0)
    for link in links:
        assert server.container.document_repo.chunks_of(link["document_id"]) == []
    for word in ("yeast", "kerosene"):
        assert index_drops(server, tenant_id, dataset_ids, word) == []
    assert blobs_of(server, tenant_id) == [f"files/{tenant_id}/{kept['id']}"]
    assert api.get(f"/api/v1/file/get/{bread['id']}").json()["code"] == 404
    assert root(api)["size"] == len(b"kept outside the folder")


def test_dataset_documents_appear_under_knowledgebase(api: httpx.Client, server: RunningServer) -> None:
    ds = create_dataset(api, "handbook", chunk_method="one")
    doc = upload_one(api, ds["id"], "bread.txt", BREAD)
    knowledgebase = entry(api, None, ".knowledgebase")
    assert knowledgebase["type"] == "folder" and knowledgebase["source_type"] == "knowledgebase"
    folder = entry(api, knowledgebase["id"], "handbook")
    assert folder["size"] == len(BREAD) and knowledgebase["size"] == len(BREAD)
    mirror = entry(api, folder["id"], "bread.txt")
    assert mirror["source_type"] == "knowledgebase" and mirror["size"] == len(BREAD) and mirror["type"] == "doc"
    assert mirror["kbs_info"] == [{"kb_id": ds["id"], "kb_name": "handbook", "document_id": doc["id"]}]
    assert api.get(f"/api/v1/file/get/{mirror['id']}").content == BREAD
    # A dataset's document is converted from its original file, not from its mirror.
    refused = post(api, "convert", {"file_ids": [mirror["id"]], "kb_ids": [ds["id"]]})
    assert refused["code"] == 102

    # Renaming the document renames its entry; deleting it removes the entry.
    assert api.put(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}", json={"name": "loaf.txt"}).json()["code"] == 0
    assert [f["name"] for f in listing(api, folder["id"])["files"]] == ["loaf.txt"]
    assert (
        api.request("DELETE", f"/api/v1/datasets/{ds['id']}/documents", json={"ids": [doc["id"]]}).json()["code"] == 0
    )
    assert listing(api, folder["id"])["files"] == [] and entry(api, None, ".knowledgebase")["size"] == 0

    # rm of an entry removes its document with its chunks and index entries.
    again = upload_one(api, ds["id"], "bread.txt", BREAD)
    assert parse_and_wait(api, ds["id"], again["id"])["run"] == "DONE"
    tenant_id = root(api)["tenant_id"]
    assert index_shows(server, tenant_id, [ds["id"]], "yeast")
    entry_id = entry(api, folder["id"], "bread.txt")["id"]
    assert post(api, "rm", {"file_ids": [entry_id]}) == {"code": 0, "data": True}
    assert documents_of(api, ds["id"]) == [] and index_drops(server, tenant_id, [ds["id"]], "yeast") == []
    assert blobs_of(server, tenant_id) == []

    # Deleting the dataset removes its folder.
    upload_one(api, ds["id"], "rockets.txt", ROCKETS)
    assert api.request("DELETE", "/api/v1/datasets", json={"ids": [ds["id"]]}).json()["code"] == 0
    assert [f["name"] for f in listing(api, knowledgebase["id"])["files"]] == []


def test_documents_uploaded_before_the_file_manager_was_opened_are_mirrored(
    api: httpx.Client, server: RunningServer
) -> None:
    ds = create_dataset(api, "early")
    doc = upload_one(api, ds["id"], "old.txt", b"an early document")
    tenant_id = root(api)["tenant_id"]
    # Take the mirror away as if the documents predated the file manager.
    knowledgebase = entry(api, None, ".knowledgebase")
    folder = entry(api, knowledgebase["id"], "early")
    mirror = entry(api, folder["id"], "old.txt")
    files = server.container.file_repo
    server.container.metadata.transact(
        [
            *files.unlink(tenant_id, mirror["id"], doc["id"]).ops,
            *files.delete({**mirror, "tenant_id": tenant_id}).ops,
            *files.delete({**folder, "tenant_id": tenant_id, "anchor": f"FILEKB#{ds['id']}"}).ops,
            *files.delete({**knowledgebase, "tenant_id": tenant_id, "anchor": "FILEKB"}).ops,
        ]
    )
    assert ".knowledgebase" not in [f["name"] for f in listing(api, root(api)["id"])["files"]]
    # Listing the root (no parent_id) makes the folder again, with what exists.
    assert ".knowledgebase" in [f["name"] for f in listing(api)["files"]]
    rebuilt = entry(api, entry(api, None, ".knowledgebase")["id"], "early")
    assert [f["name"] for f in listing(api, rebuilt["id"])["files"]] == ["old.txt"]


def test_deleting_a_converted_document_keeps_the_file(api: httpx.Client, server: RunningServer) -> None:
    ds = create_dataset(api, "notes")
    file = put_file(api, "bread.txt", BREAD)
    link = post(api, "convert", {"file_ids": [file["id"]], "kb_ids": [ds["id"]]})["data"][0]
    res = api.request("DELETE", f"/api/v1/datasets/{ds['id']}/documents", json={"ids": [link["document_id"]]}).json()
    assert res["code"] == 0
    assert api.get(f"/api/v1/file/get/{file['id']}").content == BREAD
    assert entry(api, None, "bread.txt")["kbs_info"] == []
    tenant_id = root(api)["tenant_id"]
    assert blobs_of(server, tenant_id) == [f"files/{tenant_id}/{file['id']}"]
