"""HTTP surface of the datasets group: translate request ⇄ service call, nothing else."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.deps import ContainerDep, Envelope, Json, Query, TenantId, ok
from shared.schemas.datasets import (
    CreateDatasetRequest,
    DeleteDatasetsRequest,
    ListDatasetsQuery,
    UpdateDatasetRequest,
)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    # Dataset calls are a few metadata reads/writes: served on the event loop, no thread hop.
    @router.post("/datasets")
    async def create_dataset(tenant_id: TenantId, body: Json[CreateDatasetRequest], services: ContainerDep) -> Envelope:
        return ok(services.datasets.create(tenant_id, body))

    @router.get("/datasets")
    async def list_datasets(tenant_id: TenantId, args: Query[ListDatasetsQuery], services: ContainerDep) -> Envelope:
        data, total = services.datasets.list(tenant_id, args)
        return ok(data, total=total)

    @router.put("/datasets/{dataset_id}")
    async def update_dataset(
        dataset_id: str, tenant_id: TenantId, body: Json[UpdateDatasetRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.datasets.update(tenant_id, dataset_id, body))

    @router.delete("/datasets")
    def delete_datasets(tenant_id: TenantId, body: Json[DeleteDatasetsRequest], services: ContainerDep) -> Envelope:
        services.datasets.delete(tenant_id, body)
        return ok()

    return router
