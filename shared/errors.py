"""Typed domain errors. Each carries RAGFlow's return code; the HTTP layer maps them in one place."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class RetCode(IntEnum):
    """RAGFlow's ``code`` values."""

    SUCCESS = 0
    NOT_EFFECTIVE = 10
    EXCEPTION_ERROR = 100
    ARGUMENT_ERROR = 101
    DATA_ERROR = 102
    OPERATING_ERROR = 103
    CONNECTION_ERROR = 105
    RUNNING = 106
    PERMISSION_ERROR = 108
    AUTHENTICATION_ERROR = 109
    UNAUTHORIZED = 401
    SERVER_ERROR = 500
    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    CONFLICT = 409


class FlowlessError(Exception):
    """Base of every error a client may see. ``data`` is sent when not None."""

    code: RetCode = RetCode.EXCEPTION_ERROR

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class ArgumentError(FlowlessError):
    """Bad request parameters (code 101)."""

    code = RetCode.ARGUMENT_ERROR


class DataError(FlowlessError):
    """The request is well-formed but conflicts with stored data (code 102)."""

    code = RetCode.DATA_ERROR


class OperatingError(FlowlessError):
    """The operation cannot run in the current state (code 103)."""

    code = RetCode.OPERATING_ERROR


class PermissionDenied(FlowlessError):
    """The resource is missing or belongs to someone else; both look the same (code 108)."""

    code = RetCode.PERMISSION_ERROR


class AuthenticationError(FlowlessError):
    """Unknown API key (code 109)."""

    code = RetCode.AUTHENTICATION_ERROR


class AuthorizationHeaderError(AuthenticationError):
    """Missing or malformed Authorization header, with RAGFlow's messages. RAGFlow answers these with code 0
    (and ``data: false``), which clients read as success: a bug not to copy, so code 109 as for a bad key."""


class RequestTooLarge(FlowlessError):
    """A body larger than the route accepts, refused before it is read whole; RAGFlow's (werkzeug's) message."""

    code = RetCode.EXCEPTION_ERROR

    def __init__(self, limit_bytes: int, *, data: Any = None) -> None:
        super().__init__("<RequestEntityTooLarge '413: Request Entity Too Large'>", data=data)
        self.limit_bytes = limit_bytes


class BadRequest(FlowlessError):
    """RAGFlow's HTTP-style code 400 in the envelope (the file manager answers these; HTTP stays 200)."""

    code = RetCode.BAD_REQUEST


class NotFound(FlowlessError):
    """RAGFlow's HTTP-style code 404 in the envelope (file manager lookups; HTTP stays 200)."""

    code = RetCode.NOT_FOUND


class Conflict(FlowlessError):
    """RAGFlow's HTTP-style code 409 in the envelope (a name already taken in a folder; HTTP stays 200)."""

    code = RetCode.CONFLICT


class BackendUnavailable(FlowlessError):
    """A storage backend failed; the message never carries internals."""

    code = RetCode.EXCEPTION_ERROR


_BY_CODE: dict[int, type[FlowlessError]] = {
    RetCode.ARGUMENT_ERROR: ArgumentError,
    RetCode.DATA_ERROR: DataError,
    RetCode.OPERATING_ERROR: OperatingError,
    RetCode.PERMISSION_ERROR: PermissionDenied,
    RetCode.AUTHENTICATION_ERROR: AuthenticationError,
}


def error_for_code(code: int, message: str) -> FlowlessError:
    """The domain error RAGFlow answers with ``code``; codes without a class of their own keep their number."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(message)
    error = FlowlessError(message)
    error.code = RetCode(code)
    return error
