"""FastAPI dependencies: the container, the authenticated tenant, the JSON body and query arguments."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from shared.container import Container, get_container
from shared.errors import ArgumentError


async def container(request: Request) -> Container:
    """The app's container (tests and the local server set their own on ``app.state``)."""
    own: Container | None = getattr(request.app.state, "container", None)
    return own if own is not None else get_container()


ContainerDep = Annotated[Container, Depends(container)]


async def tenant_id(request: Request, services: ContainerDep) -> str:
    """The caller's tenant. Behind API Gateway the REQUEST authorizer already resolved it."""
    event = request.scope.get("aws.event") or {}
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    resolved = context.get("tenant_id")
    if isinstance(resolved, str) and resolved:
        return resolved
    return services.authenticator.tenant_for_header(request.headers.get("authorization"))


TenantId = Annotated[str, Depends(tenant_id)]


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, with RAGFlow's messages for wrong content types and malformed JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ArgumentError(f"Unsupported content type: Expected application/json, got {content_type}")
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise ArgumentError("Malformed JSON syntax: Missing commas/brackets or invalid encoding") from None
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ArgumentError(f"Invalid request payload: expected object, got {type(payload).__name__}")
    return payload


JsonBody = Annotated[dict[str, Any], Depends(json_body)]


async def optional_json_body(request: Request) -> dict[str, Any]:
    """Like ``json_body``, but a request without a body is an empty object (for body-optional DELETEs)."""
    if not (await request.body()).strip():
        return {}
    return await json_body(request)


OptionalJsonBody = Annotated[dict[str, Any], Depends(optional_json_body)]


async def query_args(request: Request) -> dict[str, str]:
    """Query parameters as a flat dict (the last value wins for repeated single-valued parameters)."""
    return dict(request.query_params)


QueryArgs = Annotated[dict[str, str], Depends(query_args)]


class Envelope(JSONResponse):
    """JSON rendered straight from plain data: services return JSON-ready dicts, so FastAPI's
    recursive encoder (the largest per-request cost on list endpoints) is skipped."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def ok(data: Any = None, **extra: Any) -> Envelope:
    """RAGFlow's success envelope."""
    body: dict[str, Any] = {"code": 0}
    if data is not None:
        body["data"] = data
    body.update(extra)
    return Envelope(body)
