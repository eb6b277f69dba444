"""HTTP surface of the chunks group: add, list, update and delete a document's chunks."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.deps import ContainerDep, Envelope, Json, Query, TenantId, ok
from shared.schemas.chunks import AddChunkRequest, DeleteChunksRequest, ListChunksQuery, UpdateChunkRequest


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/datasets/{dataset_id}/documents/{document_id}/chunks")

    @router.post("")
    def add_chunk(
        dataset_id: str, document_id: str, tenant_id: TenantId, body: Json[AddChunkRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.chunks.add(tenant_id, dataset_id, document_id, body))

    @router.get("")
    def list_chunks(
        dataset_id: str, document_id: str, tenant_id: TenantId, args: Query[ListChunksQuery], services: ContainerDep
    ) -> Envelope:
        return ok(services.chunks.list_chunks(tenant_id, dataset_id, document_id, args))

    @router.put("/{chunk_id}")
    def update_chunk(
        dataset_id: str,
        document_id: str,
        chunk_id: str,
        tenant_id: TenantId,
        body: Json[UpdateChunkRequest],
        services: ContainerDep,
    ) -> Envelope:
        services.chunks.update(tenant_id, dataset_id, document_id, chunk_id, body)
        return ok()

    @router.delete("")
    def delete_chunks(
        dataset_id: str, document_id: str, tenant_id: TenantId, body: Json[DeleteChunksRequest], services: ContainerDep
    ) -> Envelope:
        result = services.chunks.delete(tenant_id, dataset_id, document_id, body)
        return ok(result) if result else ok()

    return router
