"""Presigned uploads under their tenant, and the guards that make an object imported once per dataset.

Layout (single table):
* upload        pk=``TENANT#<tenant>`` sk=``UPLOAD#<id>``;
* import guard  pk=``IMPORT#<dataset>`` sk=``<digest of the s3 uri>`` holding the document it became and the
  object's ETag (a digest: S3 keys may be longer than a sort key may).
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.ports.metadata import ITEM_EXISTS, ITEM_NOT_EXISTS, Condition, ConditionFailed, MetadataStore
from shared.repos.keys import tenant_pk

Record = dict[str, Any]


class UploadRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, tenant_id: str, upload_id: str) -> Record | None:
        return self._store.get(tenant_pk(tenant_id), f"UPLOAD#{upload_id}")

    def create(self, record: Record) -> None:
        item = {**record, "pk": tenant_pk(record["tenant_id"]), "sk": f"UPLOAD#{record['id']}"}
        self._store.put(item, ITEM_NOT_EXISTS)

    def claim(self, record: Record, changes: Record) -> Record | None:
        """Apply ``changes`` only if the upload's status is still the one ``record`` has; None when it changed."""
        try:
            return self._store.update(
                tenant_pk(record["tenant_id"]),
                f"UPLOAD#{record['id']}",
                set=changes,
                condition=Condition("equals", "status", record["status"]),
            )
        except ConditionFailed:
            return None

    def update(self, record: Record, changes: Record) -> Record:
        return self._store.update(
            tenant_pk(record["tenant_id"]), f"UPLOAD#{record['id']}", set=changes, condition=ITEM_EXISTS
        )

    def delete(self, record: Record) -> None:
        self._store.delete(tenant_pk(record["tenant_id"]), f"UPLOAD#{record['id']}")

    # -- imports -----------------------------------------------------------------------------------
    def imported(self, dataset_id: str, uri: str) -> Record | None:
        return self._store.get(f"IMPORT#{dataset_id}", _uri_key(uri))

    def mark_imported(self, dataset_id: str, uri: str, etag: str, document_id: str) -> None:
        item = {"pk": f"IMPORT#{dataset_id}", "sk": _uri_key(uri), "uri": uri, "etag": etag, "document_id": document_id}
        self._store.put(item)


def _uri_key(uri: str) -> str:
    return hashlib.blake2b(uri.encode("utf-8"), digest_size=20).hexdigest()
