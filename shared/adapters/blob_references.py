"""Document originals by key or by reference: the blob store for what flowless owns, the object catalog for
objects a document only points at (imports: ``s3://<bucket>/<key>``).

flowless never writes or deletes a referenced object: deleting the document (or its dataset) leaves the
object where it was, in a bucket flowless may not own. Readers (the parse steps, downloads) get its bytes
like any blob's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.ports.blobs import BlobNotFound, BlobStore
from shared.ports.uploads import OBJECT_URI_SCHEME, ObjectCatalog, ObjectNotFound, split_uri

logger = logging.getLogger(__name__)


def is_reference(key: str) -> bool:
    return key.startswith(OBJECT_URI_SCHEME)


class BlobsWithReferences(BlobStore):
    def __init__(self, own: BlobStore, catalog: Callable[[], ObjectCatalog]) -> None:
        self._own = own
        self._catalog = catalog

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        if is_reference(key):
            raise ValueError(f"refusing to write the referenced object {key}")
        self._own.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        if not is_reference(key):
            return self._own.get(key)
        bucket, object_key = split_uri(key)
        try:
            return self._catalog().read(bucket, object_key)
        except ObjectNotFound as exc:
            raise BlobNotFound(key) from exc

    def delete(self, key: str) -> None:
        if is_reference(key):
            logger.info("document deleted; its referenced object %s is left in place", key)
            return
        self._own.delete(key)

    def delete_prefix(self, prefix: str) -> None:
        self._own.delete_prefix(prefix)

    def ping(self) -> None:
        self._own.ping()
