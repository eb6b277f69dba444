"""Names unique within a partition, compared case-insensitively (datasets of a tenant, chats of a tenant,
documents of a dataset).

The single table has no unique index, so a name is claimed by a guard item ``<KIND>NAME#<lower name>`` in the
record's partition, written in the same transaction as the record: creating or renaming fails as a whole when
another record holds the name, and a delete releases it with the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.ports.metadata import ITEM_NOT_EXISTS, ConditionFailed, Delete, MetadataStore, Put, WriteOp

Record = dict[str, Any]


class NameTaken(Exception):
    """Another record of the partition already has this name (compared case-insensitively)."""


@dataclass(frozen=True)
class NameGuard:
    """The guard items of one kind of record; ``owner_attr`` names the record id they hold."""

    prefix: str
    owner_attr: str

    def sk(self, name: str) -> str:
        return f"{self.prefix}#{name.lower()}"

    def owner(self, store: MetadataStore, pk: str, name: str) -> str | None:
        """The id of the record holding ``name``, or None."""
        guard = store.get(pk, self.sk(name))
        return None if guard is None else str(guard[self.owner_attr])

    def claim(self, pk: str, name: str, record_id: str) -> Put:
        """The write taking ``name`` for ``record_id``; it fails when the name is held."""
        return Put({"pk": pk, "sk": self.sk(name), self.owner_attr: record_id}, ITEM_NOT_EXISTS)

    def release(self, pk: str, name: str) -> Delete:
        return Delete(pk, self.sk(name))

    def renaming(self, pk: str, current: Record, changes: Record) -> list[WriteOp]:
        """Claim the new name and release the old one when ``changes`` renames ``current`` (not a mere change
        of case); nothing otherwise. A rename's claim comes first, so ``write`` can tell a taken name apart."""
        new_name = changes.get("name")
        if not isinstance(new_name, str) or new_name.lower() == current["name"].lower():
            return []
        return [self.claim(pk, new_name, current["id"]), self.release(pk, current["name"])]

    def write(self, store: MetadataStore, ops: Sequence[WriteOp], name: str, taken: type[NameTaken]) -> None:
        """Run ``ops`` in one transaction. When the first is this guard's claim of ``name`` and fails, the name
        is held by another record: ``taken(name)``. Other failed conditions propagate as ConditionFailed."""
        try:
            store.transact(list(ops))
        except ConditionFailed as exc:
            first = ops[0] if ops else None
            if exc.index == 0 and isinstance(first, Put) and first.item.get("sk") == self.sk(name):
                raise taken(name) from exc
            raise
