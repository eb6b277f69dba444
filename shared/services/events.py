"""The events the service publishes when work ends, built from the records whose state changed.

``parse_event`` serves the parse pipeline (``IngestionService``); ``dataset_task_event`` is for the
dataset-wide builds (knowledge graph, RAPTOR) to call where their task reaches its final state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from shared.ids import now_ms
from shared.ports.events import DomainEvent, EventPublisher, EventPublishError, EventType, event_id

logger = logging.getLogger(__name__)

#: How much of a progress_msg an event carries (its end: the final lines say how the work ended).
PROGRESS_MSG_CHARS = 4000

_PARSE_TYPES: dict[str, EventType] = {
    "DONE": "document.parse.done",
    "FAIL": "document.parse.failed",
    "CANCEL": "document.parse.canceled",
}
#: The final run states of a parse: the changes that emit an event.
FINAL_RUNS = frozenset(_PARSE_TYPES)
_TASK_TYPES: dict[tuple[str, bool], EventType] = {
    ("graphrag", True): "dataset.graphrag.done",
    ("graphrag", False): "dataset.graphrag.failed",
    ("raptor", True): "dataset.raptor.done",
    ("raptor", False): "dataset.raptor.failed",
}


def _tail(message: str | None) -> str:
    text = message or ""
    return text if len(text) <= PROGRESS_MSG_CHARS else text[-PROGRESS_MSG_CHARS:]


def parse_event(document: Mapping[str, Any], task_id: str) -> DomainEvent:
    """The event of a document whose parse task ``task_id`` just ended in ``document["run"]``.

    Its id derives from document, task and final state: the same change always yields the same id."""
    run = str(document["run"])
    return DomainEvent(
        id=event_id("parse", document["id"], task_id, run),
        type=_PARSE_TYPES[run],
        tenant_id=document["tenant_id"],
        dataset_id=document["dataset_id"],
        document_id=document["id"],
        run=run,
        chunk_count=int(document.get("chunk_count") or 0),
        token_count=int(document.get("token_count") or 0),
        progress_msg=_tail(document.get("progress_msg")),
        at=int(document.get("update_time") or now_ms()),
    )


def dataset_task_event(
    kind: Literal["graphrag", "raptor"],
    *,
    tenant_id: str,
    dataset_id: str,
    task_id: str,
    succeeded: bool,
    progress_msg: str = "",
    chunk_count: int | None = None,
    token_count: int | None = None,
    at: int | None = None,
) -> DomainEvent:
    """The event of a knowledge-graph or RAPTOR build ``task_id`` of a dataset that just ended."""
    run = "DONE" if succeeded else "FAIL"
    return DomainEvent(
        id=event_id(kind, dataset_id, task_id, run),
        type=_TASK_TYPES[(kind, succeeded)],
        tenant_id=tenant_id,
        dataset_id=dataset_id,
        document_id=None,
        run=run,
        chunk_count=chunk_count,
        token_count=token_count,
        progress_msg=_tail(progress_msg),
        at=at if at is not None else now_ms(),
    )


def publish_quietly(events: EventPublisher, event: DomainEvent) -> None:
    """Publish where the change is already answered to a client (a stop request): a failure is logged, since
    the change itself stands and nothing retries it."""
    try:
        events.publish(event)
    except EventPublishError:
        logger.exception("event %s (%s) lost", event.id, event.type)
