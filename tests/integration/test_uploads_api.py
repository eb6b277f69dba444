"""Presigned multipart uploads and imports over real HTTP, against a local server whose plain upload limit is
small (6 MiB) so a file bigger than it goes up in parts — the same client code as against S3: ask for part
URLs, PUT the parts there without an API key, complete. Imports turn files of a folder standing in for a
bucket into documents without copying them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.constants import LOCAL_UPLOAD_DIR, PRESIGNED_UPLOAD_ROUTE
from shared.ports.uploads import MIN_PART_BYTES
from tests.support.api import create_dataset, get_document, upload, wait_parsed
from tests.support.server import RunningServer, run_local_server

PLAIN_LIMIT = 6 * 1024 * 1024
PART = MIN_PART_BYTES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "a.txt").write_text("Imported documents point at the object they came from.\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.md").write_text("# Imports\nNo byte is copied through the API.\n")
    (folder / "c.exe").write_bytes(b"MZ\x00\x01")
    (folder / "empty.txt").write_bytes(b"")
    (folder / ".hidden.txt").write_text("dot files are not listed\n")
    return folder


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Iterator[RunningServer]:
    settings = {"max_upload_bytes": PLAIN_LIMIT, "local_buckets": {"corpus": corpus}}
    with run_local_server(Path(tmp_path_factory.mktemp("flowless-uploads")), settings=settings) as running:
        yield running


@pytest.fixture
def client(upload_server: RunningServer) -> Iterator[httpx.Client]:
    with upload_server.client(upload_server.new_tenant_key()) as api:
        yield api


def big_text(size: int) -> bytes:
    line = b"Presigned uploads carry files past the API's payload limit, part by part.\n"
    return (line * (size // len(line) + 1))[:size]


def start(api: httpx.Client, dataset_id: str, **body: Any) -> dict[str, Any]:
    res = api.post(f"/api/v1/flowless/datasets/{dataset_id}/uploads", json=body).json()
    assert res["code"] == 0, res
    data: dict[str, Any] = res["data"]
    return data


def put_parts(upload: dict[str, Any], data: bytes, numbers: set[int] | None = None) -> dict[int, str]:
    """PUT the parts like any S3 client: no API key, the bytes of each part, the ETag back."""
    etags = {}
    with httpx.Client(timeout=60) as plain:
        for part in upload["parts"]:
            number = part["part_number"]
            if numbers is not None and number not in numbers:
                continue
            chunk = data[(number - 1) * upload["part_size"] : number * upload["part_size"]]
            assert len(chunk) == part["size"]
            res = plain.put(part["url"], content=chunk)
            assert res.status_code == 200, res.text
            etags[number] = res.headers["ETag"]
    return etags


def complete(api: httpx.Client, dataset_id: str, upload_id: str, body: Any = None) -> dict[str, Any]:
    path = f"/api/v1/flowless/datasets/{dataset_id}/uploads/{upload_id}/complete"
    result: dict[str, Any] = (api.post(path, json=body) if body is not None else api.post(path)).json()
    return result


def test_a_file_bigger_than_the_plain_upload_limit_goes_up_in_parts(
    client: httpx.Client, upload_server: RunningServer
) -> None:
    dataset = create_dataset(client, "big")
    data = big_text(2 * PART + 12345)
    assert len(data) > PLAIN_LIMIT

    refused = upload(client, dataset["id"], ("big.txt", data))
    assert refused["code"] == 100 and refused["message"] == "<RequestEntityTooLarge '413: Request Entity Too Large'>"
    assert refused["data"]["presigned_upload"] == PRESIGNED_UPLOAD_ROUTE and refused["data"]["max_bytes"] == PLAIN_LIMIT

    up = start(client, dataset["id"], filename="big.txt", size=len(data), part_size=PART, content_type="text/plain")
    assert (up["part_count"], up["part_size"], up["method"], up["status"]) == (3, PART, "PUT", "uploading")
    assert [p["part_number"] for p in up["parts"]] == [1, 2, 3] and up["parts"][2]["size"] == 12345
    assert all(p["url"].startswith(upload_server.base_url + "/") for p in up["parts"])
    etags = put_parts(up, data, {1})

    status = client.get(f"/api/v1/flowless/datasets/{dataset['id']}/uploads/{up['upload_id']}").json()["data"]
    assert status["received"] == [{"part_number": 1, "size": PART, "etag": etags[1].strip('"')}]
    assert [p["part_number"] for p in status["parts"]] == [2, 3]  # fresh URLs for what is missing
    etags |= put_parts(status, data)

    parts = [{"part_number": n, "etag": etag} for n, etag in sorted(etags.items())]
    done = complete(client, dataset["id"], up["upload_id"], {"parts": parts})
    assert done["code"] == 0, done
    document = done["data"]
    assert document["name"] == "big.txt" and document["size"] == len(data) and document["run"] == "UNSTART"
    assert document["source_type"] == "local" and "blob_key" not in document
    download = client.get(f"/api/v1/datasets/{dataset['id']}/documents/{document['id']}")
    assert download.status_code == 200 and download.content == data

    again = complete(client, dataset["id"], up["upload_id"])
    assert again["code"] == 0 and again["data"]["id"] == document["id"]  # completing twice: the same document
    listed = client.get(f"/api/v1/datasets/{dataset['id']}/documents").json()["data"]
    assert listed["total"] == 1
    aborted = client.delete(f"/api/v1/flowless/datasets/{dataset['id']}/uploads/{up['upload_id']}").json()
    assert aborted["code"] == 102 and "complete" in aborted["message"]


def test_an_upload_may_be_parsed_when_it_completes(client: httpx.Client) -> None:
    dataset = create_dataset(client, "parsed")
    data = b"A presigned upload can be parsed as soon as it is complete.\n"
    up = start(client, dataset["id"], filename="small.txt", size=len(data), parse=True)
    assert up["part_count"] == 1 and up["parts"][0]["size"] == len(data)
    put_parts(up, data)
    document = complete(client, dataset["id"], up["upload_id"])["data"]
    assert document["run"] == "RUNNING"
    parsed = wait_parsed(client, dataset["id"], document["id"])
    assert parsed["run"] == "DONE" and parsed["chunk_count"] >= 1


def test_incomplete_or_tampered_uploads_are_refused(client: httpx.Client, upload_server: RunningServer) -> None:
    dataset = create_dataset(client, "tampered")
    data = big_text(PART + 10)
    up = start(client, dataset["id"], filename="t.txt", size=len(data), part_size=PART)
    base = f"/api/v1/flowless/datasets/{dataset['id']}/uploads/{up['upload_id']}"
    etags = put_parts(up, data, {1})
    missing = complete(client, dataset["id"], up["upload_id"])
    assert missing == {"code": 101, "message": "The upload is not complete: missing parts [2]."}
    with httpx.Client() as plain:
        url = up["parts"][1]["url"]
        assert plain.put(url.replace("signature=", "signature=0"), content=b"x").status_code == 403
        assert plain.put(url.replace("/2?", "/3?"), content=b"x").status_code == 403  # signed for part 2 only
        store = upload_server.container.upload_store
        (expired,) = store.part_urls("", url.split("/")[-2], [2], expires_in_s=-5, base_url="http://x/").values()
        assert plain.put(upload_server.base_url + expired[len("http://x") :], content=b"x").status_code == 403
    # A last part shorter than announced: the sizes do not add up.
    short = {**up, "parts": [{**up["parts"][1], "size": 9}]}
    with httpx.Client() as plain:
        assert plain.put(short["parts"][0]["url"], content=data[PART : PART + 9]).status_code == 200
    wrong = complete(client, dataset["id"], up["upload_id"])
    assert wrong["code"] == 101 and f"announced {len(data)}" in wrong["message"]
    put_parts(up, data, {2})
    bad_etag = [{"part_number": 1, "etag": etags[1]}, {"part_number": 2, "etag": "0" * 32}]
    assert complete(client, dataset["id"], up["upload_id"], {"parts": bad_etag})["code"] == 101
    assert client.get(f"/api/v1/datasets/{dataset['id']}/documents").json()["data"]["total"] == 0

    assert client.delete(base).json() == {"code": 0}
    assert client.get(base).json() == {"code": 102, "message": f"You don't own the upload {up['upload_id']}."}
    with httpx.Client() as plain:
        assert plain.put(up["parts"][0]["url"], content=b"x").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"filename": "x.exe", "size": 10}, "not been supported"),
        ({"filename": "x.txt", "size": 6 * 1024**3}, "exceeds the limit of 5 GB"),
        ({"filename": "x.txt", "size": 10, "part_size": 1024}, "Field: <part_size>"),
        ({"filename": "../x.txt", "size": 10}, "hold a path"),
        ({"filename": "x.txt", "size": 0}, "Field: <size>"),
        ({"filename": "x.txt", "size": 10, "extra": True}, "Field: <extra>"),
    ],
)
def test_uploads_that_cannot_be_are_refused_before_any_byte(
    client: httpx.Client, body: dict[str, Any], fragment: str
) -> None:
    dataset = create_dataset(client, "refusals")
    res = client.post(f"/api/v1/flowless/datasets/{dataset['id']}/uploads", json=body).json()
    assert res["code"] == 101 and fragment in res["message"], res


def test_expired_uploads_are_gone(client: httpx.Client, upload_server: RunningServer) -> None:
    dataset = create_dataset(client, "expiry")
    data = b"Expired uploads are cleaned up.\n"
    first = start(client, dataset["id"], filename="e.txt", size=len(data))
    put_parts(first, data)
    folders = upload_server.data_dir / LOCAL_UPLOAD_DIR
    (store_id,) = [p.name for p in folders.iterdir() if p.is_dir() and (p / "part-00001").exists()]
    manifest = folders / store_id / "upload.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "expires_at_ms": 0}))
    start(client, dataset["id"], filename="f.txt", size=10)  # starting an upload sweeps expired ones
    assert not (folders / store_id).exists()

    second = start(client, dataset["id"], filename="g.txt", size=len(data))
    record = upload_server.container.metadata.get(f"TENANT#{dataset['tenant_id']}", f"UPLOAD#{second['upload_id']}")
    assert record is not None
    upload_server.container.metadata.update(record["pk"], record["sk"], set={"expires_at": 1})
    gone = complete(client, dataset["id"], second["upload_id"])
    assert gone == {"code": 102, "message": f"The upload {second['upload_id']} has expired or was aborted."}


def test_another_tenants_uploads_look_missing(client: httpx.Client, upload_server: RunningServer) -> None:
    dataset = create_dataset(client, "mine")
    up = start(client, dataset["id"], filename="m.txt", size=10)
    with upload_server.client(upload_server.new_tenant_key("other")) as other:
        theirs = create_dataset(other, "theirs")
        for path in (f"/api/v1/flowless/datasets/{dataset['id']}/uploads/{up['upload_id']}",):
            assert other.get(path).json() == {"code": 102, "message": f"You don't own the dataset {dataset['id']}."}
        foreign = f"/api/v1/flowless/datasets/{theirs['id']}/uploads/{up['upload_id']}"
        assert other.get(foreign).json() == {"code": 102, "message": f"You don't own the upload {up['upload_id']}."}
        assert other.post(f"{foreign}/complete").json()["code"] == 102


# -- imports ---------------------------------------------------------------------------------------------
def imports(api: httpx.Client, dataset_id: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.post(f"/api/v1/flowless/datasets/{dataset_id}/imports", json=body).json()
    return result


def test_objects_already_in_a_bucket_become_documents_without_copying(client: httpx.Client, corpus: Path) -> None:
    dataset = create_dataset(client, "imported")
    res = imports(client, dataset["id"], prefix="s3://corpus/", parse=True)
    assert res["code"] == 0, res
    data = res["data"]
    assert sorted(d["name"] for d in data["documents"]) == ["a.txt", "b.md"] and data["truncated"] is False
    assert {s["uri"]: s["reason"] for s in data["skipped"]} == {
        "s3://corpus/c.exe": "This type of file has not been supported yet!",
        "s3://corpus/empty.txt": "The file is empty.",
    }
    for doc in data["documents"]:
        assert doc["source_type"] == "s3" and doc["run"] == "RUNNING"
        assert wait_parsed(client, dataset["id"], doc["id"])["run"] == "DONE"
    found = client.post("/api/v1/retrieval", json={"question": "which byte is copied", "dataset_ids": [dataset["id"]]})
    assert any("No byte is copied" in c["content"] for c in found.json()["data"]["chunks"])

    again = imports(client, dataset["id"], prefix="s3://corpus/")["data"]
    reasons = {s["uri"]: s["reason"] for s in again["skipped"]}
    assert again["documents"] == [] and len(reasons) == 4
    assert reasons["s3://corpus/a.txt"].startswith("already imported as document ")
    assert reasons["s3://corpus/sub/b.md"].startswith("already imported as document ")

    a_txt = next(d for d in data["documents"] if d["name"] == "a.txt")
    download = client.get(f"/api/v1/datasets/{dataset['id']}/documents/{a_txt['id']}")
    assert download.content == (corpus / "a.txt").read_bytes()
    assert client.request(
        "DELETE", f"/api/v1/datasets/{dataset['id']}/documents", json={"ids": [a_txt["id"]]}
    ).json() == {"code": 0}
    assert (corpus / "a.txt").exists()  # flowless never deletes what it does not own
    single = imports(client, dataset["id"], s3_uri="s3://corpus/a.txt")["data"]
    assert [d["name"] for d in single["documents"]] == ["a.txt"]

    assert client.request("DELETE", "/api/v1/datasets", json={"ids": [dataset["id"]]}).json()["code"] == 0
    assert sorted(p.name for p in corpus.iterdir()) == [".hidden.txt", "a.txt", "c.exe", "empty.txt", "sub"]


def test_imports_page_through_a_prefix(client: httpx.Client) -> None:
    dataset = create_dataset(client, "paged")
    first = imports(client, dataset["id"], prefix="s3://corpus/", limit=1)["data"]
    assert [d["name"] for d in first["documents"]] == ["a.txt"]
    assert first["truncated"] is True and first["next_start_after"] == "a.txt"
    second = imports(client, dataset["id"], prefix="s3://corpus/", limit=2, start_after="a.txt")["data"]
    assert second["skipped"][0]["uri"] == "s3://corpus/c.exe" and second["next_start_after"] == "empty.txt"
    sub = imports(client, dataset["id"], prefix="s3://corpus/sub/")["data"]
    assert [d["name"] for d in sub["documents"]] == ["b.md"] and sub["truncated"] is False


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"prefix": "s3://elsewhere/"}, 102, "Imports from the bucket elsewhere are not allowed."),
        ({"s3_uri": "s3://flowless-local/docs/x.txt"}, 101, "imports read s3://flowless-local/imports/"),
        ({"prefix": "s3://flowless-local/"}, 101, "imports read s3://flowless-local/imports/"),
        ({"prefix": "s3://flowless-local/imports/"}, 101, "imports read s3://flowless-local/imports/"),
        ({"s3_uri": "s3://corpus/a.txt", "prefix": "s3://corpus/"}, 101, "exactly one of"),
        ({}, 101, "exactly one of"),
        ({"s3_uri": "s3://corpus/"}, 101, "`s3_uri` must be"),
        ({"s3_uri": "s3://corpus/nope.txt"}, 102, "No such object"),
        ({"prefix": "s3://corpus/", "limit": 0}, 101, "Field: <limit>"),
    ],
)
def test_imports_that_cannot_be_are_refused(
    client: httpx.Client, body: dict[str, Any], code: int, fragment: str
) -> None:
    dataset = create_dataset(client, "refused")
    res = imports(client, dataset["id"], **body)
    assert res["code"] == code and fragment in res["message"], res
    assert client.get(f"/api/v1/datasets/{dataset['id']}/documents").json()["data"]["total"] == 0


def test_a_tenant_imports_from_its_own_area_of_the_documents_bucket(
    client: httpx.Client, upload_server: RunningServer
) -> None:
    dataset = create_dataset(client, "own")
    tenant_id = dataset["tenant_id"]
    area = upload_server.data_dir / "blobs" / "imports" / tenant_id / "shared-corpus"
    area.mkdir(parents=True, exist_ok=True)
    (area / "note.txt").write_text("Objects of a tenant's import area of the documents bucket import too.\n")
    res = imports(client, dataset["id"], prefix="shared-corpus/")["data"]
    (doc,) = res["documents"]
    assert get_document(client, dataset["id"], doc["id"])["size"] == (area / "note.txt").stat().st_size
    explicit = imports(client, dataset["id"], s3_uri=f"s3://flowless-local/imports/{tenant_id}/shared-corpus/note.txt")
    assert explicit["data"]["skipped"][0]["reason"] == f"already imported as document {doc['id']}"
    with upload_server.client(upload_server.new_tenant_key("other")) as other:
        theirs = create_dataset(other, "theirs")
        stolen = imports(other, theirs["id"], s3_uri=f"s3://flowless-local/imports/{tenant_id}/shared-corpus/note.txt")
        assert stolen["code"] == 101 and "imports read s3://flowless-local/imports/" in stolen["message"]
        assert imports(other, theirs["id"], prefix="shared-corpus/")["data"]["documents"] == []
