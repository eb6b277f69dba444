"""Webhooks under their tenant, and each webhook's delivery log under the webhook.

Layout (single table):
* webhook   pk=``TENANT#<tenant>`` sk=``WEBHOOK#<id>`` (by_create orders them);
* delivery  pk=``WEBHOOK#<webhook>`` sk=``DELIVERY#<id>`` (by_create orders the log); while a delivery is
  pending, ``gsi1`` indexes it under ``DELIVERY#pending`` so a restarted local server finds it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.ports.metadata import ITEM_EXISTS, ITEM_NOT_EXISTS, ConditionFailed, Delete, MetadataStore
from shared.repos.keys import ordered, tenant_pk, time_sort_key, time_sorted_item

Record = dict[str, Any]
_WEBHOOK = "WEBHOOK"
_DELIVERY = "DELIVERY"
_PENDING = "DELIVERY#pending"
# DynamoDB transactions hold at most 100 items; deletes go in batches well below that.
_BATCH = 25


def webhook_pk(webhook_id: str) -> str:
    return f"{_WEBHOOK}#{webhook_id}"


def _delivery_sk(delivery_id: str) -> str:
    return f"{_DELIVERY}#{delivery_id}"


class WebhookRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- webhooks ----------------------------------------------------------------------------------
    def get(self, tenant_id: str, webhook_id: str) -> Record | None:
        return self._store.get(tenant_pk(tenant_id), f"{_WEBHOOK}#{webhook_id}")

    def create(self, record: Record) -> None:
        pk, sk = tenant_pk(record["tenant_id"]), f"{_WEBHOOK}#{record['id']}"
        item = time_sorted_item(record, pk=pk, sk=sk, kind=_WEBHOOK)
        self._store.put(item, ITEM_NOT_EXISTS)

    def update(self, current: Record, changes: Record) -> Record:
        """Apply ``changes`` (with ``update_time``) to an existing webhook; returns it as it now is."""
        fields = {**changes, "ut_sk": time_sort_key(_WEBHOOK, changes["update_time"], current["id"])}
        return self._store.update(
            tenant_pk(current["tenant_id"]), f"{_WEBHOOK}#{current['id']}", set=fields, condition=ITEM_EXISTS
        )

    def list_webhooks(self, tenant_id: str, *, offset: int = 0, limit: int | None = None) -> list[Record]:
        """The tenant's webhooks, newest first."""
        return ordered(self._store, tenant_pk(tenant_id), _WEBHOOK, offset=offset, limit=limit)

    def count(self, tenant_id: str) -> int:
        return self._store.count(tenant_pk(tenant_id), sk_prefix=f"{_WEBHOOK}#")

    def delete(self, record: Record) -> None:
        """Remove a webhook and its delivery log."""
        self._store.delete(tenant_pk(record["tenant_id"]), f"{_WEBHOOK}#{record['id']}")
        self.delete_deliveries(record["id"], self._store.count(webhook_pk(record["id"])))

    # -- deliveries --------------------------------------------------------------------------------
    def add_delivery(self, record: Record) -> bool:
        """Record a new delivery (pending); False when one with this id exists (the event came again)."""
        pk, sk = webhook_pk(record["webhook_id"]), _delivery_sk(record["id"])
        item = {
            **time_sorted_item(record, pk=pk, sk=sk, kind=_DELIVERY),
            "gsi1pk": _PENDING,
            "gsi1sk": f"{record['create_time']:015d}#{record['id']}",
        }
        try:
            self._store.put(item, ITEM_NOT_EXISTS)
        except ConditionFailed:
            return False
        return True

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Record | None:
        return self._store.get(webhook_pk(webhook_id), _delivery_sk(delivery_id))

    def update_delivery(self, current: Record, changes: Record) -> Record:
        """Record an attempt; a delivery that is no longer pending leaves the pending index."""
        fields = {**changes, "ut_sk": time_sort_key(_DELIVERY, changes["update_time"], current["id"])}
        remove: tuple[str, ...] = ()
        if changes.get("status", current["status"]) != "pending":
            remove = ("gsi1pk", "gsi1sk")
        return self._store.update(
            webhook_pk(current["webhook_id"]),
            _delivery_sk(current["id"]),
            set=fields,
            remove=remove,
            condition=ITEM_EXISTS,
        )

    def mark_queued(self, delivery: Record) -> None:
        """Note that a delivery's first attempt is queued (a second fan-out of its event then leaves it be)."""
        self._store.update(webhook_pk(delivery["webhook_id"]), _delivery_sk(delivery["id"]), set={"queued": True})

    def list_deliveries(self, webhook_id: str, *, offset: int = 0, limit: int | None = None) -> list[Record]:
        """A webhook's delivery log, newest first."""
        return ordered(self._store, webhook_pk(webhook_id), _DELIVERY, offset=offset, limit=limit)

    def count_deliveries(self, webhook_id: str) -> int:
        return self._store.count(webhook_pk(webhook_id), sk_prefix=f"{_DELIVERY}#")

    def delete_deliveries(self, webhook_id: str, how_many: int) -> None:
        """Remove the ``how_many`` oldest deliveries of a webhook (the log is bounded)."""
        if how_many <= 0:
            return
        oldest = ordered(self._store, webhook_pk(webhook_id), _DELIVERY, desc=False, limit=how_many)
        for start in range(0, len(oldest), _BATCH):
            batch = oldest[start : start + _BATCH]
            self._store.transact([Delete(item["pk"], item["sk"]) for item in batch])

    def pending(self) -> Iterator[Record]:
        """Every pending delivery of every tenant, oldest first (for a restarted local server)."""
        yield from self._store.query(_PENDING, index="gsi1")
