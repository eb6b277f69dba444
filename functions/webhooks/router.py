"""HTTP surface of the webhooks group (flowless's own API, beside RAGFlow's): subscriptions to the service's
events and each subscription's delivery log."""

from __future__ import annotations

from fastapi import APIRouter

from functions.api.deps import ContainerDep, Envelope, Json, Query, TenantId, ok
from shared.schemas.webhooks import CreateWebhookRequest, ListDeliveriesQuery, ListWebhooksQuery, UpdateWebhookRequest


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/flowless/webhooks", tags=["flowless: webhooks"])

    @router.post("")
    def create_webhook(tenant_id: TenantId, body: Json[CreateWebhookRequest], services: ContainerDep) -> Envelope:
        return ok(services.webhooks.create(tenant_id, body))

    @router.get("")
    def list_webhooks(tenant_id: TenantId, args: Query[ListWebhooksQuery], services: ContainerDep) -> Envelope:
        webhooks, total = services.webhooks.list_webhooks(tenant_id, args)
        return ok({"total": total, "webhooks": webhooks})

    @router.get("/{webhook_id}")
    def get_webhook(webhook_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        return ok(services.webhooks.get(tenant_id, webhook_id))

    @router.put("/{webhook_id}")
    def update_webhook(
        webhook_id: str, tenant_id: TenantId, body: Json[UpdateWebhookRequest], services: ContainerDep
    ) -> Envelope:
        return ok(services.webhooks.update(tenant_id, webhook_id, body))

    @router.delete("/{webhook_id}")
    def delete_webhook(webhook_id: str, tenant_id: TenantId, services: ContainerDep) -> Envelope:
        services.webhooks.delete(tenant_id, webhook_id)
        return ok()

    @router.get("/{webhook_id}/deliveries")
    def list_deliveries(
        webhook_id: str, tenant_id: TenantId, args: Query[ListDeliveriesQuery], services: ContainerDep
    ) -> Envelope:
        deliveries, total = services.webhooks.deliveries(tenant_id, webhook_id, args)
        return ok({"total": total, "deliveries": deliveries})

    return router
