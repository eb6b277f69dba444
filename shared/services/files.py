"""File manager use cases (RAGFlow's ``/api/v1/file/*``): folders per tenant, uploads, moves, removal, and
conversion of files into dataset documents.

Write order and atomicity (DynamoDB holds at most 100 items per transaction):
* upload: every blob is written first, then the rows of the whole request in one transaction (new
  folders of uploaded paths, files, name guards, the folders' sizes); a request too big for one transaction
  is committed in groups of files that fit, in order, each atomic (a folder always comes with or before
  its content). Blobs whose rows were not written are deleted before the error is answered.
* create, rename, and a move of up to ~15 independent items: one transaction. A move never rewrites a
  subtree (content hangs off its folder's id), so no tree is ever half moved. Bigger moves are cut into
  several transactions, each atomic, after the whole request was checked.
* rm: linked documents are removed first (chunks, index entries), then rows bottom-up, one transaction
  per batch of a folder's files with the folder sizes they change, then the blobs of that batch
  (deleting a missing blob is not an error). Every step leaves a consistent tree, so a crash midway leaves
  a smaller tree that a repeated rm finishes.
* convert: earlier documents of the files are removed, then each new document is written with its link in
  one transaction.
Every check that can refuse a request runs before its first write.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ArgumentError, BadRequest, Conflict, DataError, NotFound
from shared.ids import http_date, new_id, now_ms
from shared.ports.blobs import BlobStore
from shared.repos.datasets import DatasetRepository
from shared.repos.documents import DocumentRepository
from shared.repos.files import (
    FOLDER,
    MAX_FOLDER_DEPTH,
    MAX_TRANSACTION_ITEMS,
    STORAGE_ATTRS,
    Ancestor,
    DuplicateFileName,
    DuplicateLinkedName,
    FileRepository,
    FileWrites,
    Record,
    is_folder,
    is_root,
)
from shared.repos.keys import OrderBy, without
from shared.schemas.documents import FILE_NAME_LEN_LIMIT
from shared.schemas.files import (
    ConvertFilesRequest,
    CreateFileRequest,
    FileIdQuery,
    ListFilesQuery,
    MoveFilesRequest,
    RemoveFilesRequest,
    RenameFileRequest,
)
from shared.services.documents import UploadedFile, content_type, new_document_record
from shared.services.file_mirror import (
    SOURCE_KNOWLEDGEBASE,
    KnowledgebaseMirror,
    file_blob_key,
    filename_type,
    link_record,
    new_file_record,
)
from shared.services.naming import duplicate_name

_ATTEMPTS = 8
_DEPTH_MESSAGE = f"Folders can be nested at most {MAX_FOLDER_DEPTH} levels deep."
# Items one removed row takes in a transaction: the row, its name guard, its locator and maybe an anchor.
_ITEMS_PER_REMOVED = 4
#: What convert answers of each link (RAGFlow's ``File2Document`` row).
_LINK_FIELDS = ("id", "file_id", "document_id", "create_time", "create_date", "update_time", "update_date")


def file_view(record: Record) -> dict[str, Any]:
    """A stored file or folder as the API shows it."""
    return without(record, STORAGE_ATTRS)


def chunk_method_for(kind: str, name: str, default: str) -> str:
    """RAGFlow's chunk method for a converted file: picture for images, presentation for slides, email for
    mail, the dataset's own otherwise."""
    if kind == "visual":
        return "picture"
    extension = os.path.splitext(name.lower())[1]
    if extension in (".ppt", ".pptx", ".pages"):
        return "presentation"
    if extension in (".msg", ".eml"):
        return "email"
    return default


def _path_parts(filename: str) -> list[str]:
    """An uploaded file's name as folders and a name (``a/b/c.txt``: a folder upload), checked."""
    parts = [part for part in filename.split("/") if part not in ("", ".")]
    if not parts:
        raise BadRequest("No selected file!")
    if ".." in parts:
        raise ArgumentError(f"Invalid file name: {filename}")
    for part in parts:
        if len(part.encode("utf-8")) > FILE_NAME_LEN_LIMIT:
            raise ArgumentError(f"File name must be {FILE_NAME_LEN_LIMIT} bytes or less.")
    return parts


@dataclass
class _UploadPlan:
    """What one upload writes: new folders (parents first, each with the first file that needs it), the
    files, and each file's folders from its parent up to the root."""

    folders: list[Record] = field(default_factory=list)
    first_user: dict[str, str] = field(default_factory=dict)
    files: list[Record] = field(default_factory=list)
    chains: dict[str, list[Ancestor]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Destination:
    """Where a move goes: the tenant, the folder, and the folder's ancestry (whose sizes change with it)."""

    tenant_id: str
    folder_id: str
    chain: list[Ancestor]


class FileService:
    def __init__(
        self,
        files: FileRepository,
        mirror: KnowledgebaseMirror,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        remove_document: Callable[[Record], None],
        blobs: BlobStore,
        *,
        max_file_bytes: int,
    ) -> None:
        self._files = files
        self._mirror = mirror
        self._datasets = datasets
        self._documents = documents
        self._remove_document = remove_document
        self._blobs = blobs
        self._max_file_bytes = max_file_bytes

    # -- lookups -----------------------------------------------------------------------------------
    def _folder(self, tenant_id: str, folder_id: str | None, error: Exception) -> Record:
        """The root when ``folder_id`` is empty, else the tenant's folder with that id; ``error`` otherwise."""
        if not folder_id:
            return self._mirror.root(tenant_id)
        record = self._files.get(tenant_id, folder_id)
        if record is None or not is_folder(record):
            raise error
        return record

    def _ancestry(self, tenant_id: str, folder_id: str, error: Exception) -> list[Ancestor]:
        try:
            return self._files.ancestry(tenant_id, folder_id)
        except LookupError:
            raise error from None

    def _subtree(self, tenant_id: str, top: Record) -> Iterator[Record]:
        """Everything below a folder (each folder's partition read once)."""
        pending = [top["id"]]
        while pending:
            folder_id = pending.pop()
            for child in self._files.children(tenant_id, folder_id):
                yield child
                if is_folder(child):
                    pending.append(child["id"])

    def _subtree_height(self, tenant_id: str, top: Record) -> int:
        """How many folder levels hang below ``top`` (0 for a file or a folder without sub-folders)."""
        if not is_folder(top):
            return 0
        height, level = 0, [top["id"]]
        while level:
            level = [child["id"] for folder_id in level for child in self._files.child_folders(tenant_id, folder_id)]
            if level:
                height += 1
        return height

    # -- upload ------------------------------------------------------------------------------------
    def upload(self, tenant_id: str, parent_id: str | None, files: Sequence[UploadedFile]) -> list[dict[str, Any]]:
        """Store files under a folder (the root by default); ``a/b/c.txt`` names make the folders on the way.
        Repeated names become ``name(1).ext``. Answers the new file rows."""
        if not files:
            raise BadRequest("No file part!")
        if any(not file.filename for file in files):
            raise BadRequest("No selected file!")
        base = self._folder(tenant_id, parent_id, NotFound("Can't find this folder!"))
        entries = [(_path_parts(file.filename), file.data) for file in files]
        for parts, data in entries:
            if len(data) > self._max_file_bytes:
                limit_mb = self._max_file_bytes / (1024 * 1024)
                raise ArgumentError(f"{parts[-1]}: File size exceeds the limit of {limit_mb:g} MB.")
        ids = [new_id() for _ in entries]
        plan = self._plan_upload(tenant_id, base, entries, ids)  # refuses before anything is written
        rows: list[Record] = []
        try:
            for file_id, (parts, data) in zip(ids, entries, strict=True):
                self._blobs.put(file_blob_key(tenant_id, file_id), data, content_type(parts[-1]))
            pending = list(zip(ids, entries, strict=True))
            for _ in range(_ATTEMPTS):
                try:
                    for group in self._upload_groups(tenant_id, plan):
                        self._files.commit(self._upload_writes(tenant_id, plan, group))
                        rows.extend(group)
                    return [file_view(row) for row in rows]
                except DuplicateFileName:
                    # A concurrent write took a name: plan what is left again with what is there now.
                    done = {row["id"] for row in rows}
                    pending = [(file_id, entry) for file_id, entry in pending if file_id not in done]
                    plan = self._plan_upload(
                        tenant_id, base, [entry for _, entry in pending], [file_id for file_id, _ in pending]
                    )
            raise DataError("The folder changed during the upload; retry.")
        finally:
            stored = {row["id"] for row in rows}
            for file_id in ids:
                if file_id not in stored:
                    self._blobs.delete(file_blob_key(tenant_id, file_id))

    def _upload_groups(self, tenant_id: str, plan: _UploadPlan) -> Iterator[list[Record]]:
        """The plan's files in order, cut into groups whose writes fit one transaction (all at once if they can)."""
        group: list[Record] = []
        for record in plan.files:
            if group and len(self._upload_writes(tenant_id, plan, [*group, record])) > MAX_TRANSACTION_ITEMS:
                yield group
                group = []
            group.append(record)
        if group:
            yield group

    def _upload_writes(self, tenant_id: str, plan: _UploadPlan, group: Sequence[Record]) -> FileWrites:
        """The writes storing ``group``: the new folders its files are the first to need (with the bytes
        they get now), the files, and the bytes every other folder above them gains."""
        members = {record["id"] for record in group}
        created = [folder for folder in plan.folders if plan.first_user[folder["id"]] in members]
        created_ids = {folder["id"] for folder in created}
        sizes: dict[str, int] = {}
        deltas: dict[Ancestor, int] = {}
        touched: list[Ancestor] = []
        for record in group:
            chain = plan.chains[record["id"]]
            for ancestor in chain:
                if ancestor.id in created_ids:
                    sizes[ancestor.id] = sizes.get(ancestor.id, 0) + record["size"]
                else:
                    deltas[ancestor] = deltas.get(ancestor, 0) + record["size"]
            if chain[0].id not in created_ids and chain[0] not in touched:
                touched.append(chain[0])  # checked to exist even when the file is empty
        writes = FileWrites()
        for folder in created:
            writes.extend(self._files.insert({**folder, "size": sizes.get(folder["id"], 0)}))
        for record in group:
            writes.extend(self._files.insert(record))
        writes.extend(self._files.resize(tenant_id, deltas, keep=touched))
        return writes

    def _plan_upload(
        self, tenant_id: str, base: Record, entries: Sequence[tuple[list[str], bytes]], ids: Sequence[str]
    ) -> _UploadPlan:
        """Resolve every path and free name (reads only); refuses what cannot be stored."""
        plan = _UploadPlan()
        now = now_ms()
        new_folders: dict[tuple[str, str], Record] = {}
        planned_names: set[tuple[str, str]] = set()
        chains: dict[str, list[Ancestor]] = {}

        def chain_of(folder_id: str) -> list[Ancestor]:
            if folder_id not in chains:
                chains[folder_id] = self._ancestry(tenant_id, folder_id, NotFound("Can't find this folder!"))
            return chains[folder_id]

        for file_id, (parts, data) in zip(ids, entries, strict=True):
            existing = base  # the deepest folder on the path that is already stored
            parent = base
            path: list[Record] = []  # planned folders on the path, top down
            for part in parts[:-1]:
                key = (parent["id"], part.lower())
                if key in new_folders:
                    parent = new_folders[key]
                    path.append(parent)
                    continue
                if not path:
                    owner = self._files.name_owner(tenant_id, parent["id"], part)
                    if owner is not None:
                        row = self._files.get(tenant_id, owner)
                        if row is None or not is_folder(row):
                            raise Conflict("Duplicated folder name in the same folder.")
                        existing = parent = row
                        continue
                if len(chain_of(existing["id"])) + len(path) > MAX_FOLDER_DEPTH:
                    raise DataError(_DEPTH_MESSAGE)
                folder = new_file_record(new_id(), tenant_id, parent["id"], part, kind=FOLDER, now=now)
                new_folders[key] = folder
                planned_names.add(key)
                plan.folders.append(folder)
                plan.first_user[folder["id"]] = file_id
                path.append(folder)
                parent = folder

            def taken(name: str, folder: Record = parent, stored: bool = not path) -> bool:
                if (folder["id"], name.lower()) in planned_names:
                    return True
                return stored and self._files.name_owner(tenant_id, folder["id"], name) is not None

            name = duplicate_name(parts[-1], taken)
            planned_names.add((parent["id"], name.lower()))
            plan.files.append(
                new_file_record(
                    file_id,
                    tenant_id,
                    parent["id"],
                    name,
                    kind=filename_type(name),
                    size=len(data),
                    location=parts[-1],
                    blob_key=file_blob_key(tenant_id, file_id),
                    now=now,
                )
            )
            inner = [Ancestor(folder["id"], folder["parent_id"]) for folder in reversed(path)]
            plan.chains[file_id] = [*inner, *chain_of(existing["id"])]
        return plan

    # -- create ------------------------------------------------------------------------------------
    def create(self, tenant_id: str, request: CreateFileRequest) -> dict[str, Any]:
        """A folder, or an empty virtual file, under a folder (the root by default)."""
        name = request.name
        parent = self._folder(tenant_id, request.parent_id, BadRequest("Parent Folder Doesn't Exist!"))
        if self._files.name_owner(tenant_id, parent["id"], name) is not None:
            raise Conflict("Duplicated folder name in the same folder.")
        chain = self._ancestry(tenant_id, parent["id"], BadRequest("Parent Folder Doesn't Exist!"))
        if request.is_folder and len(chain) > MAX_FOLDER_DEPTH:
            raise DataError(_DEPTH_MESSAGE)
        file_id = new_id()
        now = now_ms()
        if request.is_folder:
            record = new_file_record(file_id, tenant_id, parent["id"], name, kind=FOLDER, now=now)
        else:
            # A virtual file has no content; an empty blob lets it download and convert like any file.
            key = file_blob_key(tenant_id, file_id)
            record = new_file_record(file_id, tenant_id, parent["id"], name, kind="virtual", blob_key=key, now=now)
            self._blobs.put(key, b"")
        writes = self._files.insert(record)
        writes.extend(self._files.resize(tenant_id, {}, keep=chain[:1]))
        try:
            self._files.commit(writes)
        except DuplicateFileName:
            if "blob_key" in record:
                self._blobs.delete(record["blob_key"])
            raise Conflict("Duplicated folder name in the same folder.") from None
        return file_view(record)

    # -- list and lookups --------------------------------------------------------------------------
    def list_files(self, tenant_id: str, query: ListFilesQuery) -> dict[str, Any]:
        """One page of a folder's content; folders carry their recursive size and ``has_child_folder``, files
        the datasets they were converted into (``kbs_info``)."""
        if query.parent_id:
            folder = self._folder(tenant_id, query.parent_id, NotFound("Folder not found!"))
        else:
            folder = self._mirror.root(tenant_id)
            self._mirror.knowledgebase_folder(tenant_id)  # RAGFlow shows dataset documents from the root on
        if query.keywords or query.orderby not in ("create_time", "update_time"):
            rows = self._files.children(tenant_id, folder["id"])
            if query.keywords:
                needle = query.keywords.lower()
                rows = [row for row in rows if needle in row["name"].lower()]
            rows.sort(key=lambda row: (row[query.orderby], row["create_time"], row["id"]), reverse=query.desc)
            total = len(rows)
            rows = rows[query.offset : query.offset + query.page_size]
        else:
            orderby: OrderBy = "create_time" if query.orderby == "create_time" else "update_time"
            rows, total = self._files.children_page(
                tenant_id, folder["id"], orderby=orderby, desc=query.desc, offset=query.offset, limit=query.page_size
            )
        parent = folder if is_root(folder) else self._files.get(tenant_id, folder["parent_id"])
        if parent is None:
            raise NotFound("File not found!")
        return {
            "total": total,
            "files": [self._listed(tenant_id, row) for row in rows],
            "parent_folder": file_view(parent),
        }

    def _listed(self, tenant_id: str, row: Record) -> dict[str, Any]:
        view = file_view(row)
        if is_folder(row):
            return {**view, "kbs_info": [], "has_child_folder": self._files.has_child_folder(tenant_id, row["id"])}
        return {**view, "kbs_info": self._kbs_info(tenant_id, row["id"])}

    def _kbs_info(self, tenant_id: str, file_id: str) -> list[dict[str, Any]]:
        info = []
        for link in self._files.links_of_file(tenant_id, file_id):
            dataset = self._datasets.get(tenant_id, link["dataset_id"])
            if dataset is None or self._documents.get(dataset["id"], link["document_id"]) is None:
                continue
            info.append({"kb_id": dataset["id"], "kb_name": dataset["name"], "document_id": link["document_id"]})
        return info

    def root_folder(self, tenant_id: str) -> dict[str, Any]:
        return {"root_folder": file_view(self._mirror.root(tenant_id))}

    def parent_folder(self, tenant_id: str, query: FileIdQuery) -> dict[str, Any]:
        """The folder holding a file (the root is its own parent)."""
        record = self._files.get(tenant_id, query.file_id)
        if record is None:
            raise NotFound("Folder not found!")
        parent = record if is_root(record) else self._files.get(tenant_id, record["parent_id"])
        if parent is None:
            raise NotFound("Folder not found!")
        return {"parent_folder": file_view(parent)}

    def all_parent_folders(self, tenant_id: str, query: FileIdQuery) -> dict[str, Any]:
        """The file itself, then each folder above it up to the root."""
        chain = self._ancestry(tenant_id, query.file_id, NotFound("Folder not found!"))
        rows = self._files.get_many(tenant_id, [ancestor.id for ancestor in chain])
        if len(rows) != len(chain):
            raise NotFound("Folder not found!")
        return {"parent_folders": [file_view(rows[ancestor.id]) for ancestor in chain]}

    def download(self, tenant_id: str, file_id: str) -> tuple[bytes, str, str]:
        """A file's bytes, its name and a content type from its extension."""
        record = self._files.get(tenant_id, file_id)
        if record is None or is_folder(record) or "blob_key" not in record:
            raise NotFound("Document not found!")
        return self._blobs.get(record["blob_key"]), record["name"], content_type(record["name"])

    # -- rename ------------------------------------------------------------------------------------
    def rename(self, tenant_id: str, request: RenameFileRequest) -> bool:
        """Rename a file or folder within its folder; documents converted from a file take the name too."""
        file_id, name = request.file_id, request.name
        record = self._files.get(tenant_id, file_id)
        if record is None:
            raise NotFound("File not found!")
        if is_root(record):
            raise DataError("The root folder can't be renamed.")
        if not is_folder(record) and os.path.splitext(name.lower())[1] != os.path.splitext(record["name"].lower())[1]:
            raise BadRequest("The extension of file can't be changed")
        if self._files.name_owner(tenant_id, record["parent_id"], name) not in (None, file_id):
            raise Conflict("Duplicated file name in the same folder.")
        if name == record["name"]:
            return True
        now = now_ms()
        changes = {"update_time": now, "update_date": http_date(now)}
        writes = self._files.rename(record, name, changes)
        for link in self._files.links_of_file(tenant_id, file_id):
            document = self._documents.get(link["dataset_id"], link["document_id"])
            if document is None:
                continue
            ops, renamed = self._documents.update_ops(document, {"name": name, **changes})
            if renamed:
                writes.claim(ops[0], name, owner="document")
                ops = ops[1:]
            writes.add(*ops)
        try:
            self._files.commit(writes)
        except DuplicateFileName:
            raise Conflict("Duplicated file name in the same folder.") from None
        except DuplicateLinkedName:
            raise DataError("Duplicated document name in the same dataset.") from None
        return True

    # -- move --------------------------------------------------------------------------------------
    def move(self, tenant_id: str, request: MoveFilesRequest) -> bool:
        """Move files and folders (with everything in them) into a folder."""
        destination_id = request.dest_file_id
        wanted = list(dict.fromkeys(request.src_file_ids))
        sources = self._files.get_many(tenant_id, wanted)
        if len(sources) != len(wanted):
            raise DataError("File or Folder not found!")
        destination = self._files.get(tenant_id, destination_id)
        if destination is None or not is_folder(destination):
            raise NotFound("Parent Folder not found!")
        destination_chain = self._ancestry(tenant_id, destination_id, NotFound("Parent Folder not found!"))
        above_destination = {ancestor.id for ancestor in destination_chain}
        if any(is_root(record) for record in sources.values()):
            raise DataError("The root folder can't be moved.")
        if above_destination & set(wanted):
            raise DataError("A folder can't be moved into itself or one of its sub-folders.")
        moving = [sources[i] for i in wanted if sources[i]["parent_id"] != destination_id]
        names = [record["name"].lower() for record in moving]
        if len(set(names)) != len(names) or any(
            self._files.name_owner(tenant_id, destination_id, record["name"]) is not None for record in moving
        ):
            raise Conflict("Duplicated file name in the same folder.")
        room = MAX_FOLDER_DEPTH - len(destination_chain)  # folder levels the destination still has below it
        if any(is_folder(record) and self._subtree_height(tenant_id, record) > room for record in moving):
            raise DataError(_DEPTH_MESSAGE)
        chains = {
            record["id"]: self._ancestry(tenant_id, record["parent_id"], DataError("File or Folder not found!"))
            for record in moving
        }
        target = _Destination(tenant_id, destination_id, destination_chain)
        moving_ids = {record["id"] for record in moving}
        nested = any(ancestor.id in moving_ids for chain in chains.values() for ancestor in chain)
        if nested:
            # A source inside another source: move the deeper ones first, each on its own.
            for record in sorted(moving, key=lambda r: -len(chains[r["id"]])):
                fresh = self._files.get(tenant_id, record["id"])
                if fresh is None:
                    raise DataError("File or Folder not found!")
                chain = self._ancestry(tenant_id, fresh["parent_id"], DataError("File or Folder not found!"))
                self._commit_move([fresh], {fresh["id"]: chain}, target)
            return True
        batch: list[Record] = []
        for record in moving:
            trial = [*batch, record]
            if batch and len(self._move_writes(trial, chains, target)) > MAX_TRANSACTION_ITEMS:
                self._commit_move(batch, chains, target)
                trial = [record]
            batch = trial
        if batch:
            self._commit_move(batch, chains, target)
        return True

    def _move_writes(
        self, records: Sequence[Record], chains: dict[str, list[Ancestor]], destination: _Destination
    ) -> FileWrites:
        now = now_ms()
        changes = {"update_time": now, "update_date": http_date(now)}
        writes = FileWrites()
        deltas: dict[Ancestor, int] = {}
        for record in records:
            writes.extend(self._files.move(record, destination.folder_id, changes))
            size = int(record.get("size") or 0)
            for ancestor in chains[record["id"]]:
                deltas[ancestor] = deltas.get(ancestor, 0) - size
            for ancestor in destination.chain:
                deltas[ancestor] = deltas.get(ancestor, 0) + size
        writes.extend(self._files.resize(destination.tenant_id, deltas, keep=destination.chain[:1]))
        return writes

    def _commit_move(
        self, records: Sequence[Record], chains: dict[str, list[Ancestor]], destination: _Destination
    ) -> None:
        writes = self._move_writes(records, chains, destination)
        try:
            self._files.commit(writes)
        except DuplicateFileName:
            raise Conflict("Duplicated file name in the same folder.") from None

    # -- remove ------------------------------------------------------------------------------------
    def remove(self, tenant_id: str, request: RemoveFilesRequest) -> bool:
        """Remove files and folders with everything in them, and the documents converted from them."""
        wanted = list(dict.fromkeys(request.file_ids))
        records = self._files.get_many(tenant_id, wanted)
        if len(records) != len(wanted):
            raise NotFound("File or Folder not found!")
        if any(is_root(record) for record in records.values()):
            raise DataError("The root folder can't be removed.")
        chains = {i: self._ancestry(tenant_id, i, NotFound("File or Folder not found!")) for i in wanted}
        selected = set(wanted)
        for file_id in wanted:
            if any(ancestor.id in selected for ancestor in chains[file_id][1:]):
                continue  # removed with a selected folder above it
            self._remove_tree(tenant_id, records[file_id], chains[file_id][1:])
        return True

    def _remove_tree(self, tenant_id: str, top: Record, above: list[Ancestor]) -> None:
        """Remove ``top`` (and, for a folder, its subtree); ``above`` is its parent's chain."""
        files = [top] if not is_folder(top) else [row for row in self._subtree(tenant_id, top) if not is_folder(row)]
        for file in files:
            for link in self._files.links_of_file(tenant_id, file["id"]):
                self._drop_document(tenant_id, link)
        if not is_folder(top):
            fresh = self._files.get(tenant_id, top["id"])
            if fresh is not None:  # a dataset's mirror file went with its document
                self._delete_rows(tenant_id, [fresh], above)
            return
        # Folders deepest first, each emptied batch by batch, then itself.
        order: list[tuple[Record, list[Ancestor]]] = []
        pending = [(top, above)]
        while pending:
            folder, chain = pending.pop()
            order.append((folder, chain))
            inner = [Ancestor(folder["id"], folder["parent_id"]), *chain]
            pending.extend((child, inner) for child in self._files.child_folders(tenant_id, folder["id"]))
        for folder, chain in reversed(order):
            inner = [Ancestor(folder["id"], folder["parent_id"]), *chain]
            contents = [row for row in self._files.children(tenant_id, folder["id"]) if not is_folder(row)]
            self._delete_rows(tenant_id, contents, inner)
            fresh = self._files.get(tenant_id, folder["id"])
            if fresh is not None:
                self._delete_rows(tenant_id, [fresh], chain)

    def _delete_rows(self, tenant_id: str, rows: Sequence[Record], chain: list[Ancestor]) -> None:
        """Delete rows of one folder in batches, each with the size it takes off the folders above, then
        their blobs."""
        per_batch = max(1, (MAX_TRANSACTION_ITEMS - len(chain)) // _ITEMS_PER_REMOVED)
        for start in range(0, len(rows), per_batch):
            batch = rows[start : start + per_batch]
            writes = FileWrites()
            for row in batch:
                writes.extend(self._files.delete(row))
            freed = sum(int(row.get("size") or 0) for row in batch)
            writes.extend(self._files.resize(tenant_id, dict.fromkeys(chain, -freed)))
            self._files.commit(writes)
            for row in batch:
                if row.get("blob_key") and row["source_type"] != SOURCE_KNOWLEDGEBASE:
                    self._blobs.delete(row["blob_key"])

    def _drop_document(self, tenant_id: str, link: Record) -> None:
        """Remove a document a file was converted into (its link goes with it)."""
        document = self._documents.get(link["dataset_id"], link["document_id"])
        if document is not None and document["tenant_id"] == tenant_id:
            self._remove_document(document)
        else:
            self._files.commit(self._files.unlink(tenant_id, link["file_id"], link["document_id"]))

    # -- convert -----------------------------------------------------------------------------------
    def convert(self, tenant_id: str, request: ConvertFilesRequest) -> list[dict[str, Any]]:
        """Make each file (folders: every file in them) a new, unparsed document of each dataset, linked to
        the file and reading its bytes; documents the files were converted into before are removed."""
        wanted = list(dict.fromkeys(request.file_ids))
        records = self._files.get_many(tenant_id, wanted)
        if len(records) != len(wanted):
            raise NotFound("File not found!")
        datasets = []
        for dataset_id in dict.fromkeys(request.kb_ids):
            dataset = self._datasets.get(tenant_id, dataset_id)
            if dataset is None:
                raise NotFound("Can't find this dataset!")
            datasets.append(dataset)
        targets: dict[str, Record] = {}
        for file_id in wanted:
            record = records[file_id]
            if not is_folder(record):
                if record["source_type"] == SOURCE_KNOWLEDGEBASE:
                    raise DataError(f"{record['name']} is a dataset's document; convert the file it came from.")
                targets[file_id] = record
                continue
            for row in self._subtree(tenant_id, record):
                # A dataset's documents show in the file manager; they are not files to convert again.
                if not is_folder(row) and row["source_type"] != SOURCE_KNOWLEDGEBASE:
                    targets.setdefault(row["id"], row)
        for record in targets.values():
            for link in self._files.links_of_file(tenant_id, record["id"]):
                self._drop_document(tenant_id, link)
        results = []
        for record in targets.values():
            for dataset in datasets:
                results.append(self._convert_one(tenant_id, record, dataset))
        return results

    def _convert_one(self, tenant_id: str, file: Record, dataset: Record) -> dict[str, Any]:
        for _ in range(_ATTEMPTS):
            now = now_ms()
            name = duplicate_name(file["name"], lambda n: self._documents.name_taken(dataset["id"], n))
            document = new_document_record(
                new_id(),
                tenant_id,
                dataset,
                name,
                size=int(file.get("size") or 0),
                blob=file["blob_key"],
                source_type="local",
                now=now,
            )
            document.update(
                type=file["type"],
                location=file["location"] or file["name"],
                chunk_method=chunk_method_for(file["type"], file["name"], dataset["chunk_method"]),
                source_file_id=file["id"],
            )
            ops = self._documents.create_ops(document)
            writes = FileWrites()
            writes.claim(ops[0], name, owner="document")
            writes.add(*ops[1:])
            link = link_record(tenant_id, file["id"], document, now)
            writes.extend(self._files.link(link))
            try:
                self._files.commit(writes)
            except DuplicateLinkedName:
                continue  # a concurrent upload took the name: pick the next free one
            return {key: link[key] for key in _LINK_FIELDS}
        raise DataError(f"Could not find a free name for {file['name']}")
