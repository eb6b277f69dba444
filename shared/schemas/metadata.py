"""Request models and field types for document metadata: ``metadata_condition`` (in a body or as JSON in a
query parameter) and the ``POST /metadata/update`` body.

The rules live in ``shared.rag.metadata`` (one evaluator for listing, retrieval and completions); these types
run them while the request is read, so a bad condition is refused before the service does anything, with
RAGFlow's messages (code 102) — or 101 when the JSON itself is beyond the reader's limits.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from shared.errors import ArgumentError, RetCode
from shared.rag.metadata import (
    MetadataCondition,
    MetadataConditionError,
    parse_metadata_condition,
    parse_metadata_condition_json,
    validate_metadata_changes,
)
from shared.schemas.common import LenientBody, refuse, refused

_CONDITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RAGFlow's metadata filter: "
    '{"logic": "and" | "or", "conditions": [{"name", "comparison_operator", "value"}]}',
    "properties": {
        "logic": {"type": "string", "enum": ["and", "or"]},
        "conditions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "comparison_operator": {"type": "string"},
                    "value": {},
                },
                "required": ["name", "comparison_operator"],
            },
        },
    },
}


def _condition_from_body(value: Any) -> MetadataCondition | None:
    if isinstance(value, MetadataCondition):
        return value
    try:
        return parse_metadata_condition(value)
    except MetadataConditionError as exc:
        raise refused(exc) from None


def _condition_from_query(value: Any) -> MetadataCondition | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    try:
        return parse_metadata_condition_json(value)
    except (MetadataConditionError, ArgumentError) as exc:  # 102: RAGFlow's rules; 101: the reader's limits
        raise refused(exc) from None


#: ``metadata_condition`` inside a JSON body; falsy non-objects mean no condition, as in RAGFlow.
BodyMetadataCondition = Annotated[
    MetadataCondition | None,
    PlainValidator(_condition_from_body),
    WithJsonSchema({"anyOf": [_CONDITION_SCHEMA, {"type": "null"}]}),
]

#: ``?metadata_condition=<JSON>``: read with the bounded JSON reader (depth, size, numbers, Unicode).
QueryMetadataCondition = Annotated[
    MetadataCondition | None,
    PlainValidator(_condition_from_query),
    WithJsonSchema({"type": "string", "description": "a metadata_condition object as JSON"}),
]


class MetadataSelector(LenientBody):
    """Which documents to edit: ids ∩ condition (all of the dataset's when both are absent)."""

    document_ids: list[str] = Field(default_factory=list)
    metadata_condition: BodyMetadataCondition = None


class MetadataChange(LenientBody):
    """One update (``key``, ``value``, optional ``match``) or delete (``key``, optional ``value``)."""

    key: str
    value: Any = None
    match: Any = None


class MetadataUpdateRequest(LenientBody):
    """``POST /datasets/{id}/metadata/update``, checked in RAGFlow's order with RAGFlow's messages (102)."""

    selector: MetadataSelector = Field(default_factory=MetadataSelector)
    updates: list[MetadataChange] = Field(default_factory=list)
    deletes: list[MetadataChange] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _ragflow_checks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        selector = data.get("selector")
        # RAGFlow reads ``req.get("selector") or {}``; null means no selector, but another type (``[]``,
        # ``""``) is a mistake, not an empty selector.
        if selector is None:
            selector = {}
        if not isinstance(selector, dict):
            raise refuse(RetCode.DATA_ERROR, "selector must be an object.")
        try:
            updates, deletes = validate_metadata_changes(data.get("updates"), data.get("deletes"))
        except MetadataConditionError as exc:
            raise refused(exc) from None
        document_ids = selector.get("document_ids")
        if document_ids is not None and not isinstance(document_ids, list):
            raise refuse(RetCode.DATA_ERROR, "document_ids must be a list.")
        return {**data, "selector": selector, "updates": updates, "deletes": deletes}

    def change_lists(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Updates and deletes as the metadata functions take them (only the keys the client sent)."""
        return (
            [change.model_dump(exclude_unset=True) for change in self.updates],
            [change.model_dump(exclude_unset=True) for change in self.deletes],
        )
