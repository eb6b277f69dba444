"""One client per model, endpoint and key, built once per process (chat models, embedders, rerank models).

Tenants with different keys for the same endpoint never share a client, nor each other's credentials; a
client is built outside no lock but created at most once per key (double-checked under the lock).
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
CacheKey = tuple[str, str | None, str | None]


class Factory(Protocol[T_co]):
    def __call__(self, model_id: str, *, api_base: str | None, api_key: str | None) -> T_co: ...


class ModelCache(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[CacheKey, T] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str, api_base: str | None, api_key: str | None, create: Factory[T]) -> T:
        """The client for ``model_id`` at ``api_base`` with ``api_key``, built by ``create`` on first use."""
        key: CacheKey = (model_id, api_base, api_key)
        item = self._items.get(key)
        if item is None:
            with self._lock:
                item = self._items.get(key)
                if item is None:
                    item = self._items[key] = create(model_id, api_base=api_base, api_key=api_key)
        return item

    def clear(self) -> None:
        """Forget every built client (tests; changed credentials)."""
        with self._lock:
            self._items.clear()
