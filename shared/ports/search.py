"""Search index port. The index is derived data: it can always be rebuilt from the metadata store."""

from __future__ import annotations

from abc import ABC, abstractmethod


class SearchIndex(ABC):
    @abstractmethod
    def ping(self) -> None:
        """Raise when the index cannot serve requests."""
