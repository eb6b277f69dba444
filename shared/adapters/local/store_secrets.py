"""Secrets on one machine: items of the local metadata store, apart from the records that reference them.

The data folder is the machine's own; keeping the values out of the tenant records still means a record can be
read, copied or logged without its keys.
"""

from __future__ import annotations

from shared.ports.metadata import MetadataStore
from shared.ports.secrets import SecretNotFound, SecretStore

_PK = "SECRET"


class StoreSecretStore(SecretStore):
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def put(self, name: str, value: str) -> str:
        reference = name.strip("/")
        self._store.put({"pk": _PK, "sk": reference, "value": value})
        return reference

    def get(self, reference: str) -> str:
        item = self._store.get(_PK, reference)
        if item is None:
            raise SecretNotFound(reference)
        return str(item["value"])

    def delete(self, reference: str) -> None:
        self._store.delete(_PK, reference)
