"""Request models of the documents endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from shared.schemas.common import QueryArgs, StrictBody
from shared.schemas.datasets import ParserConfig

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
)
RUN_STATES = ("UNSTART", "RUNNING", "CANCEL", "DONE", "FAIL")
RUN_NUMBERS = {str(i): state for i, state in enumerate(RUN_STATES)}


class UpdateDocumentRequest(StrictBody):
    name: str | None = None
    meta_fields: Any = None
    chunk_method: Any = None
    parser_config: ParserConfig | None = None
    enabled: Annotated[int, Field(ge=0, le=1)] | None = None
    # RAGFlow answers attempts to change these read-only counters with a specific message.
    chunk_count: Any = None
    token_count: Any = None
    progress: Any = None

    @field_validator("parser_config", mode="before")
    @classmethod
    def _empty_parser_config(cls, value: Any) -> Any:
        return None if value == {} else value


class ListDocumentsQuery(QueryArgs):
    id: str | None = None
    name: str | None = None
    keywords: str = ""
    page: Annotated[int, Field(ge=1)] = 1
    page_size: Annotated[int, Field(ge=1)] = 30
    orderby: Literal["create_time", "update_time"] = "create_time"
    desc: bool = True
    create_time_from: Annotated[int, Field(ge=0)] = 0
    create_time_to: Annotated[int, Field(ge=0)] = 0
    suffix: list[str] = Field(default_factory=list)
    run: list[str] = Field(default_factory=list)
    metadata_condition: str | None = None

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
