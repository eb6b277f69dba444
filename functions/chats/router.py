"""HTTP surface of the chats group: chat assistants and their sessions. Request ⇄ service call, nothing else."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.deps import ContainerDep, Envelope, Json, Query, TenantId, ok
from shared.schemas.chats import (
    CreateChatRequest,
    CreateSessionRequest,
    DeleteByIdsRequest,
    ListChatsQuery,
    ListSessionsQuery,
    UpdateChatRequest,
    UpdateSessionRequest,
)
from shared.services.chats import DeleteOutcome


def deleted(outcome: DeleteOutcome) -> Envelope:
    """RAGFlow's answer to a delete: plain success, or a partial one with its message and data."""
    return ok() if outcome.message is None else ok(outcome.data, message=outcome.message)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/chats")

    @router.post("")
    def create_chat(tenant_id: TenantId, body: Json[CreateChatRequest], services: ContainerDep) -> Envelope:
        return ok(services.chats.create_chat(tenant_id, body))

    @router.get("")
    def list_chats(tenant_id: TenantId, args: Query[ListChatsQuery], services: ContainerDep) -> Envelope:
        return ok(services.chats.list_chats(tenant_id, args))

    @router.put("/{chat_id}")
    def update_chat(
        chat_id: str, tenant_id: TenantId, body: Json[UpdateChatRequest], services: ContainerDep
    ) -> Envelope:
        services.chats.update_chat(tenant_id, chat_id, body)
        return ok()

    @router.delete("")
    def delete_chats(tenant_id: TenantId, body: Json[DeleteByIdsRequest], services: ContainerDep) -> Envelope:
        # A body-less DELETE means every chat, as the reference says.
        return deleted(services.chats.delete_chats(tenant_id, body))

    @router.post("/{chat_id}/sessions")
    def create_session(
        chat_id: str, tenant_id: TenantId, body: Json[CreateSessionRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.chats.create_session(tenant_id, chat_id, body))

    @router.get("/{chat_id}/sessions")
    def list_sessions(
        chat_id: str, tenant_id: TenantId, args: Query[ListSessionsQuery], services: ContainerDep
    ) -> Envelope:
        return ok(services.chats.list_sessions(tenant_id, chat_id, args))

    @router.put("/{chat_id}/sessions/{session_id}")
    def update_session(
        chat_id: str, session_id: str, tenant_id: TenantId, body: Json[UpdateSessionRequest], services: ContainerDep
    ) -> Envelope:
        services.chats.update_session(tenant_id, chat_id, session_id, body)
        return ok()

    @router.delete("/{chat_id}/sessions")
    def delete_sessions(
        chat_id: str, tenant_id: TenantId, body: Json[DeleteByIdsRequest], services: ContainerDep
    ) -> Envelope:
        return deleted(services.chats.delete_sessions(tenant_id, chat_id, body))

    return router
