"""Names unique within a partition: compared case-insensitively (datasets of a tenant, chats of a tenant) or
exactly (documents of a dataset, see ``ExactNameGuard``).

The single table has no unique index, so a name is claimed by a guard item ``<KIND>NAME#<lower name>`` in the
record's partition, written in the same transaction as the record: creating or renaming fails as a whole when
another record holds the name, and a delete releases it with the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.ports.metadata import ITEM_NOT_EXISTS, ConditionFailed, Delete, MetadataStore, Put, WriteOp

Record = dict[str, Any]


class NameTaken(Exception):
    """Another record of the partition already has this name (compared case-insensitively)."""


@dataclass(frozen=True)
class NameGuard:
    """The guard items of one kind of record; ``owner_attr`` names the record id they hold, ``name_attr`` the
    record's attribute holding the guarded name (agents guard their ``title``)."""

    prefix: str
    owner_attr: str
    name_attr: str = "name"

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
        new_name = changes.get(self.name_attr)
        old_name = current[self.name_attr]
        if not isinstance(new_name, str) or new_name.lower() == old_name.lower():
            return []
        return [self.claim(pk, new_name, current["id"]), self.release(pk, old_name)]

    def write(self, store: MetadataStore, ops: Sequence[WriteOp], name: str, taken: type[NameTaken]) -> None:
        """Run ``ops`` in one transaction. When the first is this guard's claim of ``name`` and fails, the name
        is held by another record: ``taken(name)``. Other failed conditions propagate as ConditionFailed."""
        _transact_claiming(store, ops, self.sk(name), name, taken)


@dataclass(frozen=True)
class ExactNameGuard:
    """Names unique as written (``a.txt`` and ``A.TXT`` may coexist), still found case-insensitively.

    Documents need both: RAGFlow names an upload ``a(1).txt`` when any document is named ``A.txt`` (a
    case-insensitive lookup) but lets a rename take a name that differs from another's only in case (an exact
    comparison). The guard item ``<prefix>#<lower name>#<name>`` holds the exact name, so the names equal to
    one ignoring case are the items under ``<prefix>#<lower name>#`` whose ``name`` folds to it.

    ``legacy`` is the case-insensitive guard such records had before: those items are still honoured (found,
    compared by their record's name, released with their record) but never written.
    """

    prefix: str
    owner_attr: str
    legacy: NameGuard

    def sk(self, name: str) -> str:
        return f"{self.prefix}#{name.lower()}#{name}"

    def owners(self, store: MetadataStore, pk: str, name: str) -> list[str]:
        """Ids of the records whose name equals ``name`` ignoring case."""
        folded = name.lower()
        items = store.query(pk, sk_prefix=f"{self.prefix}#{folded}#")
        owners = [str(item[self.owner_attr]) for item in items if str(item["name"]).lower() == folded]
        legacy = self.legacy.owner(store, pk, name)
        return owners if legacy is None or legacy in owners else [*owners, legacy]

    def claim(self, pk: str, name: str, record_id: str) -> Put:
        """The write taking ``name`` for ``record_id``; it fails when a record has exactly this name."""
        return Put({"pk": pk, "sk": self.sk(name), "name": name, self.owner_attr: record_id}, ITEM_NOT_EXISTS)

    def release(self, store: MetadataStore, pk: str, record: Record) -> list[WriteOp]:
        """The writes freeing ``record``'s name: its guard, and its legacy guard if it holds one."""
        ops: list[WriteOp] = [Delete(pk, self.sk(record["name"]))]
        if self.legacy.owner(store, pk, record["name"]) == record["id"]:
            ops.append(self.legacy.release(pk, record["name"]))
        return ops

    def renaming(self, store: MetadataStore, pk: str, current: Record, changes: Record) -> list[WriteOp]:
        """Claim the new name and release the old one when ``changes`` renames ``current`` (a change of case
        is a rename); nothing otherwise. The claim comes first, so ``write`` can tell a taken name apart."""
        new_name = changes.get("name")
        if not isinstance(new_name, str) or new_name == current["name"]:
            return []
        return [self.claim(pk, new_name, current["id"]), *self.release(store, pk, current)]

    def held_by_legacy(self, store: MetadataStore, pk: str, name: str, get_name: Callable[[str], str | None]) -> bool:
        """Whether a record guarded the old way has exactly ``name`` (``get_name`` reads a record's name)."""
        owner = self.legacy.owner(store, pk, name)
        return owner is not None and get_name(owner) == name

    def write(self, store: MetadataStore, ops: Sequence[WriteOp], name: str, taken: type[NameTaken]) -> None:
        """Run ``ops`` in one transaction; ``taken(name)`` when the first is the failed claim of ``name``."""
        _transact_claiming(store, ops, self.sk(name), name, taken)


def _transact_claiming(
    store: MetadataStore, ops: Sequence[WriteOp], claim_sk: str, name: str, taken: type[NameTaken]
) -> None:
    try:
        store.transact(list(ops))
    except ConditionFailed as exc:
        first = ops[0] if ops else None
        if exc.index == 0 and isinstance(first, Put) and first.item.get("sk") == claim_sk:
            raise taken(name) from exc
        raise
