"""Knowledge-graph and RAPTOR build tasks, and the knowledge graph's records.

Layout (single table):
* build task  pk=``DS#<dataset>`` sk=``KTASK#<graphrag|raptor>``: the dataset's latest task of that type
  (what ``trace_*`` shows); while it runs ``gsi1`` indexes it under ``KTASK#RUNNING`` so a restarted
  worker finds it;
* graph head  pk=``KG#<dataset>`` sk=``HEAD``: the blob holding the graph (node-link JSON) and its version,
  moved forward by conditional writes only (a build's merge and a document's removal never overwrite each
  other); ``gsi1`` lists every dataset with a graph (``KG``), for rebuilding the search index;
* records     pk=``KG#<dataset>`` sk=``ENT#<id>`` / ``REL#<id>`` / ``COM#<id>``: entities, relations and
  community reports with their vectors — the source of truth of the index's graph records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Final

from shared.ports.metadata import ITEM_NOT_EXISTS, Condition, ConditionFailed, Delete, MetadataStore, Put
from shared.repos.documents import dataset_pk
from shared.repos.writes import transact_in_batches

Record = dict[str, Any]

RUNNING_INDEX: Final = "KTASK#RUNNING"
GRAPH_INDEX: Final = "KG"
#: Sort-key prefix of each kind of graph record.
RECORD_PREFIX: Final = {"entity": "ENT#", "relation": "REL#", "community_report": "COM#"}
_HEAD = "HEAD"


def graph_pk(dataset_id: str) -> str:
    return f"KG#{dataset_id}"


def _task_sk(task_type: str) -> str:
    return f"KTASK#{task_type}"


class BuildTaskRepository:
    """A dataset's latest knowledge-graph / RAPTOR task record, written under optimistic locking."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, dataset_id: str, task_type: str) -> Record | None:
        return self._store.get(dataset_pk(dataset_id), _task_sk(task_type))

    def replace(self, record: Record, previous: Record | None) -> None:
        """Write a new task over ``previous`` (the one read before), or where there was none: ConditionFailed
        when another task was started meanwhile."""
        item = {
            **record,
            "pk": dataset_pk(record["dataset_id"]),
            "sk": _task_sk(record["task_type"]),
            "gsi1pk": RUNNING_INDEX,
            "gsi1sk": f"{record['update_time']:015d}#{record['id']}",
        }
        condition = ITEM_NOT_EXISTS if previous is None else Condition("equals", "id", previous["id"])
        self._store.put(item, condition)

    def update(self, current: Record, changes: Record, *, finished: bool = False) -> Record:
        """Apply ``changes`` if nobody wrote the task since ``current`` was read (ConditionFailed otherwise);
        ``finished`` takes it out of the running index."""
        fields = dict(changes)
        remove: tuple[str, ...] = ()
        if finished:
            remove = ("gsi1pk", "gsi1sk")
        else:
            fields["gsi1sk"] = f"{fields['update_time']:015d}#{current['id']}"
        return self._store.update(
            dataset_pk(current["dataset_id"]),
            _task_sk(current["task_type"]),
            set=fields,
            remove=remove,
            condition=Condition("equals", "seq", current["seq"]),
        )

    def running(self) -> list[Record]:
        """Tasks of every tenant still marked running (a worker's recovery scan)."""
        return self._store.query(RUNNING_INDEX, index="gsi1")

    def delete_all(self, dataset_id: str) -> None:
        for task_type in ("graphrag", "raptor"):
            self._store.delete(dataset_pk(dataset_id), _task_sk(task_type))


class GraphRepository:
    """The head of each dataset's graph and its entity / relation / community records."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- head ------------------------------------------------------------------------------------------
    def head(self, dataset_id: str) -> Record | None:
        return self._store.get(graph_pk(dataset_id), _HEAD)

    def move_head(self, tenant_id: str, dataset_id: str, previous: Record | None, changes: Record) -> Record:
        """Point the dataset's graph at a new blob: ConditionFailed when the head moved since ``previous``."""
        version = int(previous["version"]) + 1 if previous else 1
        item = {
            **changes,
            "pk": graph_pk(dataset_id),
            "sk": _HEAD,
            "tenant_id": tenant_id,
            "dataset_id": dataset_id,
            "version": version,
            "gsi1pk": GRAPH_INDEX,
            "gsi1sk": dataset_id,
        }
        condition = ITEM_NOT_EXISTS if previous is None else Condition("equals", "version", previous["version"])
        self._store.put(item, condition)
        return item

    def mark_records_written(self, dataset_id: str, version: int) -> None:
        """Note that the records of graph ``version`` are all written (if the head is still at it): a build
        that finds the head without this note rewrites every record (a writer died in between)."""
        # A head that moved on meanwhile is left alone: the next version's writer notes its own.
        with contextlib.suppress(ConditionFailed):
            self._store.update(
                graph_pk(dataset_id),
                _HEAD,
                set={"records_version": version},
                condition=Condition("equals", "version", version),
            )

    def drop_head(self, dataset_id: str) -> None:
        self._store.delete(graph_pk(dataset_id), _HEAD)

    def heads(self) -> list[Record]:
        """The head of every dataset (of every tenant) that has a graph."""
        return self._store.query(GRAPH_INDEX, index="gsi1")

    # -- records -----------------------------------------------------------------------------------------
    def put_records(self, dataset_id: str, records: Sequence[Record]) -> None:
        """Write records (``kind`` and ``id`` decide the key); idempotent."""
        pk = graph_pk(dataset_id)
        items = [{**r, "pk": pk, "sk": RECORD_PREFIX[r["kind"]] + r["id"]} for r in records]
        transact_in_batches(self._store, [Put(item) for item in items])

    def delete_records(self, dataset_id: str, kind: str, ids: Sequence[str]) -> None:
        pk = graph_pk(dataset_id)
        keys = [RECORD_PREFIX[kind] + i for i in dict.fromkeys(ids)]
        transact_in_batches(self._store, [Delete(pk, sk) for sk in keys])

    def records(self, dataset_id: str, kind: str) -> list[Record]:
        return self._store.query(graph_pk(dataset_id), sk_prefix=RECORD_PREFIX[kind])

    def get_records(self, dataset_id: str, kind: str, ids: Sequence[str]) -> list[Record]:
        pk = graph_pk(dataset_id)
        return self._store.batch_get([(pk, RECORD_PREFIX[kind] + i) for i in dict.fromkeys(ids)])

    def iter_all_records(self) -> Iterator[Record]:
        """Every graph record of every dataset (rebuilding the search index)."""
        for head in self.heads():
            for kind in RECORD_PREFIX:
                yield from self.records(head["dataset_id"], kind)

    def delete_all(self, dataset_id: str) -> list[str]:
        """Remove the head and every record of the dataset's graph; returns the records' ids."""
        removed: list[str] = []
        for kind in RECORD_PREFIX:
            ids = [r["id"] for r in self.records(dataset_id, kind)]
            self.delete_records(dataset_id, kind, ids)
            removed += ids
        self.drop_head(dataset_id)
        return removed
