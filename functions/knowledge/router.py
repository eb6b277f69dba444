"""HTTP surface of the knowledge group: knowledge graphs and RAPTOR — start and trace builds, read and delete
the graph. RAGFlow reads no body or query on these routes: the dataset in the path is the whole request."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.deps import ContainerDep, Envelope, TenantId, ok


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/datasets/{dataset_id}/knowledge_graph")
    def get_knowledge_graph(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.knowledge.knowledge_graph(tenant_id, dataset_id))

    @router.delete("/datasets/{dataset_id}/knowledge_graph")
    def delete_knowledge_graph(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.knowledge.delete_graph(tenant_id, dataset_id))

    @router.post("/datasets/{dataset_id}/run_graphrag")
    def run_graphrag(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.knowledge.run(tenant_id, dataset_id, "graphrag"))

    @router.get("/datasets/{dataset_id}/trace_graphrag")
    def trace_graphrag(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.knowledge.trace(tenant_id, dataset_id, "graphrag"))

    @router.post("/datasets/{dataset_id}/run_raptor")
    def run_raptor(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.knowledge.run(tenant_id, dataset_id, "raptor"))

    @router.get("/datasets/{dataset_id}/trace_raptor")
    def trace_raptor(dataset_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.knowledge.trace(tenant_id, dataset_id, "raptor"))

    return router
