"""The embedded search index: BM25 and exact k-NN over in-memory numpy arrays, persisted in SQLite.

Layout: one shard per (tenant, dataset). Tenant isolation is structural (a query only ever touches the
shards of its own tenant), a dataset filter is a choice of shards, and a shard's vectors form one
contiguous float32 matrix per dimension, so k-NN over a dataset is one matrix-vector product and an
``argpartition`` — exact, recall 1.0. Above ``quantized.MIN_ROWS`` rows the product is made in int8 first
and repeated in float32 only for the rows that can still be among the best (same answer, ~1/7 the time).
Text search is BM25 (Lucene's formula, k1=1.2, b=0.75) over posting lists accumulated with
``np.bincount``; its statistics (N, document frequencies, average length) cover exactly the datasets
searched. Keywords and questions are indexed with the content, with weighted term frequencies (BM25F,
``FIELD_BOOSTS``).

Knowledge-graph records (``IndexedChunk.kind`` other than ``chunk``) live in shards of their own, one per
(tenant, dataset, kind): a search reads the shards of its kind only, so plain retrieval never sees them and
their terms never weigh in the chunks' BM25 statistics.

Concurrency: any number of threads search while one writes. Writes are serialised by a lock, committed
to SQLite first and then published to memory as a new immutable shard view; searches take no lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from shared.adapters.local.embedded_index.postings import Segment
from shared.adapters.local.embedded_index.quantized import MIN_ROWS, approximate
from shared.adapters.local.embedded_index.shard import Shard, ShardLoader, ShardView
from shared.adapters.local.embedded_index.storage import STATE_READY, STATE_REBUILDING, ChunkRow, IndexStorage
from shared.ports.search import CHUNK, CHUNK_KINDS, Candidate, ChunkKind, IndexedChunk, SearchIndex, SearchQuery
from shared.rag.text_analysis import (
    FIELD_BOOSTS,
    MAX_QUERY_TERMS,
    QueryPlan,
    QueryTerm,
    analyze,
    analyze_query,
    plan_query,
)

logger = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
_REBUILD_BATCH = 4096
# the chosen terms a row holds are one float64 sum of distinct powers of two: exact for up to 52 terms
assert MAX_QUERY_TERMS <= 52

ShardKey = tuple[str, str]


def _shard_key(tenant_id: str, dataset_id: str, kind: ChunkKind = CHUNK) -> ShardKey:
    """The shard of a dataset's records of one kind (stored under this name; dataset ids hold no '#')."""
    return (tenant_id, dataset_id if kind == CHUNK else f"{dataset_id}#{kind}")


def _dataset_shard_keys(tenant_id: str, dataset_id: str) -> list[ShardKey]:
    return [_shard_key(tenant_id, dataset_id, kind) for kind in CHUNK_KINDS]


@dataclass(slots=True)
class _Catalog:
    """Everything a search reads: swapped as a whole by ``rebuild``, grown in place by other writes."""

    vocab: dict[str, int] = field(default_factory=dict)
    shards: dict[ShardKey, Shard] = field(default_factory=dict)


@dataclass(slots=True)
class _Analyzed:
    chunk: IndexedChunk
    freqs: dict[str, float]
    length: float
    vector: NDArray[np.float32] | None


def _analyze_chunk(chunk: IndexedChunk) -> _Analyzed:
    freqs: dict[str, float] = dict(Counter(analyze(chunk.content)))
    length = float(sum(freqs.values()))
    for field_name, texts in (("keywords", chunk.keywords), ("questions", chunk.questions)):
        boost = FIELD_BOOSTS[field_name]
        for text in texts:
            terms = analyze(text)
            length += boost * len(terms)
            for term in terms:
                freqs[term] = freqs.get(term, 0.0) + boost
    return _Analyzed(chunk, freqs, length, _unit_vector(chunk.vector))


def _unit_vector(values: Sequence[float] | None) -> NDArray[np.float32] | None:
    if values is None:
        return None
    vector = np.asarray(values, dtype=np.float32).reshape(-1)
    if vector.size == 0:
        return None
    norm = float(np.sqrt(np.dot(vector, vector)))
    if norm > 0 and abs(norm - 1.0) > 1e-6:
        vector = vector / np.float32(norm)
    return vector


def _top(scores: NDArray[np.floating], k: int) -> NDArray[np.intp]:
    """Indices of the ``k`` highest scores, best first (ties in index order)."""
    if len(scores) > k:
        idx = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
        idx.sort()
    else:
        idx = np.arange(len(scores))
    return idx[np.argsort(-scores[idx], kind="stable")]


class EmbeddedSearchIndex(SearchIndex):
    """The local engine (see the module docstring). ``root`` is its own directory; it survives restarts.

    The index is derived data: when ``needs_rebuild()`` says so (a new directory, or a rebuild that did
    not finish), the application calls ``rebuild()`` with every chunk of the metadata store.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._storage = IndexStorage(root)
        self._closed = False
        self._next_term = 1
        self._catalog = self._load()
        self._state = self._storage.get_meta("state")
        self._generation = self._storage.get_meta("generation") or ""

    # == lifecycle ===================================================================================
    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._storage.close()

    def __enter__(self) -> EmbeddedSearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> None:
        """Raise when closed or when the directory or its file went away (never waits for a write)."""
        if self._closed:
            raise RuntimeError("the search index is closed")
        if not self._storage.path.is_file() or not os.access(self._root, os.W_OK):
            raise OSError(f"index directory {self._root} is missing or not writable")

    @property
    def generation(self) -> str:
        """Changes when the directory is created and on each rebuild: a stored copy that differs means stale."""
        return self._generation

    def needs_rebuild(self) -> bool:
        """True when the index may lack chunks of the metadata store: new directory or unfinished rebuild."""
        return self._state != STATE_READY

    def is_empty(self) -> bool:
        return self.count() == 0

    def count(self) -> int:
        """Chunks in the index (available or not)."""
        return sum(shard.view.n_alive for shard in list(self._catalog.shards.values()))

    def rebuild(self, chunks: Iterable[IndexedChunk]) -> int:
        """Replace the whole content by ``chunks`` (bulk load); returns how many were indexed.

        Searches keep seeing the previous content until the new one is complete; writes wait.
        """
        with self._lock:
            try:
                with self._storage.transaction():
                    self._storage.clear()
                    self._storage.mark(STATE_REBUILDING)
                self._state = STATE_REBUILDING
                vocab: dict[str, int] = {}
                self._next_term = 1
                shard_ids: dict[ShardKey, int] = {}
                total = 0
                iterator = iter(chunks)
                while batch := list(islice(iterator, _REBUILD_BATCH)):
                    analyzed = [_analyze_chunk(chunk) for chunk in _dedupe(batch)]
                    by_shard, new_terms = self._to_rows(vocab, analyzed)
                    with self._storage.transaction():
                        self._storage.add_terms(new_terms)
                        for key, rows in by_shard.items():
                            if key not in shard_ids:
                                shard_ids[key] = self._storage.add_shard(*key)
                            self._storage.put_chunks(shard_ids[key], rows)
                    total += len(batch)
                with self._storage.transaction():
                    self._storage.mark(STATE_READY, new_generation=True)
                self._state = STATE_READY
                self._generation = self._storage.get_meta("generation") or ""
            finally:
                # Memory follows the file: the new content, or what a failed rebuild left (needs_rebuild says so).
                self._catalog = self._load()
            logger.info("search index rebuilt: %d chunks", total)
            return total

    def compact(self) -> None:
        """Drop every tombstone now (done automatically when a quarter of a shard's rows are dead)."""
        with self._lock:
            for shard in self._catalog.shards.values():
                shard.compact()

    # == writes ======================================================================================
    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        if not chunks:
            return
        analyzed = [_analyze_chunk(chunk) for chunk in _dedupe(chunks)]
        with self._lock:
            catalog = self._catalog
            by_shard, new_terms = self._to_rows(catalog.vocab, analyzed)
            created: dict[ShardKey, int] = {}
            try:
                with self._storage.transaction():
                    self._storage.add_terms(new_terms)
                    for key, rows in by_shard.items():
                        shard = catalog.shards.get(key)
                        shard_id = shard.key if shard else self._storage.add_shard(*key)
                        if shard is None:
                            created[key] = shard_id
                        self._storage.put_chunks(shard_id, rows)
            except BaseException:
                for _, term in new_terms:  # not stored: ids would be reused by the next write
                    del catalog.vocab[term]
                self._next_term -= len(new_terms)
                raise
            for key, rows in by_shard.items():
                if key in created:
                    catalog.shards[key] = Shard(created[key], *key)
                catalog.shards[key].append(rows)

    def _rows(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str]) -> list[tuple[Shard, list[int]]]:
        """The dataset's shards (of every kind) holding some of ``chunk_ids``, with their rows (the caller holds
        the lock)."""
        found: list[tuple[Shard, list[int]]] = []
        for key in _dataset_shard_keys(tenant_id, dataset_id):
            shard = self._catalog.shards.get(key)
            rows = shard.rows_of(chunk_ids) if shard is not None and chunk_ids else None
            if shard is not None and rows:
                found.append((shard, rows))
        return found

    def delete_chunks(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        with self._lock:
            for shard, rows in self._rows(tenant_id, dataset_id, chunk_ids):
                with self._storage.transaction():
                    self._storage.delete_chunks(shard.key, shard.live_ids(rows))
                shard.remove(rows)

    def delete_document(self, tenant_id: str, dataset_id: str, document_id: str) -> None:
        with self._lock:
            shard = self._catalog.shards.get(_shard_key(tenant_id, dataset_id))
            if shard is None:
                return
            with self._storage.transaction():
                self._storage.delete_document(shard.key, document_id)
            shard.remove(shard.rows_of_document(document_id))

    def delete_dataset(self, tenant_id: str, dataset_id: str) -> None:
        with self._lock:
            for key in _dataset_shard_keys(tenant_id, dataset_id):
                shard = self._catalog.shards.get(key)
                if shard is None:
                    continue
                with self._storage.transaction():
                    self._storage.delete_shard(shard.key)
                del self._catalog.shards[key]

    def set_available(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str], available: bool) -> None:
        if not chunk_ids:
            return
        with self._lock:
            for shard, rows in self._rows(tenant_id, dataset_id, chunk_ids):
                with self._storage.transaction():
                    self._storage.set_available(shard.key, shard.live_ids(rows), available)
                shard.set_available(rows, available)

    # == internals =================================================================================
    def _load(self) -> _Catalog:
        """The in-memory index from the stored rows (one scan; arrays sized from a first, cheap pass)."""
        started = time.perf_counter()
        storage = self._storage
        vocab = storage.load_terms()
        layout = storage.layout()
        loaders = {
            shard_id: ShardLoader(shard_id, tenant_id, dataset_id, layout.get(shard_id, {}))
            for (tenant_id, dataset_id), shard_id in storage.load_shards().items()
        }
        for row in storage.scan():
            loaders[row.shard].add(row)
        self._next_term = max(vocab.values(), default=0) + 1
        shards = {(loader.tenant_id, loader.dataset_id): loader.finish() for loader in loaders.values()}
        chunks = sum(shard.view.n for shard in shards.values())
        elapsed = time.perf_counter() - started
        logger.info("search index loaded: %d chunks in %d datasets, %.2f s", chunks, len(shards), elapsed)
        return _Catalog(vocab, shards)

    def _to_rows(
        self, vocab: dict[str, int], analyzed: list[_Analyzed]
    ) -> tuple[dict[ShardKey, list[ChunkRow]], list[tuple[int, str]]]:
        """Stored rows per shard, giving ids to new terms (returned so the caller stores them with the rows)."""
        new_terms: list[tuple[int, str]] = []
        by_shard: dict[ShardKey, list[ChunkRow]] = {}
        for item in analyzed:
            ids: list[int] = []
            for term in item.freqs:
                term_id = vocab.get(term)
                if term_id is None:
                    term_id = vocab[term] = self._next_term
                    self._next_term += 1
                    new_terms.append((term_id, term))
                ids.append(term_id)
            chunk = item.chunk
            by_shard.setdefault(_shard_key(chunk.tenant_id, chunk.dataset_id, chunk.kind), []).append(
                ChunkRow(
                    chunk_id=chunk.id,
                    document_id=chunk.document_id,
                    available=chunk.available,
                    length=item.length,
                    term_ids=np.array(ids, dtype=np.int32),
                    term_freqs=np.fromiter(item.freqs.values(), dtype=np.float32, count=len(item.freqs)),
                    vector=item.vector,
                )
            )
        return by_shard, new_terms

    # == search ======================================================================================
    def search(self, query: SearchQuery) -> list[Candidate]:
        """Text candidates (up to ``text_limit``) and vector candidates (up to ``top_k``), merged by chunk id.

        Order: text matches by BM25 score, then chunks found only by vector, by cosine. ``document_ids``
        empty or None means every document of the datasets.
        """
        catalog = self._catalog
        if query.top_k <= 0:
            return []
        shards = [
            (dataset_id, shard)
            for dataset_id in dict.fromkeys(query.dataset_ids)
            if (shard := catalog.shards.get(_shard_key(query.tenant_id, dataset_id, query.kind))) is not None
        ]
        terms = analyze_query(query.text) if query.text else []
        known = [(t, term_id) for t in terms if (term_id := catalog.vocab.get(t.term)) is not None]
        vector = _unit_vector(query.vector)
        if not shards or (not known and vector is None):
            return []
        runs = [_ShardRun(dataset_id, shard.view, query.document_ids, query.text_limit) for dataset_id, shard in shards]
        plan = _score_text(runs, [t for t, _ in known], [tid for _, tid in known]) if known else None
        if vector is not None:
            for run in runs:
                run.search_vectors(vector, query.top_k)
        return _merge(runs, plan, query.text_limit, query.top_k)


def _dedupe(chunks: Sequence[IndexedChunk]) -> list[IndexedChunk]:
    """The last write of each chunk id (per dataset) in a batch wins."""
    last = {(c.tenant_id, c.dataset_id, c.kind, c.id): c for c in chunks}
    return list(last.values()) if len(last) != len(chunks) else list(chunks)


class _ShardRun:
    """One query over one shard view: text scores, vector similarities and per-kind top candidates."""

    def __init__(self, dataset_id: str, view: ShardView, document_ids: Sequence[str] | None, text_limit: int) -> None:
        self.dataset_id = dataset_id
        self.text_limit = text_limit
        self.view = view
        n = view.n
        self.all_eligible = view.n_searchable == n
        self.eligible = view.searchable
        if document_ids:
            wanted = [view.doc_index[d] for d in document_ids if d in view.doc_index]
            self.eligible = view.searchable & np.isin(view.row_doc[:n], np.asarray(wanted, dtype=np.int32))
            self.all_eligible = False
        self.slices: list[list[tuple[Segment, int, int]]] = []  # query term → its postings, segment by segment
        self.scores: NDArray[np.float64] | None = None  # row → BM25 (0: no match)
        self.masks: NDArray[np.float64] | None = None  # row → sum of 2**k over the chosen terms k it holds
        self.sims: NDArray[np.float32] | None = None  # row → cosine (NaN: no vector of that dimension)
        self.text_top: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.vector_top: NDArray[np.int32] = np.zeros(0, dtype=np.int32)

    # -- text ---------------------------------------------------------------------------------------
    def locate(self, term_ids: NDArray[np.int32]) -> NDArray[np.int64]:
        """Find every term's postings (one binary search per segment for all terms); returns their lengths
        (rows holding the term, deleted rows included, as Lucene's document frequency until a merge)."""
        self.slices = [[] for _ in range(len(term_ids))]
        lengths = np.zeros(len(term_ids), dtype=np.int64)
        for segment in self.view.segments:
            for j, start, end in segment.find(term_ids):
                self.slices[j].append((segment, start, end))
                lengths[j] += end - start
        return lengths

    def live_doc_freq(self, j: int) -> int:
        """Rows holding query term ``j`` that are not deleted."""
        if self.view.n_alive == self.view.n:
            return sum(end - start for _, start, end in self.slices[j])
        alive = self.view.alive
        return sum(int(np.count_nonzero(alive[seg.ords[start:end]])) for seg, start, end in self.slices[j])

    def score(self, chosen: list[int], weights: NDArray[np.float32], avg_length: float) -> None:
        """BM25 of the chosen terms (``weights``: query weight x IDF each) in one pass over their postings.

        All postings are concatenated and summed per row with ``np.bincount``: the score, and a bit mask of
        the chosen terms each row holds (float64 sums of distinct powers of two are exact below 2**53).
        """
        n = self.view.n
        parts = [(seg, start, end, k) for k, j in enumerate(chosen) for seg, start, end in self.slices[j]]
        if not parts:
            self.scores = np.zeros(n, dtype=np.float64)
            return
        ords = np.concatenate([seg.ords[start:end] for seg, start, end, _ in parts])
        tfs = np.concatenate([seg.tfs[start:end] for seg, start, end, _ in parts])
        counts = [end - start for _, start, end, _ in parts]
        keys = np.asarray([k for *_, k in parts])
        weight = np.repeat(weights[keys], counts)
        bits = np.repeat(np.exp2(keys.astype(np.float64)), counts)
        if not self.all_eligible:
            keep = self.eligible[ords]
            ords, tfs, weight, bits = ords[keep], tfs[keep], weight[keep], bits[keep]
        norm = np.float32(K1 * (1 - B)) + np.float32(K1 * B / avg_length) * self.view.length[ords]
        scores = np.bincount(ords, weights=weight * tfs / (tfs + norm), minlength=n).astype(np.float64, copy=False)
        self.masks = np.bincount(ords, weights=bits, minlength=n).astype(np.float64, copy=False)
        matched = np.flatnonzero(scores)
        self.scores = scores
        self.text_top = matched[_top(scores[matched], self.text_limit)].astype(np.int32)

    # -- vectors ------------------------------------------------------------------------------------
    def search_vectors(self, vector: NDArray[np.float32], top_k: int) -> None:
        """Cosines and the ``top_k`` eligible rows by cosine, exact. Large blocks are scanned in int8 first
        (``quantized.py``): only the rows that can still be among the best, and the text matches (their
        vector score is reported too), are scored in float32; the other rows' ``sims`` stay approximate and
        are never read."""
        view = self.view
        block = view.vectors_of(len(vector))
        if block is None or block.count == 0:
            return
        count = block.count
        rows = block.ords[:count]
        first = approximate(block.codes[:count], block.scales[:count], vector) if count >= MIN_ROWS else None
        pick: NDArray[np.intp] | None = None  # with the int8 pass: the rows that can be among the best
        if first is None:
            sims = block.matrix[:count] @ vector
            ranked = sims if self.all_eligible else np.where(self.eligible[rows], sims, -np.inf)
        else:
            sims, margin = first
            eligible = sims if self.all_eligible else np.where(self.eligible[rows], sims, -np.inf)
            if count > top_k:
                kth = np.partition(eligible, count - top_k)[count - top_k]
                pick = np.flatnonzero((eligible >= kth - margin) & (eligible > -np.inf))
            else:
                pick = np.flatnonzero(eligible > -np.inf)
            sims[pick] = block.matrix[pick] @ vector
            if len(self.text_top):
                at = np.searchsorted(rows, self.text_top)  # ords ascend: a text row's place in the block
                held = at[(at < count) & (rows[np.minimum(at, count - 1)] == self.text_top)]
                sims[held] = block.matrix[held] @ vector
        if count == view.n:  # every row has a vector of this dimension: block index == row
            self.sims = sims
        else:
            self.sims = np.full(view.n, np.nan, dtype=np.float32)
            self.sims[rows] = sims
        if pick is not None:  # only the picked rows can be among the best: rank them alone
            best = pick[_top(sims[pick], top_k)]
        else:
            best = _top(ranked, top_k)
            if not self.all_eligible:
                best = best[ranked[best] > -np.inf]
        self.vector_top = rows[best]


def _score_text(runs: list[_ShardRun], terms: list[QueryTerm], term_ids: list[int]) -> QueryPlan | None:
    """BM25 over every run, with statistics taken over all the shards searched; returns the plan scored
    (its terms are the order of the bits of each run's ``masks``).

    The question's terms are located first (one binary search per segment for all of them), then
    ``plan_query`` chooses the terms to score from their document frequencies, and only those are scored.
    """
    ids = np.asarray(term_ids, dtype=np.int32)
    doc_freqs = sum((run.locate(ids) for run in runs), start=np.zeros(len(ids), dtype=np.int64)).tolist()
    docs = sum(run.view.n_alive for run in runs)
    total_length = sum(run.view.total_length for run in runs)
    if docs == 0:
        return None
    if any(run.view.n_alive != run.view.n for run in runs):  # exact statistics: deleted rows don't count
        doc_freqs = [sum(run.live_doc_freq(j) for run in runs) for j in range(len(ids))]
    plan = plan_query(terms, doc_freqs, docs)
    position = {t.term: j for j, t in enumerate(terms)}
    chosen = [position[t.term.term] for t in plan.terms]
    weights = np.asarray([t.weight * t.idf for t in plan.terms], dtype=np.float32)
    avg_length = max(total_length / docs, 1e-9)
    for run in runs:
        run.score(chosen, weights, avg_length)
    return plan


def _global_top(runs: list[_ShardRun], attr: str, values: str, top_k: int) -> list[tuple[int, NDArray[np.int32]]]:
    """Per run, its rows among the ``top_k`` best over all runs (each run's list is already sorted)."""
    picks = [(i, getattr(run, attr)) for i, run in enumerate(runs) if len(getattr(run, attr))]
    if len(picks) <= 1:
        return picks
    run_idx = np.concatenate([np.full(len(rows), i) for i, rows in picks])
    rows_all = np.concatenate([rows for _, rows in picks])
    scores = np.concatenate([getattr(runs[i], values)[rows] for i, rows in picks])
    order = _top(scores, top_k)
    return [(int(i), rows_all[order[run_idx[order] == i]]) for i, _ in picks]


def _merge(runs: list[_ShardRun], plan: QueryPlan | None, text_limit: int, top_k: int) -> list[Candidate]:
    words = [t.term.word for t in plan.terms] if plan else []
    reference = plan.reference_score if plan else None
    text_rows = _global_top(runs, "text_top", "scores", text_limit)
    vector_rows = _global_top(runs, "vector_top", "sims", top_k)
    words_of: dict[int, tuple[str, ...]] = {}
    text: list[Candidate] = []
    text_keys: list[float] = []
    for i, rows in text_rows:
        assert runs[i].scores is not None
        text_keys.extend(runs[i].scores[rows].tolist())  # type: ignore[index]
        text.extend(_candidates(runs[i], rows, words, words_of, reference))
    vector_only: list[Candidate] = []
    vector_keys: list[float] = []
    for i, rows in vector_rows:
        assert runs[i].sims is not None
        if text_rows:  # found by text too: already listed, with its vector score
            rows = rows[~np.isin(rows, _selected(text_rows, i))]
        vector_keys.extend(runs[i].sims[rows].tolist())  # type: ignore[index]
        vector_only.extend(_candidates(runs[i], rows, words, words_of, reference))
    if len(text_rows) > 1:
        text = [c for _, c in sorted(zip(text_keys, text, strict=True), key=lambda p: -p[0])]
    if len(vector_rows) > 1:
        vector_only = [c for _, c in sorted(zip(vector_keys, vector_only, strict=True), key=lambda p: -p[0])]
    return text + vector_only


def _selected(picks: list[tuple[int, NDArray[np.int32]]], run_index: int) -> NDArray[np.int32]:
    for i, rows in picks:
        if i == run_index:
            return rows
    return np.zeros(0, dtype=np.int32)


def _candidates(
    run: _ShardRun,
    rows: NDArray[np.int32],
    words: list[str],
    words_of: dict[int, tuple[str, ...]],
    reference: float | None,
) -> list[Candidate]:
    """Candidates for ``rows`` of one run, with both signals (None where a signal is absent)."""
    view = run.view
    ids, doc_ids, dataset_id = view.ids, view.doc_ids, run.dataset_id
    docs = view.row_doc[rows].tolist()
    none: list[float | None] = [None] * len(rows)
    scores = none if run.scores is None else [s if s > 0 else None for s in run.scores[rows].tolist()]
    # NaN: the chunk has no vector of the query's dimension
    sims = none if run.sims is None else [v if v == v else None for v in run.sims[rows].tolist()]
    matched = _matched_words(run, rows, words, words_of)
    return [
        Candidate(ids[row], doc_ids[doc], dataset_id, score, sim, list(found), reference)
        for row, doc, score, sim, found in zip(rows.tolist(), docs, scores, sims, matched, strict=True)
    ]


def _matched_words(
    run: _ShardRun, rows: NDArray[np.int32], words: list[str], cache: dict[int, tuple[str, ...]]
) -> list[tuple[str, ...]]:
    """The chosen query words each row holds, read off its bit mask."""
    if run.masks is None:
        return [()] * len(rows)
    out = []
    for mask in run.masks[rows].astype(np.int64).tolist():
        found = cache.get(mask)
        if found is None:
            found = cache[mask] = tuple(word for k, word in enumerate(words) if mask >> k & 1)
        out.append(found)
    return out
