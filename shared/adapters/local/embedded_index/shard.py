"""One (tenant, dataset) of the embedded index, in memory: rows, postings, vectors.

Readers never lock. The writer (one at a time, under the index's lock) prepares a new ``ShardView`` and
publishes it with one attribute assignment; a query takes the current view once and sees one consistent
state throughout. What may change under a view is only beyond its end: rows are append-only (a replaced or
deleted chunk is a tombstone), growable arrays are written past ``n`` and reallocated on growth, and the
masks that do change in place for old rows (deleted, available) are copied on write.
Compaction, when a quarter of the rows are tombstones, renumbers rows into fresh arrays.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from shared.adapters.local.embedded_index.postings import Segment, add_segment, merge
from shared.adapters.local.embedded_index.quantized import quantize
from shared.adapters.local.embedded_index.storage import ChunkRow, StoredRow

_COMPACT_MIN_DEAD = 1024
_COMPACT_DEAD_FRACTION = 0.25


class _Growable:
    """A numpy buffer with spare capacity at the end (rows or vectors appended in place)."""

    __slots__ = ("data", "size")

    def __init__(self, data: NDArray[np.generic], size: int) -> None:
        self.data = data
        self.size = size

    @classmethod
    def empty(cls, dtype: type[np.generic], width: int = 0, capacity: int = 64) -> _Growable:
        shape = (capacity, width) if width else (capacity,)
        return cls(np.empty(shape, dtype=dtype), 0)

    def extend(self, values: NDArray[np.generic]) -> None:
        need = self.size + len(values)
        if need > len(self.data):
            capacity = max(need, len(self.data) * 2, 64)
            grown = np.empty((capacity, *self.data.shape[1:]), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown  # views published before keep the old buffer
        self.data[self.size : need] = values
        self.size = need


@dataclass(frozen=True, slots=True)
class VectorView:
    """Vectors of one dimension: ``matrix[:count]`` (normalised rows) belong to shard rows ``ords[:count]``
    (ascending); ``codes[:count]`` and ``scales[:count]`` are the same rows in int8 (``quantized.py``)."""

    dim: int
    matrix: NDArray[np.float32]
    ords: NDArray[np.int32]
    count: int
    codes: NDArray[np.uint8]
    scales: NDArray[np.float32]


class _Vectors:
    """The writer's side of a ``VectorView``: four parallel growable arrays."""

    __slots__ = ("codes", "dim", "matrix", "ords", "scales")

    def __init__(self, dim: int, matrix: NDArray[np.float32], ords: NDArray[np.int32], count: int) -> None:
        codes, scales = quantize(matrix[:count])
        self.dim = dim
        self.matrix = _Growable(matrix, count)
        self.ords = _Growable(ords, count)
        self.codes = _Growable(codes, count)
        self.scales = _Growable(scales, count)

    @classmethod
    def empty(cls, dim: int) -> _Vectors:
        return cls(dim, np.empty((64, dim), dtype=np.float32), np.empty(64, dtype=np.int32), 0)

    def extend(self, vectors: NDArray[np.float32], ords: NDArray[np.int32]) -> None:
        codes, scales = quantize(vectors)
        self.matrix.extend(vectors)
        self.ords.extend(ords)
        self.codes.extend(codes)
        self.scales.extend(scales)

    def view(self) -> VectorView:
        return VectorView(
            self.dim,
            self.matrix.data,  # type: ignore[arg-type]
            self.ords.data,  # type: ignore[arg-type]
            self.matrix.size,
            self.codes.data,  # type: ignore[arg-type]
            self.scales.data,  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True)
class ShardView:
    """A consistent, read-only state of a shard. Rows are ``0 … n-1``; arrays may extend past ``n``."""

    n: int
    ids: list[str]  # row → chunk id (append-only list, len ≥ n)
    row_doc: NDArray[np.int32]  # row → document ordinal
    doc_index: dict[str, int]  # document id → ordinal (append-only)
    doc_ids: list[str]  # ordinal → document id (append-only)
    length: NDArray[np.float32]  # row → weighted term count
    alive: NDArray[np.bool_]  # exactly n: not deleted or replaced
    searchable: NDArray[np.bool_]  # exactly n: alive and available
    n_alive: int
    n_searchable: int
    total_length: float  # over alive rows
    segments: tuple[Segment, ...]
    vectors: tuple[VectorView, ...]

    def vectors_of(self, dim: int) -> VectorView | None:
        for block in self.vectors:
            if block.dim == dim:
                return block
        return None


class Shard:
    """The writer's side of a shard. Every method is called under the index's write lock."""

    def __init__(self, key: int, tenant_id: str, dataset_id: str) -> None:
        self.key = key  # the storage's shard id
        self.tenant_id = tenant_id
        self.dataset_id = dataset_id
        self._ord_of: dict[str, int] = {}  # live chunk id → row
        self._ids: list[str] = []
        self._docs: dict[str, int] = {}
        self._doc_list: list[str] = []
        self._row_doc = _Growable.empty(np.int32)
        self._length = _Growable.empty(np.float32)
        self._vectors: dict[int, _Vectors] = {}
        self.view = ShardView(
            n=0,
            ids=self._ids,
            row_doc=self._row_doc.data,  # type: ignore[arg-type]
            doc_index=self._docs,
            doc_ids=self._doc_list,
            length=self._length.data,  # type: ignore[arg-type]
            alive=np.zeros(0, dtype=np.bool_),
            searchable=np.zeros(0, dtype=np.bool_),
            n_alive=0,
            n_searchable=0,
            total_length=0.0,
            segments=(),
            vectors=(),
        )

    # -- lookups ------------------------------------------------------------------------------------
    def rows_of(self, chunk_ids: Sequence[str]) -> list[int]:
        """Rows of the live chunks among ``chunk_ids`` (each once)."""
        return [r for r in dict.fromkeys(self._ord_of.get(c) for c in chunk_ids) if r is not None]

    def rows_of_document(self, document_id: str) -> list[int]:
        view = self.view
        doc = self._docs.get(document_id)
        if doc is None:
            return []
        rows: list[int] = np.flatnonzero((view.row_doc[: view.n] == doc) & view.alive).tolist()
        return rows

    def live_ids(self, rows: Sequence[int]) -> list[str]:
        return [self._ids[r] for r in rows]

    # -- writes -------------------------------------------------------------------------------------
    def append(self, rows: Sequence[ChunkRow]) -> None:
        """Add chunk rows (ids unique within ``rows``); chunks already present are replaced."""
        old = self.view
        replaced = self.rows_of([row.chunk_id for row in rows])
        start, k = old.n, len(rows)
        n = start + k
        new_rows = np.arange(start, n, dtype=np.int32)
        for offset, row in enumerate(rows):
            self._ord_of[row.chunk_id] = start + offset
            self._ids.append(row.chunk_id)
        docs = np.fromiter((self._doc_ordinal(row.document_id) for row in rows), dtype=np.int32, count=k)
        lengths = np.fromiter((row.length for row in rows), dtype=np.float32, count=k)
        available = np.fromiter((row.available for row in rows), dtype=np.bool_, count=k)
        self._row_doc.extend(docs)
        self._length.extend(lengths)
        vectors = self._append_vectors(rows, start)

        alive = np.concatenate((old.alive, np.ones(k, dtype=np.bool_)))
        searchable = np.concatenate((old.searchable, available))
        n_alive, n_searchable, total = old.n_alive + k, old.n_searchable + int(available.sum()), old.total_length
        total += float(lengths.sum(dtype=np.float64))
        if replaced:
            dead = np.asarray(replaced, dtype=np.int64)
            n_alive -= len(dead)
            n_searchable -= int(searchable[dead].sum())
            total -= float(old.length[dead].sum(dtype=np.float64))
            alive[dead] = False
            searchable[dead] = False

        counts = [len(row.term_ids) for row in rows]
        segment = Segment.build(
            np.concatenate([row.term_ids for row in rows]) if rows else np.zeros(0, np.int32),
            np.repeat(new_rows, counts),
            np.concatenate([row.term_freqs for row in rows]) if rows else np.zeros(0, np.float32),
        )
        segments = add_segment(old.segments, segment, alive) if segment.nnz else old.segments
        self.view = ShardView(
            n=n,
            ids=self._ids,
            row_doc=self._row_doc.data,  # type: ignore[arg-type]
            doc_index=self._docs,
            doc_ids=self._doc_list,
            length=self._length.data,  # type: ignore[arg-type]
            alive=alive,
            searchable=searchable,
            n_alive=n_alive,
            n_searchable=n_searchable,
            total_length=total,
            segments=segments,
            vectors=vectors,
        )
        self._maybe_compact()

    def remove(self, rows: Sequence[int]) -> None:
        """Tombstone rows (deleted chunks)."""
        if not rows:
            return
        old = self.view
        dead = np.asarray(rows, dtype=np.int64)
        for r in rows:
            self._ord_of.pop(self._ids[r], None)
        alive, searchable = old.alive.copy(), old.searchable.copy()
        alive[dead] = False
        searchable[dead] = False
        self.view = replace(
            old,
            alive=alive,
            searchable=searchable,
            n_alive=old.n_alive - len(dead),
            n_searchable=old.n_searchable - int(old.searchable[dead].sum()),
            total_length=old.total_length - float(old.length[dead].sum(dtype=np.float64)),
        )
        self._maybe_compact()

    def set_available(self, rows: Sequence[int], available: bool) -> None:
        if not rows:
            return
        old = self.view
        searchable = old.searchable.copy()
        searchable[np.asarray(rows, dtype=np.int64)] = available
        self.view = replace(old, searchable=searchable, n_searchable=int(searchable.sum()))

    def compact(self) -> None:
        """Drop tombstones: renumber live rows into fresh arrays and merge all postings into one segment."""
        old = self.view
        keep = np.flatnonzero(old.alive)
        remap = np.full(old.n, -1, dtype=np.int32)
        remap[keep] = np.arange(len(keep), dtype=np.int32)
        self._ids = [old.ids[r] for r in keep.tolist()]
        self._ord_of = {chunk_id: i for i, chunk_id in enumerate(self._ids)}
        self._row_doc = _Growable(old.row_doc[keep], len(keep))
        self._length = _Growable(old.length[keep], len(keep))
        vectors = []
        self._vectors = {}
        for block in old.vectors:
            rows = block.ords[: block.count]
            live = old.alive[rows]
            kept = _Vectors(block.dim, block.matrix[: block.count][live], remap[rows[live]], int(live.sum()))
            self._vectors[block.dim] = kept
            vectors.append(kept.view())
        segments = (merge(list(old.segments), old.alive, remap),) if old.segments else ()
        self.view = ShardView(
            n=len(keep),
            ids=self._ids,
            row_doc=self._row_doc.data,  # type: ignore[arg-type]
            doc_index=self._docs,
            doc_ids=self._doc_list,
            length=self._length.data,  # type: ignore[arg-type]
            alive=np.ones(len(keep), dtype=np.bool_),
            searchable=old.searchable[keep],
            n_alive=len(keep),
            n_searchable=int(old.searchable[keep].sum()),
            total_length=float(old.length[keep].sum(dtype=np.float64)),
            segments=segments,
            vectors=tuple(vectors),
        )

    # -- internals ----------------------------------------------------------------------------------
    def _doc_ordinal(self, document_id: str) -> int:
        doc = self._docs.get(document_id)
        if doc is None:
            doc = self._docs[document_id] = len(self._doc_list)
            self._doc_list.append(document_id)
        return doc

    def _append_vectors(self, rows: Sequence[ChunkRow], start: int) -> tuple[VectorView, ...]:
        by_dim: dict[int, list[int]] = {}
        for offset, row in enumerate(rows):
            if row.vector is not None:
                by_dim.setdefault(len(row.vector), []).append(offset)
        for dim, offsets in by_dim.items():
            if dim not in self._vectors:
                self._vectors[dim] = _Vectors.empty(dim)
            self._vectors[dim].extend(
                np.stack([v for v in (rows[i].vector for i in offsets) if v is not None]),
                np.asarray(offsets, dtype=np.int32) + start,
            )
        return tuple(vectors.view() for vectors in self._vectors.values())

    def _maybe_compact(self) -> None:
        dead = self.view.n - self.view.n_alive
        if dead >= _COMPACT_MIN_DEAD and dead >= _COMPACT_DEAD_FRACTION * self.view.n:
            self.compact()


class ShardLoader:
    """Builds a shard from its stored rows in one pass (open and rebuild): arrays sized up front, one segment."""

    def __init__(self, key: int, tenant_id: str, dataset_id: str, layout: dict[int, int]) -> None:
        self.key = key
        self.tenant_id = tenant_id
        self.dataset_id = dataset_id
        total = sum(layout.values())
        self._ids: list[str] = []
        self._doc_index: dict[str, int] = {}  # each document id once (not one string per row)
        self._row_doc = np.empty(total, dtype=np.int32)
        self._available = np.empty(total, dtype=np.bool_)
        self._length = np.empty(total, dtype=np.float32)
        # Postings accumulate in two growing buffers, not one bytes object per row: a million small objects
        # interleaved with the ids that stay would pin their memory after the load (RSS, not live data).
        self._term_ids = bytearray()
        self._term_freqs = bytearray()
        self._term_counts = array("q")
        self._matrices = {
            dim: (np.empty((n, dim), dtype=np.float32), np.empty(n, dtype=np.int32), [0])
            for dim, n in layout.items()
            if dim
        }

    def add(self, row: StoredRow) -> None:
        i = len(self._ids)
        self._ids.append(row.chunk_id)
        self._row_doc[i] = self._doc_index.setdefault(row.document_id, len(self._doc_index))
        self._available[i] = row.available
        self._length[i] = row.length
        self._term_ids += row.term_ids
        self._term_freqs += row.term_freqs
        self._term_counts.append(len(row.term_ids) // 4)
        if row.vector is not None and row.dim:
            matrix, ords, filled = self._matrices[row.dim]
            matrix[filled[0]] = np.frombuffer(row.vector, dtype=np.float32)
            ords[filled[0]] = i
            filled[0] += 1

    def finish(self) -> Shard:
        shard = Shard(self.key, self.tenant_id, self.dataset_id)
        n = len(self._ids)
        shard._ids.extend(self._ids)
        shard._ord_of = {chunk_id: i for i, chunk_id in enumerate(self._ids)}
        for document_id in self._doc_index:  # ordinals in first-seen order, as _doc_ordinal gives them
            shard._doc_ordinal(document_id)
        docs = self._row_doc[:n]
        shard._row_doc = _Growable(docs, n)
        shard._length = _Growable(self._length[:n], n)
        counts = np.frombuffer(self._term_counts, dtype=np.int64)
        segment = Segment.build(
            np.frombuffer(self._term_ids, dtype=np.int32),
            np.repeat(np.arange(n, dtype=np.int32), counts),
            np.frombuffer(self._term_freqs, dtype=np.float32),
        )
        # the segment holds sorted copies: the buffers can go now
        self._term_ids, self._term_freqs, self._term_counts = bytearray(), bytearray(), array("q")
        vectors = []
        for dim, (matrix, ords, filled) in self._matrices.items():
            shard._vectors[dim] = _Vectors(dim, matrix, ords, filled[0])
            vectors.append(shard._vectors[dim].view())
        available = self._available[:n]
        shard.view = ShardView(
            n=n,
            ids=shard._ids,
            row_doc=docs,
            doc_index=shard._docs,
            doc_ids=shard._doc_list,
            length=self._length[:n],
            alive=np.ones(n, dtype=np.bool_),
            searchable=available.copy(),
            n_alive=n,
            n_searchable=int(available.sum()),
            total_length=float(self._length[:n].sum(dtype=np.float64)),
            segments=(segment,) if segment.nnz else (),
            vectors=tuple(vectors),
        )
        return shard
