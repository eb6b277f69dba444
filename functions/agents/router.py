"""HTTP surface of the agents group: agents (canvases) and their sessions. Request ⇄ service call, nothing else."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.deps import ContainerDep, Envelope, Json, Query, TenantId, ok
from shared.schemas.agents import (
    AgentSessionQuery,
    CreateAgentRequest,
    CreateAgentSessionRequest,
    DeleteAgentSessionsRequest,
    ListAgentSessionsQuery,
    ListAgentsQuery,
    UpdateAgentRequest,
)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/agents")

    # A few metadata reads and writes each: served on the event loop, no thread hop.
    @router.get("")
    async def list_agents(tenant_id: TenantId, args: Query[ListAgentsQuery], services: ContainerDep) -> Envelope:
        return ok(services.agents.list_agents(tenant_id, args))

    @router.post("")
    async def create_agent(tenant_id: TenantId, body: Json[CreateAgentRequest], services: ContainerDep) -> Envelope:
        return ok(services.agents.create_agent(tenant_id, body), message="success")

    @router.put("/{agent_id}")
    async def update_agent(
        agent_id: str, tenant_id: TenantId, body: Json[UpdateAgentRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.agents.update_agent(tenant_id, agent_id, body), message="success")

    @router.delete("/{agent_id}")
    async def delete_agent(agent_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.agents.delete_agent(tenant_id, agent_id), message="success")

    @router.post("/{agent_id}/sessions")
    async def create_session(
        agent_id: str,
        tenant_id: TenantId,
        body: Json[CreateAgentSessionRequest],
        args: Query[AgentSessionQuery],
        services: ContainerDep,
    ) -> Envelope:
        return ok(services.agents.create_session(tenant_id, agent_id, body, args))

    @router.get("/{agent_id}/sessions")
    async def list_sessions(
        agent_id: str, tenant_id: TenantId, args: Query[ListAgentSessionsQuery], services: ContainerDep
    ) -> Envelope:
        return ok(services.agents.list_sessions(tenant_id, agent_id, args))

    @router.delete("/{agent_id}/sessions")
    async def delete_sessions(
        agent_id: str, tenant_id: TenantId, body: Json[DeleteAgentSessionsRequest], services: ContainerDep
    ) -> Envelope:
        partial = services.agents.delete_sessions(tenant_id, agent_id, body)
        return ok() if partial is None else ok(partial.data, message=partial.message)

    return router
