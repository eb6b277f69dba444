"""Durable rows of the embedded index: one SQLite file, the in-memory structures are rebuilt from it at open.

Each chunk is one row holding what the in-memory index needs and nothing else: its analysed terms (term ids
and weighted frequencies as packed arrays, so loading is a ``frombuffer`` per row instead of re-analysing
text) and its normalised vector. SQLite gives atomic, crash-safe batches (WAL, ``synchronous=NORMAL``: an
application crash loses nothing committed, a power cut at most the last transactions) without a log format
of our own. Only the writer thread touches the connection (the index serialises writes); reads are served
from memory and never wait on SQLite.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DB_FILE = "index.sqlite3"
FORMAT_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS shards (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    UNIQUE (tenant_id, dataset_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    seq INTEGER PRIMARY KEY,            -- order of the last write: the load order
    shard INTEGER NOT NULL,
    chunk_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    available INTEGER NOT NULL,
    length REAL NOT NULL,               -- weighted number of terms (BM25 document length)
    term_ids BLOB NOT NULL,             -- int32[], distinct terms of the chunk
    term_freqs BLOB NOT NULL,           -- float32[], their weighted frequencies
    dim INTEGER NOT NULL,               -- 0 when the chunk has no vector
    vector BLOB                         -- float32[dim], L2-normalised (last: scans of other columns skip it)
);
CREATE UNIQUE INDEX IF NOT EXISTS chunks_by_id ON chunks (shard, chunk_id);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (shard, document_id);
"""

STATE_NEW = "new"  # created empty by this open: the metadata store may hold chunks it lacks
STATE_REBUILDING = "rebuilding"  # a rebuild started and did not finish
STATE_READY = "ready"


@dataclass(slots=True)
class ChunkRow:
    """One chunk as stored and loaded."""

    chunk_id: str
    document_id: str
    available: bool
    length: float
    term_ids: NDArray[np.int32]
    term_freqs: NDArray[np.float32]
    vector: NDArray[np.float32] | None


@dataclass(slots=True)
class StoredRow:
    """A row read back at load, blobs still packed (decoded straight into the shard's arrays)."""

    shard: int
    chunk_id: str
    document_id: str
    available: bool
    length: float
    term_ids: bytes
    term_freqs: bytes
    dim: int
    vector: bytes | None


class IndexStorage:
    """The SQLite file of one index directory. Not thread-safe: the index calls it under its write lock."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / DB_FILE
        created = not self.path.exists()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache for bulk loads
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if created or self.get_meta("state") is None:
                self._set_meta("format", FORMAT_VERSION)
                self._set_meta("state", STATE_NEW)
                self._set_meta("generation", uuid.uuid4().hex)
        found = self.get_meta("format")
        if found != FORMAT_VERSION:
            raise RuntimeError(f"index format {found} in {self.path} is not {FORMAT_VERSION}: remove the folder")

    # -- transactions and metadata --------------------------------------------------------------
    def transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def mark(self, state: str, *, new_generation: bool = False) -> None:
        """Record the index's state (inside the caller's transaction)."""
        self._set_meta("state", state)
        if new_generation:
            self._set_meta("generation", uuid.uuid4().hex)

    def close(self) -> None:
        self._db.close()

    # -- vocabulary and shards ------------------------------------------------------------------
    def load_terms(self) -> dict[str, int]:
        return {str(term): int(i) for i, term in self._db.execute("SELECT id, term FROM terms")}

    def add_terms(self, terms: Iterable[tuple[int, str]]) -> None:
        self._db.executemany("INSERT INTO terms (id, term) VALUES (?, ?)", terms)

    def load_shards(self) -> dict[tuple[str, str], int]:
        rows = self._db.execute("SELECT id, tenant_id, dataset_id FROM shards")
        return {(str(t), str(d)): int(i) for i, t, d in rows}

    def add_shard(self, tenant_id: str, dataset_id: str) -> int:
        cur = self._db.execute("INSERT INTO shards (tenant_id, dataset_id) VALUES (?, ?)", (tenant_id, dataset_id))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def clear(self) -> None:
        """Forget everything (a rebuild follows)."""
        for table in ("chunks", "shards", "terms"):
            self._db.execute(f"DELETE FROM {table}")  # fixed table names

    # -- chunk rows -----------------------------------------------------------------------------
    def put_chunks(self, shard: int, rows: Sequence[ChunkRow]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO chunks (shard, chunk_id, document_id, available, length, term_ids, term_freqs,"
            " dim, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    shard,
                    row.chunk_id,
                    row.document_id,
                    int(row.available),
                    row.length,
                    row.term_ids.tobytes(),
                    row.term_freqs.tobytes(),
                    0 if row.vector is None else len(row.vector),
                    None if row.vector is None else row.vector.tobytes(),
                )
                for row in rows
            ),
        )

    def delete_chunks(self, shard: int, chunk_ids: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM chunks WHERE shard = ? AND chunk_id = ?", ((shard, c) for c in chunk_ids))

    def delete_document(self, shard: int, document_id: str) -> None:
        self._db.execute("DELETE FROM chunks WHERE shard = ? AND document_id = ?", (shard, document_id))

    def delete_shard(self, shard: int) -> None:
        self._db.execute("DELETE FROM chunks WHERE shard = ?", (shard,))
        self._db.execute("DELETE FROM shards WHERE id = ?", (shard,))

    def set_available(self, shard: int, chunk_ids: Iterable[str], available: bool) -> None:
        self._db.executemany(
            "UPDATE chunks SET available = ? WHERE shard = ? AND chunk_id = ?",
            ((int(available), shard, c) for c in chunk_ids),
        )

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def layout(self) -> dict[int, dict[int, int]]:
        """Rows per shard and vector dimension (0: no vector), to size the arrays before loading."""
        out: dict[int, dict[int, int]] = {}
        for shard, dim, n in self._db.execute("SELECT shard, dim, count(*) FROM chunks GROUP BY shard, dim"):
            out.setdefault(int(shard), {})[int(dim)] = int(n)
        return out

    def scan(self) -> Iterator[StoredRow]:
        """Every row in write order."""
        cur = self._db.execute(
            "SELECT shard, chunk_id, document_id, available, length, term_ids, term_freqs, dim, vector"
            " FROM chunks ORDER BY seq"
        )
        while batch := cur.fetchmany(4096):
            for shard, chunk_id, document_id, available, length, term_ids, term_freqs, dim, vector in batch:
                yield StoredRow(
                    shard, chunk_id, document_id, bool(available), length, term_ids, term_freqs, dim, vector
                )


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
