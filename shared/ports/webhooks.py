"""Webhook delivery ports: the HTTP sender (with the outbound URL policy) and the queue of delivery attempts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SendResult:
    """How one attempt went: the receiver's HTTP status, or why no answer came (refused, network error)."""

    status: int | None = None
    error: str | None = None
    #: The URL or its addresses are refused by the policy: retrying cannot help until the webhook changes.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender(ABC):
    @abstractmethod
    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """POST ``body`` to ``url`` once, after checking the URL and every address it resolves to."""


class DeliveryQueue(ABC):
    @abstractmethod
    def enqueue(self, webhook_id: str, delivery_id: str, delay_s: float = 0.0) -> None:
        """Have ``WebhookService.deliver(webhook_id, delivery_id)`` run (again) after ``delay_s`` seconds."""
