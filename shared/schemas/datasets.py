"""Request models of the datasets endpoints, with RAGFlow's rules and messages."""

from __future__ import annotations

import json
import string
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.schemas.common import (
    PAGING_LIMIT,
    DeleteScope,
    QueryArgs,
    StrictBody,
    delete_scope,
    unique_uuid1_list,
    uuid1_hex,
)
from shared.schemas.fields import EmptyIsNone
from shared.schemas.parser_config import ParserConfig

DATASET_NAME_LIMIT = 128
CHUNK_METHODS = (
    "naive",
    "book",
    "email",
    "laws",
    "manual",
    "one",
    "paper",
    "picture",
    "presentation",
    "qa",
    "table",
    "tag",
)
_CHUNK_METHOD_MESSAGE = (
    "Input should be 'naive', 'book', 'email', 'laws', 'manual', 'one', 'paper', 'picture', "
    "'presentation', 'qa', 'table' or 'tag'"
)
_AVATAR_MIME_TYPES = ["image/jpeg", "image/png"]

DatasetName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=DATASET_NAME_LIMIT)]
_PERMISSION_MESSAGE = "Input should be 'me' or 'team'"


def _validate_avatar(value: str | None) -> str | None:
    if value is None:
        return value
    if "," not in value:
        raise PydanticCustomError("format_invalid", "Missing MIME prefix. Expected format: data:<mime>;base64,<data>")
    prefix, _ = value.split(",", 1)
    if not prefix.startswith("data:"):
        raise PydanticCustomError("format_invalid", "Invalid MIME prefix format. Must start with 'data:'")
    mime_type = prefix[5:].split(";")[0]
    if mime_type not in _AVATAR_MIME_TYPES:
        raise PydanticCustomError(
            "format_invalid",
            "Unsupported MIME type. Allowed: {supported_mime_types}",
            {"supported_mime_types": _AVATAR_MIME_TYPES},
        )
    return value


def _validate_embedding_model(value: str | None) -> str | None:
    if value is None:
        return value
    if "@" not in value:
        raise PydanticCustomError(
            "format_invalid", "Embedding model identifier must follow <model_name>@<provider> format"
        )
    name, _, provider = value.rpartition("@")
    if not name or not provider:
        raise PydanticCustomError("format_invalid", "Both model_name and provider must be non-empty strings")
    if not name.strip() or not provider.strip():
        raise PydanticCustomError("format_invalid", "Model name and provider cannot be whitespace-only strings")
    return value


def _validate_bmp(value: str) -> str:
    if any(ord(ch) > 0xFFFF for ch in value):
        raise PydanticCustomError(
            "string_bmp", "Dataset name must only contain Basic Multilingual Plane (BMP) characters"
        )
    return value


def _exact_permission(value: Any) -> Any:
    # RAGFlow compares the value as sent: "ME", " me " and null are refused like any other value.
    if value not in ("me", "team"):
        raise PydanticCustomError("literal_error", _PERMISSION_MESSAGE)
    return value


def _empty_is_none(value: Any) -> Any:
    """``{}`` reads as absent (RAGFlow treats an empty parser_config as none given)."""
    return None if value == {} else value


def _check_parser_config_size(value: ParserConfig | None) -> ParserConfig | None:
    if value is not None and len(json.dumps(value.model_dump(exclude_unset=True))) > 65535:
        raise PydanticCustomError("string_too_long", "Parser config exceeds size limit (max 65,535 characters).")
    return value


class _DatasetFields(StrictBody):
    """Fields shared by create and update."""

    avatar: Annotated[str | None, Field(max_length=65535)] = None
    description: Annotated[str | None, Field(max_length=65535)] = None
    embedding_model: Annotated[str | None, Field(max_length=255)] = None
    permission: Annotated[Literal["me", "team"], Field(min_length=1, max_length=16)] = "me"
    chunk_method: str | None = None
    parser_config: ParserConfig | None = None

    _avatar = field_validator("avatar", mode="after")(_validate_avatar)
    _embedding = field_validator("embedding_model", mode="after")(_validate_embedding_model)
    _permission = field_validator("permission", mode="before")(_exact_permission)
    _parser_size = field_validator("parser_config", mode="after")(_check_parser_config_size)

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _strip_embedding(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("chunk_method", mode="wrap")
    @classmethod
    def _check_chunk_method(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # One message for every bad value, wrong types included, as RAGFlow answers.
        if value is None:
            raise PydanticCustomError("literal_error", _CHUNK_METHOD_MESSAGE)
        try:
            result = handler(value)
        except Exception:
            raise PydanticCustomError("literal_error", _CHUNK_METHOD_MESSAGE) from None
        if result not in CHUNK_METHODS:
            raise PydanticCustomError("literal_error", _CHUNK_METHOD_MESSAGE)
        return result

    _empty_parser_config = field_validator("parser_config", mode="before")(_empty_is_none)

    def parser_config_overrides(self) -> dict[str, Any]:
        """Only what the client set in parser_config (nested objects included)."""
        return {} if self.parser_config is None else self.parser_config.overrides()


class CreateDatasetRequest(_DatasetFields):
    name: DatasetName
    parse_type: Annotated[int | None, Field(ge=0, le=64)] = None
    pipeline_id: str | None = None

    _bmp = field_validator("name", mode="after")(_validate_bmp)

    @field_validator("pipeline_id", mode="before")
    @classmethod
    def _check_pipeline_id(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "pipeline_id must be a string")
        if len(value) != 32:
            raise PydanticCustomError("string_length", "pipeline_id must be 32 hex characters")
        if any(ch not in string.hexdigits for ch in value) or value != value.lower():
            raise PydanticCustomError("hex", "pipeline_id must be 32 lowercase hexadecimal characters")
        return value

    @model_validator(mode="after")
    def _chunk_method_or_pipeline(self) -> CreateDatasetRequest:
        pipeline_fields = [name for name in ("parse_type", "pipeline_id") if getattr(self, name) is not None]
        if "chunk_method" in self.model_fields_set:
            if pipeline_fields:
                raise PydanticCustomError(
                    "dependency_error",
                    "chunk_method provided → disallowed fields present: {fields}",
                    {"fields": ", ".join(pipeline_fields)},
                )
            return self
        if not pipeline_fields:
            self.chunk_method = "naive"
            return self
        missing = [name for name in ("parse_type", "pipeline_id") if name not in pipeline_fields]
        if missing:
            raise PydanticCustomError(
                "dependency_error",
                "chunk_method omitted → required fields missing: {fields}",
                {"fields": ", ".join(missing)},
            )
        if self.parser_config is not None:
            raise PydanticCustomError(
                "dependency_error", "parser_config must not be included when specifying an ingestion pipeline"
            )
        return self


class UpdateDatasetRequest(_DatasetFields):
    name: DatasetName | None = None
    pagerank: Annotated[int, Field(ge=0, le=100)] = 0

    _bmp = field_validator("name", mode="after")(lambda v: v if v is None else _validate_bmp(v))

    @field_validator("name", "pagerank", mode="before")
    @classmethod
    def _no_explicit_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Optional to send, but not nullable: an explicit null is a wrong type, as RAGFlow answers.
        if value is None:
            if info.field_name == "pagerank":
                raise PydanticCustomError("int_type", "Input should be a valid integer")
            raise PydanticCustomError("string_type", "Input should be a valid string")
        return value


class DeleteDatasetsRequest(StrictBody):
    """``DELETE /datasets``. Under v0.23.1 rules ``ids: null`` deletes every dataset; a body carrying
    ``delete_all`` (RAGFlow v0.25+ clients) follows the newer rules instead: see ``DeleteRule``."""

    ids: list[str] | None
    delete_all: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _ids_optional_with_delete_all(cls, data: Any) -> Any:
        # v0.23.1 requires ``ids``; newer clients may send only ``delete_all``.
        if isinstance(data, dict) and "delete_all" in data and "ids" not in data:
            return {**data, "ids": None}
        return data

    @field_validator("ids", mode="after")
    @classmethod
    def _check_ids(cls, value: list[str] | None) -> list[str] | None:
        return unique_uuid1_list(value)

    def scope(self) -> DeleteScope:
        """The listed datasets, all of the tenant's, or none (``ids: []`` deletes nothing under v0.23.1)."""
        newer = "delete_all" in self.model_fields_set
        return delete_scope(self.ids, self.delete_all, newer_rules=newer, empty_means_all=False)


class ListDatasetsQuery(QueryArgs):
    id: str | None = None
    name: EmptyIsNone = None
    page: Annotated[int, Field(ge=1, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=1, le=PAGING_LIMIT)] = 30
    orderby: Literal["create_time", "update_time"] = "create_time"
    desc: bool = True

    @field_validator("id", mode="before")
    @classmethod
    def _check_id(cls, value: Any) -> Any:
        return None if value is None else uuid1_hex(value)
