"""Request models of the chunk endpoints (add, list, update, delete a document's chunks).

RAGFlow reads these bodies key by key (``req.get``): unknown keys are ignored, and a value of the wrong
container type is answered with its own message and code 102 (`` `questions` should be a list``). Items
are strictly typed: ``important_keywords: [1]`` is a 101, never stored as ``"1"``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from shared.errors import RetCode
from shared.schemas.common import (
    PAGING_LIMIT,
    DeleteScope,
    LenientBody,
    QueryArgs,
    delete_scope,
    id_list_or_refuse,
    refuse,
    unique_with_duplicates,
)

#: The chunk list's default page size on RAGFlow's server (its reference says 1024).
DEFAULT_PAGE_SIZE = 30
#: RAGFlow stores a position as [page, left, right, top, bottom].
POSITION_LENGTH = 5

Position = Annotated[list[int], Field(min_length=POSITION_LENGTH, max_length=POSITION_LENGTH)]


def _is_blank(value: Any) -> bool:
    """RAGFlow's ``is_content_empty``: missing, falsy, or only white space."""
    return not value or (isinstance(value, str) and not value.strip())


def _require_list(value: Any, message: str) -> Any:
    if not isinstance(value, list):
        raise refuse(RetCode.DATA_ERROR, message)
    return value


def clean_questions(questions: list[str]) -> list[str]:
    """Questions as RAGFlow keeps them: stripped, blank ones dropped."""
    return [question.strip() for question in questions if question.strip()]


class AddChunkRequest(LenientBody):
    """``POST .../documents/{id}/chunks``. ``important_keywords`` are stored as given; ``questions`` are
    stripped and blank ones dropped (RAGFlow's rules)."""

    content: str
    important_keywords: list[str] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _content_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and _is_blank(data.get("content")):
            raise refuse(RetCode.DATA_ERROR, "`content` is required")
        return data

    @field_validator("important_keywords", "questions", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: ValidationInfo) -> Any:
        return _require_list(value, f"`{info.field_name}` is required to be a list")

    @field_validator("questions", mode="after")
    @classmethod
    def _clean_questions(cls, value: list[str]) -> list[str]:
        return clean_questions(value)


class UpdateChunkRequest(LenientBody):
    """``PUT .../chunks/{chunk_id}``: only the keys sent change (``content: null`` keeps the content)."""

    content: str | None = None
    important_keywords: list[str] | None = None
    questions: list[str] | None = None
    available: bool | int | None = None
    positions: list[Position] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content_not_blank(cls, value: Any) -> Any:
        if value is not None and _is_blank(value):
            raise refuse(RetCode.DATA_ERROR, "`content` should be a non-empty string")
        return value

    @field_validator("important_keywords", "questions", "positions", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: ValidationInfo) -> Any:
        return _require_list(value, f"`{info.field_name}` should be a list")

    @field_validator("questions", mode="after")
    @classmethod
    def _clean_questions(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_questions(value)

    @field_validator("available", mode="before")
    @classmethod
    def _available(cls, value: Any) -> Any:
        # RAGFlow stores ``int(available)``: a boolean or a number, nothing else.
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        raise refuse(RetCode.DATA_ERROR, "`available` should be a boolean")

    def changes(self) -> dict[str, Any]:
        """The stored fields this request sets (``available`` as a boolean)."""
        changes = self.model_dump(exclude_unset=True)
        if changes.get("content") is None:
            changes.pop("content", None)
        if "available" in changes:
            changes["available"] = bool(changes["available"])
        return changes


class DeleteChunksRequest(LenientBody):
    """``DELETE .../chunks``: no body, no ``chunk_ids``, null or ``[]`` deletes every chunk of the document
    (v0.23.1); a body carrying ``delete_all`` follows the v0.25+ rules (see ``delete_scope``)."""

    body_optional = True

    chunk_ids: list[str] | None = None
    delete_all: bool | None = None

    _check_ids = field_validator("chunk_ids", mode="before")(
        # RAGFlow iterates a string here, character by character (do not copy): a clear 101 instead.
        id_list_or_refuse(RetCode.ARGUMENT_ERROR, "`chunk_ids` should be a list")
    )

    def unique_ids(self) -> tuple[list[str], list[str]]:
        """The ids once each, in order, and RAGFlow's message for each repeated one."""
        return unique_with_duplicates(self.chunk_ids or [], "chunk")

    def scope(self) -> DeleteScope:
        """The listed chunks, all of the document's, or none."""
        newer = "delete_all" in self.model_fields_set
        return delete_scope(self.chunk_ids, self.delete_all, newer_rules=newer, empty_means_all=True)


class ListChunksQuery(QueryArgs):
    """``GET .../chunks``; like RAGFlow, parameters it doesn't know are ignored, and ``page=0`` or
    ``page_size=0`` give the first page (of the default size)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    keywords: str = ""
    page: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = DEFAULT_PAGE_SIZE

    @field_validator("page", "page_size", mode="after")
    @classmethod
    def _zero_is_default(cls, value: int, info: ValidationInfo) -> int:
        if value:
            return value
        return 1 if info.field_name == "page" else DEFAULT_PAGE_SIZE
