"""Files that do not pass through the API: presigned multipart uploads (up to 5 GB) and imports of objects
already in storage. Both end as ordinary documents of a dataset (parsed on request).

Uploads: ``create`` starts a multipart upload under ``uploads/<tenant>/<dataset>/<upload>`` and answers a
URL per part; the client PUTs each part there (S3 on AWS, the local server locally) and calls ``complete``,
which checks what storage received against what was announced and turns the object into a document. An
upload not completed by its expiry is gone (S3's lifecycle rule; locally ``remove_expired``).

Imports: objects of the documents bucket under ``imports/<tenant>/`` (the bucket is shared by every tenant:
each imports from its own area only) or of a bucket the stage allows (every tenant may import from those)
become documents that *point at* the object (``s3://bucket/key``): no byte is copied, and deleting the
document never deletes the object (``shared.adapters.blob_references``). An object is imported once per
dataset (while its document exists and the object is unchanged).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.constants import IMPORTS_PREFIX, UPLOADS_PREFIX
from shared.errors import ArgumentError, DataError, OperatingError
from shared.ids import new_id, now_ms
from shared.ports.uploads import (
    MAX_PARTS,
    MIN_PART_BYTES,
    ObjectCatalog,
    ObjectNotFound,
    StoredObject,
    UploadedPart,
    UploadNotFound,
    UploadRejected,
    UploadStore,
    split_uri,
)
from shared.rag.parsers import is_supported
from shared.repos.datasets import DatasetRepository
from shared.repos.documents import DocumentRepository
from shared.repos.documents import Record as DocumentRecord
from shared.repos.uploads import Record, UploadRepository
from shared.schemas.documents import FILE_NAME_LEN_LIMIT
from shared.schemas.uploads import CompleteUploadRequest, CreateUploadRequest, ImportRequest
from shared.services.documents import IMAGE_EXTENSIONS, DocumentMirror, create_document, document_view

#: Part size when the client names none: 64 MiB, raised for files that would need more than MAX_PARTS parts.
DEFAULT_PART_BYTES = 64 * 1024 * 1024
#: Seconds after which a complete that never finished (a crashed call) may be taken over by another.
_COMPLETE_CLAIM_S = 120


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    url_ttl_s: int
    expiry_s: int


def supported(filename: str) -> bool:
    """Whether a document of this name can be parsed (the same rule as the RAGFlow upload)."""
    return is_supported(filename) or os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS


def import_area(tenant_id: str) -> str:
    """The part of the documents bucket a tenant imports from."""
    return f"{IMPORTS_PREFIX}{tenant_id}/"


def upload_key(tenant_id: str, dataset_id: str, upload_id: str) -> str:
    """Where a presigned upload's object lands (and stays, as the document's blob)."""
    return f"{UPLOADS_PREFIX}{tenant_id}/{dataset_id}/{upload_id}"


class UploadService:
    def __init__(
        self,
        *,
        uploads: UploadRepository,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        store: Callable[[], UploadStore],
        catalog: Callable[[], ObjectCatalog],
        start_parse: Callable[[DocumentRecord], object],
        mirror: DocumentMirror | None,
        documents_bucket: str,
        import_buckets: Sequence[str],
        limits: UploadLimits,
    ) -> None:
        self._uploads = uploads
        self._datasets = datasets
        self._documents = documents
        self._store = store
        self._catalog = catalog
        self._start_parse = start_parse
        self._mirror = mirror
        self._bucket = documents_bucket
        self._import_buckets = frozenset(import_buckets) | {documents_bucket}
        self._limits = limits

    def _dataset(self, tenant_id: str, dataset_id: str) -> None:
        if self._datasets.get(tenant_id, dataset_id) is None:
            raise DataError(f"You don't own the dataset {dataset_id}.")

    def _upload(self, tenant_id: str, dataset_id: str, upload_id: str) -> Record:
        self._dataset(tenant_id, dataset_id)
        record = self._uploads.get(tenant_id, upload_id)
        if record is None or record["dataset_id"] != dataset_id:
            raise DataError(f"You don't own the upload {upload_id}.")
        return record

    # == presigned uploads ===========================================================================
    def _part_size(self, size: int, requested: int | None) -> int:
        part_size = requested or max(DEFAULT_PART_BYTES, math.ceil(size / MAX_PARTS))
        if math.ceil(size / part_size) > MAX_PARTS:
            raise ArgumentError(f"`part_size` is too small: a file of {size} bytes needs more than {MAX_PARTS} parts.")
        return part_size

    def create(self, tenant_id: str, dataset_id: str, request: CreateUploadRequest, base_url: str) -> dict[str, Any]:
        """Start an upload of ``request.size`` bytes; answers a URL per part to PUT the bytes to."""
        self._dataset(tenant_id, dataset_id)
        if not supported(request.filename):
            raise ArgumentError(f"{request.filename}: This type of file has not been supported yet!")
        if request.size > self._limits.max_bytes:
            raise ArgumentError(
                f"{request.filename}: File size exceeds the limit of {self._limits.max_bytes / 1024**3:g} GB."
            )
        part_size = self._part_size(request.size, request.part_size)
        now = now_ms()
        self._store().remove_expired(now)
        upload_id = new_id()
        key = upload_key(tenant_id, dataset_id, upload_id)
        expires_at = now + self._limits.expiry_s * 1000
        record = {
            "id": upload_id,
            "tenant_id": tenant_id,
            "dataset_id": dataset_id,
            "filename": request.filename,
            "size": request.size,
            "part_size": part_size,
            "part_count": math.ceil(request.size / part_size),
            "content_type": request.content_type,
            "parse": request.parse,
            "key": key,
            "store_upload_id": self._store().create(key, request.content_type, expires_at_ms=expires_at),
            "status": "uploading",
            "document_id": None,
            "create_time": now,
            "expires_at": expires_at,
        }
        self._uploads.create(record)
        return self._view(record, [], base_url)

    def _view(self, record: Record, received: list[UploadedPart], base_url: str) -> dict[str, Any]:
        got = {part.number for part in received}
        missing = [n for n in range(1, record["part_count"] + 1) if n not in got]
        ttl = max(1, min(self._limits.url_ttl_s, (record["expires_at"] - now_ms()) // 1000))
        urls = (
            self._store().part_urls(
                record["key"], record["store_upload_id"], missing, expires_in_s=ttl, base_url=base_url
            )
            if record["status"] == "uploading"
            else {}
        )
        last = record["size"] - (record["part_count"] - 1) * record["part_size"]
        return {
            "upload_id": record["id"],
            "dataset_id": record["dataset_id"],
            "filename": record["filename"],
            "size": record["size"],
            "part_size": record["part_size"],
            "part_count": record["part_count"],
            "status": record["status"],
            "document_id": record.get("document_id"),
            "expires_at": record["expires_at"],
            "url_expires_at": now_ms() + ttl * 1000,
            "method": "PUT",
            "parts": [
                {
                    "part_number": n,
                    "size": last if n == record["part_count"] else record["part_size"],
                    "url": urls[n],
                }
                for n in missing
                if n in urls
            ],
            "received": [{"part_number": p.number, "size": p.size, "etag": p.etag} for p in received],
        }

    def status(self, tenant_id: str, dataset_id: str, upload_id: str, base_url: str) -> dict[str, Any]:
        """What storage received so far, with fresh URLs for the parts still missing (to resume)."""
        record = self._live(self._upload(tenant_id, dataset_id, upload_id))
        received = [] if record["status"] != "uploading" else self._received(record)
        return self._view(record, received, base_url)

    def _received(self, record: Record) -> list[UploadedPart]:
        try:
            return self._store().parts(record["key"], record["store_upload_id"])
        except UploadNotFound:
            self._uploads.delete(record)
            raise DataError(f"The upload {record['id']} has expired or was aborted.") from None

    def _live(self, record: Record) -> Record:
        if record["status"] == "uploading" and record["expires_at"] < now_ms():
            self._store().abort(record["key"], record["store_upload_id"])
            self._uploads.delete(record)
            raise DataError(f"The upload {record['id']} has expired or was aborted.")
        return record

    def abort(self, tenant_id: str, dataset_id: str, upload_id: str) -> None:
        """Drop an unfinished upload and whatever parts storage holds."""
        record = self._upload(tenant_id, dataset_id, upload_id)
        if record["status"] == "completed":
            raise DataError(f"The upload {upload_id} is complete: delete its document instead.")
        self._store().abort(record["key"], record["store_upload_id"])
        self._uploads.delete(record)

    def _check_parts(self, record: Record, received: list[UploadedPart], request: CompleteUploadRequest) -> None:
        numbers = [part.number for part in received]
        expected = list(range(1, record["part_count"] + 1))
        if numbers != expected:
            missing = sorted(set(expected) - set(numbers))
            extra = sorted(set(numbers) - set(expected))
            detail = f"missing parts {missing[:20]}" if missing else f"unexpected parts {extra[:20]}"
            raise ArgumentError(f"The upload is not complete: {detail}.")
        for part in received[:-1]:
            if part.size < MIN_PART_BYTES:
                raise ArgumentError(f"Part {part.number} holds {part.size} bytes: every part but the last needs 5 MiB.")
        total = sum(part.size for part in received)
        if total != record["size"]:
            raise ArgumentError(f"The parts hold {total} bytes, the upload announced {record['size']}.")
        if request.parts is not None:
            given = {p.part_number: p.etag.strip('"') for p in request.parts}
            if given != {p.number: p.etag for p in received}:
                raise ArgumentError("The parts' ETags do not match what storage received.")

    def complete(
        self, tenant_id: str, dataset_id: str, upload_id: str, request: CompleteUploadRequest
    ) -> dict[str, Any]:
        """Assemble the parts into the object and register it as a document (parsed when asked). Calling it
        again after it succeeded answers the same document."""
        record = self._live(self._upload(tenant_id, dataset_id, upload_id))
        if record["status"] == "completed":
            document = self._documents.get(dataset_id, record["document_id"])
            if document is None:
                raise DataError(f"The upload {upload_id} is complete but its document was deleted.")
            return document_view(document)
        now = now_ms()
        if record["status"] == "completing" and now - int(record.get("claimed_at") or 0) < _COMPLETE_CLAIM_S * 1000:
            raise OperatingError(f"The upload {upload_id} is being completed; retry in a moment.")
        claimed = self._uploads.claim(record, {"status": "completing", "claimed_at": now})
        if claimed is None:
            raise OperatingError(f"The upload {upload_id} is being completed; retry in a moment.")
        try:
            size = self._assemble(claimed, request)
        except (ArgumentError, DataError):
            self._uploads.update(claimed, {"status": "uploading"})
            raise
        document = self._register(tenant_id, dataset_id, record["filename"], record["key"], size, "local")
        self._uploads.update(claimed, {"status": "completed", "document_id": document["id"]})
        parse = record["parse"] if request.parse is None else request.parse
        if parse:
            self._start_parse(document)
            document = self._documents.get(dataset_id, document["id"]) or document
        return document_view(document)

    def _register(
        self, tenant_id: str, dataset_id: str, filename: str, key: str, size: int, source_type: str
    ) -> DocumentRecord:
        dataset = self._datasets.get(tenant_id, dataset_id)
        if dataset is None:
            raise DataError(f"You don't own the dataset {dataset_id}.")
        return create_document(
            self._documents,
            tenant_id,
            dataset,
            filename,
            blob=key,
            size=size,
            source_type=source_type,
            mirror=self._mirror,
        )

    def _assemble(self, record: Record, request: CompleteUploadRequest) -> int:
        """Complete the multipart upload; a previous attempt that completed it but stopped before registering
        the document is recognized by the object being there with the announced size."""
        try:
            received = self._store().parts(record["key"], record["store_upload_id"])
        except UploadNotFound:
            return self._already_assembled(record)
        self._check_parts(record, received, request)
        try:
            self._store().complete(record["key"], record["store_upload_id"], received)
        except UploadNotFound:
            return self._already_assembled(record)
        except UploadRejected as exc:
            raise ArgumentError(str(exc)) from None
        return int(record["size"])

    def _already_assembled(self, record: Record) -> int:
        try:
            stored = self._catalog().head(self._bucket, record["key"])
        except ObjectNotFound:
            self._uploads.delete(record)
            raise DataError(f"The upload {record['id']} has expired or was aborted.") from None
        if stored.size != record["size"]:
            raise DataError(f"The upload {record['id']} holds {stored.size} bytes, not {record['size']}.")
        return stored.size

    # == imports =====================================================================================
    def _import_source(self, tenant_id: str, request: ImportRequest) -> tuple[str, str]:
        """(bucket, key or prefix) the request names: an ``s3://`` URI, or a path in the tenant's import area of
        the documents bucket. Other buckets than the stage allows, and the documents bucket outside the tenant's
        area, are refused."""
        source = request.s3_uri if request.s3_uri is not None else request.prefix or ""
        area = import_area(tenant_id)
        if source.startswith("s3://"):
            try:
                bucket, key = split_uri(source)
            except ValueError:
                raise ArgumentError(f"Invalid S3 URI: {source}") from None
        else:
            bucket, key = self._bucket, area + source.lstrip("/")
        if bucket not in self._import_buckets:
            raise DataError(f"Imports from the bucket {bucket} are not allowed.")
        if bucket == self._bucket and not key.startswith(area):
            raise ArgumentError(f"In the documents bucket, imports read s3://{bucket}/{area} only.")
        return bucket, key

    def _skip_reason(self, dataset_id: str, obj: StoredObject) -> str | None:
        name = obj.key.rsplit("/", 1)[-1]
        if not name or obj.key.endswith("/"):
            return "a folder marker"
        if len(name.encode("utf-8")) > FILE_NAME_LEN_LIMIT:
            return f"its name is longer than {FILE_NAME_LEN_LIMIT} bytes"
        if not supported(name):
            return "This type of file has not been supported yet!"
        if obj.size == 0:
            return "The file is empty."
        if obj.size > self._limits.max_bytes:
            return f"File size exceeds the limit of {self._limits.max_bytes / 1024**3:g} GB."
        guard = self._uploads.imported(dataset_id, obj.uri)
        unchanged = guard is not None and guard["etag"] == obj.etag
        if unchanged and guard is not None and self._documents.get(dataset_id, guard["document_id"]) is not None:
            return f"already imported as document {guard['document_id']}"
        return None

    def import_objects(self, tenant_id: str, dataset_id: str, request: ImportRequest) -> dict[str, Any]:
        """Documents for the objects ``request`` names (one, or one page under a prefix); ``truncated`` and
        ``next_start_after`` say whether to call again for the rest."""
        self._dataset(tenant_id, dataset_id)
        bucket, key = self._import_source(tenant_id, request)
        truncated = False
        try:
            if request.s3_uri is not None:
                objects = [self._catalog().head(bucket, key)]
            else:
                objects, truncated = self._catalog().list_objects(
                    bucket, key, start_after=request.start_after, limit=request.limit
                )
        except ObjectNotFound as missing:
            raise DataError(f"No such object or bucket: {missing}") from None
        created: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        for obj in objects:
            reason = self._skip_reason(dataset_id, obj)
            if reason is not None:
                skipped.append({"uri": obj.uri, "reason": reason})
                continue
            document = self._register(tenant_id, dataset_id, obj.key.rsplit("/", 1)[-1], obj.uri, obj.size, "s3")
            self._uploads.mark_imported(dataset_id, obj.uri, obj.etag, document["id"])
            if request.parse:
                self._start_parse(document)
                document = self._documents.get(dataset_id, document["id"]) or document
            created.append(document_view(document))
        return {
            "documents": created,
            "skipped": skipped,
            "truncated": truncated,
            "next_start_after": objects[-1].key if truncated and objects else None,
        }
