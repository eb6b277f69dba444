"""Blob storage port: original files and intermediate artifacts, under tenant-scoped keys."""

from __future__ import annotations

from abc import ABC, abstractmethod


class BlobNotFound(Exception):
    """No object under that key."""


class BlobStore(ABC):
    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store ``data`` under ``key`` (replacing any previous object)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; raises BlobNotFound."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with ``prefix``."""

    @abstractmethod
    def ping(self) -> None:
        """Raise when the store cannot serve requests."""
