"""The embedded engine on Lambda (``shared/adapters/aws/shard_index.py``) under moto: snapshots in S3, heads and
leases in DynamoDB, several processes (instances with folders of their own) on the same shards. The search
behaviour itself is the contract suite's (test_search_index_contract.py, engine ``shards``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
from shared.adapters.aws.s3_blobs import S3BlobStore
from shared.adapters.aws.shard_index import SNAPSHOT_PREFIX, ShardBusy, ShardSnapshotIndex, head_pk
from shared.ports.blobs import BlobStore
from shared.ports.search import IndexedChunk, SearchQuery
from tests.support.dynamo import TEST_REGION, moto_dynamo_store

pytestmark = pytest.mark.integration

BUCKET = "shards"


def chunk(chunk_id: str, content: str, *, dataset_id: str = "d1", tenant_id: str = "t1") -> IndexedChunk:
    return IndexedChunk(chunk_id, tenant_id, dataset_id, "doc1", "notes.txt", content, [1.0, 0.0, 0.0])


@dataclass
class CountingBlobs(BlobStore):
    """The S3 store, counting the snapshots each process downloads."""

    inner: S3BlobStore
    gets: list[str] = field(default_factory=list)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.inner.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        return self.inner.get(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(prefix)

    def ping(self) -> None:
        self.inner.ping()


@dataclass
class Shards:
    store: DynamoMetadataStore
    blobs: S3BlobStore
    tmp: Path
    truth: dict[tuple[str, str], list[IndexedChunk]] = field(default_factory=dict)
    opened: int = 0

    def process(self, **options: float) -> tuple[ShardSnapshotIndex, CountingBlobs]:
        """Another process on the same table and bucket: a folder of its own, nothing warm."""
        self.opened += 1
        blobs = CountingBlobs(self.blobs)
        index = ShardSnapshotIndex(
            store=self.store,
            blobs=blobs,
            truth=lambda tenant, dataset: list(self.truth.get((tenant, dataset), [])),
            cache_dir=self.tmp / f"process-{self.opened}",
            **options,  # type: ignore[arg-type]
        )
        return index, blobs

    def snapshots(self) -> list[str]:
        listed = boto3.client("s3", region_name=TEST_REGION).list_objects_v2(Bucket=BUCKET, Prefix=SNAPSHOT_PREFIX)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def head(self, dataset_id: str = "d1") -> dict[str, object] | None:
        return self.store.get(head_pk("t1", dataset_id), "HEAD")


@pytest.fixture
def shards(tmp_path: Path) -> Iterator[Shards]:
    with moto_dynamo_store() as store:
        boto3.client("s3", region_name=TEST_REGION).create_bucket(Bucket=BUCKET)
        yield Shards(store, S3BlobStore(BUCKET, region=TEST_REGION), tmp_path)


def found(index: ShardSnapshotIndex, text: str, *datasets: str) -> list[str]:
    query = SearchQuery("t1", list(datasets or ["d1"]), text=text)
    return sorted(candidate.chunk_id for candidate in index.search(query))


def test_a_write_publishes_a_snapshot_that_another_process_loads_and_keeps_warm(shards: Shards) -> None:
    writer, _ = shards.process()
    reader, downloads = shards.process()
    writer.upsert([chunk("c1", "granite quarry"), chunk("c2", "basalt column")])
    (first,) = shards.snapshots()
    assert shards.head() is not None and shards.head()["version"] == 1 and shards.head()["key"] == first  # type: ignore[index]
    assert "lease_owner" not in shards.head()  # type: ignore[operator]

    assert found(reader, "granite") == ["c1"]
    assert found(reader, "basalt") == ["c2"]
    assert downloads.gets == [first]  # loaded once, then searched warm

    writer.delete_chunks("t1", "d1", ["c1"])
    (second,) = shards.snapshots()  # the previous snapshot is deleted once the next is published
    assert found(reader, "granite") == []  # the reader picks the new version up by the head
    assert downloads.gets == [first, second]
    writer.set_available("t1", "d1", ["c2"], False)
    assert found(reader, "basalt") == []
    assert shards.head()["version"] == 3  # type: ignore[index]


def test_a_shard_without_a_head_or_a_snapshot_is_rebuilt_from_the_truth(shards: Shards) -> None:
    shards.truth[("t1", "d1")] = [chunk("c1", "granite quarry"), chunk("c2", "basalt column")]
    reader, _ = shards.process()
    assert found(reader, "granite basalt") == ["c1", "c2"]  # no head: rebuilt and published
    assert shards.head()["version"] == 1  # type: ignore[index]

    (snapshot,) = shards.snapshots()
    shards.blobs.delete(snapshot)  # the bucket lost it
    shards.truth[("t1", "d1")] = [chunk("c2", "basalt column")]
    another, _ = shards.process()
    assert found(another, "granite basalt") == ["c2"]
    assert shards.head()["version"] == 2 and len(shards.snapshots()) == 1  # type: ignore[index]

    writer, _ = shards.process()
    (snapshot,) = shards.snapshots()
    shards.blobs.delete(snapshot)
    writer.upsert([chunk("c3", "obsidian glass")])  # a write on a lost snapshot starts from the truth too
    assert found(another, "granite basalt obsidian") == ["c2", "c3"]


def test_a_writer_waits_for_another_writers_lease_and_takes_an_expired_one(shards: Shards) -> None:
    first, _ = shards.process()
    first.upsert([chunk("c1", "granite quarry")])
    head = shards.head()
    assert head is not None
    # Another process holds the lease (it is writing): a write waits, and gives up as "busy" after wait_s.
    shards.store.update(head_pk("t1", "d1"), "HEAD", set={"lease_owner": "other", "lease_until": 2**62, "rev": "x"})
    patient, _ = shards.process(wait_s=0.3)
    with pytest.raises(ShardBusy):
        patient.upsert([chunk("c2", "basalt column")])
    assert found(patient, "granite basalt") == ["c1"]  # readers never wait for a writer
    # That process died: its lease expires and the next writer takes it over.
    shards.store.update(head_pk("t1", "d1"), "HEAD", set={"lease_until": 1})
    patient.upsert([chunk("c2", "basalt column")])
    assert found(first, "granite basalt") == ["c1", "c2"]
    assert "lease_owner" not in shards.head()  # type: ignore[operator]


def test_a_writer_that_lost_its_lease_writes_again_on_what_the_other_published(shards: Shards) -> None:
    slow, _ = shards.process()
    fast, _ = shards.process()
    slow.upsert([chunk("c1", "granite quarry")])
    stolen = threading.Event()

    def steal_meanwhile(index: object) -> None:
        if not stolen.is_set():  # while the slow writer changes its copy, its lease expires and is taken
            stolen.set()
            shards.store.update(head_pk("t1", "d1"), "HEAD", set={"lease_until": 1})
            fast.upsert([chunk("c2", "basalt column")])

    original = slow._writable

    def writable(key: tuple[str, str], head: dict[str, object]) -> object:
        index, version = original(key, head)
        steal_meanwhile(index)
        return index, version

    slow._writable = writable  # type: ignore[method-assign]
    slow.upsert([chunk("c3", "obsidian glass")])
    assert stolen.is_set()
    reader, _ = shards.process()
    assert found(reader, "granite basalt obsidian") == ["c1", "c2", "c3"]  # nothing lost, nothing twice
    assert shards.head()["version"] == 3 and len(shards.snapshots()) == 1  # the lost try published nothing  # type: ignore[index]


def test_concurrent_writers_in_several_processes_lose_no_write(shards: Shards) -> None:
    processes = [shards.process()[0] for _ in range(3)]
    errors: list[BaseException] = []

    def write(slot: int) -> None:
        try:
            for n in range(4):
                processes[slot].upsert([chunk(f"p{slot}-{n}", f"lighthouse beacon {slot} {n}")])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(slot,)) for slot in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reader, _ = shards.process()
    assert len(found(reader, "lighthouse")) == 12
    assert shards.head()["version"] == 12  # type: ignore[index]


def test_datasets_are_shards_of_their_own_and_a_search_merges_them(shards: Shards) -> None:
    writer, _ = shards.process()
    writer.upsert([chunk("a1", "granite quarry"), chunk("b1", "granite granite", dataset_id="d2")])
    writer.upsert([chunk("x1", "granite", tenant_id="t2")])
    assert len(shards.snapshots()) == 3
    reader, _ = shards.process()
    results = reader.search(SearchQuery("t1", ["d1", "d2"], text="granite", vector=[1.0, 0.0, 0.0], top_k=1))
    # top_k per kind over both shards: the best text match, then the best by vector not already listed
    assert [c.chunk_id for c in results][:1] == ["b1"] and {c.dataset_id for c in results} <= {"d1", "d2"}
    assert found(reader, "granite", "d1", "d2") == ["a1", "b1"]  # never another tenant's
    writer.delete_dataset("t1", "d2")
    assert shards.head("d2") is None and len(shards.snapshots()) == 2
    assert found(reader, "granite", "d1", "d2") == ["a1"]
