"""HTTP surface of the documents group: upload, list, download, update, delete, parse/stop, metadata."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from functions.api.deps import ContainerDep, Envelope, JsonBody, OptionalJsonBody, TenantId, ok
from shared.errors import ArgumentError
from shared.services.documents import UploadedFile

MULTI_VALUED = ("suffix", "run")


def _list_args(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query_params)
    for name in MULTI_VALUED:
        if name in args:
            args[name] = request.query_params.getlist(name)
    return args


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/datasets/{dataset_id}")

    @router.post("/documents")
    async def upload_documents(
        dataset_id: str, request: Request, tenant_id: TenantId, services: ContainerDep
    ) -> Envelope:
        try:
            form = await request.form(max_files=1000)
        except Exception:  # not multipart, or a malformed body: RAGFlow sees no file part either
            raise ArgumentError("No file part!") from None
        parts = [part for part in form.getlist("file") if isinstance(part, UploadFile)]
        files = [UploadedFile(part.filename or "", await part.read()) for part in parts]
        await form.close()
        return ok(services.documents.upload(tenant_id, dataset_id, files))

    @router.get("/documents")
    def list_documents(dataset_id: str, request: Request, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        docs, total = services.documents.list_documents(tenant_id, dataset_id, _list_args(request))
        return ok({"total": total, "docs": docs, "total_datasets": total})

    @router.get("/documents/{document_id}")
    def download_document(dataset_id: str, document_id: str, tenant_id: TenantId, services: ContainerDep) -> Response:
        data, name, content_type = services.documents.download(tenant_id, dataset_id, document_id)
        disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        return Response(data, media_type=content_type, headers={"Content-Disposition": disposition})

    @router.put("/documents/{document_id}")
    def update_document(
        dataset_id: str, document_id: str, tenant_id: TenantId, body: JsonBody, services: ContainerDep
    ) -> Envelope:
        return ok(services.documents.update(tenant_id, dataset_id, document_id, body))

    @router.delete("/documents")
    def delete_documents(
        dataset_id: str, tenant_id: TenantId, body: OptionalJsonBody, services: ContainerDep
    ) -> Envelope:
        # RAGFlow accepts a body-less DELETE here (it means every document).
        result = services.documents.delete(tenant_id, dataset_id, body)
        return ok(result) if result else ok()

    @router.post("/chunks")
    def parse_documents(dataset_id: str, tenant_id: TenantId, body: JsonBody, services: ContainerDep) -> Envelope:
        result = services.ingestion.parse(tenant_id, dataset_id, body)
        return ok(result) if result else ok()

    @router.delete("/chunks")
    def stop_parsing(dataset_id: str, tenant_id: TenantId, body: JsonBody, services: ContainerDep) -> Envelope:
        result = services.ingestion.stop(tenant_id, dataset_id, body)
        return ok(result) if result else ok()

    @router.get("/metadata/summary")
    def metadata_summary(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok({"summary": services.documents.metadata_summary(tenant_id, dataset_id)})

    @router.post("/metadata/update")
    def metadata_update(dataset_id: str, tenant_id: TenantId, body: JsonBody, services: ContainerDep) -> Envelope:
        return ok(services.documents.metadata_update(tenant_id, dataset_id, body))

    return router
