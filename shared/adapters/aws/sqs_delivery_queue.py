"""SQS driver of the delivery queue: one message per attempt to make; retries are the same message made
visible again after the backoff (``postpone``), and messages whose handling keeps crashing go to the DLQ."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.ports.metadata import StoreUnavailable
from shared.ports.webhooks import DeliveryQueue

#: SQS caps a message's delay at 15 minutes and a visibility timeout at 12 hours.
MAX_DELAY_S = 900
MAX_VISIBILITY_S = 12 * 3600


class SqsDeliveryQueue(DeliveryQueue):
    def __init__(self, queue_url: str, *, region: str, client: Any = None) -> None:
        self._url = queue_url
        self._client: Any = client or boto3.client(
            "sqs",
            region_name=region,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10),
        )

    def enqueue(self, webhook_id: str, delivery_id: str, delay_s: float = 0.0) -> None:
        body = json.dumps({"webhook_id": webhook_id, "delivery_id": delivery_id})
        try:
            self._client.send_message(
                QueueUrl=self._url, MessageBody=body, DelaySeconds=min(MAX_DELAY_S, max(0, int(delay_s)))
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"SQS send_message failed: {exc}") from exc

    def postpone(self, receipt_handle: str, delay_s: float) -> None:
        """Make a received message visible again after ``delay_s`` (its next attempt)."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=min(MAX_VISIBILITY_S, max(0, int(delay_s))),
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"SQS change_message_visibility failed: {exc}") from exc
