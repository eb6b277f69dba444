"""Request models of the documents endpoints (upload, list, update, delete, parse and stop)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from shared.errors import RetCode
from shared.rag.metadata import MetadataConditionError, validate_meta_fields
from shared.schemas.common import (
    PAGING_LIMIT,
    DeleteScope,
    LenientBody,
    QueryArgs,
    StrictBody,
    delete_scope,
    id_list_or_refuse,
    refuse,
    refused,
    unique_with_duplicates,
)
from shared.schemas.metadata import QueryMetadataCondition
from shared.schemas.parser_config import ParserConfig
from shared.schemas.reading import INT64_MAX

FILE_NAME_LEN_LIMIT = 255
DOCUMENT_CHUNK_METHODS = (
    "naive",
    "manual",
    "qa",
    "table",
    "paper",
    "book",
    "laws",
    "presentation",
    "picture",
    "one",
    "email",
    "tag",
    "knowledge_graph",  # RAGFlow accepts it on documents (chunked as naive)
)
RUN_STATES = ("UNSTART", "RUNNING", "CANCEL", "DONE", "FAIL")
RUN_NUMBERS = {str(i): state for i, state in enumerate(RUN_STATES)}


Timestamp = Annotated[int, Field(ge=0, le=INT64_MAX)]


class UpdateDocumentRequest(StrictBody):
    """``PUT /datasets/{id}/documents/{id}``. Rules that need the stored document (the extension, read-only
    counters, a name already taken) are the service's. ``parser_config: {}`` resets the document to its chunk
    method's defaults; ``null`` changes nothing."""

    name: str | None = None
    meta_fields: dict[str, Any] | None = None
    chunk_method: str | None = None
    parser_config: ParserConfig | None = None
    enabled: Annotated[int, Field(ge=0, le=1)] | None = None
    # Read-only: RAGFlow answers a value different from the stored one with "Can't change `<field>`.".
    chunk_count: Any = None
    token_count: Any = None
    progress: Any = None

    @field_validator("name", mode="before")
    @classmethod
    def _check_name(cls, value: Any) -> Any:
        # A blank name is the service's to answer: RAGFlow compares its (empty) extension first.
        if value is None:
            raise refuse(RetCode.ARGUMENT_ERROR, "File name can't be empty.")
        if isinstance(value, str) and len(value.encode("utf-8")) > FILE_NAME_LEN_LIMIT:
            raise refuse(RetCode.ARGUMENT_ERROR, f"File name must be {FILE_NAME_LEN_LIMIT} bytes or less.")
        return value

    @field_validator("meta_fields", mode="before")
    @classmethod
    def _check_meta_fields(cls, value: Any) -> Any:
        try:
            return validate_meta_fields(value)
        except MetadataConditionError as exc:
            raise refused(exc) from None

    @field_validator("chunk_method", mode="before")
    @classmethod
    def _check_chunk_method(cls, value: Any) -> Any:
        if value not in DOCUMENT_CHUNK_METHODS:
            raise refuse(RetCode.DATA_ERROR, f"`chunk_method` {value} doesn't exist")
        return value


class ListDocumentsQuery(QueryArgs):
    """``GET .../documents``. Like RAGFlow: unknown parameters are ignored, ``page=0`` is the first page and
    ``page_size=0`` an empty one."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    name: str | None = None
    keywords: str = ""
    page: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 30

    @field_validator("page", mode="after")
    @classmethod
    def _page_zero_is_the_first(cls, value: int) -> int:
        return max(value, 1)

    orderby: Literal["create_time", "update_time"] = "create_time"
    desc: bool = True
    create_time_from: Timestamp = 0
    create_time_to: Timestamp = 0
    suffix: list[str] = Field(default_factory=list)
    run: list[str] = Field(default_factory=list)
    metadata_condition: QueryMetadataCondition = None

    @field_validator("run", mode="after")
    @classmethod
    def _run_states(cls, values: list[str]) -> list[str]:
        states = []
        for value in values:
            state = RUN_NUMBERS.get(value.strip(), value.strip().upper())
            if state not in RUN_STATES:
                raise ValueError(f"Invalid run status '{value}'; use {', '.join(RUN_STATES)} or 0-4")
            states.append(state)
        return states


class DeleteDocumentsRequest(LenientBody):
    """``DELETE /datasets/{id}/documents``: no body, no ``ids`` or ``[]`` means every document (v0.23.1);
    a body carrying ``delete_all`` follows the v0.25+ rules (see ``delete_scope``)."""

    body_optional = True

    ids: list[str] | None = None
    delete_all: bool | None = None

    _check_ids = field_validator("ids", mode="before")(
        id_list_or_refuse(RetCode.ARGUMENT_ERROR, "`ids` should be a list of document ids")
    )

    def scope(self) -> DeleteScope:
        """The listed documents, all of the dataset's, or none."""
        newer = "delete_all" in self.model_fields_set
        return delete_scope(self.ids, self.delete_all, newer_rules=newer, empty_means_all=True)


# RAGFlow iterates a string here, character by character (do not copy): a clear 101 instead.
_id_list = id_list_or_refuse(RetCode.ARGUMENT_ERROR, "`document_ids` should be a list of document ids")


class DocumentIdsRequest(LenientBody):
    """Parse (``POST /datasets/{id}/chunks``) and stop (``DELETE``): ``document_ids`` is required."""

    document_ids: list[str]

    @model_validator(mode="before")
    @classmethod
    def _check_document_ids(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data.get("document_ids"):
                raise refuse(RetCode.DATA_ERROR, "`document_ids` is required")
            _id_list(data["document_ids"])
        return data

    def unique_ids(self) -> tuple[list[str], list[str]]:
        """The ids once each, in order, and RAGFlow's message for each repeated one."""
        return unique_with_duplicates(self.document_ids, "document")
