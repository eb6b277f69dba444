"""The embedded search engine on Lambda: shards snapshotted to S3, their versions and writers' leases in DynamoDB.

The stage setting ``search_engine=embedded`` (infra_cdk/shards_construct.py) runs retrieval without a search
cluster: nothing runs, and nothing bills but storage, while the API is idle.

* A **shard** is one (tenant, dataset): an ``EmbeddedSearchIndex`` of its own (the local engine: BM25 over an
  inverted index and an exact vector scan), whose SQLite file is the **snapshot**, kept in the blob store
  under ``index/<tenant>/<dataset>/<version>-<random>.sqlite3``.
* Its **head** is an item of the metadata store (``SHARD#<tenant>#<dataset>`` / ``HEAD``): the current version,
  the snapshot's key, and the writer's lease. Every change of the item is conditional on its revision
  (``rev``), so of two processes racing for it exactly one wins.
* **Single writer per shard**: a write takes the lease (conditional write; a lease expires after ``lease_s``, so
  a writer that died frees it), loads the current snapshot (the warm copy when it is that version), applies
  the change, uploads the new snapshot and publishes it by setting version, key and no lease in one
  conditional write — which fails if the lease was lost meanwhile (then the upload is discarded and the whole
  write is done again on what the other writer published). The previous snapshot is deleted after.
* **Readers** ask for the head (one consistent read per dataset searched) and search their warm copy when its
  version is current; otherwise they load the new snapshot. Loaded shards stay in memory (and ``/tmp``) for the
  next invocations of a warm function, least recently used first out beyond ``max_warm_bytes``.
* The chunks in the metadata store stay the **truth**: a shard without a head, or whose snapshot is missing,
  is rebuilt from them (``truth``) and published as the next version.

Writes are visible to every later search, in any process: a search reads the head after the write published
it. BM25 statistics are per shard (per dataset), as a search engine's are per shard by default; a search over
several datasets merges the shards' candidates by score (text matches, then vector-only ones).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shared.adapters.local.embedded_index import EmbeddedSearchIndex
from shared.adapters.local.embedded_index.storage import DB_FILE
from shared.ports.blobs import BlobNotFound, BlobStore
from shared.ports.metadata import ITEM_NOT_EXISTS, Condition, ConditionFailed, Item, MetadataStore, StoreUnavailable
from shared.ports.search import Candidate, IndexedChunk, SearchIndex, SearchQuery

logger = logging.getLogger(__name__)

#: Where snapshots live in the blob store (the bucket's lifecycle expires replaced ones: infra_cdk).
SNAPSHOT_PREFIX: Final = "index/"
#: How long a writer may hold a shard's lease: the longest a write may take (a parse step's Lambda timeout); one
#: that takes longer loses it and writes again. A writer that died blocks its shard until then.
DEFAULT_LEASE_S: Final = 300.0
#: How long a write waits for another writer's lease before the shard is reported busy.
DEFAULT_WAIT_S: Final = 20.0
#: Memory (bytes of snapshot files) the warm shards of a process may take.
DEFAULT_MAX_WARM_BYTES: Final = 512 * 1024 * 1024
#: Attempts of one write when its lease is lost to another writer before it publishes.
_PUBLISH_ATTEMPTS: Final = 3
_HEAD_SK: Final = "HEAD"

Truth = Callable[[str, str], Iterable[IndexedChunk]]
"""Everything the metadata store holds for (tenant, dataset) as the index holds it: the chunks, and the
knowledge graph's records."""


def head_pk(tenant_id: str, dataset_id: str) -> str:
    return f"SHARD#{tenant_id}#{dataset_id}"


def snapshot_key(tenant_id: str, dataset_id: str, version: int) -> str:
    """A new object for every version (and writer): readers never see a snapshot being replaced."""
    return f"{SNAPSHOT_PREFIX}{tenant_id}/{dataset_id}/{version:012d}-{uuid.uuid4().hex[:12]}.sqlite3"


class ShardBusy(StoreUnavailable):
    """Another writer held the shard's lease for longer than a write waits (retried like any outage)."""


@dataclass
class _Warm:
    """A loaded shard: its index, the version it holds, its folder and its snapshot's size."""

    index: EmbeddedSearchIndex
    version: int
    folder: Path
    size: int


class ShardSnapshotIndex(SearchIndex):
    """See the module docstring. ``store`` holds the heads, ``blobs`` the snapshots, ``truth`` rebuilds a shard,
    ``cache_dir`` keeps the warm shards' files (a Lambda's ``/tmp``)."""

    def __init__(
        self,
        *,
        store: MetadataStore,
        blobs: BlobStore,
        truth: Truth,
        cache_dir: Path,
        lease_s: float = DEFAULT_LEASE_S,
        wait_s: float = DEFAULT_WAIT_S,
        max_warm_bytes: int = DEFAULT_MAX_WARM_BYTES,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._truth = truth
        self._cache_dir = cache_dir
        self._lease_ms = int(lease_s * 1000)
        self._wait_s = wait_s
        self._max_warm_bytes = max_warm_bytes
        self.owner = uuid.uuid4().hex  # this process's name on the leases it takes
        self._warm: OrderedDict[tuple[str, str], _Warm] = OrderedDict()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        cache_dir.mkdir(parents=True, exist_ok=True)

    # -- the port ------------------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Add or replace chunks, one write per shard they belong to."""
        by_shard: dict[tuple[str, str], list[IndexedChunk]] = {}
        for chunk in chunks:
            by_shard.setdefault((chunk.tenant_id, chunk.dataset_id), []).append(chunk)
        for (tenant_id, dataset_id), batch in by_shard.items():
            self._write(tenant_id, dataset_id, lambda index, batch=batch: index.upsert(batch))  # type: ignore[misc]

    def delete_chunks(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str]) -> None:
        if chunk_ids:
            self._write(tenant_id, dataset_id, lambda index: index.delete_chunks(tenant_id, dataset_id, chunk_ids))

    def delete_document(self, tenant_id: str, dataset_id: str, document_id: str) -> None:
        self._write(tenant_id, dataset_id, lambda index: index.delete_document(tenant_id, dataset_id, document_id))

    def set_available(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str], available: bool) -> None:
        if chunk_ids:
            self._write(
                tenant_id, dataset_id, lambda index: index.set_available(tenant_id, dataset_id, chunk_ids, available)
            )

    def delete_dataset(self, tenant_id: str, dataset_id: str) -> None:
        """Forget the shard: its head and its snapshot, under its lease (a later write of the dataset starts from
        the truth)."""
        key = (tenant_id, dataset_id)
        with self._lock(key):
            self._drop_warm(key)
            if self._store.get(head_pk(*key), _HEAD_SK) is None:
                return
            head = self._take_lease(key)
            try:
                self._store.delete(head_pk(*key), _HEAD_SK, condition=Condition("equals", "rev", head["rev"]))
            except ConditionFailed:
                return  # expired and taken over mid-delete: that writer's dataset now; the truth decides
            if head.get("key"):
                self._blobs.delete(head["key"])

    def search(self, query: SearchQuery) -> list[Candidate]:
        """Each dataset's shard searched at its current version; candidates merged by score."""
        if query.top_k <= 0 or not query.dataset_ids:
            return []
        found = []
        for dataset_id in dict.fromkeys(query.dataset_ids):
            index = self._current(query.tenant_id, dataset_id)
            found.append(index.search(dataclasses.replace(query, dataset_ids=[dataset_id])))
        return found[0] if len(found) == 1 else merge_shards(found, query.top_k, query.text_limit)

    def ping(self) -> None:
        self._store.ping()
        self._blobs.ping()

    def close(self) -> None:
        for key in list(self._warm):
            self._drop_warm(key)

    # -- readers -------------------------------------------------------------------------------------
    def _current(self, tenant_id: str, dataset_id: str) -> EmbeddedSearchIndex:
        """The shard at its published version: the warm copy, a snapshot loaded, or (none published, or its
        snapshot gone) a shard rebuilt from the truth and published."""
        key = (tenant_id, dataset_id)
        head = self._store.get(head_pk(*key), _HEAD_SK)
        with self._lock(key):
            warm = self._warm.get(key)
            if head is not None and warm is not None and warm.version == int(head["version"]):
                self._warm.move_to_end(key)
                return warm.index
            if head is not None and head.get("key"):
                try:
                    return self._load(key, int(head["version"]), self._blobs.get(head["key"]))
                except BlobNotFound:
                    logger.warning("snapshot %s of shard %s is missing: rebuilding it", head["key"], key)
        self._write(tenant_id, dataset_id, lambda index: None)
        with self._lock(key):
            return self._warm[key].index

    # -- the writer ----------------------------------------------------------------------------------
    def _write(self, tenant_id: str, dataset_id: str, change: Callable[[EmbeddedSearchIndex], None]) -> None:
        key = (tenant_id, dataset_id)
        with self._lock(key):
            for attempt in range(_PUBLISH_ATTEMPTS):
                head = self._take_lease(key)
                try:
                    index, version = self._writable(key, head)
                    change(index)
                    if self._publish(key, head, index, version):
                        return
                except BaseException:
                    self._drop_warm(key)  # it may hold a change nobody published
                    self._release(key, head)
                    raise
                logger.info("lease of shard %s lost before publishing (attempt %d): writing again", key, attempt + 1)
            raise ShardBusy(f"shard {tenant_id}/{dataset_id}: lost its lease {_PUBLISH_ATTEMPTS} times")

    def _take_lease(self, key: tuple[str, str]) -> Item:
        """The head with this process's lease on it (created when there is none), waiting out another writer's."""
        deadline = time.monotonic() + self._wait_s
        pause = 0.02
        while True:
            now = _now_ms()
            head = self._store.get(head_pk(*key), _HEAD_SK)
            lease = {"lease_owner": self.owner, "lease_until": now + self._lease_ms, "rev": uuid.uuid4().hex}
            try:
                if head is None:
                    item = {"pk": head_pk(*key), "sk": _HEAD_SK, "version": 0, "key": None, **lease}
                    self._store.put(item, ITEM_NOT_EXISTS)
                    return item
                if not head.get("lease_owner") or int(head.get("lease_until") or 0) <= now:
                    return self._store.update(
                        head_pk(*key), _HEAD_SK, set=lease, condition=Condition("equals", "rev", head["rev"])
                    )
            except ConditionFailed:
                continue  # another process changed the head first: look again
            if time.monotonic() + pause > deadline:
                raise ShardBusy(f"shard {key[0]}/{key[1]} is being written by another process")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _writable(self, key: tuple[str, str], head: Item) -> tuple[EmbeddedSearchIndex, int]:
        """The shard at the head's version, to change: warm, loaded, or rebuilt from the truth."""
        version = int(head["version"])
        warm = self._warm.get(key)
        if warm is not None and warm.version == version and version > 0:
            return warm.index, version
        if head.get("key"):
            try:
                return self._load(key, version, self._blobs.get(head["key"])), version
            except BlobNotFound:
                logger.warning("snapshot %s of shard %s is missing: rebuilding it", head["key"], key)
        index = self._open(key, version, None)
        count = index.rebuild(self._truth(*key))
        logger.info("shard %s rebuilt from the metadata store: %d chunks", key, count)
        return index, version

    def _publish(self, key: tuple[str, str], head: Item, index: EmbeddedSearchIndex, version: int) -> bool:
        """Upload the changed shard as the next version and make it current, releasing the lease; False when
        the lease was lost meanwhile (nothing published)."""
        data = _snapshot_bytes(self._warm[key].folder / DB_FILE)
        new_key = snapshot_key(*key, version + 1)
        self._blobs.put(new_key, data, "application/vnd.sqlite3")
        try:
            self._store.update(
                head_pk(*key),
                _HEAD_SK,
                set={"version": version + 1, "key": new_key, "rev": uuid.uuid4().hex, "lease_until": 0},
                remove=["lease_owner"],
                condition=Condition("equals", "rev", head["rev"]),
            )
        except ConditionFailed:
            self._blobs.delete(new_key)
            self._drop_warm(key)
            return False
        warm = self._warm.get(key)
        if warm is not None:
            warm.version, warm.size = version + 1, len(data)
        if head.get("key"):
            self._blobs.delete(head["key"])
        self._evict()
        return True

    def _release(self, key: tuple[str, str], head: Item) -> None:
        # Taken over already, or the store is away: the lease then expires on its own.
        with contextlib.suppress(ConditionFailed, StoreUnavailable):
            self._store.update(
                head_pk(*key),
                _HEAD_SK,
                set={"rev": uuid.uuid4().hex, "lease_until": 0},
                remove=["lease_owner"],
                condition=Condition("equals", "rev", head["rev"]),
            )

    # -- warm shards ---------------------------------------------------------------------------------
    def _load(self, key: tuple[str, str], version: int, data: bytes) -> EmbeddedSearchIndex:
        index = self._open(key, version, data)
        self._evict()
        return index

    def _open(self, key: tuple[str, str], version: int, data: bytes | None) -> EmbeddedSearchIndex:
        """A fresh folder holding ``data`` (or nothing), opened as the shard's warm copy at ``version``."""
        self._drop_warm(key)
        folder = Path(tempfile.mkdtemp(prefix=f"{key[1]}-v{version}-", dir=self._cache_dir))
        if data is not None:
            (folder / DB_FILE).write_bytes(data)
        index = EmbeddedSearchIndex(folder)
        self._warm[key] = _Warm(index, version, folder, len(data or b""))
        return index

    def _drop_warm(self, key: tuple[str, str]) -> None:
        warm = self._warm.pop(key, None)
        if warm is not None:
            warm.index.close()
            shutil.rmtree(warm.folder, ignore_errors=True)

    def _evict(self) -> None:
        """Least recently used shards out while the warm ones exceed the budget (the last one always stays)."""
        while len(self._warm) > 1 and sum(w.size for w in self._warm.values()) > self._max_warm_bytes:
            oldest = next(iter(self._warm))
            self._drop_warm(oldest)

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())


def merge_shards(found: Sequence[Sequence[Candidate]], top_k: int, text_limit: int) -> list[Candidate]:
    """Candidates of several shards as one search gives them: the ``text_limit`` best text matches by score,
    then the chunks among the ``top_k`` best by vector that are not among those."""
    everything = [candidate for candidates in found for candidate in candidates]
    by_text = sorted((c for c in everything if c.text_score is not None), key=lambda c: -(c.text_score or 0.0))
    text = by_text[:text_limit]
    chosen = {(c.dataset_id, c.chunk_id) for c in text}
    by_vector = sorted((c for c in everything if c.vector_score is not None), key=lambda c: -(c.vector_score or 0.0))
    vector_only = [c for c in by_vector[:top_k] if (c.dataset_id, c.chunk_id) not in chosen]
    return text + vector_only


def _snapshot_bytes(database: Path) -> bytes:
    """A shard's SQLite file as one consistent database (its write-ahead log folded in)."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / DB_FILE
        source = sqlite3.connect(database)
        try:
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        return target.read_bytes()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
