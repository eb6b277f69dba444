"""A hostile client against retrieval, chats, sessions and answers: every mistyped or out-of-range value is
refused with RAGFlow's code and message, a refused request stores nothing, and a stream broken by a bug
still ends properly on a connection that stays usable."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.services.completions import CompletionService, Conversation
from shared.services.tenants import ModelSetting
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import RunningServer, run_local_server

MODEL = "fake-chat@OpenAI-API-Compatible"
HUGE = str(2**63)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


def _tenant_with_model(server: RunningServer, llm: FakeOpenAI) -> str:
    return server.container.tenant_service.create(
        "robust", [ModelSetting(MODEL, "chat", api_base=llm.base_url, api_key="sk-test")]
    )[1]


@pytest.fixture
def chat_api(server: RunningServer, llm: FakeOpenAI) -> Iterator[httpx.Client]:
    llm.reset()
    with server.client(_tenant_with_model(server, llm)) as client:
        yield client


@pytest.fixture
def chat(chat_api: httpx.Client) -> str:
    res = chat_api.post("/api/v1/chats", json={"name": "plain"}).json()
    assert res["code"] == 0, res
    return str(res["data"]["id"])


def _sessions(api: httpx.Client, chat_id: str) -> list[dict[str, Any]]:
    res = api.get(f"/api/v1/chats/{chat_id}/sessions", params={"page_size": 100}).json()
    assert res["code"] == 0, res
    data: list[dict[str, Any]] = res["data"]
    return data


def _post_raw(api: httpx.Client, path: str, raw: bytes, method: str = "POST") -> dict[str, Any]:
    res = api.request(method, path, content=raw, headers={"Content-Type": "application/json"})
    assert res.status_code == 200
    body: dict[str, Any] = res.json()
    return body


# -- retrieval ----------------------------------------------------------------------------------------


@pytest.fixture
def dataset(api: httpx.Client) -> str:
    return str(create_dataset(api)["id"])


def _retrieve(api: httpx.Client, dataset_id: str, **payload: Any) -> dict[str, Any]:
    body = {"question": "q", "dataset_ids": [dataset_id], **payload}
    result: dict[str, Any] = api.post("/api/v1/retrieval", json=body).json()
    return result


@pytest.mark.parametrize("flag", ["keyword", "highlight", "use_kg", "toc_enhance"])
@pytest.mark.parametrize("value", ["yes", [], {}, 1, "1"])
def test_retrieval_flags_take_real_booleans(api: httpx.Client, dataset: str, flag: str, value: Any) -> None:
    res = _retrieve(api, dataset, **{flag: value})
    assert res == {"code": 102, "message": f"`{flag}` should be a boolean"}


@pytest.mark.parametrize("flag", ["keyword", "highlight", "use_kg", "toc_enhance"])
def test_retrieval_flags_false_or_null_are_off(api: httpx.Client, dataset: str, flag: str) -> None:
    for value in (False, None):
        assert _retrieve(api, dataset, **{flag: value})["code"] == 0


def test_highlight_also_takes_ragflows_strings(api: httpx.Client, dataset: str) -> None:
    for value in ("true", "FALSE", "True", True):
        assert _retrieve(api, dataset, highlight=value)["code"] == 0, value


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"cross_languages": {}}, "`cross_languages` should be a list of strings"),
        ({"cross_languages": [1]}, "`cross_languages` should be a list of strings"),
        ({"cross_languages": "en"}, "`cross_languages` should be a list of strings"),
        ({"document_ids": {}}, "`documents` should be a list"),
        ({"document_ids": [1]}, "`documents` should be a list"),
        ({"dataset_ids": [1]}, "`dataset_ids` should be a list"),
        ({"metadata_condition": []}, "metadata_condition must be an object."),
        ({"metadata_condition": ""}, "metadata_condition must be an object."),
        ({"metadata_condition": {"conditions": {}}}, "conditions must be a list."),
        ({"rerank_id": 5}, "`rerank_id` should be a string"),
        ({"page": True}, "`page` should be a number"),
        ({"page": [1]}, "`page` should be a number"),
        ({"page": 1.5}, "`page` should be an integer"),
        ({"page": 2**62}, "`page` should be between 1 and 2147483647"),
        ({"page_size": 2**62}, "`page_size` should be between 1 and 1024"),
        ({"top_k": 1e300}, "`top_k` should be between 1 and 2048"),
        ({"top_k": "9" * 5000}, "`top_k` should be a number"),
        ({"similarity_threshold": "nan"}, "`similarity_threshold` should be between 0 and 1"),
        ({"vector_similarity_weight": "-inf"}, "`vector_similarity_weight` should be between 0 and 1"),
    ],
)
def test_retrieval_mistyped_values(api: httpx.Client, dataset: str, payload: dict[str, Any], message: str) -> None:
    assert _retrieve(api, dataset, **payload) == {"code": 102, "message": message}


def test_retrieval_keeps_ragflows_leniencies(api: httpx.Client, dataset: str) -> None:
    # int()/float() read numeric strings; null means the default (RAGFlow's SDK sends nulls); unknown keys pass.
    lenient = {
        "page": "2",
        "page_size": 10.0,
        "similarity_threshold": "0.1",
        "top_k": None,
        "rerank_id": "",
        "document_ids": None,
        "cross_languages": None,
        "metadata_condition": None,
        "unknown": {"any": "thing"},
    }
    assert _retrieve(api, dataset, **lenient) == {"code": 0, "data": {"chunks": [], "doc_aggs": [], "total": 0}}


@pytest.mark.parametrize("field", ["page", "page_size", "top_k"])
@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e999", HUGE, "1" + "0" * 40])
def test_retrieval_non_finite_and_huge_numbers_are_101(api: httpx.Client, dataset: str, field: str, token: str) -> None:
    raw = f'{{"question": "q", "dataset_ids": ["{dataset}"], "{field}": {token}}}'.encode()
    res = _post_raw(api, "/api/v1/retrieval", raw)
    assert res["code"] == 101 and "Internal" not in res["message"], res


# -- chats and sessions -------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["page", "page_size"])
@pytest.mark.parametrize("value", [HUGE, str(2**64), str(2**31)])
def test_chat_and_session_paging_is_bounded(chat_api: httpx.Client, chat: str, param: str, value: str) -> None:
    for path in ("/api/v1/chats", f"/api/v1/chats/{chat}/sessions"):
        res = chat_api.get(path, params={param: value}).json()
        assert res["code"] == 101 and "less than or equal to 2147483647" in res["message"], (path, res)


def test_the_largest_page_is_served(chat_api: httpx.Client, chat: str) -> None:
    for path in ("/api/v1/chats", f"/api/v1/chats/{chat}/sessions"):
        res = chat_api.get(path, params={"page": 2**31 - 1, "page_size": 2**31 - 1}).json()
        assert res == {"code": 0, "data": []}, (path, res)


def _body_routes(chat: str, session: str) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/v1/chats"),
        ("PUT", f"/api/v1/chats/{chat}"),
        ("PUT", f"/api/v1/chats/{chat}/sessions/{session}"),
        ("POST", f"/api/v1/chats/{chat}/completions"),
        ("POST", f"/api/v1/chats_openai/{chat}/chat/completions"),
        ("POST", "/api/v1/sessions/related_questions"),
        ("POST", "/api/v1/retrieval"),
    ]


def test_empty_or_null_bodies_are_refused_and_change_nothing(chat_api: httpx.Client, chat: str) -> None:
    session = chat_api.post(f"/api/v1/chats/{chat}/sessions", json={"name": "kept"}).json()["data"]["id"]
    chats_before = chat_api.get("/api/v1/chats").json()["data"]
    for method, path in _body_routes(chat, session):
        empty = _post_raw(chat_api, path, b"", method)
        assert empty == {
            "code": 101,
            "message": "Malformed JSON syntax: Missing commas/brackets or invalid encoding",
        }, (method, path)
        null = _post_raw(chat_api, path, b"null", method)
        assert null == {"code": 101, "message": "Invalid request payload: expected object, got NoneType"}, path
    assert chat_api.get("/api/v1/chats").json()["data"] == chats_before
    assert [s["id"] for s in _sessions(chat_api, chat)] == [session]


def test_body_less_routes_ragflow_allows(chat_api: httpx.Client, chat: str) -> None:
    made = chat_api.post(f"/api/v1/chats/{chat}/sessions", content=b"").json()
    assert made["code"] == 0 and made["data"]["name"] == "New session"
    assert _post_raw(chat_api, f"/api/v1/chats/{chat}/sessions", b"null")["code"] == 101
    assert chat_api.request("DELETE", f"/api/v1/chats/{chat}/sessions").json() == {"code": 0}
    assert _sessions(chat_api, chat) == []


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("POST", "/api/v1/chats", '{"name": "a\\ud800b"}'),
        ("PUT", "/api/v1/chats/{chat}", '{"description": "\\udfff"}'),
        ("POST", "/api/v1/chats/{chat}/sessions", '{"name": "\\ud800"}'),
        ("PUT", "/api/v1/chats/{chat}/sessions/{session}", '{"user_id": "\\udc00x"}'),
        ("POST", "/api/v1/chats/{chat}/completions", '{"question": "hi \\ud800", "stream": false}'),
        ("POST", "/api/v1/chats/{chat}/completions", '{"question": "hi", "stream": false, "\\ud800": 1}'),
        (
            "POST",
            "/api/v1/chats_openai/{chat}/chat/completions",
            '{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}], "stream": false}',
        ),
        ("POST", "/api/v1/sessions/related_questions", '{"question": "\\ud800"}'),
        ("POST", "/api/v1/retrieval", '{"question": "\\ud800", "dataset_ids": ["x"]}'),
        ("DELETE", "/api/v1/chats", '{"ids": ["\\ud800"]}'),
    ],
)
def test_lone_surrogates_are_refused_everywhere(
    chat_api: httpx.Client, chat: str, llm: FakeOpenAI, method: str, route: str, body: str
) -> None:
    session = chat_api.post(f"/api/v1/chats/{chat}/sessions", json={"name": "kept"}).json()["data"]
    before = chat_api.get("/api/v1/chats").json()["data"]
    path = route.format(chat=chat, session=session["id"])
    res = _post_raw(chat_api, path, body.encode(), method)
    assert res["code"] == 101 and "lone surrogate" in res["message"], res
    assert chat_api.get("/api/v1/chats").json()["data"] == before
    assert [s["id"] for s in _sessions(chat_api, chat)] == [session["id"]] and llm.chat_requests == []


# -- completions --------------------------------------------------------------------------------------


def _complete(api: httpx.Client, chat_id: str, **payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.post(f"/api/v1/chats/{chat_id}/completions", json=payload).json()
    return result


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"stream": "yes"}, 102, "`stream` should be a boolean"),
        ({"stream": 0}, 102, "`stream` should be a boolean"),
        ({"session_id": []}, 101, "Field: <session_id> - Message: <Input should be a valid string>"),
        ({"user_id": 123}, 101, "Field: <user_id> - Message: <Input should be a valid string>"),
        ({"question": 5}, 101, "Field: <question> - Message: <Input should be a valid string>"),
        ({"metadata_condition": "abc"}, 102, "metadata_condition must be an object."),
        ({"metadata_condition": []}, 102, "metadata_condition must be an object."),
        ({"metadata_condition": {"logic": "xor"}}, 102, "logic must be 'and' or 'or'."),
    ],
)
def test_completion_mistyped_values_store_nothing(
    chat_api: httpx.Client, chat: str, llm: FakeOpenAI, payload: dict[str, Any], code: int, message: str
) -> None:
    res = _complete(chat_api, chat, **{"question": "hello", "stream": False, **payload})
    assert res["code"] == code and message in res["message"], res
    assert _sessions(chat_api, chat) == [] and llm.chat_requests == []


def test_a_refused_completion_with_datasets_stores_no_session(chat_api: httpx.Client) -> None:
    # The case: a chat with a dataset (retrieval runs), a bad metadata_condition.
    ds = create_dataset(chat_api, chunk_method="one")
    doc = upload_one(chat_api, ds["id"], "bread.txt", b"Bread rises because yeast ferments sugar.")
    assert parse_and_wait(chat_api, ds["id"], doc["id"])["run"] == "DONE"
    chat = chat_api.post("/api/v1/chats", json={"name": "baker", "dataset_ids": [ds["id"]]}).json()["data"]["id"]
    res = _complete(chat_api, chat, question="hello", stream=False, metadata_condition="abc")
    assert res == {"code": 102, "message": "metadata_condition must be an object."}
    assert _sessions(chat_api, chat) == []


def test_a_completion_refused_after_validation_stores_no_session(api: httpx.Client) -> None:
    # No chat model for this tenant: refused while preparing, before the new session would be stored.
    chat = api.post("/api/v1/chats", json={"name": "no model"}).json()["data"]["id"]
    res = _complete(api, chat, question="hello", stream=False)
    assert res["code"] == 102 and "No chat model is configured" in res["message"]
    assert _sessions(api, chat) == []


def test_completion_leniencies(chat_api: httpx.Client, chat: str, llm: FakeOpenAI) -> None:
    llm.script_chat(["fine"])
    res = _complete(chat_api, chat, question="hi", stream=None, session_id="", user_id=None, metadata_condition=None)
    assert res["code"] == 0 and res["data"]["answer"] == "fine", res  # null stream: RAGFlow answers whole
    assert len(_sessions(chat_api, chat)) == 1


def _openai(api: httpx.Client, chat_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = api.post(f"/api/v1/chats_openai/{chat_id}/chat/completions", json=payload).json()
    return result


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "required argument are missing: model; "),
        ({"model": None, "messages": [{"role": "user", "content": "hi"}]}, "required argument are missing: model; "),
        ({}, "required argument are missing: model,messages; "),
        ({"model": "m"}, "required argument are missing: messages; "),
    ],
)
def test_openai_required_arguments(
    chat_api: httpx.Client, chat: str, llm: FakeOpenAI, payload: dict[str, Any], expected: str
) -> None:
    assert _openai(chat_api, chat, {"stream": False, **payload}) == {"code": 101, "message": expected}
    assert llm.chat_requests == []


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"model": 123}, 101, "Field: <model> - Message: <Input should be a valid string>"),
        ({"extra_body": []}, 102, "extra_body must be an object."),
        ({"extra_body": "x"}, 102, "extra_body must be an object."),
        ({"extra_body": {"reference": "yes"}}, 102, "`reference` should be a boolean"),
        ({"extra_body": {"metadata_condition": []}}, 102, "metadata_condition must be an object."),
        ({"messages": []}, 102, "You have to provide messages."),
        ({"messages": [{"role": "tool", "content": "x"}]}, 102, "Each message needs a role"),
        ({"messages": [{"role": "user", "content": 5}]}, 102, "Each message needs a role"),
        ({"messages": "hi"}, 101, "Field: <messages>"),
        ({"stream": "yes"}, 102, "`stream` should be a boolean"),
    ],
)
def test_openai_mistyped_values(
    chat_api: httpx.Client, chat: str, llm: FakeOpenAI, payload: dict[str, Any], code: int, message: str
) -> None:
    body = {"model": "model", "messages": [{"role": "user", "content": "hi"}], "stream": False, **payload}
    res = _openai(chat_api, chat, body)
    assert res["code"] == code and message in res["message"], res
    assert llm.chat_requests == []


def test_openai_content_parts_and_empty_model(chat_api: httpx.Client, chat: str, llm: FakeOpenAI) -> None:
    llm.script_chat(["ok"])
    content = [{"type": "text", "text": "Hello "}, {"type": "image_url", "image_url": {"url": "x"}}]
    res = _openai(chat_api, chat, {"model": "", "messages": [{"role": "user", "content": content}], "stream": False})
    assert res["choices"][0]["message"]["content"] == "ok" and res["model"] == ""
    assert llm.last_chat_messages()[-1] == {"role": "user", "content": "Hello "}


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"question": "q", "industry": 123}, 101, "Field: <industry> - Message: <Input should be a valid string>"),
        ({"question": ["q"]}, 101, "Field: <question>"),
        ({"question": None}, 102, "`question` is required."),
        ({"question": " "}, 102, "`question` is required."),
    ],
)
def test_related_questions_mistyped_values(
    chat_api: httpx.Client, llm: FakeOpenAI, payload: dict[str, Any], code: int, message: str
) -> None:
    res = chat_api.post("/api/v1/sessions/related_questions", json=payload).json()
    assert res["code"] == code and message in res["message"], res
    assert llm.chat_requests == []


# -- a bug mid-stream ---------------------------------------------------------------------------------


class _BreaksMidStream(CompletionService):
    """A service with a bug that shows only after the first frame was sent."""

    def stream(self, conv: Conversation) -> Iterator[str]:
        yield "partial "
        raise RuntimeError("a bug with internals: /secret/path")


@pytest.fixture(scope="module")
def breaking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_local_server(Path(tmp_path_factory.mktemp("breaking"))) as running:
        healthy = running.container.completions
        running.container.__dict__["completions"] = _BreaksMidStream(**_dependencies_of(healthy))
        yield running


def _dependencies_of(service: CompletionService) -> dict[str, Any]:
    names = ("chats", "sessions", "datasets", "tenants", "retrieval", "chat_model_for")
    return {name: getattr(service, f"_{name}") for name in names}


def _read_chunked(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 response with a chunked body, read to its terminating zero-length chunk."""
    buffer = b""

    def fill() -> None:
        nonlocal buffer
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response ended")
        buffer += chunk

    while b"\r\n\r\n" not in buffer:
        fill()
    head, buffer = buffer.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    assert headers.get("transfer-encoding") == "chunked", headers
    body = b""
    while True:
        while b"\r\n" not in buffer:
            fill()
        size_line, buffer = buffer.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(buffer) < size + 2:
            fill()
        body, buffer = body + buffer[:size], buffer[size + 2 :]
        if size == 0:
            assert buffer == b"", "bytes after the end of the response"
            return status, headers, body


def test_a_bug_mid_stream_ends_the_stream_and_keeps_the_connection(breaking: RunningServer, llm: FakeOpenAI) -> None:
    key = _tenant_with_model(breaking, llm)
    with breaking.client(key) as client:
        chat = client.post("/api/v1/chats", json={"name": "breaks"}).json()["data"]["id"]
    host, port = breaking.base_url.removeprefix("http://").split(":")
    payload = json.dumps({"question": "hello"}).encode()
    request = (
        f"POST /api/v1/chats/{chat}/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        status, headers, body = _read_chunked(sock)
        assert status.startswith("HTTP/1.1 200") and headers["content-type"].startswith("text/event-stream")
        frames = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:")]
        assert frames[0]["data"]["answer"] == "partial "
        assert b"secret" not in body and b"Traceback" not in body
        # The response ended properly: the same connection serves the next requests.
        for _ in range(2):
            sock.sendall(b"GET /v1/system/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"pong"):
                chunk = sock.recv(65536)
                assert chunk, "connection closed after the broken stream"
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200")
