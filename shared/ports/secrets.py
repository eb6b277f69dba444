"""Secrets port: where tenants' model API keys live, apart from the metadata store.

The tenant's record keeps only a reference to each key; the value is written here and read back when a
model client is built. On AWS an SSM Parameter Store SecureString per key (encrypted with the stack's KMS
key; the table never holds a key, and only the functions that call models may read them); on one machine,
an item of the local store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class SecretNotFound(LookupError):
    """No secret under that reference (deleted, or never written)."""


class SecretStore(ABC):
    @abstractmethod
    def put(self, name: str, value: str) -> str:
        """Store ``value`` under ``name`` (a ``/``-separated path of letters, digits, ``_``, ``.`` and ``-``),
        replacing what was there; returns the reference to read it back with."""

    @abstractmethod
    def get(self, reference: str) -> str:
        """The value behind ``reference``; raises ``SecretNotFound`` when there is none."""

    @abstractmethod
    def delete(self, reference: str) -> None:
        """Remove the secret (no error when it is already gone)."""
