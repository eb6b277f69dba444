"""One contract suite for every BlobStore driver: the filesystem, and S3 under moto."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.adapters.aws.s3_blobs import DELETE_BATCH, S3BlobStore
from shared.adapters.local.fs_blobs import FilesystemBlobStore
from shared.ports.blobs import BlobNotFound, BlobStore
from shared.ports.metadata import StoreUnavailable
from tests.support.dynamo import TEST_REGION, fake_aws_env

pytestmark = pytest.mark.integration

BUCKET = "flowless-test-documents"


@pytest.fixture
def s3_client() -> Iterator[Any]:
    with fake_aws_env(), mock_aws():
        client = boto3.client("s3", region_name=TEST_REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(params=["filesystem", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "blobs")
    else:
        client = request.getfixturevalue("s3_client")
        yield S3BlobStore(BUCKET, region=TEST_REGION, client=client)


def _keys_under(store: BlobStore, keys: list[str]) -> list[str]:
    present = []
    for key in keys:
        try:
            store.get(key)
        except BlobNotFound:
            continue
        present.append(key)
    return present


# -- the contract, on every driver ---------------------------------------------------------------
def test_put_get_roundtrip_and_replace(blobs: BlobStore) -> None:
    payload = bytes(range(256)) * 3
    blobs.put("t1/ds1/doc.pdf", payload, "application/pdf")
    assert blobs.get("t1/ds1/doc.pdf") == payload
    blobs.put("t1/ds1/doc.pdf", b"second")
    assert blobs.get("t1/ds1/doc.pdf") == b"second"
    blobs.put("t1/empty", b"")
    assert blobs.get("t1/empty") == b""


def test_get_missing_raises_blob_not_found(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        blobs.get("t1/nothing-here")
    blobs.put("t1/dir/file", b"x")
    with pytest.raises(BlobNotFound):
        blobs.get("t1/dir")  # a key prefix is not an object


def test_delete_is_idempotent(blobs: BlobStore) -> None:
    blobs.put("t1/a", b"a")
    blobs.delete("t1/a")
    blobs.delete("t1/a")
    blobs.delete("t1/never-was")
    with pytest.raises(BlobNotFound):
        blobs.get("t1/a")


def test_delete_prefix_removes_only_matching_keys(blobs: BlobStore) -> None:
    keys = ["t1/ds1/a", "t1/ds1/sub/b", "t1/ds10/c", "t1/ds2/d", "t1/dsx", "t2/ds1/e"]
    for key in keys:
        blobs.put(key, key.encode())
    blobs.delete_prefix("t1/ds1/")
    assert _keys_under(blobs, keys) == ["t1/ds10/c", "t1/ds2/d", "t1/dsx", "t2/ds1/e"]
    blobs.delete_prefix("t1/ds")  # a prefix need not end at a '/'
    assert _keys_under(blobs, keys) == ["t2/ds1/e"]
    blobs.delete_prefix("t9/")  # nothing there: no error
    blobs.put("t1/ds1/a", b"again")  # the emptied folder can be written again
    assert blobs.get("t1/ds1/a") == b"again"


def test_delete_prefix_removes_many_keys(blobs: BlobStore) -> None:
    count = 60  # S3's batching past 1000 keys is checked once, below (moto puts are slow)
    for n in range(count):
        blobs.put(f"t1/many/{n:05d}", b"x")
    blobs.put("t1/keep", b"k")
    blobs.delete_prefix("t1/many/")
    assert _keys_under(blobs, ["t1/many/00000", f"t1/many/{count - 1:05d}", "t1/keep"]) == ["t1/keep"]


def test_delete_prefix_refuses_an_empty_prefix(blobs: BlobStore) -> None:
    blobs.put("t1/a", b"a")
    with pytest.raises(ValueError):
        blobs.delete_prefix("")
    assert blobs.get("t1/a") == b"a"


def test_ping(blobs: BlobStore) -> None:
    blobs.ping()


# -- filesystem specifics ------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a/"])
def test_filesystem_rejects_keys_outside_the_root(tmp_path: Path, key: str) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)
    assert not (tmp_path / "x").exists()


def test_filesystem_rejects_symlinks_leading_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = FilesystemBlobStore(tmp_path / "blobs")
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        store.put("link/x", b"x")
    assert not (outside / "x").exists()


def test_filesystem_keeps_blobs_across_restarts_and_leaves_no_temp_files(tmp_path: Path) -> None:
    FilesystemBlobStore(tmp_path / "blobs").put("t1/doc", b"kept")
    reopened = FilesystemBlobStore(tmp_path / "blobs")
    assert reopened.get("t1/doc") == b"kept"
    assert [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == ["doc"]
    reopened.delete("t1/doc")
    assert list((tmp_path / "blobs").iterdir()) == []  # emptied folders are pruned


def test_filesystem_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    versions = [bytes([n]) * 400_000 for n in range(6)]
    store.put("t1/hot", versions[0])
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(store.get("t1/hot"))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=store.put, args=("t1/hot", data)) for data in versions[1:]]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    reader.join()
    assert seen and all(data in versions for data in seen)


def test_filesystem_ping_fails_when_root_is_gone(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    store.root.rmdir()
    with pytest.raises(StoreUnavailable):
        store.ping()


# -- S3 specifics --------------------------------------------------------------------------------
def test_s3_encrypts_and_keeps_content_type(s3_client: Any) -> None:
    S3BlobStore(BUCKET, region=TEST_REGION, client=s3_client).put("t1/doc.pdf", b"%PDF", "application/pdf")
    head = s3_client.head_object(Bucket=BUCKET, Key="t1/doc.pdf")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/pdf"

    kms = S3BlobStore(BUCKET, region=TEST_REGION, client=s3_client, kms_key_id="alias/flowless")
    kms.put("t1/secret", b"s")
    head = s3_client.head_object(Bucket=BUCKET, Key="t1/secret")
    assert head["ServerSideEncryption"] == "aws:kms"


def test_s3_deletes_in_batches_of_at_most_1000(s3_client: Any) -> None:
    store = S3BlobStore(BUCKET, region=TEST_REGION, client=s3_client)
    for n in range(DELETE_BATCH + 7):
        store.put(f"t1/many/{n:05d}", b"x")
    batches: list[int] = []
    s3_client.meta.events.register(
        "before-parameter-build.s3.DeleteObjects",
        lambda params, **_: batches.append(len(params["Delete"]["Objects"])),
    )
    store.delete_prefix("t1/many/")
    assert batches == [DELETE_BATCH, 7]


def test_s3_unavailable_bucket(s3_client: Any) -> None:
    store = S3BlobStore("no-such-bucket", region=TEST_REGION, client=s3_client)
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.put("t1/a", b"a")


def test_s3_builds_its_own_client_once() -> None:
    with fake_aws_env(), mock_aws():
        boto3.client("s3", region_name=TEST_REGION).create_bucket(Bucket=BUCKET)
        store = S3BlobStore(BUCKET, region=TEST_REGION)
        store.put("t1/a", b"a")
        assert store.get("t1/a") == b"a"
        store.ping()
