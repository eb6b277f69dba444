"""In-process driver of the event port: subscribers get each event on a background thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from shared.ports.events import DomainEvent, EventPublisher

logger = logging.getLogger(__name__)

Subscriber = Callable[[DomainEvent], None]


class LocalEventDispatcher(EventPublisher):
    """Hands every published event to each subscriber, off the publisher's thread (a parse never waits for
    a webhook). A subscriber's failure is logged and does not reach the publisher or the other subscribers."""

    def __init__(self, max_workers: int = 2) -> None:
        self._subscribers: list[Subscriber] = []
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flowless-events")

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, event: DomainEvent) -> None:
        for subscriber in self._subscribers:
            self._pool.submit(self._deliver, subscriber, event)

    @staticmethod
    def _deliver(subscriber: Subscriber, event: DomainEvent) -> None:
        try:
            subscriber(event)
        except Exception:
            logger.exception("event subscriber failed for %s (%s)", event.id, event.type)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
