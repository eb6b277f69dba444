"""EventBridge driver of the event port: one PutEvents per event on the configured bus, retried."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.ports.events import EVENT_SOURCE, DomainEvent, EventPublisher, EventPublishError

logger = logging.getLogger(__name__)

#: PutEvents attempts per event (botocore's own retries of throttling and 5xx come on top of these).
ATTEMPTS = 4


class EventBridgePublisher(EventPublisher):
    """Events on ``bus`` (a name or ARN: the stack's bus, or ``default``), source ``flowless``, detail-type the
    event's type, detail the event itself.

    A failed entry (PutEvents answers 200 with ``FailedEntryCount``) is retried with backoff, like a failed
    call. EventBridge has no idempotency key: the event's ``id`` is stable for the change it reports, so a
    retried publish delivers the same id and consumers (the webhook fan-out among them) dedupe by it.
    """

    def __init__(
        self,
        bus: str,
        *,
        region: str,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._bus = bus
        self._client: Any = client or boto3.client(
            "events",
            region_name=region,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10),
        )
        self._sleep = sleep

    def publish(self, event: DomainEvent) -> None:
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": event.type,
            "Detail": json.dumps(event.to_dict(), ensure_ascii=False),
            "EventBusName": self._bus,
        }
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                self._sleep(min(0.2 * 2**attempt, 2.0))
            try:
                response = self._client.put_events(Entries=[entry])
            except (BotoCoreError, ClientError) as exc:
                problem = str(exc)
                continue
            if not response.get("FailedEntryCount"):
                return
            failed = (response.get("Entries") or [{}])[0]
            problem = f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
        logger.error("event %s (%s) not published: %s", event.id, event.type, problem)
        raise EventPublishError(f"PutEvents failed for event {event.id}: {problem}")
