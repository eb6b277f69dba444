"""Datasets under their tenant's partition, with a name guard item for case-insensitive uniqueness."""

from __future__ import annotations

from typing import Any

from shared.ports.metadata import ITEM_EXISTS, ITEM_NOT_EXISTS, Condition, Delete, MetadataStore, Put, Update
from shared.repos.keys import STORAGE_ATTRS, OrderBy, ordered, tenant_pk, time_sort_key, time_sorted_item
from shared.repos.names import NameGuard, NameTaken

Record = dict[str, Any]
_KIND = "DS"
_NAMES = NameGuard("DSNAME", "dataset_id")

__all__ = ["STORAGE_ATTRS", "DatasetRepository", "DuplicateName", "Record", "counters_update"]


class DuplicateName(NameTaken):
    """Another dataset of the tenant already has this name (compared case-insensitively)."""


def _sk(dataset_id: str) -> str:
    return f"{_KIND}#{dataset_id}"


def counters_update(
    tenant_id: str, dataset_id: str, deltas: dict[str, int], condition: Condition | None = None
) -> Update:
    """The write adding ``deltas`` to a dataset's document_count / chunk_count / token_num, for transactions
    that change documents or chunks together with their dataset's counts."""
    return Update(tenant_pk(tenant_id), _sk(dataset_id), add=deltas, condition=condition)


class DatasetRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, tenant_id: str, dataset_id: str) -> Record | None:
        return self._store.get(tenant_pk(tenant_id), _sk(dataset_id))

    def get_by_name(self, tenant_id: str, name: str) -> Record | None:
        owner = _NAMES.owner(self._store, tenant_pk(tenant_id), name)
        return None if owner is None else self.get(tenant_id, owner)

    def create(self, record: Record) -> None:
        """Insert a dataset and its name guard atomically; DuplicateName when the name is taken."""
        pk = tenant_pk(record["tenant_id"])
        item = time_sorted_item(record, pk=pk, sk=_sk(record["id"]), kind=_KIND)
        claim = _NAMES.claim(pk, record["name"], record["id"])
        _NAMES.write(self._store, [claim, Put(item, ITEM_NOT_EXISTS)], record["name"], DuplicateName)

    def update(self, current: Record, changes: Record) -> Record:
        """Apply ``changes`` (must include ``update_time``); a rename moves the name guard atomically."""
        pk = tenant_pk(current["tenant_id"])
        dataset_id = current["id"]
        fields = {**changes, "ut_sk": time_sort_key(_KIND, changes["update_time"], dataset_id)}
        ops = [*_NAMES.renaming(pk, current, fields), Update(pk, _sk(dataset_id), set=fields, condition=ITEM_EXISTS)]
        _NAMES.write(self._store, ops, str(fields.get("name")), DuplicateName)
        updated = self.get(current["tenant_id"], dataset_id)
        assert updated is not None
        return updated

    def delete(self, record: Record) -> None:
        """Remove a dataset and its name guard together."""
        pk = tenant_pk(record["tenant_id"])
        self._store.transact([Delete(pk, _sk(record["id"])), _NAMES.release(pk, record["name"])])

    def page(
        self,
        tenant_id: str,
        *,
        orderby: OrderBy,
        desc: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Record], int]:
        """One page of the tenant's datasets and the total count."""
        pk = tenant_pk(tenant_id)
        items = ordered(self._store, pk, _KIND, orderby=orderby, desc=desc, offset=offset, limit=limit)
        return items, self._store.count(pk, sk_prefix=f"{_KIND}#")

    def all_of_tenant(self, tenant_id: str) -> list[Record]:
        return self._store.query(tenant_pk(tenant_id), sk_prefix=f"{_KIND}#")

    def add_counts(self, tenant_id: str, dataset_id: str, **deltas: int) -> Record:
        """Atomically add to document_count / chunk_count / token_num."""
        return self._store.update(tenant_pk(tenant_id), _sk(dataset_id), add=deltas)
