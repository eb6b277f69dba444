"""HTTP surface of the files group (RAGFlow's file manager): translate request ⇄ service call, nothing else."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from functions.api.deps import ContainerDep, Envelope, Json, Query, TenantId, multipart_form, ok
from shared.errors import BadRequest
from shared.schemas.files import (
    ConvertFilesRequest,
    CreateFileRequest,
    FileIdQuery,
    ListFilesQuery,
    MoveFilesRequest,
    RemoveFilesRequest,
    RenameFileRequest,
)
from shared.services.documents import UploadedFile

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "one part per file; a name like `a/b/c.txt` makes the folders on the way",
                    },
                    "parent_id": {"type": "string", "description": "the folder to upload into (the root by default)"},
                },
                "required": ["file"],
            }
        }
    },
}
_DOWNLOAD = {"x-flowless-content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


#: Files one upload may carry (a multipart part each).
MAX_FILES_PER_UPLOAD = 1000


async def read_upload(request: Request, max_bytes: int) -> tuple[str | None, list[UploadedFile]]:
    """The ``parent_id`` field and the ``file`` parts of a multipart body (a malformed body has no file part:
    RAGFlow's file manager answers that with code 400)."""
    no_file_part = BadRequest("No file part!")
    async with multipart_form(
        request, max_bytes=max_bytes, max_files=MAX_FILES_PER_UPLOAD, malformed=no_file_part
    ) as form:
        parent = form.get("parent_id")
        parts = [part for part in form.getlist("file") if isinstance(part, UploadFile)]
        files = [UploadedFile(part.filename or "", await part.read()) for part in parts]
    return (parent if isinstance(parent, str) and parent else None), files


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/file")

    @router.post("/upload", openapi_extra={"requestBody": _UPLOAD_BODY})
    async def upload_files(request: Request, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        parent_id, files = await read_upload(request, services.settings.max_upload_bytes)
        return ok(await run_in_threadpool(services.files.upload, tenant_id, parent_id, files))

    @router.post("/create")
    def create_file(tenant_id: TenantId, body: Json[CreateFileRequest], services: ContainerDep) -> Envelope:
        return ok(services.files.create(tenant_id, body))

    @router.get("/list")
    def list_files(tenant_id: TenantId, args: Query[ListFilesQuery], services: ContainerDep) -> Envelope:
        return ok(services.files.list_files(tenant_id, args))

    @router.get("/root_folder")
    def root_folder(tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.files.root_folder(tenant_id))

    @router.get("/parent_folder")
    def parent_folder(tenant_id: TenantId, args: Query[FileIdQuery], services: ContainerDep) -> Envelope:
        return ok(services.files.parent_folder(tenant_id, args))

    @router.get("/all_parent_folder")
    def all_parent_folders(tenant_id: TenantId, args: Query[FileIdQuery], services: ContainerDep) -> Envelope:
        return ok(services.files.all_parent_folders(tenant_id, args))

    @router.post("/rm")
    def remove_files(tenant_id: TenantId, body: Json[RemoveFilesRequest], services: ContainerDep) -> Envelope:
        return ok(services.files.remove(tenant_id, body))

    @router.post("/rename")
    def rename_file(tenant_id: TenantId, body: Json[RenameFileRequest], services: ContainerDep) -> Envelope:
        return ok(services.files.rename(tenant_id, body))

    @router.get("/get/{file_id}", openapi_extra=_DOWNLOAD)
    def download_file(file_id: str, tenant_id: TenantId, services: ContainerDep) -> Response:
        data, name, content_type = services.files.download(tenant_id, file_id)
        disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        return Response(data, media_type=content_type, headers={"Content-Disposition": disposition})

    @router.post("/mv")
    def move_files(tenant_id: TenantId, body: Json[MoveFilesRequest], services: ContainerDep) -> Envelope:
        return ok(services.files.move(tenant_id, body))

    @router.post("/convert")
    def convert_files(tenant_id: TenantId, body: Json[ConvertFilesRequest], services: ContainerDep) -> Envelope:
        return ok(services.files.convert(tenant_id, body))

    return router
