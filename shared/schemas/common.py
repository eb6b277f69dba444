"""Request validation in RAGFlow's style: strict pydantic models and RAGFlow's error text."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from shared.errors import ArgumentError

M = TypeVar("M", bound=BaseModel)


class StrictBody(BaseModel):
    """Base of JSON bodies: unknown fields are rejected and types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class QueryArgs(BaseModel):
    """Base of query strings: unknown parameters are rejected; strings are coerced as usual."""

    model_config = ConfigDict(extra="forbid")


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
        raise ArgumentError(format_validation_error(exc)) from None


def uuid1_hex(value: Any) -> str:
    """Normalize an id to 32 hex characters; RAGFlow's messages for anything that isn't a UUID1."""
    try:
        parsed = uuid.UUID(value) if isinstance(value, str) else uuid.UUID(str(value))
    except (AttributeError, ValueError, TypeError):
        raise PydanticCustomError("invalid_UUID1_format", "Invalid UUID1 format") from None
    if parsed.version != 1:
        raise PydanticCustomError("invalid_UUID1_format", "Must be a UUID1 format")
    return parsed.hex


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
