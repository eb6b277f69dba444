"""The file manager's records: folders and files per tenant, and the file → document link table.

Layout (single table):
* row       pk=``FILES#<tenant>#<parent id>`` sk=``DIR#<id>`` (folders) or ``FILE#<id>`` (files), ordered by
  ``ct_sk``/``ut_sk`` = ``F#<ms>#<id>``: a folder's listing is one partition of the by_create / by_update
  index, and its sub-folders are the ``DIR#`` prefix of the main index. The root folder (its own parent in
  RAGFlow's model) lives alone in ``FILES#<tenant>#ROOT`` so it never lists itself;
* name      pk=``FILES#<tenant>#<parent id>`` sk=``NAME#<lower name>``: names are unique per folder (compared
  case-insensitively, as RAGFlow's MySQL collation compares them), claimed in the same transaction;
* locator   pk=``FILEID#<tenant>#<id>`` sk=``FILE``: where a row is (its parent), so an id reads in two
  consistent gets and a move rewrites one row, never a subtree;
* anchor    pk=``TENANT#<tenant>`` sk=``FILEROOT`` / ``FILEKB`` / ``FILEKB#<dataset>``: the root folder, the
  ``.knowledgebase`` folder and each dataset's folder in it, created once under a condition;
* link      pk=``F2D#<tenant>#<file id>`` sk=``DOC#<document id>`` and its back-link
  pk=``D2F#<document id>`` sk=``FILE#<file id>``, written and removed together.

A folder row's ``size`` is the recursive size of its content, kept by the writes themselves: every write
that adds or removes bytes adds the difference to the folder and each ancestor in the same transaction,
with a condition that each ancestor row is still where it was read (a concurrent move fails the write
instead of counting bytes in the wrong place). Listing a folder thus never walks its subtree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.ports.metadata import (
    ITEM_EXISTS,
    ITEM_NOT_EXISTS,
    Check,
    ConditionFailed,
    Delete,
    MetadataStore,
    Put,
    Update,
    WriteOp,
)
from shared.repos.keys import STORAGE_ATTRS as KEY_ATTRS
from shared.repos.keys import OrderBy, ordered, tenant_pk, time_sort_key, time_sorted_item
from shared.repos.names import NameGuard

Record = dict[str, Any]
FOLDER = "folder"
_ROW = "F"
_NAMES = NameGuard("NAME", "file_id")
#: Attributes the repository keeps on a row that clients never see (keys, where the bytes are, anchors).
STORAGE_ATTRS = KEY_ATTRS | {"blob_key", "anchor"}
#: How deep folders may nest below the root. Every write adds its byte count to each ancestor in one
#: transaction, and DynamoDB's transactions hold 100 items: a move touches the old and the new ancestors
#: besides its own five items, so 2 * (40 + 1) + 5 stays below that.
MAX_FOLDER_DEPTH = 40
#: DynamoDB's limit on the items of one transaction.
MAX_TRANSACTION_ITEMS = 100

ROOT_ANCHOR = "FILEROOT"
KNOWLEDGEBASE_ANCHOR = "FILEKB"


def dataset_anchor(dataset_id: str) -> str:
    return f"FILEKB#{dataset_id}"


class DuplicateFileName(Exception):
    """Another file of the folder already has this name (compared case-insensitively)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class DuplicateLinkedName(Exception):
    """A write that other repositories joined failed on one of their name guards (``owner`` says whose)."""

    def __init__(self, owner: str, name: str) -> None:
        super().__init__(name)
        self.owner = owner
        self.name = name


def _folder_pk(tenant_id: str, parent_id: str) -> str:
    return f"FILES#{tenant_id}#{parent_id}"


def row_key(tenant_id: str, file_id: str, parent_id: str, *, folder: bool) -> tuple[str, str]:
    """The key of a file's row (the root, its own parent, has a partition of its own)."""
    pk = _folder_pk(tenant_id, "ROOT" if parent_id == file_id else parent_id)
    return pk, f"DIR#{file_id}" if folder else f"FILE#{file_id}"


def _locator_key(tenant_id: str, file_id: str) -> tuple[str, str]:
    return f"FILEID#{tenant_id}#{file_id}", "FILE"


def _link_key(tenant_id: str, file_id: str, document_id: str) -> tuple[str, str]:
    return f"F2D#{tenant_id}#{file_id}", f"DOC#{document_id}"


def _backlink_key(document_id: str, file_id: str) -> tuple[str, str]:
    return f"D2F#{document_id}", f"FILE#{file_id}"


def is_folder(record: Mapping[str, Any]) -> bool:
    return bool(record["type"] == FOLDER)


def is_root(record: Mapping[str, Any]) -> bool:
    return bool(record["parent_id"] == record["id"])


@dataclass(frozen=True)
class Ancestor:
    """A folder on the way from some folder up to the root (``parent_id == id`` for the root)."""

    id: str
    parent_id: str


@dataclass
class FileWrites:
    """The writes of one transaction, remembering which ops claim a name (to say which name was taken)."""

    ops: list[WriteOp] = field(default_factory=list)
    claims: dict[int, tuple[str, str]] = field(default_factory=dict)  # op index → (owner, name)

    def add(self, *ops: WriteOp) -> None:
        self.ops.extend(ops)

    def claim(self, op: WriteOp, name: str, owner: str = "file") -> None:
        """Add ``op``, a conditional put of a name guard: its failure means ``name`` is taken."""
        self.claims[len(self.ops)] = (owner, name)
        self.ops.append(op)

    def extend(self, other: FileWrites) -> None:
        offset = len(self.ops)
        self.ops.extend(other.ops)
        self.claims.update({offset + index: claim for index, claim in other.claims.items()})

    def __len__(self) -> int:
        return len(self.ops)


class FileRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- reads -------------------------------------------------------------------------------------
    def get(self, tenant_id: str, file_id: str) -> Record | None:
        """The tenant's file or folder with this id (another tenant's id reads as missing)."""
        for _ in range(3):  # a concurrent move may re-home the row between the two reads
            locator = self._store.get(*_locator_key(tenant_id, file_id))
            if locator is None:
                return None
            row = self._store.get(*row_key(tenant_id, file_id, locator["parent_id"], folder=locator["folder"]))
            if row is not None:
                return row
        return None

    def get_many(self, tenant_id: str, file_ids: Sequence[str]) -> dict[str, Record]:
        """The tenant's files among ``file_ids``, by id (missing ones are left out)."""
        ids = list(dict.fromkeys(file_ids))
        locators = self._store.batch_get([_locator_key(tenant_id, i) for i in ids])
        keys = [row_key(tenant_id, loc["file_id"], loc["parent_id"], folder=loc["folder"]) for loc in locators]
        found = {row["id"]: row for row in self._store.batch_get(keys)}
        for file_id in ids:  # rows that moved between the two reads
            if file_id not in found and any(loc["file_id"] == file_id for loc in locators):
                row = self.get(tenant_id, file_id)
                if row is not None:
                    found[file_id] = row
        return found

    def anchored(self, tenant_id: str, anchor: str) -> Record | None:
        """The folder an anchor (root, ``.knowledgebase``, a dataset's folder) points at."""
        item = self._store.get(tenant_pk(tenant_id), anchor)
        return None if item is None else self.get(tenant_id, item["file_id"])

    def name_owner(self, tenant_id: str, parent_id: str, name: str) -> str | None:
        """The id of the file called ``name`` (any case) in the folder, if any."""
        return _NAMES.owner(self._store, _folder_pk(tenant_id, parent_id), name)

    def children_page(
        self,
        tenant_id: str,
        folder_id: str,
        *,
        orderby: OrderBy,
        desc: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Record], int]:
        """One page of a folder's content in time order, and how many items it holds."""
        pk = _folder_pk(tenant_id, folder_id)
        rows = ordered(self._store, pk, _ROW, orderby=orderby, desc=desc, offset=offset, limit=limit)
        return rows, self._store.count(pk, index="by_create", sk_prefix=f"{_ROW}#")

    def children(self, tenant_id: str, folder_id: str) -> list[Record]:
        """Everything directly in a folder (oldest first)."""
        return ordered(self._store, _folder_pk(tenant_id, folder_id), _ROW, desc=False)

    def child_folders(self, tenant_id: str, folder_id: str, *, limit: int | None = None) -> list[Record]:
        """The folders directly in a folder (the ``DIR#`` prefix: files are not read)."""
        return self._store.query(_folder_pk(tenant_id, folder_id), sk_prefix="DIR#", limit=limit)

    def has_child_folder(self, tenant_id: str, folder_id: str) -> bool:
        return bool(self.child_folders(tenant_id, folder_id, limit=1))

    def ancestry(self, tenant_id: str, folder_id: str) -> list[Ancestor]:
        """``folder_id`` and every folder above it, up to and including the root.

        Reads one locator per level; raises LookupError when a folder on the way is gone (a concurrent rm).
        """
        chain: list[Ancestor] = []
        current = folder_id
        for _ in range(MAX_FOLDER_DEPTH + 2):
            locator = self._store.get(*_locator_key(tenant_id, current))
            if locator is None:
                raise LookupError(current)
            chain.append(Ancestor(current, locator["parent_id"]))
            if locator["parent_id"] == current:
                return chain
            current = locator["parent_id"]
        raise LookupError(f"folder {folder_id} is nested deeper than {MAX_FOLDER_DEPTH} levels")

    # -- links -------------------------------------------------------------------------------------
    def links_of_file(self, tenant_id: str, file_id: str) -> list[Record]:
        """The file's conversions: ``{id, file_id, document_id, dataset_id, ...}``."""
        pk, _ = _link_key(tenant_id, file_id, "")
        return self._store.query(pk, sk_prefix="DOC#")

    def links_of_document(self, document_id: str) -> list[Record]:
        """The files a document is linked to: ``{id, file_id, document_id, tenant_id}``."""
        pk, _ = _backlink_key(document_id, "")
        return self._store.query(pk, sk_prefix="FILE#")

    # -- write builders ----------------------------------------------------------------------------
    @staticmethod
    def _row_item(record: Record) -> Record:
        pk, sk = row_key(record["tenant_id"], record["id"], record["parent_id"], folder=is_folder(record))
        return time_sorted_item(record, pk=pk, sk=sk, kind=_ROW)

    def insert(self, record: Record, *, anchor: str | None = None) -> FileWrites:
        """A new row, its name guard (unless it is the root) and its locator; ``anchor`` points at it."""
        tenant_id, file_id, parent_id = record["tenant_id"], record["id"], record["parent_id"]
        item = self._row_item(record)
        writes = FileWrites()
        if anchor is not None:
            item["anchor"] = anchor
            writes.claim(
                Put({"pk": tenant_pk(tenant_id), "sk": anchor, "file_id": file_id}, ITEM_NOT_EXISTS), anchor, "anchor"
            )
        if parent_id != file_id:
            writes.claim(_NAMES.claim(_folder_pk(tenant_id, parent_id), record["name"], file_id), record["name"])
        locator_pk, locator_sk = _locator_key(tenant_id, file_id)
        writes.add(
            Put(item, ITEM_NOT_EXISTS),
            Put(
                {
                    "pk": locator_pk,
                    "sk": locator_sk,
                    "file_id": file_id,
                    "parent_id": parent_id,
                    "folder": is_folder(record),
                },
                ITEM_NOT_EXISTS,
            ),
        )
        return writes

    def delete(self, record: Record) -> FileWrites:
        """Remove a row with its name guard, locator and anchor (links are removed with their documents)."""
        tenant_id, file_id, parent_id = record["tenant_id"], record["id"], record["parent_id"]
        writes = FileWrites()
        writes.add(
            Delete(*row_key(tenant_id, file_id, parent_id, folder=is_folder(record)), ITEM_EXISTS),
            Delete(*_locator_key(tenant_id, file_id)),
        )
        if parent_id != file_id:
            writes.add(_NAMES.release(_folder_pk(tenant_id, parent_id), record["name"]))
        if record.get("anchor"):
            writes.add(Delete(tenant_pk(tenant_id), record["anchor"]))
        return writes

    def rename(self, record: Record, name: str, changes: Mapping[str, Any]) -> FileWrites:
        """Rename a row (``changes`` carries ``update_time``); the name guard moves when the name differs
        in more than case."""
        tenant_id, file_id, parent_id = record["tenant_id"], record["id"], record["parent_id"]
        writes = FileWrites()
        renaming = _NAMES.renaming(_folder_pk(tenant_id, parent_id), record, {"name": name})
        if renaming:
            claim, release = renaming
            writes.claim(claim, name)
            writes.add(release)
        fields = {**changes, "name": name, "ut_sk": time_sort_key(_ROW, changes["update_time"], file_id)}
        writes.add(
            Update(*row_key(tenant_id, file_id, parent_id, folder=is_folder(record)), set=fields, condition=ITEM_EXISTS)
        )
        return writes

    def move(self, record: Record, destination_id: str, changes: Mapping[str, Any]) -> FileWrites:
        """Re-home a row under another folder: the row, its name guard and its locator move; a folder's
        content stays where it is (it hangs off the folder's id), so a whole tree moves in five items."""
        tenant_id, file_id, parent_id = record["tenant_id"], record["id"], record["parent_id"]
        moved = {key: value for key, value in record.items() if key not in KEY_ATTRS}
        moved.update(changes, parent_id=destination_id)
        writes = FileWrites()
        writes.claim(_NAMES.claim(_folder_pk(tenant_id, destination_id), record["name"], file_id), record["name"])
        writes.add(
            _NAMES.release(_folder_pk(tenant_id, parent_id), record["name"]),
            Delete(*row_key(tenant_id, file_id, parent_id, folder=is_folder(record)), ITEM_EXISTS),
            Put(self._row_item(moved), ITEM_NOT_EXISTS),
            Update(*_locator_key(tenant_id, file_id), set={"parent_id": destination_id}, condition=ITEM_EXISTS),
        )
        return writes

    def resize(self, tenant_id: str, deltas: Mapping[Ancestor, int], *, keep: Iterable[Ancestor] = ()) -> FileWrites:
        """Add each delta to its folder's recursive ``size``; folders in ``keep`` are checked to still be
        where they were read even when their delta is zero."""
        writes = FileWrites()
        kept = set(keep)
        for folder in dict.fromkeys([*deltas, *kept]):
            delta = deltas.get(folder, 0)
            if delta == 0 and folder not in kept:
                continue
            key = row_key(tenant_id, folder.id, folder.parent_id, folder=True)
            writes.add(Update(*key, add={"size": delta}, condition=ITEM_EXISTS))
        return writes

    def link(self, link: Record) -> FileWrites:
        """Record that ``link['file_id']`` was converted into ``link['document_id']`` (both directions)."""
        pk, sk = _link_key(link["tenant_id"], link["file_id"], link["document_id"])
        back_pk, back_sk = _backlink_key(link["document_id"], link["file_id"])
        writes = FileWrites()
        writes.add(
            Put({**link, "pk": pk, "sk": sk}),
            Put(
                {
                    "pk": back_pk,
                    "sk": back_sk,
                    "id": link["id"],
                    "file_id": link["file_id"],
                    "document_id": link["document_id"],
                    "tenant_id": link["tenant_id"],
                }
            ),
        )
        return writes

    def unlink(self, tenant_id: str, file_id: str, document_id: str) -> FileWrites:
        writes = FileWrites()
        writes.add(Delete(*_link_key(tenant_id, file_id, document_id)), Delete(*_backlink_key(document_id, file_id)))
        return writes

    def set_fields(self, record: Record, fields: Mapping[str, Any], *, remove: Sequence[str] = ()) -> FileWrites:
        key = row_key(record["tenant_id"], record["id"], record["parent_id"], folder=is_folder(record))
        writes = FileWrites()
        writes.add(Update(*key, set=fields, remove=remove, condition=ITEM_EXISTS))
        return writes

    def check_exists(self, record: Record) -> FileWrites:
        key = row_key(record["tenant_id"], record["id"], record["parent_id"], folder=is_folder(record))
        writes = FileWrites()
        writes.add(Check(*key, ITEM_EXISTS))
        return writes

    def release_anchor(self, tenant_id: str, anchor: str) -> FileWrites:
        writes = FileWrites()
        writes.add(Delete(tenant_pk(tenant_id), anchor))
        return writes

    def drop_anchor(self, tenant_id: str, anchor: str) -> None:
        """Remove an anchor on its own (one left pointing at nothing)."""
        self._store.delete(tenant_pk(tenant_id), anchor)

    # -- commit ------------------------------------------------------------------------------------
    def commit(self, writes: FileWrites) -> None:
        """Apply ``writes`` in one transaction. DuplicateFileName when one of its names is taken,
        DuplicateLinkedName when another owner's name guard failed; ConditionFailed otherwise."""
        if not writes.ops:
            return
        try:
            self._store.transact(writes.ops)
        except ConditionFailed as exc:
            claim = writes.claims.get(exc.index) if exc.index is not None else None
            if claim is None:
                raise
            owner, name = claim
            if owner == "file":
                raise DuplicateFileName(name) from exc
            raise DuplicateLinkedName(owner, name) from exc
