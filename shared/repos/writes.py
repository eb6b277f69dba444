"""Writes that several repositories make the same way: batches of transactions, version-guarded updates."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.ids import http_date, now_ms
from shared.ports.metadata import Condition, ConditionFailed, MetadataStore, WriteOp
from shared.repos.keys import time_sort_key

#: DynamoDB transactions hold at most 100 items; batched writes go in transactions well below that.
TRANSACT_BATCH = 25
_VERSIONED_ATTEMPTS = 16
_VERSIONED_BACKOFF_CAP_S = 0.1


def transact_in_batches(store: MetadataStore, ops: Sequence[WriteOp]) -> None:
    """Run ``ops`` in transactions of :data:`TRANSACT_BATCH` (each batch all or nothing, not the whole)."""
    for start in range(0, len(ops), TRANSACT_BATCH):
        store.transact(list(ops[start : start + TRANSACT_BATCH]))


def update_versioned(
    store: MetadataStore,
    current: dict[str, Any],
    *,
    pk: str,
    sk: str,
    kind: str,
    changes: Callable[[dict[str, Any]], dict[str, Any]],
    reread: Callable[[], dict[str, Any] | None],
    missing: type[LookupError],
    gave_up: str,
) -> dict[str, Any]:
    """Write ``changes(current)`` with a bumped ``version`` and a new update time, and return the record.

    A read-modify-write guarded by ``version``: when another writer got in first, the record is read again
    (``reread``) and ``changes`` applied to the fresh copy, so no concurrent change is lost. ``missing(id)``
    when the record is gone; ConditionFailed(``gave_up``) when it kept changing through every attempt.
    """
    for attempt in range(_VERSIONED_ATTEMPTS):
        now = now_ms()
        fields: dict[str, Any] = {
            **changes(current),
            "version": int(current.get("version", 0)) + 1,
            "update_time": now,
            "update_date": http_date(now),
            "ut_sk": time_sort_key(kind, now, current["id"]),
        }
        try:
            return store.update(pk, sk, set=fields, condition=Condition("equals", "version", current.get("version", 0)))
        except ConditionFailed:
            fresh = reread()
            if fresh is None:
                raise missing(current["id"]) from None
            current = fresh
            # Exponential backoff with full jitter spreads out writers that keep colliding.
            time.sleep(random.uniform(0, min(_VERSIONED_BACKOFF_CAP_S, 0.002 * 2**attempt)))
    raise ConditionFailed(gave_up)
