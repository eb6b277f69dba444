"""Documents under their dataset's partition, and chunks under their document's partition.

Layout (single table):
* document  pk=``DS#<dataset>`` sk=``DOC#<id>`` (+ by_create/by_update sort keys; ``gsi1`` indexes the
  run state so a restarted worker finds interrupted parses);
* name guard pk=``DS#<dataset>`` sk=``DOCNAMES#<lower name>#<name>`` (exact uniqueness, found
  case-insensitively; ``DOCNAME#<lower name>`` guards of older documents are still honoured);
* chunk     pk=``DOC#<document>`` sk=``CHUNK#<id>``, ordered by ``ct_sk`` = ``CHUNK#<order>#<id>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shared.ports.metadata import ITEM_EXISTS, ITEM_NOT_EXISTS, Condition, Delete, MetadataStore, Put, Update, WriteOp
from shared.repos.datasets import NAMES_VERSION, counters_update
from shared.repos.keys import STORAGE_ATTRS, OrderBy, ordered, time_sort_key, time_sorted_item
from shared.repos.names import ExactNameGuard, NameGuard, NameTaken
from shared.repos.writes import TRANSACT_BATCH, transact_in_batches

Record = dict[str, Any]
_DOC = "DOC"
_NAMES = ExactNameGuard("DOCNAMES", "document_id", legacy=NameGuard("DOCNAME", "document_id"))
#: How many datasets' document names one repository keeps (each holds the names it was asked for).
_NAME_CACHE_DATASETS = 256

__all__ = ["STORAGE_ATTRS", "DocumentRepository", "DuplicateDocumentName", "Record", "dataset_pk", "document_pk"]


class DuplicateDocumentName(NameTaken):
    """Another document of the dataset already has this name."""


def dataset_pk(dataset_id: str) -> str:
    return f"DS#{dataset_id}"


def document_pk(document_id: str) -> str:
    return f"DOC#{document_id}"


def _doc_sk(document_id: str) -> str:
    return f"{_DOC}#{document_id}"


def _run_keys(run: str, update_time: int, document_id: str) -> dict[str, str]:
    return {"gsi1pk": f"RUN#{run}", "gsi1sk": f"{update_time:015d}#{document_id}"}


class DocumentRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._name_cache: dict[str, tuple[int, dict[str, str]]] = {}  # dataset → (NAMES_VERSION, names)

    # -- documents ---------------------------------------------------------------------------------
    def get(self, dataset_id: str, document_id: str) -> Record | None:
        return self._store.get(dataset_pk(dataset_id), _doc_sk(document_id))

    def names(self, documents: Mapping[str, str], versions: Mapping[str, int] | None = None) -> dict[str, str]:
        """The names of documents (``{document id: its dataset id}``) that exist, in one projected batch read:
        retrieval names every document among ~1,000 candidates without reading their whole records.

        With ``versions`` (``{dataset id: its NAMES_VERSION as just read}``), names already read under the
        same version are not read again: a rename or a delete raises the version in its own transaction, so a
        kept name is current for any reader that saw that version (a document deleted since may keep its
        name, as it would have in a read a moment earlier)."""
        if versions is None:
            return self._read_names(documents)
        kept: dict[str, dict[str, str]] = {}
        for dataset_id, version in versions.items():
            cached = self._name_cache.get(dataset_id)
            if cached is None or cached[0] != version:
                if len(self._name_cache) >= _NAME_CACHE_DATASETS:
                    self._name_cache.pop(next(iter(self._name_cache)), None)
                cached = self._name_cache[dataset_id] = (version, {})
            kept[dataset_id] = cached[1]
        found: dict[str, str] = {}
        missing: dict[str, str] = {}
        for document_id, dataset_id in documents.items():
            name = kept.get(dataset_id, {}).get(document_id)
            if name is None:
                missing[document_id] = dataset_id
            else:
                found[document_id] = name
        if missing:
            read = self._read_names(missing)
            for document_id, name in read.items():
                if (names := kept.get(missing[document_id])) is not None:
                    names[document_id] = name
            found.update(read)
        return found

    def _read_names(self, documents: Mapping[str, str]) -> dict[str, str]:
        keys = {
            document_id: (dataset_pk(dataset_id), _doc_sk(document_id)) for document_id, dataset_id in documents.items()
        }
        found = {(r["pk"], r["sk"]): r for r in self._store.batch_get(list(keys.values()), attributes=["name"])}
        return {document_id: found[key]["name"] for document_id, key in keys.items() if key in found}

    def name_taken(self, dataset_id: str, name: str) -> bool:
        """Whether a document of the dataset has this name, ignoring case (how uploads pick a free name)."""
        return bool(_NAMES.owners(self._store, dataset_pk(dataset_id), name))

    def _check_legacy_name(self, dataset_id: str, name: str) -> None:
        # Older documents' guards hold the lower-cased name only: compare their document's name exactly.
        def name_of(document_id: str) -> str | None:
            record = self.get(dataset_id, document_id)
            return None if record is None else str(record["name"])

        if _NAMES.held_by_legacy(self._store, dataset_pk(dataset_id), name, name_of):
            raise DuplicateDocumentName(name)

    def create_ops(self, record: Record) -> list[WriteOp]:
        """The writes inserting a document: its name claim (first: its failure means the name is taken), the
        item, and its count on the dataset. For callers joining them to writes of their own.
        DuplicateDocumentName at once when an older document (guarded the old way) has exactly this name."""
        self._check_legacy_name(record["dataset_id"], record["name"])
        pk = dataset_pk(record["dataset_id"])
        item = {
            **time_sorted_item(record, pk=pk, sk=_doc_sk(record["id"]), kind=_DOC),
            **_run_keys(record["run"], record["update_time"], record["id"]),
        }
        return [
            _NAMES.claim(pk, record["name"], record["id"]),
            Put(item, ITEM_NOT_EXISTS),
            counters_update(record["tenant_id"], record["dataset_id"], {"document_count": 1}, ITEM_EXISTS),
        ]

    def create(self, record: Record) -> None:
        """Insert a document with its name guard and count it on its dataset, atomically."""
        _NAMES.write(self._store, self.create_ops(record), record["name"], DuplicateDocumentName)

    def update_ops(
        self,
        current: Record,
        changes: Record,
        *,
        condition: Condition | None = None,
        dataset_deltas: dict[str, int] | None = None,
    ) -> tuple[list[WriteOp], bool]:
        """The writes of ``update``, and whether they rename (then the first op claims the new name)."""
        pk = dataset_pk(current["dataset_id"])
        document_id = current["id"]
        fields = dict(changes)
        fields["ut_sk"] = time_sort_key(_DOC, fields["update_time"], document_id)
        fields.update(_run_keys(str(fields.get("run", current["run"])), fields["update_time"], document_id))
        renaming = _NAMES.renaming(self._store, pk, current, fields)
        if renaming:
            self._check_legacy_name(current["dataset_id"], fields["name"])
        ops: list[WriteOp] = [
            *renaming,
            Update(pk, _doc_sk(document_id), set=fields, condition=condition or ITEM_EXISTS),
        ]
        if renaming:
            dataset_deltas = {**(dataset_deltas or {}), NAMES_VERSION: 1}
        if dataset_deltas:
            ops.append(counters_update(current["tenant_id"], current["dataset_id"], dataset_deltas))
        return ops, bool(renaming)

    def update(
        self,
        current: Record,
        changes: Record,
        *,
        condition: Condition | None = None,
        dataset_deltas: dict[str, int] | None = None,
    ) -> Record:
        """Apply ``changes`` (must include ``update_time``); renames move the name guard; ``dataset_deltas``
        are added to the dataset's counters in the same transaction."""
        ops, _ = self.update_ops(current, changes, condition=condition, dataset_deltas=dataset_deltas)
        _NAMES.write(self._store, ops, str(changes.get("name")), DuplicateDocumentName)
        updated = self.get(current["dataset_id"], current["id"])
        assert updated is not None
        return updated

    def delete(self, record: Record) -> None:
        """Remove a document, its name guard and its chunks; the dataset's counters follow."""
        self.delete_chunks_of(record["id"])
        pk = dataset_pk(record["dataset_id"])
        self._store.transact(
            [
                Delete(pk, _doc_sk(record["id"]), ITEM_EXISTS),
                *_NAMES.release(self._store, pk, record),
                counters_update(
                    record["tenant_id"],
                    record["dataset_id"],
                    {
                        "document_count": -1,
                        "chunk_count": -int(record.get("chunk_count", 0)),
                        "token_num": -int(record.get("token_count", 0)),
                        NAMES_VERSION: 1,
                    },
                ),
            ]
        )

    def list_all(self, dataset_id: str, *, orderby: OrderBy = "create_time", desc: bool = True) -> list[Record]:
        return ordered(self._store, dataset_pk(dataset_id), _DOC, orderby=orderby, desc=desc)

    def count(self, dataset_id: str) -> int:
        return self._store.count(dataset_pk(dataset_id), sk_prefix=f"{_DOC}#")

    def in_state(self, run: str) -> list[Record]:
        """Documents in a run state across all tenants (the worker's recovery scan)."""
        return self._store.query(f"RUN#{run}", index="gsi1")

    # -- chunks ------------------------------------------------------------------------------------
    def put_chunks(self, chunks: Sequence[Record]) -> None:
        """Write chunks (idempotent: ids are deterministic, a retry overwrites the same items)."""
        transact_in_batches(self._store, [Put(self._chunk_item(chunk)) for chunk in chunks])

    @staticmethod
    def _chunk_item(chunk: Record) -> Record:
        return {
            **chunk,
            "pk": document_pk(chunk["document_id"]),
            "sk": f"CHUNK#{chunk['id']}",
            "ct_sk": f"CHUNK#{chunk['order']}#{chunk['id']}",
        }

    def get_chunk(self, document_id: str, chunk_id: str) -> Record | None:
        return self._store.get(document_pk(document_id), f"CHUNK#{chunk_id}")

    def chunks_of(self, document_id: str) -> list[Record]:
        """A document's chunks in document order."""
        return self._store.query(document_pk(document_id), index="by_create", sk_prefix="CHUNK#")

    def iter_chunks(self, document_ids: Sequence[str]) -> Iterator[Record]:
        for document_id in document_ids:
            yield from self.chunks_of(document_id)

    def delete_chunks_of(self, document_id: str) -> list[str]:
        """Remove every chunk of a document; returns their ids."""
        ids = [chunk["id"] for chunk in self._store.query(document_pk(document_id), sk_prefix="CHUNK#")]
        self.delete_chunks(document_id, ids)
        return ids

    def add_chunk(self, document: Record, chunk: Record) -> None:
        """Insert one chunk and count it on its document and dataset, atomically."""
        self._store.transact(
            [
                Put(self._chunk_item(chunk), ITEM_NOT_EXISTS),
                Update(
                    dataset_pk(document["dataset_id"]),
                    _doc_sk(document["id"]),
                    add={"chunk_count": 1, "token_count": chunk["token_count"]},
                    condition=ITEM_EXISTS,
                ),
                counters_update(
                    document["tenant_id"], document["dataset_id"], {"chunk_count": 1, "token_num": chunk["token_count"]}
                ),
            ]
        )

    def replace_chunk(self, document: Record, old: Record, new: Record) -> None:
        """Overwrite a chunk; token counts on the document and dataset follow the change."""
        delta = int(new.get("token_count", 0)) - int(old.get("token_count", 0))
        ops: list[WriteOp] = [Put(self._chunk_item(new), ITEM_EXISTS)]
        if delta:
            ops.append(Update(dataset_pk(document["dataset_id"]), _doc_sk(document["id"]), add={"token_count": delta}))
            ops.append(counters_update(document["tenant_id"], document["dataset_id"], {"token_num": delta}))
        self._store.transact(ops)

    def remove_chunks(self, document: Record, chunks: Sequence[Record]) -> None:
        """Delete chunks and take them off their document's and dataset's counts (batch by batch)."""
        pk = document_pk(document["id"])
        for start in range(0, len(chunks), TRANSACT_BATCH):
            batch = chunks[start : start + TRANSACT_BATCH]
            tokens = sum(int(c.get("token_count", 0)) for c in batch)
            self._store.transact(
                [
                    *(Delete(pk, f"CHUNK#{c['id']}", ITEM_EXISTS) for c in batch),
                    Update(
                        dataset_pk(document["dataset_id"]),
                        _doc_sk(document["id"]),
                        add={"chunk_count": -len(batch), "token_count": -tokens},
                    ),
                    counters_update(
                        document["tenant_id"],
                        document["dataset_id"],
                        {"chunk_count": -len(batch), "token_num": -tokens},
                    ),
                ]
            )

    def delete_chunks(self, document_id: str, chunk_ids: Sequence[str]) -> None:
        pk = document_pk(document_id)
        transact_in_batches(self._store, [Delete(pk, f"CHUNK#{cid}") for cid in chunk_ids])
