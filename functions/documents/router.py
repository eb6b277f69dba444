"""HTTP surface of the documents group: upload, list, download, update, delete, parse/stop, metadata."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from functions.api.deps import ContainerDep, Envelope, Json, Query, TenantId, multipart_files, ok
from shared.constants import PRESIGNED_UPLOAD_HINT, PRESIGNED_UPLOAD_ROUTE
from shared.schemas.documents import (
    DeleteDocumentsRequest,
    DocumentIdsRequest,
    ListDocumentsQuery,
    UpdateDocumentRequest,
)
from shared.schemas.metadata import MetadataUpdateRequest
from shared.services.documents import UploadedFile

#: Files one upload may carry (a multipart part each).
MAX_FILES_PER_UPLOAD = 1000
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                "required": ["file"],
            },
            "encoding": {"file": {"style": "form", "explode": True}},
        }
    },
}
_FILE_CONTENT = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/datasets/{dataset_id}")

    @router.post("/documents", openapi_extra={"requestBody": _UPLOAD_BODY})
    async def upload_documents(
        dataset_id: str, request: Request, tenant_id: TenantId, services: ContainerDep
    ) -> Envelope:
        limit = services.settings.max_upload_bytes
        too_large = {"max_bytes": limit, "presigned_upload": PRESIGNED_UPLOAD_ROUTE, "hint": PRESIGNED_UPLOAD_HINT}
        async with multipart_files(
            request, "file", max_bytes=limit, max_files=MAX_FILES_PER_UPLOAD, too_large=too_large
        ) as parts:
            files = [UploadedFile(part.filename or "", await part.read()) for part in parts]
        return ok(services.documents.upload(tenant_id, dataset_id, files))

    @router.get("/documents")
    def list_documents(
        dataset_id: str, tenant_id: TenantId, args: Query[ListDocumentsQuery], services: ContainerDep
    ) -> Envelope:
        docs, total = services.documents.list_documents(tenant_id, dataset_id, args)
        return ok({"total": total, "docs": docs, "total_datasets": total})

    @router.get("/documents/{document_id}", openapi_extra={"x-flowless-content": _FILE_CONTENT})
    def download_document(dataset_id: str, document_id: str, tenant_id: TenantId, services: ContainerDep) -> Response:
        data, name, content_type = services.documents.download(tenant_id, dataset_id, document_id)
        disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        return Response(data, media_type=content_type, headers={"Content-Disposition": disposition})

    @router.put("/documents/{document_id}")
    def update_document(
        dataset_id: str,
        document_id: str,
        tenant_id: TenantId,
        body: Json[UpdateDocumentRequest],
        services: ContainerDep,
    ) -> Envelope:
        return ok(services.documents.update(tenant_id, dataset_id, document_id, body))

    @router.delete("/documents")
    def delete_documents(
        dataset_id: str, tenant_id: TenantId, body: Json[DeleteDocumentsRequest], services: ContainerDep
    ) -> Envelope:
        result = services.documents.delete(tenant_id, dataset_id, body)
        return ok(result) if result else ok()

    @router.post("/chunks")
    def parse_documents(
        dataset_id: str, tenant_id: TenantId, body: Json[DocumentIdsRequest], services: ContainerDep
    ) -> Envelope:
        result = services.ingestion.parse(tenant_id, dataset_id, body)
        return ok(result) if result else ok()

    @router.delete("/chunks")
    def stop_parsing(
        dataset_id: str, tenant_id: TenantId, body: Json[DocumentIdsRequest], services: ContainerDep
    ) -> Envelope:
        result = services.ingestion.stop(tenant_id, dataset_id, body)
        return ok(result) if result else ok()

    @router.get("/metadata/summary")
    def metadata_summary(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok({"summary": services.documents.metadata_summary(tenant_id, dataset_id)})

    @router.post("/metadata/update")
    def metadata_update(
        dataset_id: str, tenant_id: TenantId, body: Json[MetadataUpdateRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.documents.metadata_update(tenant_id, dataset_id, body))

    return router
