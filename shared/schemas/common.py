"""Request validation in RAGFlow's style: strict pydantic models and RAGFlow's error text."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from shared.errors import ArgumentError, FlowlessError, RetCode, error_for_code

M = TypeVar("M", bound=BaseModel)

#: Largest JSON body a route reads unless its model says otherwise (API Gateway's own limit is 10 MB).
DEFAULT_MAX_JSON_BYTES = 10 * 1024 * 1024
#: Page numbers and sizes are bounded so that offsets always fit the storage drivers' 64-bit integers.
PAGING_LIMIT = 2**31 - 1


class RequestModel(BaseModel):
    """Base of every request model: the one way a route reads its body or query string.

    Besides the fields, a model says how its request is read (class variables, not fields):
    ``body_optional`` — an absent body reads as ``{}`` (RAGFlow's body-less DELETEs); otherwise an empty
    body is malformed JSON, as RAGFlow answers. ``max_body_bytes`` — larger bodies are refused unread.

    Validators are built when a model first validates, not at import: a function imports every model of its
    route group's modules and most requests use one (``defer_build``; a cold start pays for what it reads).
    """

    model_config = ConfigDict(defer_build=True)

    body_optional: ClassVar[bool] = False
    max_body_bytes: ClassVar[int] = DEFAULT_MAX_JSON_BYTES


class StrictBody(RequestModel):
    """JSON bodies RAGFlow validates with pydantic (datasets): unknown fields are rejected, types not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LenientBody(RequestModel):
    """JSON bodies RAGFlow reads key by key (``req.get(...)``): unknown fields are ignored, types not coerced."""

    model_config = ConfigDict(extra="ignore", strict=True)


class QueryArgs(RequestModel):
    """Base of query strings: unknown parameters are rejected; strings are coerced as usual."""

    model_config = ConfigDict(extra="forbid")


def refuse(code: RetCode, message: str) -> PydanticCustomError:
    """A validation failure answered with RAGFlow's own code and message (not the ``Field: ...`` form).

    Raise it from a validator where RAGFlow's server answers a specific text, e.g. 102
    "`dataset_ids` is required."; ``parse_model`` turns it into the matching domain error.
    """
    return PydanticCustomError("ragflow", "{message}", {"message": message, "code": int(code)})


def refused(error: FlowlessError) -> PydanticCustomError:
    """A domain error raised by a checker a validator calls, answered with its own code and message."""
    return refuse(error.code, error.message)


def format_validation_error(error: ValidationError) -> str:
    """RAGFlow's message: one ``Field: <loc> - Message: <msg> - Value: <input>`` line per problem."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        value = str(problem.get("input"))
        if len(value) > 128:
            value = value[:125] + "..."
        lines.append(f"Field: <{field}> - Message: <{problem['msg']}> - Value: <{value}>")
    return "\n".join(lines)


def parse_model(model: type[M], payload: Mapping[str, Any]) -> M:
    """Validate ``payload`` against ``model``; raise ArgumentError (code 101) with RAGFlow's text."""
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "ragflow":
            context = first.get("ctx") or {}
            raise error_for_code(int(context["code"]), str(context["message"])) from None
        raise ArgumentError(format_validation_error(exc)) from None


def uuid1_hex(value: Any) -> str:
    """Normalize an id to 32 hex characters; RAGFlow's message for anything that isn't a UUID1 (its "Must be
    a UUID1 format" for other UUID versions is caught by its own ``except ValueError`` and never seen)."""
    try:
        parsed = uuid.UUID(value) if isinstance(value, str) else uuid.UUID(str(value))
    except (AttributeError, ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.version != 1:
        raise PydanticCustomError("invalid_UUID1_format", "Invalid UUID1 format")
    return parsed.hex


def path_uuid1(field: str, value: str) -> str:
    """A UUID1 id taken from the path, normalized; RAGFlow's ``Field: ...`` message (101) otherwise."""
    try:
        return uuid1_hex(value)
    except PydanticCustomError as exc:
        raise ArgumentError(f"Field: <{field}> - Message: <{exc.message()}> - Value: <{value[:128]}>") from None


def unique_uuid1_list(values: list[str] | None) -> list[str] | None:
    """Validate a list of ids (``None`` passes through); duplicates are an error naming them."""
    if values is None:
        return None
    ids = [uuid1_hex(value) for value in values]
    duplicates = [item for item, count in Counter(ids).items() if count > 1]
    if duplicates:
        raise PydanticCustomError(
            "duplicate_uuids", "Duplicate ids: '{duplicate_ids}'", {"duplicate_ids": ", ".join(duplicates)}
        )
    return ids


def id_list_or_refuse(code: RetCode, message: str) -> Callable[[Any], Any]:
    """A before-validator for an id list: null or a list of strings passes, anything else is refused with
    RAGFlow's own code and message (its ``isinstance(ids, list)`` checks)."""

    def check(value: Any) -> Any:
        if value is not None and not (isinstance(value, list) and all(isinstance(i, str) for i in value)):
            raise refuse(code, message)
        return value

    return check


def unique_with_duplicates(ids: list[str], kind: str) -> tuple[list[str], list[str]]:
    """RAGFlow's ``check_duplicate_ids``: the ids once each (in order), and ``Duplicate <kind> ids: <id>``
    for each id given more than once."""
    counts = Counter(ids)
    return list(counts), [f"Duplicate {kind} ids: {i}" for i, n in counts.items() if n > 1]


DeleteScope = Literal["listed", "all", "none"]


def delete_scope(
    ids: list[str] | None, delete_all: bool | None, *, newer_rules: bool, empty_means_all: bool
) -> DeleteScope:
    """What a delete request removes: the ``listed`` ids, ``all`` of them, or ``none``.

    v0.23.1 rules: no ids (null, or ``[]`` where ``empty_means_all``) means all. A body carrying a
    ``delete_all`` key (``newer_rules``) comes from a v0.25+ client, whose SDK sends
    ``{"ids": null, "delete_all": false}`` by default: then no ids means nothing unless ``delete_all`` is true.
    """
    if ids:
        return "listed"
    if newer_rules:
        return "all" if delete_all is True else "none"
    return "all" if ids is None or empty_means_all else "none"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``, merging nested dicts instead of replacing them."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged
