"""Upload → parse → DONE for every format and chunk method, stop, re-parse and failures, locally."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.support import docs
from tests.support.api import create_dataset, get_document, parse, parse_and_wait, upload_one, wait_parsed
from tests.support.server import RunningServer

FORMATS: dict[str, Callable[[], bytes]] = {
    "notes.txt": lambda: docs.make_txt(),
    "readme.md": lambda: docs.make_md(),
    "report.pdf": lambda: docs.make_pdf(),
    "letter.docx": docs.make_docx,
    "sheet.xlsx": docs.make_xlsx,
    "old.xls": lambda: docs.make_xls(),
    "people.csv": lambda: docs.make_csv(),
    "deck.pptx": docs.make_pptx,
    "page.html": lambda: docs.make_html(),
    "data.json": lambda: docs.make_json(),
    "mail.eml": lambda: docs.make_eml(),
}


def _stored_chunks(server: RunningServer, document_id: str) -> list[dict[str, object]]:
    return server.container.document_repo.chunks_of(document_id)


@pytest.mark.parametrize("filename", list(FORMATS))
def test_every_format_parses_to_done(api: httpx.Client, server: RunningServer, filename: str) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], filename, FORMATS[filename]())
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "DONE", done["progress_msg"]
    assert done["progress"] == 1.0 and done["chunk_count"] > 0 and done["token_count"] > 0
    chunks = _stored_chunks(server, doc["id"])
    assert len(chunks) == done["chunk_count"]
    assert done["process_begin_at"].endswith("GMT") and done["process_duration"] >= 0
    lines = done["progress_msg"].splitlines()
    assert lines[0].endswith("Task has been received.") and lines[-1].split(" ", 1)[1].startswith("Task done")
    assert all(line[2] == ":" and line[5] == ":" for line in lines)  # HH:MM:SS stamps
    dataset = api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]
    assert dataset["chunk_count"] == done["chunk_count"] and dataset["token_num"] == done["token_count"]


METHOD_FILES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "naive": ("n.txt", lambda: docs.make_txt("One.\nTwo.\nThree.\n" * 50)),
    "qa": (
        "qa.csv",
        lambda: docs.make_csv([["question", "answer"], ["What is X?", "X is a letter."], ["Why?", "Because."]]),
    ),
    "table": ("t.csv", lambda: docs.make_csv()),
    "one": ("o.md", lambda: docs.make_md()),
    "book": ("b.md", lambda: docs.make_md("# Chapter 1\nIntro.\n## Section 1.1\nText.\n# Chapter 2\nMore.\n")),
    "laws": ("l.txt", lambda: docs.make_txt("Chapter 1 General\nArticle 1 Scope.\nArticle 2 Terms apply.\n")),
    "manual": ("m.docx", docs.make_docx),
    "paper": ("p.txt", lambda: docs.make_txt("A Study\nAbstract\nWe study things.\n1 Introduction\nText here.\n")),
    "presentation": ("s.pptx", docs.make_pptx),
    "email": ("e.eml", lambda: docs.make_eml()),
    "tag": ("tags.csv", lambda: docs.make_csv([["content", "tags"], ["Apples are red", "fruit, red"]])),
}


@pytest.mark.parametrize("method", list(METHOD_FILES))
def test_every_chunk_method_parses_to_done(api: httpx.Client, server: RunningServer, method: str) -> None:
    ds = create_dataset(api, chunk_method=method)
    name, make = METHOD_FILES[method]
    doc = upload_one(api, ds["id"], name, make())
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "DONE", done["progress_msg"]
    chunks = _stored_chunks(server, doc["id"])
    assert done["chunk_count"] == len(chunks) > 0
    if method == "qa":
        assert chunks[0]["questions"] == ["What is X?"]
    if method == "presentation":
        assert all(len(c["page_numbers"]) == 1 for c in chunks)  # type: ignore[arg-type]
    if method == "tag":
        assert chunks[0]["tag_kwd"] == ["fruit", "red"]


def test_picture_without_an_image_model_fails_clearly(api: httpx.Client) -> None:
    ds = create_dataset(api, chunk_method="picture")
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8cfc0f01f0005000201"
        "e2b0f4580000000049454e44ae426082"
    )
    doc = upload_one(api, ds["id"], "photo.png", png)
    assert doc["type"] == "visual"
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "FAIL" and done["progress"] == -1.0
    assert "image2text model" in done["progress_msg"]


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("scan.pdf", lambda: docs.make_scanned_pdf(), "no text layer"),
        ("broken.pdf", docs.make_corrupt_pdf, "broken.pdf"),
        ("broken.docx", docs.make_corrupt_zip, "broken.docx"),
    ],
)
def test_unreadable_files_fail_with_a_clear_message(
    api: httpx.Client, server: RunningServer, name: str, make: Callable[[], bytes], message: str
) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], name, make())
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "FAIL" and message in done["progress_msg"], done["progress_msg"]
    assert "Traceback" not in done["progress_msg"]
    assert done["chunk_count"] == 0 and _stored_chunks(server, doc["id"]) == []
    # the worker keeps running: a good file right after still parses
    good = upload_one(api, ds["id"], "ok.txt", b"fine text")
    assert parse_and_wait(api, ds["id"], good["id"])["run"] == "DONE"


def test_large_pdf_fans_out_by_page_ranges(api: httpx.Client, server: RunningServer) -> None:
    ds = create_dataset(api, parser_config={"task_page_size": 4, "chunk_token_num": 256})
    doc = upload_one(api, ds["id"], "long.pdf", docs.make_long_pdf(10, words_per_page=120))
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "DONE", done["progress_msg"]
    for label in ("Page(1~5)", "Page(5~9)", "Page(9~11)"):
        assert f"{label}: Start to parse." in done["progress_msg"]
    pages = {p for c in _stored_chunks(server, doc["id"]) for p in c["page_numbers"]}  # type: ignore[attr-defined]
    assert pages == set(range(1, 11))


def test_reparse_replaces_chunks(api: httpx.Client, server: RunningServer) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "r.txt", docs.make_txt("Some words here.\n" * 40))
    first = parse_and_wait(api, ds["id"], doc["id"])
    ids_first = sorted(c["id"] for c in _stored_chunks(server, doc["id"]))  # type: ignore[misc]
    second = parse_and_wait(api, ds["id"], doc["id"])
    assert second["chunk_count"] == first["chunk_count"]
    assert sorted(c["id"] for c in _stored_chunks(server, doc["id"])) == ids_first  # type: ignore[misc]
    dataset = api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]
    assert dataset["chunk_count"] == second["chunk_count"]  # counted once, not twice
    changed = api.put(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}", json={"chunk_method": "one"}).json()["data"]
    assert changed["run"] == "UNSTART" and changed["chunk_count"] == 0 and _stored_chunks(server, doc["id"]) == []
    assert api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]["chunk_count"] == 0
    assert parse_and_wait(api, ds["id"], doc["id"])["chunk_count"] == 1


def test_parse_and_stop_errors(api: httpx.Client, other_api: httpx.Client) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "s.txt", b"words")
    url = f"/api/v1/datasets/{ds['id']}/chunks"
    assert api.post(url, json={}).json() == {"code": 102, "message": "`document_ids` is required"}
    assert api.request("DELETE", url, json={"document_ids": []}).json()["message"] == "`document_ids` is required"
    missing = "0" * 32
    assert api.post(url, json={"document_ids": [missing]}).json() == {
        "code": 102,
        "message": f"Documents not found: ['{missing}']",
    }
    assert other_api.post(url, json={"document_ids": [doc["id"]]}).json() == {
        "code": 102,
        "message": f"You don't own the dataset {ds['id']}.",
    }
    stop_unstarted = api.request("DELETE", url, json={"document_ids": [doc["id"]]}).json()
    assert stop_unstarted == {"code": 102, "message": "Can't stop parsing document with progress at 0 or 1"}
    parse_and_wait(api, ds["id"], doc["id"])
    stop_done = api.request("DELETE", url, json={"document_ids": [doc["id"]]}).json()
    assert stop_done["code"] == 102


def test_stop_a_running_parse(api: httpx.Client, server: RunningServer) -> None:
    ds = create_dataset(api, parser_config={"task_page_size": 2})
    doc = upload_one(api, ds["id"], "big.pdf", docs.make_long_pdf(30, words_per_page=300))
    assert parse(api, ds["id"], doc["id"]) == {"code": 0}
    assert get_document(api, ds["id"], doc["id"])["run"] == "RUNNING"
    again = parse(api, ds["id"], doc["id"])
    assert again == {"code": 102, "message": "Can't parse document that is currently being processed"}
    stopped = api.request("DELETE", f"/api/v1/datasets/{ds['id']}/chunks", json={"document_ids": [doc["id"]]})
    assert stopped.json() == {"code": 0}
    final = wait_parsed(api, ds["id"], doc["id"])
    assert final["run"] == "CANCEL" and final["chunk_count"] == 0
    # whatever the worker was doing ends without leaving chunks behind
    time.sleep(1.0)
    assert _stored_chunks(server, doc["id"]) == []
    assert get_document(api, ds["id"], doc["id"])["run"] == "CANCEL"
    assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"


def test_deleting_a_dataset_removes_its_documents(api: httpx.Client, server: RunningServer) -> None:
    ds = create_dataset(api)
    doc = upload_one(api, ds["id"], "gone.txt", b"to be removed")
    parse_and_wait(api, ds["id"], doc["id"])
    assert api.request("DELETE", "/api/v1/datasets", json={"ids": [ds["id"]]}).json() == {"code": 0}
    assert _stored_chunks(server, doc["id"]) == []
    assert server.container.document_repo.get(ds["id"], doc["id"]) is None
