"""The embedded search index's home in the data folder. The engine itself arrives with retrieval."""

from __future__ import annotations

import os
from pathlib import Path

from shared.ports.search import SearchIndex


class LocalIndexDirectory(SearchIndex):
    """Health of the embedded index's storage: its directory exists and is writable."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def ping(self) -> None:
        if not self._root.is_dir() or not os.access(self._root, os.W_OK):
            raise OSError(f"index directory {self._root} is not writable")
