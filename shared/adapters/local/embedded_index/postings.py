"""Immutable inverted-index segments (CSR: term → postings of row ordinals and weighted term frequencies).

A shard's postings are a few segments, Lucene-style: every write batch becomes a small segment and
neighbours of similar size are merged (binary-counter policy), so a shard holds O(log n) segments, a
write costs O(batch · log n) amortised, and a query reads a handful of contiguous slices per term.
Merging drops the postings of deleted rows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_EMPTY_I32: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
_EMPTY_F32: NDArray[np.float32] = np.zeros(0, dtype=np.float32)


class Segment:
    """Postings sorted by term id, then row: the postings of ``terms[i]`` are ``ords/tfs[ptr[i]:ptr[i+1]]``.

    Segments of a shard cover consecutive row ranges (oldest first), so a term's rows read across the
    segments in order are ascending.
    """

    __slots__ = ("ords", "ptr", "terms", "tfs")

    def __init__(
        self, terms: NDArray[np.int32], ptr: NDArray[np.int64], ords: NDArray[np.int32], tfs: NDArray[np.float32]
    ) -> None:
        self.terms = terms
        self.ptr = ptr
        self.ords = ords
        self.tfs = tfs

    @property
    def nnz(self) -> int:
        return len(self.ords)

    @classmethod
    def build(cls, term_ids: NDArray[np.int32], ords: NDArray[np.int32], tfs: NDArray[np.float32]) -> Segment:
        """A segment from (term, row, tf) triples in ascending row order; a (term, row) pair appears once.

        The sort is stable, so each term's rows stay ascending (the query side binary-searches them).
        """
        if len(term_ids) == 0:
            return cls(_EMPTY_I32, np.zeros(1, dtype=np.int64), _EMPTY_I32, _EMPTY_F32)
        order = np.argsort(term_ids, kind="stable")
        sorted_terms = term_ids[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_terms[1:] != sorted_terms[:-1])))
        ptr = np.empty(len(starts) + 1, dtype=np.int64)
        ptr[:-1] = starts
        ptr[-1] = len(sorted_terms)
        return cls(sorted_terms[starts], ptr, ords[order], tfs[order])

    def expand(self) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float32]]:
        """The (term, row, tf) triples of the segment."""
        return np.repeat(self.terms, np.diff(self.ptr)), self.ords, self.tfs

    def find(self, term_ids: NDArray[np.int32]) -> list[tuple[int, int, int]]:
        """(query term index, start, end) for each of ``term_ids`` present in the segment."""
        if len(self.terms) == 0:
            return []
        pos = np.searchsorted(self.terms, term_ids)
        np.minimum(pos, len(self.terms) - 1, out=pos)
        hits = np.flatnonzero(self.terms[pos] == term_ids)
        ptr = self.ptr
        return [(int(j), int(ptr[pos[j]]), int(ptr[pos[j] + 1])) for j in hits]


def merge(segments: list[Segment], alive: NDArray[np.bool_], remap: NDArray[np.int32] | None = None) -> Segment:
    """One segment holding the postings of ``segments`` whose row is alive (rows renumbered by ``remap``)."""
    parts = [seg.expand() for seg in segments if seg.nnz]
    if not parts:
        return Segment.build(_EMPTY_I32, _EMPTY_I32, _EMPTY_F32)
    terms = np.concatenate([p[0] for p in parts])
    ords = np.concatenate([p[1] for p in parts])
    tfs = np.concatenate([p[2] for p in parts])
    keep = alive[ords]
    if not keep.all():
        terms, ords, tfs = terms[keep], ords[keep], tfs[keep]
    if remap is not None:
        ords = remap[ords]
    return Segment.build(terms, ords, tfs)


def add_segment(segments: tuple[Segment, ...], new: Segment, alive: NDArray[np.bool_]) -> tuple[Segment, ...]:
    """``segments`` plus ``new``, merging the tail while the newest is at least half the size of the one before."""
    stack = [*segments, new]
    while len(stack) >= 2 and stack[-1].nnz * 2 >= stack[-2].nnz:
        tail = stack.pop()
        stack[-1] = merge([stack[-1], tail], alive)
    return tuple(stack)
