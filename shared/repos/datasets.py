"""Datasets under their tenant's partition, with a name guard item for case-insensitive uniqueness."""

from __future__ import annotations

from typing import Any

from shared.ports.metadata import Condition, Delete, Update
from shared.repos.keys import STORAGE_ATTRS as KEY_ATTRS
from shared.repos.keys import OrderBy, tenant_pk
from shared.repos.named import TenantNamedRecords
from shared.repos.names import NameGuard, NameTaken

Record = dict[str, Any]
_KIND = "DS"
_NAMES = NameGuard("DSNAME", "dataset_id")

__all__ = ["NAMES_VERSION", "STORAGE_ATTRS", "DatasetRepository", "DuplicateName", "Record", "counters_update"]

#: A dataset's count of document renames and deletes, raised in the same transaction as each: readers that
#: keep document names (retrieval names ~1,000 documents a query) know their copy is current while it holds.
NAMES_VERSION = "names_version"
STORAGE_ATTRS = KEY_ATTRS | {NAMES_VERSION}


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


class DatasetRepository(TenantNamedRecords):
    kind = _KIND
    names = _NAMES
    taken = DuplicateName

    def create(self, record: Record) -> None:
        """Insert a dataset and its name guard atomically; DuplicateName when the name is taken."""
        self._insert(record)

    def update(self, current: Record, changes: Record) -> Record:
        """Apply ``changes`` (must include ``update_time``); a rename moves the name guard atomically."""
        self._apply(current, changes, rename_on_read_name=False)
        return self._reread(current)

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
        items = self._ordered(tenant_id, orderby=orderby, desc=desc, offset=offset, limit=limit)
        return items, self._store.count(tenant_pk(tenant_id), sk_prefix=f"{_KIND}#")

    def add_counts(self, tenant_id: str, dataset_id: str, **deltas: int) -> Record:
        """Atomically add to document_count / chunk_count / token_num."""
        return self._store.update(tenant_pk(tenant_id), _sk(dataset_id), add=deltas)
