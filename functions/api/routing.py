"""RAGFlow's routing rules in front of the app: merged slashes, ignored trailing slashes, 405 before 404.

RAGFlow's router (werkzeug, ``strict_slashes`` off, ``merge_slashes`` on) treats ``/api/v1/datasets/`` as
``/api/v1/datasets`` and ``/datasets//documents`` as ``/datasets/documents`` (so ``PUT`` there reaches
``PUT /datasets/{dataset_id}`` with the id ``documents``); a path served for other methods answers 405, an
unknown one 404, both before any authentication and as code 100 envelopes. The decision is made over the whole
route registry, so every app — one group in a Lambda function, all of them locally — answers alike. Behind API
Gateway, the fallback group's function receives what no method of the API serves (infra_cdk/api_construct.py);
a path it does not serve but another function does (a path with ``//`` API Gateway did not match) is
redirected (308, method and body kept) to the path RAGFlow's router would have used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import RetCode
from shared.routes import match_route, normalize_path

METHOD_NOT_ALLOWED = "<MethodNotAllowed '405: Method Not Allowed'>"


async def _send_json(send: Send, body: dict[str, Any], headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _client_prefix(scope: Scope) -> str:
    """What precedes the app's path in the URL the client used (API Gateway's stage or base path mapping)."""
    event = scope.get("aws.event") or {}
    seen = str((event.get("requestContext") or {}).get("path") or "")
    path = str(event.get("path") or "")
    return seen[: len(seen) - len(path)] if path and seen.endswith(path) else ""


async def _redirect(scope: Scope, send: Send, path: str) -> None:
    location = _client_prefix(scope) + path
    if scope.get("query_string"):
        location += "?" + scope["query_string"].decode("latin-1")
    await send(
        {
            "type": "http.response.start",
            "status": 308,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


class RagflowRouting:
    """Pure ASGI: normalizes the path, answers 405 for a known path with another method, and redirects what
    another function serves; everything else goes on to the app (whose own 404 is the envelope too)."""

    def __init__(self, app: ASGIApp, served_groups: Iterable[str]) -> None:
        self.app = app
        self.served = frozenset(served_groups)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        canonical = normalize_path(path)
        found = match_route(scope["method"], canonical)
        if found.group is None and found.allowed:
            await _send_json(
                send,
                {"code": int(RetCode.EXCEPTION_ERROR), "message": METHOD_NOT_ALLOWED},
                [(b"allow", ", ".join(found.allowed).encode())],
            )
            return
        if found.group is not None and found.group.name not in self.served and canonical != path:
            await _redirect(scope, send, canonical)
            return
        if canonical != path and found.group is not None:
            scope = {**scope, "path": canonical, "raw_path": canonical.encode()}
        await self.app(scope, receive, send)
