"""Records under their tenant's partition whose name is unique in the tenant (datasets, chats, agents).

Each kind keeps its records at sk ``<kind>#<id>`` with the by_create / by_update sort keys, and a name guard
(:class:`~shared.repos.names.NameGuard`) written in the same transaction as every create, rename and delete.
"""

from __future__ import annotations

from typing import Any, ClassVar

from shared.ports.metadata import (
    ITEM_EXISTS,
    ITEM_NOT_EXISTS,
    Condition,
    ConditionFailed,
    Delete,
    MetadataStore,
    Put,
    Update,
    WriteOp,
)
from shared.repos.keys import OrderBy, ordered, tenant_pk, time_sort_key, time_sorted_item
from shared.repos.names import NameGuard, NameTaken

Record = dict[str, Any]


class TenantNamedRecords:
    """The writes every tenant-named kind makes the same way; subclasses name the kind and add their own."""

    kind: ClassVar[str]
    names: ClassVar[NameGuard]
    #: Raised with the name when another record of the tenant holds it.
    taken: ClassVar[type[NameTaken]]
    #: The record attribute holding its tenant's id.
    tenant_attr: ClassVar[str] = "tenant_id"

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def _sk(self, record_id: str) -> str:
        return f"{self.kind}#{record_id}"

    def get(self, tenant_id: str, record_id: str) -> Record | None:
        return self._store.get(tenant_pk(tenant_id), self._sk(record_id))

    def get_by_name(self, tenant_id: str, name: str) -> Record | None:
        """The tenant's record holding ``name`` (compared case-insensitively), or None."""
        owner = self.names.owner(self._store, tenant_pk(tenant_id), name)
        return None if owner is None else self.get(tenant_id, owner)

    def _insert(self, record: Record, *more: WriteOp) -> None:
        """Claim the record's name and insert it, with ``more`` writes, in one transaction; ``taken`` when the
        name is held."""
        pk = tenant_pk(record[self.tenant_attr])
        name = record[self.names.name_attr]
        item = time_sorted_item(record, pk=pk, sk=self._sk(record["id"]), kind=self.kind)
        self.names.write(
            self._store, [self.names.claim(pk, name, record["id"]), Put(item, ITEM_NOT_EXISTS), *more], name, self.taken
        )

    def _apply(self, current: Record, changes: Record, *more: WriteOp, rename_on_read_name: bool = True) -> None:
        """Set ``changes`` (with ``update_time``) and ``more`` writes in one transaction; a rename moves the name
        guard with them. With ``rename_on_read_name`` a rename only applies to the name it was decided on: if the
        record was renamed meanwhile, the write fails (ConditionFailed) rather than strand a guard."""
        pk = tenant_pk(current[self.tenant_attr])
        name_attr = self.names.name_attr
        fields = {**changes, "ut_sk": time_sort_key(self.kind, changes["update_time"], current["id"])}
        renaming = self.names.renaming(pk, current, fields)
        condition = (
            Condition("equals", name_attr, current[name_attr]) if renaming and rename_on_read_name else ITEM_EXISTS
        )
        ops = [*renaming, Update(pk, self._sk(current["id"]), set=fields, condition=condition), *more]
        self.names.write(self._store, ops, str(fields.get(name_attr)), self.taken)

    def _reread(self, current: Record) -> Record:
        """The record as stored now (after a write of its own, so it exists)."""
        updated = self.get(current[self.tenant_attr], current["id"])
        assert updated is not None
        return updated

    def _remove(self, record: Record) -> None:
        """Delete the record with its name guard, conditioned on the name read, so a concurrent rename can't
        strand a guard (on such a race the record is read again and the delete retried)."""
        name_attr = self.names.name_attr
        current: Record | None = record
        while current is not None:
            pk = tenant_pk(current[self.tenant_attr])
            name = current[name_attr]
            try:
                self._store.transact(
                    [
                        Delete(pk, self._sk(current["id"]), Condition("equals", name_attr, name)),
                        self.names.release(pk, name),
                    ]
                )
                return
            except ConditionFailed:
                current = self.get(current[self.tenant_attr], current["id"])

    def _ordered(self, tenant_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        return ordered(
            self._store, tenant_pk(tenant_id), self.kind, orderby=orderby, desc=desc, offset=offset, limit=limit
        )

    def all_of_tenant(self, tenant_id: str) -> list[Record]:
        return self._store.query(tenant_pk(tenant_id), sk_prefix=f"{self.kind}#")
