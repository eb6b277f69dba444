"""Ports for files that do not pass through the API: presigned multipart uploads, and objects already in
storage that become documents (imports).

``UploadStore``: S3 multipart uploads with presigned part URLs on AWS; locally a part store under the data
folder whose part URLs point at the local server — clients are written once for both. ``ObjectCatalog``:
what is in a bucket (list, HEAD, read) — the documents bucket and the buckets a stage allows; locally,
folders standing in for buckets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: S3's multipart limits, applied locally too: parts of at least 5 MiB (but the last), at most 10,000 parts.
MIN_PART_BYTES: Final = 5 * 1024 * 1024
MAX_PART_BYTES: Final = 5 * 1024**3
MAX_PARTS: Final = 10_000
#: The scheme of object references (an imported document's blob key is ``s3://<bucket>/<key>``).
OBJECT_URI_SCHEME: Final = "s3://"


class UploadNotFound(Exception):
    """The store has no such multipart upload (completed, aborted or expired)."""


class UploadRejected(Exception):
    """The store refused to assemble the parts (e.g. a part too small, a wrong ETag); the message says why."""


@dataclass(frozen=True)
class UploadedPart:
    number: int
    size: int
    etag: str


class UploadStore(ABC):
    @abstractmethod
    def create(self, key: str, content_type: str, *, expires_at_ms: int) -> str:
        """Start a multipart upload to ``key``; returns the store's upload id."""

    @abstractmethod
    def part_urls(
        self, key: str, upload_id: str, part_numbers: Sequence[int], *, expires_in_s: int, base_url: str
    ) -> dict[int, str]:
        """A URL per part number to ``PUT`` the part's bytes to (no API key needed), valid ``expires_in_s``.
        ``base_url`` is the API's own address (the local store's URLs point at it; S3's ignore it)."""

    @abstractmethod
    def parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """The parts received so far, by number; raises UploadNotFound."""

    @abstractmethod
    def complete(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> None:
        """Assemble ``parts`` (in order) into the object ``key``; raises UploadNotFound / UploadRejected."""

    @abstractmethod
    def abort(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts (no error when it is already gone)."""

    @abstractmethod
    def remove_expired(self, now_ms: int) -> int:
        """Drop uploads past their expiry; returns how many. (S3: the bucket's lifecycle rule does it.)"""


class ObjectNotFound(Exception):
    """No such object, or no such bucket/folder."""


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    etag: str

    @property
    def uri(self) -> str:
        return f"{OBJECT_URI_SCHEME}{self.bucket}/{self.key}"


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); ValueError for anything else."""
    if not uri.startswith(OBJECT_URI_SCHEME):
        raise ValueError(f"not an {OBJECT_URI_SCHEME} URI: {uri!r}")
    bucket, _, key = uri[len(OBJECT_URI_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


class ObjectCatalog(ABC):
    @abstractmethod
    def head(self, bucket: str, key: str) -> StoredObject:
        """The object's size and ETag; raises ObjectNotFound."""

    @abstractmethod
    def list_objects(
        self, bucket: str, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> tuple[list[StoredObject], bool]:
        """Objects under ``prefix`` in key order after ``start_after``, at most ``limit``; and whether more follow."""

    @abstractmethod
    def read(self, bucket: str, key: str) -> bytes:
        """The object's bytes; raises ObjectNotFound."""
