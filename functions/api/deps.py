"""FastAPI dependencies: the container, the authenticated tenant, the JSON body and query arguments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_core import to_json
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message

from shared.access import KeyGrant, route_access
from shared.container import Container, get_container
from shared.errors import ArgumentError, FlowlessError, RequestTooLarge
from shared.schemas.common import DEFAULT_MAX_JSON_BYTES, RequestModel, parse_model
from shared.schemas.reading import MalformedJson, check_text, load_json


async def container(request: Request) -> Container:
    """The app's container (tests and the local server set their own on ``app.state``)."""
    own: Container | None = getattr(request.app.state, "container", None)
    return own if own is not None else get_container()


ContainerDep = Annotated[Container, Depends(container)]


async def key_grant(request: Request) -> KeyGrant:
    """What the caller's API key may do, resolved once per request. Behind API Gateway the REQUEST
    authorizer already resolved it (its context); locally the key is looked up."""
    cached: KeyGrant | None = getattr(request.state, "key_grant", None)
    if cached is not None:
        return cached
    event = request.scope.get("aws.event") or {}
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    resolved = context.get("tenant_id")
    if isinstance(resolved, str) and resolved:
        grant = KeyGrant.from_context(context)
    else:
        services = await container(request)
        grant = services.authenticator.grant_for_header(request.headers.get("authorization"))
    request.state.key_grant = grant
    return grant


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", ""))


async def authorized_grant(request: Request) -> KeyGrant:
    """The caller's grant once its scope and id lists allow this route (``shared.access``); checked once per
    request, by whichever dependency asks first (the tenant, or a body or query reader: refusals come before
    validation)."""
    grant = await key_grant(request)
    if not getattr(request.state, "route_authorized", False):
        grant.check_route(route_access(request.method, _route_template(request)), request.path_params)
        request.state.route_authorized = True
    return grant


async def tenant_id(request: Request) -> str:
    """The caller's tenant, once its key's scope and id lists allow this route."""
    return (await authorized_grant(request)).tenant_id


async def _authorize_reader(request: Request) -> None:
    """Readers of authenticated routes check the caller first, so an out-of-scope call is refused as such
    whatever its body."""
    if route_access(request.method, _route_template(request)) is not None:
        await authorized_grant(request)


async def _check_named_ids(request: Request, where: str, model: RequestModel) -> None:
    """A scoped key's id lists against the ids the validated body or query names (``shared.access.NAMED_IDS``)."""
    access = route_access(request.method, _route_template(request))
    named = [entry for entry in (access.named_ids if access else ()) if entry.where == where]
    if not named:
        return
    grant = await authorized_grant(request)
    for entry in named:
        grant.check_named(entry, getattr(model, entry.name))


TenantId = Annotated[str, Depends(tenant_id)]


def _refuse_declared_size(request: Request, max_bytes: int, too_large: Any = None) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestTooLarge(max_bytes, data=too_large)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused unread beyond ``max_bytes`` (by its Content-Length, or while it streams in)."""
    _refuse_declared_size(request, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestTooLarge(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(
    request: Request, *, optional: bool = False, max_bytes: int = DEFAULT_MAX_JSON_BYTES
) -> dict[str, Any]:
    """The request's JSON object, read within limits (``shared.schemas.reading``), with RAGFlow's messages for
    wrong content types and malformed JSON. ``optional``: an absent body is ``{}``."""
    raw = await read_body(request, max_bytes)
    if optional and not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ArgumentError(f"Unsupported content type: Expected application/json, got {content_type}")
    payload = load_json(raw) if raw.strip() else _malformed()
    if not isinstance(payload, dict):
        raise ArgumentError(f"Invalid request payload: expected object, got {type(payload).__name__}")
    return payload


@asynccontextmanager
async def multipart_form(
    request: Request,
    *,
    max_bytes: int,
    max_files: int,
    malformed: FlowlessError | None = None,
    too_large: Any = None,
) -> AsyncIterator[FormData]:
    """The parts of a multipart body, file parts open for reading while the context lasts.

    The body is streamed to spooled temporary files (in memory up to 1 MB each, on disk beyond) and counted
    as it arrives: past ``max_bytes`` it is refused with RequestTooLarge (RAGFlow's 413 message, ``too_large``
    as its ``data``) before any more is read. A body that isn't multipart has no parts; a malformed one raises
    ``malformed`` (by default ArgumentError "No file part!", as RAGFlow answers); file names and text fields
    with a lone surrogate are refused like any text."""
    _refuse_declared_size(request, max_bytes, too_large)
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise RequestTooLarge(max_bytes, data=too_large)
        return message

    try:
        form = await Request(request.scope, counted).form(max_files=max_files)
    except (MultiPartException, HTTPException):
        raise (malformed or ArgumentError("No file part!")) from None
    try:
        for _, value in form.multi_items():
            check_text(value.filename or "" if isinstance(value, UploadFile) else value)
        yield form
    finally:
        await form.close()


@asynccontextmanager
async def multipart_files(
    request: Request, field: str, *, max_bytes: int, max_files: int, too_large: Any = None
) -> AsyncIterator[list[UploadFile]]:
    """The file parts named ``field`` of a multipart body (``multipart_form``'s limits and answers)."""
    async with multipart_form(request, max_bytes=max_bytes, max_files=max_files, too_large=too_large) as form:
        yield [part for part in form.getlist(field) if isinstance(part, UploadFile)]


def _malformed() -> Any:
    raise MalformedJson()


@cache
def body_reader(model: type[RequestModel]) -> Callable[[Request], Awaitable[RequestModel]]:
    """The dependency reading ``model`` from the JSON body (the model says whether the body is optional
    and how large it may be). Marked with the model so the OpenAPI document describes the body."""

    async def read(request: Request) -> RequestModel:
        await _authorize_reader(request)
        payload = await json_object(request, optional=model.body_optional, max_bytes=model.max_body_bytes)
        parsed = parse_model(model, payload)
        await _check_named_ids(request, "body", parsed)
        return parsed

    read.flowless_body_model = model  # type: ignore[attr-defined]
    return read


def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    names = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
        if any(get_origin(option) is list or option is list for option in options):
            names.add(info.alias or name)
    return frozenset(names)


@cache
def query_reader(model: type[RequestModel]) -> Callable[[Request], Awaitable[RequestModel]]:
    """The dependency reading ``model`` from the query string (repeated parameters fill list fields)."""
    lists = _list_fields(model)

    async def read(request: Request) -> RequestModel:
        await _authorize_reader(request)
        params = request.query_params
        args: dict[str, Any] = {}
        for key in params:
            values = [check_text(value) for value in params.getlist(key)]
            args[key] = values if key in lists else values[-1]
        parsed = parse_model(model, args)
        await _check_named_ids(request, "query", parsed)
        return parsed

    read.flowless_query_model = model  # type: ignore[attr-defined]
    return read


if TYPE_CHECKING:
    # To the type checker ``Json[Model]`` is ``Model``; at run time it also carries the dependency reading it.
    _M = TypeVar("_M", bound=RequestModel)
    Json = Annotated[_M, "json body"]
    Query = Annotated[_M, "query string"]
else:

    class Json:
        """``body: Json[Model]`` — the JSON body read and validated by ``Model`` (one way to read a request)."""

        def __class_getitem__(cls, model: type[RequestModel]) -> Any:
            return Annotated[model, Depends(body_reader(model))]

    class Query:
        """``args: Query[Model]`` — the query string read and validated by ``Model``."""

        def __class_getitem__(cls, model: type[RequestModel]) -> Any:
            return Annotated[model, Depends(query_reader(model))]


# -- transitional: routes not yet on a model read a plain dict ------------------------------------------
async def json_body(request: Request) -> dict[str, Any]:
    return await json_object(request)


JsonBody = Annotated[dict[str, Any], Depends(json_body)]


async def optional_json_body(request: Request) -> dict[str, Any]:
    return await json_object(request, optional=True)


OptionalJsonBody = Annotated[dict[str, Any], Depends(optional_json_body)]


async def query_args(request: Request) -> dict[str, str]:
    """Query parameters as a flat dict (the last value wins for repeated single-valued parameters)."""
    return {key: check_text(value) for key, value in request.query_params.items()}


QueryArgs = Annotated[dict[str, str], Depends(query_args)]


class Envelope(JSONResponse):
    """JSON rendered straight from plain data: services return JSON-ready dicts, so FastAPI's
    recursive encoder (the largest per-request cost on list endpoints) is skipped. pydantic-core's
    serializer writes them four times faster than ``json.dumps`` (a page of 30 datasets: 0.24 -> 0.06 ms),
    byte for byte the same compact UTF-8 but for the spelling of floats below 1e-4 (``0.00001`` for
    ``1e-05``: the same number to any JSON reader); NaN and Infinity are written as ``json.dumps`` does."""

    def render(self, content: Any) -> bytes:
        return to_json(content, inf_nan_mode="constants")


def ok(data: Any = None, **extra: Any) -> Envelope:
    """RAGFlow's success envelope."""
    body: dict[str, Any] = {"code": 0}
    if data is not None:
        body["data"] = data
    body.update(extra)
    return Envelope(body)
