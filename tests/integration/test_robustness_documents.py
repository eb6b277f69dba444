"""A hostile client against the documents and chunks routes: every malformed or out-of-range input gets a clear
RAGFlow-style error, and a refused request changes nothing (documents, chunks, metadata, parse state)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from shared.config import Settings
from shared.schemas.reading import MALFORMED_JSON
from tests.support import rawhttp
from tests.support.api import create_dataset, upload_one
from tests.support.server import RunningServer, run_local_server

TOO_LARGE = {"code": 100, "message": "<RequestEntityTooLarge '413: Request Entity Too Large'>"}


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(server.new_tenant_key("robust-docs")) as api:
        yield api


@pytest.fixture(scope="module")
def world(client: httpx.Client) -> dict[str, str]:
    """A dataset with two documents, metadata on one, and a hand-added chunk: enough for every route."""
    ds = create_dataset(client)["id"]
    doc = upload_one(client, ds, "a.txt", b"alpha beta gamma")["id"]
    other = upload_one(client, ds, "b.txt", b"delta")["id"]
    res = client.put(f"/api/v1/datasets/{ds}/documents/{doc}", json={"meta_fields": {"author": "alice"}}).json()
    assert res["code"] == 0, res
    chunks = f"/api/v1/datasets/{ds}/documents/{doc}/chunks"
    added = client.post(chunks, json={"content": "hello", "important_keywords": ["k"], "questions": ["q?"]}).json()
    assert added["code"] == 0, added
    return {"ds": ds, "doc": doc, "other": other, "chunk": added["data"]["chunk"]["id"], "chunks": chunks}


def _state(client: httpx.Client, world: dict[str, str]) -> Any:
    """Everything a refused request must leave as it was."""
    docs = client.get(f"/api/v1/datasets/{world['ds']}/documents").json()["data"]["docs"]
    chunks = client.get(world["chunks"]).json()["data"]["chunks"]
    return sorted(docs, key=lambda d: d["id"]), chunks


def _send(client: httpx.Client, method: str, path: str, raw: bytes) -> dict[str, Any]:
    res = client.request(method, path, content=raw, headers={"Content-Type": "application/json"})
    assert res.status_code == 200
    body: dict[str, Any] = res.json()
    return body


# Every route of the two groups that reads a JSON body, with a valid body for it.
BODY_ROUTES = [
    ("PUT", "/api/v1/datasets/{ds}/documents/{doc}", {"name": "renamed.txt"}),
    ("POST", "/api/v1/datasets/{ds}/chunks", {"document_ids": ["{other}"]}),
    ("DELETE", "/api/v1/datasets/{ds}/chunks", {"document_ids": ["{other}"]}),
    ("POST", "/api/v1/datasets/{ds}/metadata/update", {"updates": [{"key": "k", "value": "v"}]}),
    ("POST", "/api/v1/datasets/{ds}/documents/{doc}/chunks", {"content": "more"}),
    ("PUT", "/api/v1/datasets/{ds}/documents/{doc}/chunks/{chunk}", {"content": "changed"}),
    ("DELETE", "/api/v1/datasets/{ds}/documents/{doc}/chunks", {"chunk_ids": ["{chunk}"]}),
    ("DELETE", "/api/v1/datasets/{ds}/documents", {"ids": ["{other}"]}),
]
BODY_REQUIRED = BODY_ROUTES[:6]  # the two DELETEs RAGFlow lets go body-less are last


def _fill(template: str, world: dict[str, str]) -> str:
    for key, value in world.items():
        template = template.replace("{" + key + "}", value)
    return template


def _body(template: dict[str, Any], world: dict[str, str], poison: str) -> bytes:
    """The route's valid body with its first string after the first key replaced by ``poison`` (raw JSON)."""
    text = json.dumps(template)
    start = text.index('"', text.index(":"))
    end = text.index('"', start + 1)
    return _fill(text[:start] + poison + text[end + 1 :], world).encode()


@pytest.mark.parametrize(("method", "path", "_"), BODY_REQUIRED)
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", MALFORMED_JSON),
        (b"   ", MALFORMED_JSON),
        (b"null", "Invalid request payload: expected object, got NoneType"),
        (b"[]", "Invalid request payload: expected object, got list"),
        (b'"{}"', "Invalid request payload: expected object, got str"),
    ],
)
def test_an_empty_or_null_body_is_refused_not_read_as_empty(
    client: httpx.Client, world: dict[str, str], method: str, path: str, _: Any, raw: bytes, message: str
) -> None:
    before = _state(client, world)
    assert _send(client, method, _fill(path, world), raw) == {"code": 101, "message": message}
    assert _state(client, world) == before


@pytest.mark.parametrize(("method", "path", "_"), BODY_ROUTES[6:])
def test_a_null_body_never_means_delete_everything(
    client: httpx.Client, world: dict[str, str], method: str, path: str, _: Any
) -> None:
    before = _state(client, world)
    assert _send(client, method, _fill(path, world), b"null")["code"] == 101
    assert _state(client, world) == before


@pytest.mark.parametrize(("method", "path", "template"), BODY_ROUTES)
@pytest.mark.parametrize("poison", ['"a\\ud800b"', '"\\udfff"', '"ok\\udbff\\udbff"'])
def test_a_lone_surrogate_in_any_string_is_a_101(
    client: httpx.Client, world: dict[str, str], method: str, path: str, template: dict[str, Any], poison: str
) -> None:
    before = _state(client, world)
    res = _send(client, method, _fill(path, world), _body(template, world, poison))
    assert res["code"] == 101 and "lone surrogate" in res["message"], res
    assert _state(client, world) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"content": "x", "important_keywords": [1]}, "important_keywords.0"),
        ({"content": "x", "important_keywords": ["ok", None]}, "important_keywords.1"),
        ({"content": "x", "questions": [1]}, "questions.0"),
        ({"content": "x", "questions": [["nested"]]}, "questions.0"),
        ({"content": "x", "questions": [{"q": 1}]}, "questions.0"),
    ],
)
def test_chunk_lists_hold_strings_only(
    client: httpx.Client, world: dict[str, str], payload: dict[str, Any], field: str
) -> None:
    before = _state(client, world)
    added = client.post(world["chunks"], json=payload).json()
    assert added["code"] == 101 and f"Field: <{field}>" in added["message"], added
    changes = {key: value for key, value in payload.items() if key != "content"}
    updated = client.put(f"{world['chunks']}/{world['chunk']}", json=changes).json()
    assert updated["code"] == 101 and f"Field: <{field}>" in updated["message"], updated
    assert _state(client, world) == before


def test_important_keywords_are_stored_as_given_and_questions_cleaned(api: httpx.Client) -> None:
    ds = create_dataset(api)["id"]
    doc = upload_one(api, ds, "a.txt", b"x")["id"]
    url = f"/api/v1/datasets/{ds}/documents/{doc}/chunks"
    res = api.post(url, json={"content": "c", "important_keywords": ["", " k "], "questions": [" q ", "  "]}).json()
    assert res["code"] == 0, res
    chunk = res["data"]["chunk"]
    assert chunk["important_keywords"] == ["", " k "] and chunk["questions"] == ["q"]


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"content": "x", "positions": [[1, 2, 3]]}, 101, "Field: <positions.0>"),
        ({"content": "x", "positions": "p"}, 102, "`positions` should be a list"),
        ({"available": "yes"}, 102, "`available` should be a boolean"),
        ({"available": None}, 102, "`available` should be a boolean"),
        ({"content": "new", "questions": "q"}, 102, "`questions` should be a list"),
        ({"content": "new", "important_keywords": None}, 102, "`important_keywords` should be a list"),
        ({"content": 5}, 101, "Field: <content>"),
        ({"content": "  "}, 102, "`content` should be a non-empty string"),
    ],
)
def test_a_refused_chunk_update_changes_nothing(
    client: httpx.Client, world: dict[str, str], payload: dict[str, Any], code: int, message: str
) -> None:
    before = _state(client, world)
    res = client.put(f"{world['chunks']}/{world['chunk']}", json=payload).json()
    assert res["code"] == code and message in res["message"], res
    assert _state(client, world) == before


@pytest.mark.parametrize("selector", [[], "", "all", 1, True, [{"document_ids": []}]])
def test_metadata_update_selector_must_be_an_object(client: httpx.Client, world: dict[str, str], selector: Any) -> None:
    before = _state(client, world)
    res = client.post(
        f"/api/v1/datasets/{world['ds']}/metadata/update",
        json={"selector": selector, "updates": [{"key": "author", "value": "mallory"}]},
    ).json()
    assert res == {"code": 102, "message": "selector must be an object."}
    assert _state(client, world) == before


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"selector": {"document_ids": "x"}}, 102, "document_ids must be a list."),
        ({"selector": {"document_ids": [1]}}, 101, "Field: <selector.document_ids.0>"),
        ({"selector": {"metadata_condition": []}}, 0, ""),  # falsy: no condition, as RAGFlow reads it
        ({"selector": {"metadata_condition": "x"}}, 102, "metadata_condition must be an object."),
        ({"updates": {}}, 102, "updates and deletes must be lists."),
        ({"updates": [{"key": "a", "value": "b"}], "deletes": [{"value": "b"}]}, 102, "Each delete requires key."),
        ({"updates": [{"key": "a", "value": {"b": 1}}]}, 102, "must not be a nested object"),
    ],
)
def test_metadata_update_checks_everything_before_writing(
    client: httpx.Client, world: dict[str, str], body: dict[str, Any], code: int, message: str
) -> None:
    before = _state(client, world)
    res = client.post(f"/api/v1/datasets/{world['ds']}/metadata/update", json=body).json()
    assert res["code"] == code and message in res.get("message", ""), res
    assert _state(client, world) == before


@pytest.mark.parametrize("depth", [1_000, 10_000])
def test_a_deeply_nested_metadata_condition_is_a_101(
    server: RunningServer, client: httpx.Client, world: dict[str, str], depth: int
) -> None:
    # 10,000 levels make a 60 KB URL, more than httpx sends: written on the socket by hand. (At 100,000 levels
    # the URL is 600 KB, which uvicorn refuses itself with a 400; the model's own refusal is a unit test.)
    condition = quote('{"conditions": ' + "[" * depth + "]" * depth + "}")
    target = f"/api/v1/datasets/{world['ds']}/documents?metadata_condition={condition}"
    status, body = rawhttp.get(server.base_url, target, client.headers["authorization"].removeprefix("Bearer "))
    res = json.loads(body)
    assert status.startswith("HTTP/1.1 200") and res["code"] == 101 and "nested too deeply" in res["message"], res


@pytest.mark.parametrize(
    ("condition", "code", "message"),
    [
        ("{oops", 102, "metadata_condition must be valid JSON."),
        ("[]", 102, "metadata_condition must be an object."),
        ('{"conditions": [{"name": "a", "comparison_operator": "is", "value": NaN}]}', 101, "NaN"),
        ('{"conditions": [{"name": "a", "comparison_operator": ">", "value": 1' + "0" * 30 + "}]}", 101, "64 bits"),
        ('{"conditions": [{"name": "a", "comparison_operator": "is", "value": "\\ud800"}]}', 101, "lone surrogate"),
        ('{"logic": "xor"}', 102, "logic must be 'and' or 'or'."),
    ],
)
def test_metadata_condition_parameter_errors(
    client: httpx.Client, world: dict[str, str], condition: str, code: int, message: str
) -> None:
    res = client.get(f"/api/v1/datasets/{world['ds']}/documents", params={"metadata_condition": condition}).json()
    assert res["code"] == code and message in res["message"], res


@pytest.mark.parametrize("value", [str(2**63), str(2**64), str(10**40), "-1", "1.5", "Infinity", "NaN"])
@pytest.mark.parametrize("param", ["page", "page_size"])
def test_out_of_range_paging_on_documents_and_chunks_is_a_101(
    client: httpx.Client, world: dict[str, str], param: str, value: str
) -> None:
    for url in (f"/api/v1/datasets/{world['ds']}/documents", world["chunks"]):
        res = client.get(url, params={param: value}).json()
        assert res["code"] == 101, (url, res)


@pytest.mark.parametrize("param", ["create_time_from", "create_time_to"])
def test_out_of_range_time_filters_are_a_101(client: httpx.Client, world: dict[str, str], param: str) -> None:
    res = client.get(f"/api/v1/datasets/{world['ds']}/documents", params={param: str(2**63)}).json()
    assert res["code"] == 101, res


@pytest.mark.parametrize(
    ("ids", "code"),
    [
        (["{other}", 123], 101),
        (["{other}", None], 101),
        (["{other}", ["nested"]], 101),
        ("{other}", 101),  # RAGFlow iterates the string (do not copy)
        (["{other}", "a\ud800"], 101),
    ],
)
def test_a_parse_request_with_one_bad_id_queues_nothing(
    client: httpx.Client, world: dict[str, str], ids: Any, code: int
) -> None:
    before = _state(client, world)
    text = _fill(json.dumps({"document_ids": ids}), world)
    res = _send(client, "POST", f"/api/v1/datasets/{world['ds']}/chunks", text.encode())
    assert res["code"] == code, res
    assert _state(client, world) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "renamed.txt", "enabled": 5},
        {"name": "renamed.txt", "meta_fields": {"a": {"nested": 1}}},
        {"name": "renamed.txt", "chunk_method": "nope"},
        {"meta_fields": {"author": "bob"}, "name": ""},
        {"meta_fields": {"author": "bob"}, "name": None},
        {"meta_fields": {"author": "bob"}, "parser_config": {"chunk_token_num": "big"}},
    ],
)
def test_a_refused_document_update_changes_nothing(
    client: httpx.Client, world: dict[str, str], payload: dict[str, Any]
) -> None:
    before = _state(client, world)
    res = client.put(f"/api/v1/datasets/{world['ds']}/documents/{world['doc']}", json=payload).json()
    assert res["code"] in (101, 102), res
    assert _state(client, world) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("DELETE", "/api/v1/datasets/{ds}/documents", {"ids": "{other}"}, "`ids` should be a list of document ids"),
        ("DELETE", "/api/v1/datasets/{ds}/documents", {"ids": [1]}, "`ids` should be a list of document ids"),
        ("DELETE", "/api/v1/datasets/{ds}/documents/{doc}/chunks", {"chunk_ids": "{chunk}"}, "`chunk_ids`"),
        ("DELETE", "/api/v1/datasets/{ds}/documents/{doc}/chunks", {"chunk_ids": [{}]}, "`chunk_ids`"),
    ],
)
def test_mistyped_delete_ids_delete_nothing(
    client: httpx.Client, world: dict[str, str], method: str, path: str, body: dict[str, Any], message: str
) -> None:
    before = _state(client, world)
    raw = _fill(json.dumps(body), world)
    res = _send(client, method, _fill(path, world), raw.encode())
    assert res["code"] in (101, 102) and message in res["message"], res
    assert _state(client, world) == before


# -- uploads ---------------------------------------------------------------------------------------------
UPLOAD_LIMIT = 64 * 1024
BOUNDARY = "flowless-test-boundary"


@pytest.fixture(scope="module")
def small_uploads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server whose uploads may be 64 KiB at most."""
    data_dir = Path(tmp_path_factory.mktemp("small-uploads"))
    settings = Settings(backend="local", data_dir=data_dir, max_upload_bytes=UPLOAD_LIMIT)
    with (
        run_local_server(data_dir, replace={"settings": settings}) as running,
        running.client(running.new_tenant_key()) as api,
    ):
        yield api


def _multipart(name: str, size: int) -> Iterator[bytes]:
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
    for _ in range(size // 4096):
        yield b"x" * 4096
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _upload_stream(api: httpx.Client, dataset_id: str, parts: Iterator[bytes], *, declare: bool) -> dict[str, Any]:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    content: Any = b"".join(parts) if declare else parts  # a generator is sent chunked, without Content-Length
    result: dict[str, Any] = api.post(
        f"/api/v1/datasets/{dataset_id}/documents", content=content, headers=headers
    ).json()
    return result


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
def test_an_upload_over_the_configured_maximum_is_refused_with_ragflows_413(
    small_uploads: httpx.Client, declare: bool
) -> None:
    ds = create_dataset(small_uploads, f"limit-{declare}")["id"]
    refused = _upload_stream(small_uploads, ds, _multipart("big.txt", 2 * UPLOAD_LIMIT), declare=declare)
    # RAGFlow's code and message; ``data`` (which RAGFlow clients do not read on errors) names the presigned route.
    assert {key: refused[key] for key in ("code", "message")} == TOO_LARGE
    assert refused["data"]["max_bytes"] == UPLOAD_LIMIT and "/uploads" in refused["data"]["presigned_upload"]
    listed = small_uploads.get(f"/api/v1/datasets/{ds}/documents").json()["data"]
    assert listed["total"] == 0
    fits = _upload_stream(small_uploads, ds, _multipart("small.txt", UPLOAD_LIMIT // 2), declare=declare)
    assert fits["code"] == 0 and fits["data"][0]["size"] == UPLOAD_LIMIT // 2, fits


@pytest.mark.parametrize(
    "raw",
    [
        b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; filename="a.txt"\r\n\r\nx\r\n',
        b"not multipart at all",
    ],
)
def test_a_malformed_upload_is_no_file_part(small_uploads: httpx.Client, raw: bytes) -> None:
    ds = create_dataset(small_uploads, f"malformed-{len(raw)}")["id"]
    res = _upload_stream(small_uploads, ds, iter([raw]), declare=True)
    assert res == {"code": 101, "message": "No file part!"}
