"""The one place where errors become RAGFlow envelopes. HTTP 200 for application errors, as RAGFlow does."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Logged with its stack for operators; the client sees no internals.
    logger.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body(int(RetCode.EXCEPTION_ERROR), "Internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FlowlessError, _flowless_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _backend_error)
    app.add_exception_handler(BlobNotFound, _backend_error)
    app.add_exception_handler(ConditionFailed, _conflict)
    app.add_exception_handler(Exception, _unexpected)
