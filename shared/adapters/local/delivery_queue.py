"""In-process driver of the delivery queue: a scheduler thread and a few workers (the local stand-in for SQS).

Attempts due now run on the workers; an attempt that asks to be retried is scheduled again after its delay.
The retry loop is bounded by the webhook service's attempt limit. Pending deliveries outlive a stop in the
metadata store (``WebhookService.resume_pending`` queues them again at start).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from shared.ports.webhooks import DeliveryQueue

logger = logging.getLogger(__name__)


class Outcome(Protocol):
    @property
    def retry_after(self) -> float | None: ...


Deliver = Callable[[str, str], Outcome]


class LocalDeliveryQueue(DeliveryQueue):
    def __init__(self, deliver: Deliver, *, max_workers: int = 4) -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flowless-webhooks")
        self._due: list[tuple[float, int, str, str]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._scheduler = threading.Thread(target=self._run, name="flowless-webhook-scheduler", daemon=True)
        self._scheduler.start()

    def enqueue(self, webhook_id: str, delivery_id: str, delay_s: float = 0.0) -> None:
        with self._wake:
            due = time.monotonic() + max(0.0, delay_s)
            heapq.heappush(self._due, (due, next(self._order), webhook_id, delivery_id))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                _, _, webhook_id, delivery_id = heapq.heappop(self._due)
            self._pool.submit(self._attempt, webhook_id, delivery_id)

    def _attempt(self, webhook_id: str, delivery_id: str) -> None:
        try:
            outcome = self._deliver(webhook_id, delivery_id)
        except Exception:
            # The delivery stays pending in the store: the next start resumes it.
            logger.exception("webhook delivery %s could not be attempted", delivery_id)
            return
        if outcome.retry_after is not None:
            self.enqueue(webhook_id, delivery_id, outcome.retry_after)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._scheduler.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
