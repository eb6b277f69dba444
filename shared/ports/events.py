"""Event port: the service tells the outside world that work ended (a parse, a knowledge-graph or RAPTOR build).

On AWS the events go to EventBridge (the stack's bus or the default bus); locally an in-process dispatcher
hands them to subscribers (the webhook fan-out). Every event carries an id derived from the state change it
reports, so a change published twice (a retried step) is the same event and consumers dedupe it by ``id``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

#: EventBridge ``source`` of every event the service publishes.
EVENT_SOURCE: Final = "flowless"

EventType = Literal[
    "document.parse.done",
    "document.parse.failed",
    "document.parse.canceled",
    "dataset.graphrag.done",
    "dataset.graphrag.failed",
    "dataset.raptor.done",
    "dataset.raptor.failed",
]
EVENT_TYPES: tuple[EventType, ...] = (
    "document.parse.done",
    "document.parse.failed",
    "document.parse.canceled",
    "dataset.graphrag.done",
    "dataset.graphrag.failed",
    "dataset.raptor.done",
    "dataset.raptor.failed",
)


@dataclass(frozen=True)
class DomainEvent:
    """One state change that ended a piece of work, as subscribers and webhooks receive it.

    ``run`` is the final state (``DONE``, ``FAIL``, ``CANCEL``); ``document_id`` is None for dataset-wide
    tasks (knowledge graph, RAPTOR); ``at`` is the change's time in epoch milliseconds.
    """

    id: str
    type: EventType
    tenant_id: str
    dataset_id: str
    document_id: str | None
    run: str
    chunk_count: int | None
    token_count: int | None
    progress_msg: str
    at: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> DomainEvent:
        """An event as ``to_dict`` wrote it (e.g. the detail of an EventBridge event)."""
        if data.get("type") not in EVENT_TYPES:
            raise ValueError(f"not a flowless event type: {data.get('type')!r}")
        return DomainEvent(
            id=str(data["id"]),
            type=data["type"],
            tenant_id=str(data["tenant_id"]),
            dataset_id=str(data["dataset_id"]),
            document_id=data.get("document_id"),
            run=str(data["run"]),
            chunk_count=data.get("chunk_count"),
            token_count=data.get("token_count"),
            progress_msg=str(data.get("progress_msg") or ""),
            at=int(data["at"]),
        )


def event_id(*parts: str) -> str:
    """The id of the change ``parts`` name (e.g. document, task, final state): stable across retries."""
    return hashlib.blake2b(":".join(parts).encode("utf-8"), digest_size=16).hexdigest()


class EventPublishError(Exception):
    """The event could not be published (after the adapter's retries); the caller may retry the change's step."""


class EventPublisher(ABC):
    @abstractmethod
    def publish(self, event: DomainEvent) -> None:
        """Hand ``event`` to the bus; raises EventPublishError when that fails for good."""


class DisabledEventPublisher(EventPublisher):
    """For a deployment without an event bus (FLOWLESS_EVENT_BUS unset): events are dropped."""

    def publish(self, event: DomainEvent) -> None:
        return None
