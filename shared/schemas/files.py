"""Request models of the file manager endpoints (``/api/v1/file/*``).

RAGFlow reads these bodies key by key (``req["file_ids"]``, ``req.get("parent_id")``): unknown keys are
ignored, but a missing required key or a wrong type is answered with a clear 101 here (RAGFlow's own
answer is a KeyError or TypeError repr with code 100).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from shared.errors import RetCode
from shared.schemas.common import PAGING_LIMIT, LenientBody, QueryArgs, refuse
from shared.schemas.documents import FILE_NAME_LEN_LIMIT

FILES_PAGE_SIZE = 15
#: Columns a folder listing can be ordered by (RAGFlow orders by any column of its file table).
FILE_ORDER_COLUMNS = ("create_time", "update_time", "name", "size", "type")


def check_file_name(value: str) -> str:
    """A file or folder name: not blank, no ``/`` (it separates folders), at most 255 bytes."""
    if not value.strip():
        raise refuse(RetCode.ARGUMENT_ERROR, "File name can't be empty.")
    if "/" in value:
        raise refuse(RetCode.ARGUMENT_ERROR, "File name can't contain '/'.")
    if len(value.encode("utf-8")) > FILE_NAME_LEN_LIMIT:
        raise refuse(RetCode.ARGUMENT_ERROR, f"File name must be {FILE_NAME_LEN_LIMIT} bytes or less.")
    return value


class CreateFileRequest(LenientBody):
    name: str
    type: str | None = None
    parent_id: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_file_name(value)

    @property
    def is_folder(self) -> bool:
        """``folder`` in any case (the reference's example sends ``FOLDER``) makes a folder."""
        return (self.type or "").lower() == "folder"


class RenameFileRequest(LenientBody):
    file_id: str
    name: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_file_name(value)


class RemoveFilesRequest(LenientBody):
    file_ids: list[str]


class MoveFilesRequest(LenientBody):
    src_file_ids: list[str]
    dest_file_id: str


class ConvertFilesRequest(LenientBody):
    file_ids: list[str]
    kb_ids: list[str]


class ListFilesQuery(QueryArgs):
    # RAGFlow reads the parameters it knows and ignores the others.
    model_config = ConfigDict(extra="ignore")

    parent_id: str | None = None
    keywords: str = ""
    page: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = FILES_PAGE_SIZE
    orderby: Literal["create_time", "update_time", "name", "size", "type"] = "create_time"
    desc: bool = True

    @property
    def offset(self) -> int:
        """Where the page starts (page 0 reads as page 1, as RAGFlow's paginate does)."""
        return (max(self.page, 1) - 1) * self.page_size


class FileIdQuery(QueryArgs):
    model_config = ConfigDict(extra="ignore")

    file_id: str
