"""The file manager's fixed folders, and its mirror of dataset documents under ``/.knowledgebase/<dataset>/``.

As in RAGFlow, every tenant has one root folder (``/``, its own parent), made on first use, and documents
uploaded to a dataset also appear as files (``source_type: knowledgebase``) in a folder named after the
dataset, linked to their document. The first time the ``.knowledgebase`` folder is made, documents that
already exist are mirrored into it (RAGFlow's ``init_knowledgebase_docs``).
"""

from __future__ import annotations

import re

from shared.ids import http_date, new_id, now_ms, record_times
from shared.repos.datasets import DatasetRepository
from shared.repos.documents import DocumentRepository
from shared.repos.files import (
    FOLDER,
    KNOWLEDGEBASE_ANCHOR,
    ROOT_ANCHOR,
    DuplicateFileName,
    DuplicateLinkedName,
    FileRepository,
    FileWrites,
    Record,
    dataset_anchor,
)
from shared.services.naming import duplicate_name

KNOWLEDGEBASE_FOLDER_NAME = ".knowledgebase"
#: RAGFlow's ``FileSource``: files put in the file manager have an empty source.
SOURCE_LOCAL = ""
SOURCE_KNOWLEDGEBASE = "knowledgebase"
# A name race (two writers picking the same free name) is retried with the next free one.
_ATTEMPTS = 8

_TYPE_PATTERNS = (
    ("pdf", re.compile(r".*\.pdf$")),
    (
        "doc",
        re.compile(
            r".*\.(eml|doc|docx|ppt|pptx|yml|xml|htm|json|jsonl|ldjson|csv|txt|ini|xls|xlsx|wps|rtf|hlp|pages|numbers|"
            r"key|md|mdx|markdown|py|js|java|c|cpp|h|php|go|ts|sh|cs|kt|html|sql|msg|tsv|xlsm)$"
        ),
    ),
    ("aural", re.compile(r".*\.(wav|flac|ape|alac|wavpack|wv|mp3|aac|ogg|vorbis|opus)$")),
    (
        "visual",
        re.compile(
            r".*\.(jpg|jpeg|png|tif|tiff|gif|pcx|tga|exif|fpx|svg|psd|cdr|pcd|dxf|ufo|eps|ai|raw|wmf|webp|avif|apng|"
            r"icon|ico|bmp|mpg|mpeg|avi|rm|rmvb|mov|wmv|asf|dat|asx|wvx|mpe|mpa|mp4|mkv)$"
        ),
    ),
)


def filename_type(name: str) -> str:
    """RAGFlow's file ``type`` from the name: pdf, doc, aural, visual or other."""
    lowered = name.lower()
    for kind, pattern in _TYPE_PATTERNS:
        if pattern.match(lowered):
            return kind
    return "other"


def file_blob_key(tenant_id: str, file_id: str) -> str:
    """Where a file put in the file manager keeps its bytes (documents converted from it read them there)."""
    return f"files/{tenant_id}/{file_id}"


def new_file_record(
    file_id: str,
    tenant_id: str,
    parent_id: str,
    name: str,
    *,
    kind: str,
    size: int = 0,
    location: str = "",
    source_type: str = SOURCE_LOCAL,
    blob_key: str | None = None,
    now: int,
) -> Record:
    """A file or folder row as stored (RAGFlow's ``File`` fields, plus where its bytes are)."""
    record: Record = {
        "id": file_id,
        "parent_id": parent_id,
        "tenant_id": tenant_id,
        "created_by": tenant_id,
        "name": name,
        "location": location,
        "size": size,
        "type": kind,
        "source_type": source_type,
        **record_times(now),
    }
    if blob_key is not None:
        record["blob_key"] = blob_key
    return record


class KnowledgebaseMirror:
    """The fixed folders of a tenant's file manager, and the mirror of its dataset documents.

    Implements ``shared.services.documents.DocumentMirror``: the document service calls it when documents
    are added, renamed or removed, so the file manager never shows a document that is gone.
    """

    def __init__(self, files: FileRepository, datasets: DatasetRepository, documents: DocumentRepository) -> None:
        self._files = files
        self._datasets = datasets
        self._documents = documents

    # -- fixed folders -----------------------------------------------------------------------------
    def root(self, tenant_id: str) -> Record:
        """The tenant's root folder, made on first use."""
        record, _ = self._anchored_folder(tenant_id, ROOT_ANCHOR, None, "/", SOURCE_LOCAL)
        return record

    def knowledgebase_folder(self, tenant_id: str) -> Record:
        """``/.knowledgebase``, made (and filled with the documents that already exist) on first use."""
        root = self.root(tenant_id)
        record, created = self._anchored_folder(
            tenant_id, KNOWLEDGEBASE_ANCHOR, root, KNOWLEDGEBASE_FOLDER_NAME, SOURCE_KNOWLEDGEBASE
        )
        if created:
            for dataset in self._datasets.all_of_tenant(tenant_id):
                folder = self._dataset_folder(dataset, record)
                for document in self._documents.list_all(dataset["id"], desc=False):
                    if not self._files.links_of_document(document["id"]):
                        self._mirror(folder, document)
        return record

    def _dataset_folder(self, dataset: Record, knowledgebase: Record) -> Record:
        record, _ = self._anchored_folder(
            dataset["tenant_id"], dataset_anchor(dataset["id"]), knowledgebase, dataset["name"], SOURCE_KNOWLEDGEBASE
        )
        return record

    def _anchored_folder(
        self, tenant_id: str, anchor: str, parent: Record | None, name: str, source_type: str
    ) -> tuple[Record, bool]:
        """The folder ``anchor`` points at, made under ``parent`` (None: the root) when missing; whether it
        was made now. Concurrent callers agree on one folder: the anchor is claimed in the same write."""
        for _ in range(_ATTEMPTS):
            existing = self._files.anchored(tenant_id, anchor)
            if existing is not None:
                return existing, False
            now = now_ms()
            file_id = new_id()
            if parent is None:
                record = new_file_record(
                    file_id, tenant_id, file_id, name, kind=FOLDER, source_type=source_type, now=now
                )
                writes = self._files.insert(record, anchor=anchor)
            else:
                free = duplicate_name(name, lambda n: self._files.name_owner(tenant_id, parent["id"], n) is not None)
                record = new_file_record(
                    file_id, tenant_id, parent["id"], free, kind=FOLDER, source_type=source_type, now=now
                )
                writes = self._files.insert(record, anchor=anchor)
                writes.extend(self._files.check_exists(parent))
            try:
                self._files.commit(writes)
                return record, True
            except DuplicateLinkedName:
                if self._files.anchored(tenant_id, anchor) is None:
                    self._files.drop_anchor(tenant_id, anchor)  # an anchor left without its folder
            except DuplicateFileName:
                continue
        raise RuntimeError(f"could not make the folder {name!r} of tenant {tenant_id}")

    # -- the mirror --------------------------------------------------------------------------------
    def _mirror(self, folder: Record, document: Record) -> None:
        """Add a file for ``document`` in ``folder``, linked to it, and count its bytes up the tree."""
        tenant_id = folder["tenant_id"]
        chain = self._files.ancestry(tenant_id, folder["id"])
        for _ in range(_ATTEMPTS):
            name = duplicate_name(
                document["name"], lambda n: self._files.name_owner(tenant_id, folder["id"], n) is not None
            )
            now = now_ms()
            record = new_file_record(
                new_id(),
                tenant_id,
                folder["id"],
                name,
                kind=document["type"],
                size=int(document.get("size") or 0),
                location=document.get("location") or document["name"],
                source_type=SOURCE_KNOWLEDGEBASE,
                blob_key=document["blob_key"],
                now=now,
            )
            writes = self._files.insert(record)
            size: int = record["size"]
            writes.extend(self._files.resize(tenant_id, dict.fromkeys(chain, size), keep=chain[:1]))
            writes.extend(self._files.link(link_record(tenant_id, record["id"], document, now)))
            try:
                self._files.commit(writes)
                return
            except DuplicateFileName:
                continue
        raise RuntimeError(f"could not find a free name for {document['name']!r}")

    def added(self, dataset: Record, document: Record) -> None:
        """Show a new dataset document in ``/.knowledgebase/<dataset>/``."""
        knowledgebase = self.knowledgebase_folder(document["tenant_id"])
        if self._files.links_of_document(document["id"]):
            return  # mirrored when the folder was first made
        self._mirror(self._dataset_folder(dataset, knowledgebase), document)

    def removed(self, document: Record) -> None:
        """Drop a document's links; its mirror file goes too (files converted into it stay)."""
        for link in self._files.links_of_document(document["id"]):
            tenant_id = link["tenant_id"]
            writes = self._files.unlink(tenant_id, link["file_id"], document["id"])
            file = self._files.get(tenant_id, link["file_id"])
            if file is not None and file["source_type"] == SOURCE_KNOWLEDGEBASE:
                writes.extend(self._files.delete(file))
                chain = self._files.ancestry(tenant_id, file["parent_id"])
                writes.extend(self._files.resize(tenant_id, dict.fromkeys(chain, -int(file["size"]))))
            self._files.commit(writes)

    def renamed(self, document: Record) -> None:
        """Files linked to a renamed document take its name (the next free one in their folder)."""
        for link in self._files.links_of_document(document["id"]):
            tenant_id = link["tenant_id"]
            for _ in range(_ATTEMPTS):
                file = self._files.get(tenant_id, link["file_id"])
                if file is None or file["name"] == document["name"]:
                    break
                name = self._free_name(file, document["name"])
                now = now_ms()
                try:
                    self._files.commit(
                        self._files.rename(file, name, {"update_time": now, "update_date": http_date(now)})
                    )
                    break
                except DuplicateFileName:
                    continue

    def _free_name(self, file: Record, wanted: str) -> str:
        """``wanted``, or the next free ``wanted(n)``, in ``file``'s folder (the file's own name is free to it)."""

        def taken(name: str) -> bool:
            return self._files.name_owner(file["tenant_id"], file["parent_id"], name) not in (None, file["id"])

        return duplicate_name(wanted, taken)

    def dataset_removed(self, dataset: Record) -> None:
        """A deleted dataset's folder goes when it is empty; otherwise it stays as a plain folder."""
        tenant_id = dataset["tenant_id"]
        folder = self._files.anchored(tenant_id, dataset_anchor(dataset["id"]))
        if folder is None:
            return
        if self._files.children(tenant_id, folder["id"]):
            self._files.commit(self._unanchored(folder))
            return
        writes = self._files.delete(folder)
        chain = self._files.ancestry(tenant_id, folder["parent_id"])
        writes.extend(self._files.resize(tenant_id, dict.fromkeys(chain, -int(folder["size"])), keep=chain[:1]))
        self._files.commit(writes)

    def _unanchored(self, folder: Record) -> FileWrites:
        now = now_ms()
        writes = self._files.set_fields(
            folder, {"update_time": now, "update_date": http_date(now), "source_type": SOURCE_LOCAL}, remove=["anchor"]
        )
        writes.extend(self._files.release_anchor(folder["tenant_id"], folder["anchor"]))
        return writes


def link_record(tenant_id: str, file_id: str, document: Record, now: int) -> Record:
    """A row of the file → document link table (RAGFlow's ``File2Document``)."""
    return {
        "id": new_id(),
        "tenant_id": tenant_id,
        "file_id": file_id,
        "document_id": document["id"],
        "dataset_id": document["dataset_id"],
        **record_times(now),
    }
