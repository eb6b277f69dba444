"""Request models of the presigned-upload and import routes (``/api/v1/flowless/datasets/{id}/...``):
flowless's own API, so strict — unknown fields are refused."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from shared.errors import RetCode
from shared.ports.uploads import MAX_PART_BYTES, MAX_PARTS, MIN_PART_BYTES
from shared.schemas.common import StrictBody, refuse
from shared.schemas.documents import FILE_NAME_LEN_LIMIT

#: Objects one import call registers at most (the rest: call again with ``start_after``).
MAX_IMPORT_BATCH = 1000


class CreateUploadRequest(StrictBody):
    """``POST .../uploads``: a file to upload in parts straight to storage."""

    filename: Annotated[str, Field(min_length=1, description="the document's name (its extension picks the parser)")]
    size: Annotated[int, Field(ge=1, description="the file's exact size in bytes")]
    content_type: Annotated[str, Field(max_length=255)] = "application/octet-stream"
    part_size: Annotated[int, Field(ge=MIN_PART_BYTES, le=MAX_PART_BYTES)] | None = None
    #: Parse the document once the upload is complete (``complete`` may say so too).
    parse: bool = False

    @field_validator("filename", mode="after")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value.strip() or "/" in value or "\\" in value:
            raise refuse(RetCode.ARGUMENT_ERROR, "File name can't be empty or hold a path.")
        if len(value.encode("utf-8")) > FILE_NAME_LEN_LIMIT:
            raise refuse(RetCode.ARGUMENT_ERROR, f"File name must be {FILE_NAME_LEN_LIMIT} bytes or less.")
        return value


class CompletedPart(StrictBody):
    part_number: Annotated[int, Field(ge=1, le=MAX_PARTS)]
    etag: Annotated[str, Field(min_length=1, max_length=128)]


class CompleteUploadRequest(StrictBody):
    """``POST .../uploads/{upload_id}/complete``. ``parts`` (the ETags the part PUTs answered) is checked
    against what storage received when given; absent, the received parts are used as they are."""

    body_optional = True

    parts: Annotated[list[CompletedPart], Field(max_length=MAX_PARTS)] | None = None
    parse: bool | None = None


class ImportRequest(StrictBody):
    """``POST .../imports``: objects already in storage become documents, without copying their bytes.

    ``s3_uri`` names one object (``s3://bucket/key``); ``prefix`` every object under a prefix, either an
    ``s3://bucket/prefix`` URI or a path in the tenant's import area of the documents bucket
    (``imports/<tenant>/``)."""

    s3_uri: Annotated[str, Field(min_length=6, max_length=2048)] | None = None
    prefix: Annotated[str, Field(max_length=2048)] | None = None
    start_after: Annotated[str, Field(max_length=2048)] = ""
    limit: Annotated[int, Field(ge=1, le=MAX_IMPORT_BATCH)] = MAX_IMPORT_BATCH
    parse: bool = False

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, value: Any) -> Any:
        if isinstance(value, dict) and (value.get("s3_uri") is None) == (value.get("prefix") is None):
            raise refuse(RetCode.ARGUMENT_ERROR, "Give exactly one of `s3_uri` and `prefix`.")
        return value

    @field_validator("s3_uri", mode="after")
    @classmethod
    def _check_uri(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("s3://") or "/" not in value[5:] or value.endswith("/")):
            raise refuse(RetCode.ARGUMENT_ERROR, "`s3_uri` must be s3://<bucket>/<key> of one object.")
        return value
