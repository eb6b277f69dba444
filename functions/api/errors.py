"""The one place where errors become RAGFlow envelopes. HTTP 200 for application errors, as RAGFlow does."""

from __future__ import annotations

import json
import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import FlowlessError, RetCode
from shared.ports.blobs import BlobNotFound
from shared.ports.metadata import ConditionFailed, StoreUnavailable

logger = logging.getLogger("flowless.api")

# werkzeug's repr of its HTTP exceptions, which RAGFlow sends as the message.
_HTTP_MESSAGES = {
    404: "<NotFound '404: Not Found'>",
    405: "<MethodNotAllowed '405: Method Not Allowed'>",
    413: "<RequestEntityTooLarge '413: Request Entity Too Large'>",
}


def error_body(code: int, message: str, data: object = None) -> dict[str, object]:
    body: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return body


async def _flowless_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlowlessError)
    return JSONResponse(error_body(int(exc.code), exc.message, exc.data))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code, f"<HTTPException '{exc.status_code}: {exc.detail}'>")
    return JSONResponse(error_body(int(RetCode.EXCEPTION_ERROR), message))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return JSONResponse(error_body(int(RetCode.ARGUMENT_ERROR), problems))


async def _backend_error(_: Request, exc: Exception) -> JSONResponse:
    logger.error("backend unavailable: %s", exc)
    return JSONResponse(error_body(int(RetCode.EXCEPTION_ERROR), "A storage backend is unavailable; retry later."))


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("write conflict: %s", exc)
    return JSONResponse(error_body(int(RetCode.OPERATING_ERROR), "The record changed concurrently; retry."))


def _request_id(scope: Scope) -> str:
    """API Gateway's request id behind AWS, the client's ``X-Request-Id`` when sane, else a new one."""
    event = scope.get("aws.event") or {}
    aws_id = (event.get("requestContext") or {}).get("requestId")
    if isinstance(aws_id, str) and aws_id:
        return aws_id
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id" and 0 < len(value) <= 128 and value.isascii() and value.decode().isprintable():
            return str(value.decode())
    return uuid.uuid4().hex


class UnhandledErrors:
    """The last line: an exception no handler knows is logged with the request id and answered with RAGFlow's
    code 100 and a generic message — never a stack trace.

    Pure ASGI and installed *inside* Starlette's ServerErrorMiddleware on purpose: that middleware re-raises
    after answering, and uvicorn then closes the connection, so a keep-alive client's next request failed
    with a reset. Here the exception ends with the response. Every response carries ``X-Request-Id``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = ended = False

        async def tracked(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            logger.exception(
                "unhandled error in %s %s (request id %s)", scope.get("method"), scope.get("path"), request_id
            )
            if not started:
                body = json.dumps(
                    error_body(int(RetCode.EXCEPTION_ERROR), f"Internal server error (request id {request_id})")
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-request-id", request_id.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            elif not ended:  # a stream broke midway: end it properly so the connection stays usable
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FlowlessError, _flowless_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _backend_error)
    app.add_exception_handler(BlobNotFound, _backend_error)
    app.add_exception_handler(ConditionFailed, _conflict)
    app.add_middleware(UnhandledErrors)
