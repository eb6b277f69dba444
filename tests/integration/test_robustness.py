"""A hostile client: malformed and out-of-range input gets a clear 101, nothing changes, no exception escapes,
and a keep-alive connection stays usable after any answer (the next request on it succeeds)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.services.datasets import DatasetService
from tests.support.rawhttp import exchange
from tests.support.server import RunningServer, run_local_server


def _names(api: httpx.Client) -> list[str]:
    res = api.get("/api/v1/datasets", params={"page_size": 100}).json()
    assert res["code"] == 0, res
    return [d["name"] for d in res["data"]]


def _post_raw(api: httpx.Client, path: str, raw: bytes) -> dict[str, Any]:
    res = api.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert res.status_code == 200
    body: dict[str, Any] = res.json()
    return body


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "a\\ud800b"}',
        b'{"name": "ok", "description": "\\udfff"}',
        b'{"name": ' + b"[" * 1_000 + b"]" * 1_000 + b"}",
        b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"name": "x", "parser_config": {"chunk_token_num": Infinity}}',
        b'{"name": "x", "parser_config": {"chunk_token_num": 99999999999999999999999}}',
        b"\xff\xfe",
        b"null",
        b"",
    ],
)
def test_unreadable_bodies_are_refused_with_101_and_create_nothing(api: httpx.Client, raw: bytes) -> None:
    res = _post_raw(api, "/api/v1/datasets", raw)
    assert res["code"] == 101, res
    assert "Internal" not in res["message"]
    assert _names(api) == []


@pytest.mark.parametrize("value", [str(2**63), str(2**64), str(10**40), "Infinity", "-1e999", "NaN"])
def test_out_of_range_paging_is_refused_not_overflowed(api: httpx.Client, value: str) -> None:
    for param in ("page", "page_size"):
        res = api.get("/api/v1/datasets", params={param: value}).json()
        assert res["code"] == 101, (param, value, res)


def test_query_string_with_a_lone_surrogate_is_refused(api: httpx.Client) -> None:
    res = api.get("/api/v1/datasets?name=%ED%A0%80").json()
    assert res["code"] in (0, 101, 108), res  # decoded with replacement characters: an ordinary unknown name
    assert "Internal" not in res.get("message", "")


class _Exploding(DatasetService):
    """A service with a bug the error handlers don't know about."""

    def list(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug with internals: /secret/path")


@pytest.fixture(scope="module")
def exploding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = Path(tmp_path_factory.mktemp("exploding"))
    with run_local_server(data_dir) as probe:
        replacement = _Exploding(
            probe.container.dataset_repo, probe.container.tenants, probe.container.datasets._models
        )
    with run_local_server(data_dir, replace={"datasets": replacement}) as running:
        yield running


def test_an_unexpected_error_is_a_generic_100_and_the_connection_stays_usable(exploding: RunningServer) -> None:
    key = exploding.new_tenant_key()
    host, port = exploding.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        get = f"GET /api/v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        status, headers, body = exchange(sock, get)
        answer = json.loads(body)
        assert status.startswith("HTTP/1.1 200"), status
        assert answer["code"] == 100
        assert answer["message"].startswith("Internal server error (request id ")
        assert "secret" not in body.decode() and "Traceback" not in body.decode()
        assert headers["x-request-id"] in answer["message"]
        # The same connection serves the next requests.
        for _ in range(2):
            status, _, body = exchange(sock, b"GET /v1/system/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status.startswith("HTTP/1.1 200") and body == b"pong", (status, body)


def test_every_answer_carries_a_request_id(api: httpx.Client) -> None:
    assert api.get("/api/v1/datasets").headers["x-request-id"]
    assert api.get("/api/v1/datasets", headers={"X-Request-Id": "trace-123"}).headers["x-request-id"] == "trace-123"


def test_a_body_over_the_routes_limit_is_refused_unread(api: httpx.Client) -> None:
    huge = b'{"name": "' + b"a" * (11 * 1024 * 1024) + b'"}'
    res = _post_raw(api, "/api/v1/datasets", huge)
    assert res == {"code": 100, "message": "<RequestEntityTooLarge '413: Request Entity Too Large'>"}
    assert _names(api) == []
