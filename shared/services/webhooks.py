"""Webhooks: tenant-scoped subscriptions to the service's events, delivered signed, at least once, with retries.

An event (``shared.ports.events``) is fanned out to the tenant's matching webhooks: each gets a delivery whose
id derives from the webhook and the event, so an event that arrives twice (a retried publish, EventBridge's
at-least-once delivery) makes one delivery. A delivery is attempted by ``deliver``: a 2xx answer ends it;
anything else is retried with exponential backoff until ``max_attempts``, then it ends failed. Every attempt
is recorded in the webhook's delivery log. The queue that schedules attempts is a port (SQS on AWS, a
background scheduler locally).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.errors import ArgumentError, DataError
from shared.ids import new_id, now_ms
from shared.ports.events import DomainEvent
from shared.ports.webhooks import DeliveryQueue, SendResult, WebhookSender
from shared.repos.datasets import DatasetRepository
from shared.repos.webhooks import Record, WebhookRepository
from shared.schemas.webhooks import CreateWebhookRequest, ListDeliveriesQuery, ListWebhooksQuery, UpdateWebhookRequest
from shared.webhooks import signing
from shared.webhooks.policy import OutboundPolicy, OutboundRefused, parse_target

logger = logging.getLogger(__name__)

#: Webhooks one tenant may have.
MAX_WEBHOOKS = 20
#: Deliveries kept per webhook; older ones are dropped as new ones come.
DELIVERY_LOG_SIZE = 1000
#: How much of an error a delivery log entry keeps.
_ERROR_CHARS = 500


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per delivery and the backoff between them: ``backoff_s`` doubling up to ``max_backoff_s``."""

    max_attempts: int = 10
    backoff_s: float = 30.0
    max_backoff_s: float = 3600.0

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of an attempt: ``retry_after`` seconds until the next one, or None when the delivery ended."""

    status: str
    retry_after: float | None = None


def delivery_id(webhook_id: str, event_id: str) -> str:
    """One delivery per webhook and event, whatever the number of times the event arrives."""
    return hashlib.blake2b(f"{webhook_id}:{event_id}".encode(), digest_size=16).hexdigest()


def webhook_view(record: Record, *, with_secret: bool = False) -> dict[str, Any]:
    view = {
        "id": record["id"],
        "url": record["url"],
        "events": record["events"],
        "dataset_ids": record["dataset_ids"],
        "description": record["description"],
        "enabled": record["enabled"],
        "secret_hint": record["secret"][-4:],
        "create_time": record["create_time"],
        "update_time": record["update_time"],
    }
    if with_secret:
        view["secret"] = record["secret"]
    return view


def delivery_view(record: Record) -> dict[str, Any]:
    return {
        "id": record["id"],
        "webhook_id": record["webhook_id"],
        "event_id": record["event_id"],
        "event_type": record["event_type"],
        "status": record["status"],
        "attempts": record["attempts"],
        "response_status": record.get("response_status"),
        "error": record.get("error"),
        "next_attempt_time": record.get("next_attempt_time"),
        "create_time": record["create_time"],
        "update_time": record["update_time"],
        "event": record["event"],
    }


class WebhookService:
    def __init__(
        self,
        webhooks: WebhookRepository,
        datasets: DatasetRepository,
        *,
        sender: Callable[[], WebhookSender],
        queue: Callable[[], DeliveryQueue],
        policy: OutboundPolicy,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._webhooks = webhooks
        self._datasets = datasets
        self._sender = sender
        self._queue = queue
        self._policy = policy
        self._retry = retry
        self._clock = clock

    # == CRUD ========================================================================================
    def _owned(self, tenant_id: str, webhook_id: str) -> Record:
        record = self._webhooks.get(tenant_id, webhook_id)
        if record is None:
            raise DataError(f"You don't own the webhook {webhook_id}.")
        return record

    def _check_url(self, url: str) -> str:
        try:
            parse_target(url, self._policy)
        except OutboundRefused as refused:
            raise ArgumentError(f"Invalid webhook url: {refused}") from None
        return url

    def _check_datasets(self, tenant_id: str, dataset_ids: list[str]) -> list[str]:
        for dataset_id in dataset_ids:
            if self._datasets.get(tenant_id, dataset_id) is None:
                raise DataError(f"You don't own the dataset {dataset_id}.")
        return dataset_ids

    def create(self, tenant_id: str, request: CreateWebhookRequest) -> dict[str, Any]:
        """A new webhook; the answer carries its secret (the only time it is shown)."""
        url = self._check_url(request.url)
        dataset_ids = self._check_datasets(tenant_id, request.dataset_ids or [])
        if self._webhooks.count(tenant_id) >= MAX_WEBHOOKS:
            raise DataError(f"A tenant may have at most {MAX_WEBHOOKS} webhooks.")
        now = now_ms()
        record = {
            "id": new_id(),
            "tenant_id": tenant_id,
            "url": url,
            "events": list(request.events or []),
            "dataset_ids": dataset_ids,
            "description": request.description,
            "enabled": request.enabled,
            "secret": request.secret or f"whsec_{secrets.token_hex(24)}",
            "create_time": now,
            "update_time": now,
        }
        self._webhooks.create(record)
        return webhook_view(record, with_secret=True)

    def list_webhooks(self, tenant_id: str, query: ListWebhooksQuery) -> tuple[list[dict[str, Any]], int]:
        offset = (query.page - 1) * query.page_size
        records = self._webhooks.list_webhooks(tenant_id, offset=offset, limit=query.page_size)
        return [webhook_view(r) for r in records], self._webhooks.count(tenant_id)

    def get(self, tenant_id: str, webhook_id: str) -> dict[str, Any]:
        return webhook_view(self._owned(tenant_id, webhook_id))

    def update(self, tenant_id: str, webhook_id: str, request: UpdateWebhookRequest) -> dict[str, Any]:
        """Change the given fields; a new secret is shown in the answer."""
        current = self._owned(tenant_id, webhook_id)
        changes: dict[str, Any] = {}
        if request.url is not None:
            changes["url"] = self._check_url(request.url)
        if request.events is not None:
            changes["events"] = list(request.events)
        if request.dataset_ids is not None:
            changes["dataset_ids"] = self._check_datasets(tenant_id, request.dataset_ids)
        if request.description is not None:
            changes["description"] = request.description
        if request.enabled is not None:
            changes["enabled"] = request.enabled
        if request.secret is not None:
            changes["secret"] = request.secret
        if not changes:
            return webhook_view(current)
        changes["update_time"] = now_ms()
        updated = self._webhooks.update(current, changes)
        return webhook_view(updated, with_secret=request.secret is not None)

    def delete(self, tenant_id: str, webhook_id: str) -> None:
        """Remove a webhook and its delivery log; attempts still queued find it gone and end."""
        self._webhooks.delete(self._owned(tenant_id, webhook_id))

    def deliveries(
        self, tenant_id: str, webhook_id: str, query: ListDeliveriesQuery
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of a webhook's delivery log, newest first (optionally one status only)."""
        self._owned(tenant_id, webhook_id)
        offset = (query.page - 1) * query.page_size
        if query.status is None:
            records = self._webhooks.list_deliveries(webhook_id, offset=offset, limit=query.page_size)
            return [delivery_view(r) for r in records], self._webhooks.count_deliveries(webhook_id)
        # The log is bounded (DELIVERY_LOG_SIZE), so a status filter reads it whole.
        matching = [r for r in self._webhooks.list_deliveries(webhook_id) if r["status"] == query.status]
        return [delivery_view(r) for r in matching[offset : offset + query.page_size]], len(matching)

    # == fan-out =====================================================================================
    @staticmethod
    def _matches(webhook: Record, event: DomainEvent) -> bool:
        if not webhook["enabled"]:
            return False
        if webhook["events"] and event.type not in webhook["events"]:
            return False
        return not webhook["dataset_ids"] or event.dataset_id in webhook["dataset_ids"]

    def fan_out(self, event: DomainEvent) -> int:
        """Create (once) a delivery of ``event`` for each of its tenant's matching webhooks and queue its first
        attempt. A delivery already recorded is queued again only if it was never queued (the previous
        fan-out stopped between recording and queueing): an event that arrives twice is delivered once."""
        queued = 0
        for webhook in self._webhooks.list_webhooks(event.tenant_id):
            if not self._matches(webhook, event):
                continue
            did = delivery_id(webhook["id"], event.id)
            now = now_ms()
            record = {
                "id": did,
                "webhook_id": webhook["id"],
                "tenant_id": event.tenant_id,
                "event_id": event.id,
                "event_type": event.type,
                "event": event.to_dict(),
                "status": "pending",
                "attempts": 0,
                "response_status": None,
                "error": None,
                "next_attempt_time": now,
                "create_time": now,
                "update_time": now,
            }
            if self._webhooks.add_delivery(record):
                self._prune(webhook["id"])
            else:
                existing = self._webhooks.get_delivery(webhook["id"], did)
                if existing is None or existing.get("queued") or existing["status"] != "pending":
                    continue  # the same event again: its delivery is queued already
                record = existing
            self._queue().enqueue(webhook["id"], did)
            self._webhooks.mark_queued(record)
            queued += 1
        return queued

    def _prune(self, webhook_id: str) -> None:
        excess = self._webhooks.count_deliveries(webhook_id) - DELIVERY_LOG_SIZE
        if excess > 0:
            self._webhooks.delete_deliveries(webhook_id, excess)

    # == delivery ====================================================================================
    def deliver(self, webhook_id: str, delivery_id_: str) -> DeliveryOutcome:
        """Attempt a delivery once and record how it went. Idempotent for a delivery that already ended."""
        delivery = self._webhooks.get_delivery(webhook_id, delivery_id_)
        if delivery is None:
            return DeliveryOutcome("gone")
        if delivery["status"] != "pending":
            return DeliveryOutcome(delivery["status"])
        webhook = self._webhooks.get(delivery["tenant_id"], webhook_id)
        if webhook is None:
            return DeliveryOutcome("gone")
        attempt = int(delivery["attempts"]) + 1
        body = json.dumps(delivery["event"], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        result = self._send(webhook, delivery, body)
        return self._record(delivery, attempt, result)

    def _send(self, webhook: Record, delivery: Record, body: bytes) -> SendResult:
        if not webhook["enabled"]:
            return SendResult(error="The webhook is disabled.", refused=True)
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "flowless-webhooks/1",
            signing.HEADER_DELIVERY: delivery["id"],
            signing.HEADER_EVENT: delivery["event_type"],
            signing.HEADER_EVENT_ID: delivery["event_id"],
            signing.HEADER_TIMESTAMP: str(timestamp),
            signing.HEADER_SIGNATURE: signing.signature(webhook["secret"], timestamp, body),
        }
        return self._sender().send(webhook["url"], body, headers)

    def _record(self, delivery: Record, attempt: int, result: SendResult) -> DeliveryOutcome:
        now = now_ms()
        error = None if result.ok else (result.error or f"HTTP {result.status}")
        changes: dict[str, Any] = {
            "attempts": attempt,
            "response_status": result.status,
            "error": error[:_ERROR_CHARS] if error else None,
            "update_time": now,
        }
        if result.ok:
            changes.update(status="succeeded", next_attempt_time=None)
            outcome = DeliveryOutcome("succeeded")
        elif result.refused or attempt >= self._retry.max_attempts:
            changes.update(status="failed", next_attempt_time=None)
            outcome = DeliveryOutcome("failed")
        else:
            delay = self._retry.delay_after(attempt)
            changes["next_attempt_time"] = now + int(delay * 1000)
            outcome = DeliveryOutcome("pending", retry_after=delay)
        self._webhooks.update_delivery(delivery, changes)
        if outcome.status == "failed":
            logger.warning("webhook delivery %s failed (%d attempts): %s", delivery["id"], attempt, changes["error"])
        return outcome

    def resume_pending(self) -> int:
        """Queue again the deliveries a stopped local server left pending, each at its planned time."""
        resumed = 0
        now = now_ms()
        for delivery in self._webhooks.pending():
            planned = delivery.get("next_attempt_time") or now
            self._queue().enqueue(delivery["webhook_id"], delivery["id"], max(0.0, (planned - now) / 1000))
            resumed += 1
        return resumed
