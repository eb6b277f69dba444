"""HTTP surface of the uploads group (flowless's own API, beside RAGFlow's): presigned multipart uploads of
big files, and imports of objects already in storage. No file bytes pass through these routes."""

from __future__ import annotations

from fastapi import APIRouter, Request

from functions.api.deps import ContainerDep, Envelope, Json, TenantId, ok
from shared.schemas.uploads import CompleteUploadRequest, CreateUploadRequest, ImportRequest


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/flowless/datasets/{dataset_id}", tags=["flowless: uploads"])

    @router.post("/uploads")
    def create_upload(
        dataset_id: str, request: Request, tenant_id: TenantId, body: Json[CreateUploadRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.uploads.create(tenant_id, dataset_id, body, str(request.base_url)))

    @router.get("/uploads/{upload_id}")
    def upload_status(
        dataset_id: str, upload_id: str, request: Request, tenant_id: TenantId, services: ContainerDep
    ) -> Envelope:
        return ok(services.uploads.status(tenant_id, dataset_id, upload_id, str(request.base_url)))

    @router.post("/uploads/{upload_id}/complete")
    def complete_upload(
        dataset_id: str,
        upload_id: str,
        tenant_id: TenantId,
        body: Json[CompleteUploadRequest],
        services: ContainerDep,
    ) -> Envelope:
        return ok(services.uploads.complete(tenant_id, dataset_id, upload_id, body))

    @router.delete("/uploads/{upload_id}")
    def abort_upload(dataset_id: str, upload_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        services.uploads.abort(tenant_id, dataset_id, upload_id)
        return ok()

    @router.post("/imports")
    def import_objects(
        dataset_id: str, tenant_id: TenantId, body: Json[ImportRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.uploads.import_objects(tenant_id, dataset_id, body))

    return router
