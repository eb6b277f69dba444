"""Datasets under their tenant's partition, with a name guard item for case-insensitive uniqueness."""

from __future__ import annotations

from typing import Any, Literal

from shared.ports.metadata import (
    ITEM_EXISTS,
    ITEM_NOT_EXISTS,
    ConditionFailed,
    Delete,
    MetadataStore,
    Put,
    Update,
    WriteOp,
)
from shared.repos.keys import tenant_pk, time_sort_key

Record = dict[str, Any]
_KIND = "DS"
# Attributes a repository owns; never copied into responses.
STORAGE_ATTRS = frozenset({"pk", "sk", "ct_sk", "ut_sk", "gsi1pk", "gsi1sk"})


class DuplicateName(Exception):
    """Another dataset of the tenant already has this name (compared case-insensitively)."""


def _sk(dataset_id: str) -> str:
    return f"{_KIND}#{dataset_id}"


def _name_sk(name: str) -> str:
    return f"DSNAME#{name.lower()}"


class DatasetRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, tenant_id: str, dataset_id: str) -> Record | None:
        return self._store.get(tenant_pk(tenant_id), _sk(dataset_id))

    def get_by_name(self, tenant_id: str, name: str) -> Record | None:
        guard = self._store.get(tenant_pk(tenant_id), _name_sk(name))
        return None if guard is None else self.get(tenant_id, guard["dataset_id"])

    def create(self, record: Record) -> None:
        """Insert a dataset and its name guard atomically; DuplicateName when the name is taken."""
        pk = tenant_pk(record["tenant_id"])
        item = {
            **record,
            "pk": pk,
            "sk": _sk(record["id"]),
            "ct_sk": time_sort_key(_KIND, record["create_time"], record["id"]),
            "ut_sk": time_sort_key(_KIND, record["update_time"], record["id"]),
        }
        try:
            self._store.transact(
                [
                    Put(
                        {"pk": pk, "sk": _name_sk(record["name"]), "dataset_id": record["id"]},
                        ITEM_NOT_EXISTS,
                    ),
                    Put(item, ITEM_NOT_EXISTS),
                ]
            )
        except ConditionFailed as exc:
            raise DuplicateName(record["name"]) from exc

    def update(self, current: Record, changes: Record) -> Record:
        """Apply ``changes`` (must include ``update_time``); a rename moves the name guard atomically."""
        pk = tenant_pk(current["tenant_id"])
        dataset_id = current["id"]
        fields = dict(changes)
        fields["ut_sk"] = time_sort_key(_KIND, fields["update_time"], dataset_id)
        ops: list[WriteOp] = []
        new_name = fields.get("name")
        if new_name is not None and new_name.lower() != current["name"].lower():
            ops.append(Put({"pk": pk, "sk": _name_sk(new_name), "dataset_id": dataset_id}, ITEM_NOT_EXISTS))
            ops.append(Delete(pk, _name_sk(current["name"])))
        ops.append(Update(pk, _sk(dataset_id), set=fields, condition=ITEM_EXISTS))
        try:
            self._store.transact(ops)
        except ConditionFailed as exc:
            if new_name is not None and exc.index == 0 and len(ops) > 1:
                raise DuplicateName(new_name) from exc
            raise
        updated = self.get(current["tenant_id"], dataset_id)
        assert updated is not None
        return updated

    def delete(self, record: Record) -> None:
        """Remove a dataset and its name guard together."""
        pk = tenant_pk(record["tenant_id"])
        self._store.transact([Delete(pk, _sk(record["id"])), Delete(pk, _name_sk(record["name"]))])

    def page(
        self,
        tenant_id: str,
        *,
        orderby: Literal["create_time", "update_time"],
        desc: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Record], int]:
        """One page of the tenant's datasets and the total count."""
        index: Literal["by_create", "by_update"] = "by_create" if orderby == "create_time" else "by_update"
        pk = tenant_pk(tenant_id)
        prefix = f"{_KIND}#"
        items = self._store.query(pk, index=index, sk_prefix=prefix, ascending=not desc, limit=limit, offset=offset)
        return items, self._store.count(pk, index=index, sk_prefix=prefix)

    def all_of_tenant(self, tenant_id: str) -> list[Record]:
        return self._store.query(tenant_pk(tenant_id), sk_prefix=f"{_KIND}#")

    def add_counts(self, tenant_id: str, dataset_id: str, **deltas: int) -> Record:
        """Atomically add to document_count / chunk_count / token_num."""
        return self._store.update(tenant_pk(tenant_id), _sk(dataset_id), add=deltas)
