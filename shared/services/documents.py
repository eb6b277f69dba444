"""Document use cases: upload, list, download, update, delete (the ingestion pipeline lives apart)."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.constants import UPLOADS_PREFIX
from shared.errors import ArgumentError, DataError, FlowlessError, RetCode
from shared.ids import http_date, new_id, now_ms
from shared.ports.blobs import BlobStore
from shared.ports.search import SearchIndex
from shared.ports.uploads import OBJECT_URI_SCHEME
from shared.rag.metadata import (
    apply_metadata_changes,
    filter_documents,
    summarize,
)
from shared.rag.parsers import is_supported
from shared.repos.datasets import DatasetRepository
from shared.repos.datasets import Record as DatasetRecord
from shared.repos.documents import STORAGE_ATTRS, DocumentRepository, DuplicateDocumentName, Record
from shared.repos.keys import without
from shared.schemas.common import deep_merge, unique_with_duplicates
from shared.schemas.documents import (
    FILE_NAME_LEN_LIMIT,
    DeleteDocumentsRequest,
    ListDocumentsQuery,
    UpdateDocumentRequest,
)
from shared.schemas.metadata import MetadataUpdateRequest
from shared.schemas.parser_config import default_parser_config
from shared.services.naming import duplicate_name

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
# Attributes the pipeline keeps on a document that clients never see.
_INTERNAL = frozenset({"blob_key", "task_id", "progress_token", "tenant_id", "source_key", "source_file_id"})
_HIDDEN = STORAGE_ATTRS | _INTERNAL


class ServerError(FlowlessError):
    """RAGFlow answers failed uploads with code 500 in the envelope (HTTP stays 200)."""

    code = RetCode.SERVER_ERROR


class DocumentMirror(Protocol):
    """Keeps the file manager's view of dataset documents (``/.knowledgebase/<dataset>/``) in step with them."""

    def added(self, dataset: DatasetRecord, document: Record) -> None:
        """A document was uploaded or registered."""

    def removed(self, document: Record) -> None:
        """A document is about to be deleted: drop its links and its file-manager entry."""

    def renamed(self, document: Record) -> None:
        """A document was renamed: its linked files follow."""

    def dataset_removed(self, dataset: DatasetRecord) -> None:
        """A dataset is being deleted (after its documents): drop its folder."""


def owns_blob(record: Record) -> bool:
    """False for documents converted from the file manager (they read the file's blob, which the file owns)
    and for imported documents (they point at an object in a bucket flowless may not own: never deleted)."""
    return not record.get("source_file_id") and not str(record.get("blob_key", "")).startswith(OBJECT_URI_SCHEME)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes


def document_view(record: Record) -> dict[str, Any]:
    """A stored document as the API shows it."""
    return without(record, _HIDDEN)


def suffix_of(name: str) -> str:
    return os.path.splitext(name)[1].lower().lstrip(".")


def file_type(name: str) -> str:
    """RAGFlow's document ``type``: pdf, visual (images) or doc."""
    ext = os.path.splitext(name)[1].lower()
    if ext == ".pdf":
        return "pdf"
    return "visual" if ext in IMAGE_EXTENSIONS else "doc"


def content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def blob_key(tenant_id: str, dataset_id: str, document_id: str) -> str:
    """Where an uploaded original lives: tenant-scoped, outside the S3 ingest prefix."""
    return f"docs/{tenant_id}/{dataset_id}/{document_id}"


def new_document_record(
    document_id: str,
    tenant_id: str,
    dataset: DatasetRecord,
    name: str,
    *,
    size: int,
    blob: str,
    source_type: str,
    now: int,
) -> Record:
    """A new document as stored: UNSTART, the dataset's chunk method and parser_config, no chunks yet."""
    return {
        "id": document_id,
        "dataset_id": dataset["id"],
        "tenant_id": tenant_id,
        "created_by": tenant_id,
        "name": name,
        "location": name,
        "size": size,
        "suffix": suffix_of(name),
        "type": file_type(name),
        "source_type": source_type,
        "thumbnail": "",
        "chunk_method": dataset["chunk_method"],
        "parser_config": dataset["parser_config"],
        "run": "UNSTART",
        "status": "1",
        "progress": 0.0,
        "progress_msg": "",
        "process_begin_at": None,
        "process_duration": 0.0,
        "chunk_count": 0,
        "token_count": 0,
        "meta_fields": {},
        "create_time": now,
        "create_date": http_date(now),
        "update_time": now,
        "update_date": http_date(now),
        "blob_key": blob,
    }


def create_document(
    documents: DocumentRepository,
    tenant_id: str,
    dataset: DatasetRecord,
    filename: str,
    *,
    blob: str,
    size: int,
    source_type: str,
    mirror: DocumentMirror | None,
    document_id: str | None = None,
) -> Record:
    """Insert a document for a blob already stored, named as RAGFlow names repeats (``a.txt``, ``a(1).txt``),
    and mirror it into the file manager."""
    document_id = document_id or new_id()
    now = now_ms()
    for _ in range(20):
        name = duplicate_name(filename, lambda n: documents.name_taken(dataset["id"], n))
        record = new_document_record(
            document_id, tenant_id, dataset, name, size=size, blob=blob, source_type=source_type, now=now
        )
        try:
            documents.create(record)
        except DuplicateDocumentName:
            continue  # a concurrent upload took the name; pick the next free one
        if mirror is not None:
            mirror.added(dataset, record)
        return record
    raise DataError(f"Could not find a free name for {filename}")


class DocumentService:
    def __init__(
        self,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        blobs: BlobStore,
        index: Callable[[], SearchIndex],
        *,
        max_file_bytes: int,
        on_deleted: Callable[[str, str, list[str]], object] | None = None,
        mirror: DocumentMirror | None = None,
    ) -> None:
        self._datasets = datasets
        self._documents = documents
        self._blobs = blobs
        self._index = index
        self._max_file_bytes = max_file_bytes
        self._mirror = mirror
        # Told (tenant, dataset, document ids) after documents are deleted: the knowledge graph forgets them.
        self._on_deleted = on_deleted

    # -- lookups -----------------------------------------------------------------------------------
    def dataset(self, tenant_id: str, dataset_id: str, refusal: str | None = None) -> DatasetRecord:
        """The tenant's dataset, else DataError with ``refusal`` (each endpoint words it as RAGFlow does)."""
        record = self._datasets.get(tenant_id, dataset_id)
        if record is None:
            raise DataError(refusal or f"You don't own the dataset {dataset_id}.")
        return record

    def _listed_dataset(self, tenant_id: str, dataset_id: str) -> DatasetRecord:
        # RAGFlow's list and delete documents end this message with a space.
        return self.dataset(tenant_id, dataset_id, f"You don't own the dataset {dataset_id}. ")

    # -- upload ------------------------------------------------------------------------------------
    def _check_file(self, file: UploadedFile) -> None:
        if not file.filename:
            raise ArgumentError("No file selected!")
        if len(file.filename.encode("utf-8")) > FILE_NAME_LEN_LIMIT:
            raise ArgumentError(f"File name must be {FILE_NAME_LEN_LIMIT} bytes or less.")
        ext = os.path.splitext(file.filename)[1].lower()
        if not (is_supported(file.filename) or ext in IMAGE_EXTENSIONS):
            raise ServerError(f"{file.filename}: This type of file has not been supported yet!")
        if len(file.data) > self._max_file_bytes:
            limit_mb = self._max_file_bytes / (1024 * 1024)
            raise ArgumentError(f"{file.filename}: File size exceeds the limit of {limit_mb:g} MB.")

    def upload(self, tenant_id: str, dataset_id: str, files: Sequence[UploadedFile]) -> list[dict[str, Any]]:
        """Store files as new documents (names made unique like RAGFlow). All are checked before any is kept."""
        if not files:
            raise ArgumentError("No file part!")
        dataset = self.dataset(tenant_id, dataset_id)
        for file in files:
            self._check_file(file)
        created = []
        for file in files:
            created.append(self._register(tenant_id, dataset, file.filename, file.data, source_type="local"))
        return [{**document_view(record), "run": "UNSTART"} for record in created]

    def _register(
        self,
        tenant_id: str,
        dataset: DatasetRecord,
        filename: str,
        data: bytes | None,
        *,
        source_type: str,
        existing_blob: str | None = None,
        size: int | None = None,
    ) -> Record:
        document_id = new_id()
        size = len(data) if data is not None else (size or 0)
        key = existing_blob or blob_key(tenant_id, dataset["id"], document_id)
        if data is not None:
            self._blobs.put(key, data, content_type(filename))
        try:
            return create_document(
                self._documents,
                tenant_id,
                dataset,
                filename,
                blob=key,
                size=size,
                source_type=source_type,
                mirror=self._mirror,
                document_id=document_id,
            )
        except DataError:
            if data is not None and existing_blob is None:
                self._blobs.delete(key)
            raise

    def register_object(self, tenant_id: str, dataset_id: str, filename: str, key: str, size: int) -> dict[str, Any]:
        """Register a blob already in storage (an S3 upload under the ingest prefix) as a document."""
        dataset = self.dataset(tenant_id, dataset_id)
        self._check_file(UploadedFile(filename, b""))
        record = self._register(tenant_id, dataset, filename, None, source_type="s3", existing_blob=key, size=size)
        return document_view(record)

    # -- list / download ---------------------------------------------------------------------------
    def list_documents(
        self, tenant_id: str, dataset_id: str, query: ListDocumentsQuery
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of a dataset's documents after every filter the reference lists."""
        self._listed_dataset(tenant_id, dataset_id)
        if query.id and self._documents.get(dataset_id, query.id) is None:
            raise DataError(f"You don't own the document {query.id}.")
        docs = self._documents.list_all(dataset_id, orderby=query.orderby, desc=query.desc)
        if query.name:
            docs = [d for d in docs if d["name"].lower() == query.name.lower()]
            if not docs:
                raise DataError(f"You don't own the document {query.name}.")
        if query.id:
            docs = [d for d in docs if d["id"] == query.id]
        if query.keywords:
            needle = query.keywords.lower()
            docs = [d for d in docs if needle in d["name"].lower()]
        suffixes = {s.strip().lower().lstrip(".") for value in query.suffix for s in value.split(",") if s.strip()}
        if suffixes:
            docs = [d for d in docs if d["suffix"] in suffixes]
        if query.run:
            docs = [d for d in docs if d["run"] in set(query.run)]
        if query.create_time_from:
            docs = [d for d in docs if d["create_time"] >= query.create_time_from]
        if query.create_time_to:
            docs = [d for d in docs if d["create_time"] <= query.create_time_to]
        if query.metadata_condition is not None:
            keep = set(filter_documents(query.metadata_condition, ((d["id"], d.get("meta_fields")) for d in docs)))
            docs = [d for d in docs if d["id"] in keep]
        start = (query.page - 1) * query.page_size
        return [document_view(d) for d in docs[start : start + query.page_size]], len(docs)

    def download(self, tenant_id: str, dataset_id: str, document_id: str) -> tuple[bytes, str, str]:
        """The original bytes, the file name and its content type."""
        self.dataset(tenant_id, dataset_id, f"You do not own the dataset {dataset_id}.")
        record = self._documents.get(dataset_id, document_id)
        if record is None:
            raise DataError(f"The dataset not own the document {document_id}.")
        data = self._blobs.get(record["blob_key"])
        if not data:
            raise DataError("This file is empty.")
        return data, record["name"], content_type(record["name"])

    # -- update ------------------------------------------------------------------------------------
    def update(
        self, tenant_id: str, dataset_id: str, document_id: str, request: UpdateDocumentRequest
    ) -> dict[str, Any] | bool:
        """Rename, set meta_fields, change chunk method / parser_config, enable or disable a document.

        A name may differ from another document's only in case (RAGFlow compares names exactly here); a
        ``parser_config`` is merged over the document's, and ``{}`` resets it to the method's defaults."""
        dataset = self.dataset(tenant_id, dataset_id, "You don't own the dataset.")
        provided = request.model_fields_set
        current = self._documents.get(dataset_id, document_id)
        if current is None:
            raise DataError("The dataset doesn't own the document.")
        for field, stored in (("chunk_count", "chunk_count"), ("token_count", "token_count"), ("progress", "progress")):
            if field in provided and getattr(request, field) != current[stored]:
                raise DataError(f"Can't change `{field}`.")
        changes: dict[str, Any] = {}
        dataset_deltas: dict[str, int] = {}
        reset_chunks = False
        if request.meta_fields is not None:
            changes["meta_fields"] = request.meta_fields
        if request.name is not None and request.name != current["name"]:
            name = request.name
            # The extension first, as RAGFlow: an empty name has none, so it is answered with this message.
            if os.path.splitext(name.lower())[1] != os.path.splitext(current["name"].lower())[1]:
                raise ArgumentError("The extension of file can't be changed")
            if not name.strip():
                raise ArgumentError("File name can't be empty.")
            changes.update(name=name, location=name)
        if request.parser_config is not None:
            overrides = request.parser_config.overrides()
            changes["parser_config"] = (
                deep_merge(current["parser_config"], overrides)
                if overrides
                else self._method_defaults(dataset, request.chunk_method or current["chunk_method"])
            )
        if request.chunk_method is not None:
            method = request.chunk_method
            if method != current["chunk_method"]:
                changes.update(chunk_method=method, progress=0.0, progress_msg="", run="UNSTART")
                if "parser_config" not in changes:
                    changes["parser_config"] = self._method_defaults(dataset, method)
                if current["chunk_count"] or current["token_count"]:
                    reset_chunks = True
                    changes.update(chunk_count=0, token_count=0, process_duration=0.0)
                    dataset_deltas = {"chunk_count": -current["chunk_count"], "token_num": -current["token_count"]}
        enabled_changed = request.enabled is not None and str(request.enabled) != current["status"]
        if enabled_changed:
            changes["status"] = str(request.enabled)
        if changes:
            now = now_ms()
            changes.update(update_time=now, update_date=http_date(now))
            try:
                current = self._documents.update(current, changes, dataset_deltas=dataset_deltas or None)
            except DuplicateDocumentName:
                raise DataError("Duplicated document name in the same dataset.") from None
            if "name" in changes and self._mirror is not None:
                self._mirror.renamed(current)
        if reset_chunks:
            self._documents.delete_chunks_of(document_id)
            self._index().delete_document(tenant_id, dataset["id"], document_id)
        if enabled_changed:
            chunk_ids = [c["id"] for c in self._documents.chunks_of(document_id)]
            self._index().set_available(tenant_id, dataset_id, chunk_ids, request.enabled == 1)
            return True
        return document_view(current)

    @staticmethod
    def _method_defaults(dataset: DatasetRecord, chunk_method: str) -> dict[str, Any]:
        # A document's defaults carry its dataset's chat model, as the document's config did at upload.
        return default_parser_config(chunk_method, dataset["parser_config"].get("llm_id"))

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, tenant_id: str, dataset_id: str, request: DeleteDocumentsRequest) -> dict[str, Any] | None:
        """Delete documents (``request.scope()``: the listed ones, all, or none) with their blobs, chunks and
        index entries. Like RAGFlow, the documents found are deleted before the ids not found are reported."""
        self._listed_dataset(tenant_id, dataset_id)
        scope = request.scope()
        if scope == "none":
            return None
        ids = request.ids if scope == "listed" else [d["id"] for d in self._documents.list_all(dataset_id)]
        assert ids is not None
        unique, duplicates = unique_with_duplicates(ids, "document")
        records = [(i, self._documents.get(dataset_id, i)) for i in unique]
        found = [record for _, record in records if record is not None]
        for record in found:
            self.remove_document(record, forget=False)
        if found and self._on_deleted is not None:
            self._on_deleted(tenant_id, dataset_id, [r["id"] for r in found])  # the graph forgets them at once
        not_found = [i for i, record in records if record is None]
        if not_found:
            raise DataError(f"Documents not found: {not_found}")
        if duplicates:
            return {"success_count": len(unique), "errors": duplicates}
        return None

    def remove_document(self, record: Record, *, forget: bool = True) -> None:
        """Delete one document everywhere: its file-manager entry and links, its row and chunks (the
        dataset's counts follow), its index entries, its blob unless a file owns it, and (``forget``) its
        contribution to the dataset's knowledge graph."""
        if self._mirror is not None:
            self._mirror.removed(record)
        self._documents.delete(record)
        self._index().delete_document(record["tenant_id"], record["dataset_id"], record["id"])
        if owns_blob(record):
            self._blobs.delete(record["blob_key"])
        # A parse's artifacts go when it ends; a document removed just as its parse ends could keep them.
        self._blobs.delete_prefix(f"work/{record['tenant_id']}/{record['dataset_id']}/{record['id']}/")
        if forget and self._on_deleted is not None:
            self._on_deleted(record["tenant_id"], record["dataset_id"], [record["id"]])

    # -- metadata ----------------------------------------------------------------------------------
    def metadata_summary(self, tenant_id: str, dataset_id: str) -> dict[str, list[list[Any]]]:
        """Every metadata key of the dataset's documents with its values and how many documents hold each."""
        self.dataset(tenant_id, dataset_id)
        return summarize(d.get("meta_fields") or {} for d in self._documents.list_all(dataset_id))

    def metadata_update(self, tenant_id: str, dataset_id: str, request: MetadataUpdateRequest) -> dict[str, int]:
        """Batch update/delete document metadata for the selected documents (ids ∩ condition)."""
        self.dataset(tenant_id, dataset_id)
        updates, deletes = request.change_lists()
        condition = request.selector.metadata_condition
        document_ids = request.selector.document_ids
        docs = {d["id"]: d for d in self._documents.list_all(dataset_id)}
        if document_ids:
            invalid = [i for i in document_ids if i not in docs]
            if invalid:
                raise DataError(f"These documents do not belong to dataset {dataset_id}: {', '.join(invalid)}")
            selected = [docs[i] for i in dict.fromkeys(document_ids)]
        else:
            selected = list(docs.values())
        if condition is not None and not condition.is_empty:
            keep = set(filter_documents(condition, ((d["id"], d.get("meta_fields")) for d in selected)))
            selected = [d for d in selected if d["id"] in keep]
        updated = 0
        for record in selected:
            new_meta, changed = apply_metadata_changes(record.get("meta_fields") or {}, updates, deletes)
            if changed:
                now = now_ms()
                self._documents.update(
                    record, {"meta_fields": new_meta, "update_time": now, "update_date": http_date(now)}
                )
                updated += 1
        return {"updated": updated, "matched_docs": len(selected)}

    def purge_dataset(self, dataset: DatasetRecord) -> None:
        """Remove everything a dataset holds (used when the dataset itself is deleted)."""
        records = self._documents.list_all(dataset["id"])
        for record in records:
            if self._mirror is not None:
                self._mirror.removed(record)
            self._documents.delete(record)
        if self._mirror is not None:
            self._mirror.dataset_removed(dataset)
        if not records:
            return  # chunks, index entries and artifacts all belong to documents
        self._index().delete_dataset(dataset["tenant_id"], dataset["id"])
        self._blobs.delete_prefix(f"docs/{dataset['tenant_id']}/{dataset['id']}/")
        self._blobs.delete_prefix(f"work/{dataset['tenant_id']}/{dataset['id']}/")
        self._blobs.delete_prefix(f"{UPLOADS_PREFIX}{dataset['tenant_id']}/{dataset['id']}/")
