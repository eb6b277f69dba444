"""HTTP surface of the retrieval group: POST /api/v1/retrieval."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.deps import ContainerDep, Envelope, Json, TenantId, ok
from shared.schemas.retrieval import RetrievalRequest


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post("/retrieval")
    def retrieve(tenant_id: TenantId, body: Json[RetrievalRequest], services: ContainerDep) -> Envelope:
        return ok(services.retrieval.retrieve(tenant_id, body))

    return router
