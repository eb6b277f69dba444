"""One contract suite for every MetadataStore driver: SQLite, and DynamoDB under moto — in-process, and moto's
server in its own process (what the API suite's ``aws`` backend runs on, with its item-level transaction
rollback: tests/support/moto_process.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.ports.metadata import (
    ITEM_EXISTS,
    ITEM_NOT_EXISTS,
    Check,
    Condition,
    ConditionFailed,
    Delete,
    MetadataStore,
    Put,
    Update,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "dynamodb", "dynamodb-server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    if request.param == "sqlite":
        from shared.adapters.local.sqlite_store import SqliteMetadataStore

        yield SqliteMetadataStore(tmp_path / "meta.sqlite3")
    elif request.param == "dynamodb-server":
        from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
        from tests.support.dynamo import TEST_REGION, fake_aws_env

        with fake_aws_env():
            served = DynamoMetadataStore(
                f"contract-{uuid.uuid4().hex[:12]}", region=TEST_REGION, host=request.getfixturevalue("moto_url")
            )
            served.create_table()
            yield served
    else:
        from tests.support.dynamo import moto_dynamo_store

        with moto_dynamo_store() as dynamo:
            yield dynamo


def _item(pk: str, sk: str, **attrs: object) -> dict[str, object]:
    return {"pk": pk, "sk": sk, **attrs}


def test_put_get_roundtrip_keeps_json_types(store: MetadataStore) -> None:
    item = _item("P", "A", n=3, f=0.25, s="x", b=True, none=None, lst=[1, "a"], obj={"k": {"z": 1}})
    store.put(item)
    assert store.get("P", "A") == item
    assert store.get("P", "missing") is None


def test_put_with_not_exists_condition_refuses_second_write(store: MetadataStore) -> None:
    store.put(_item("P", "A", v=1), ITEM_NOT_EXISTS)
    with pytest.raises(ConditionFailed):
        store.put(_item("P", "A", v=2), ITEM_NOT_EXISTS)
    assert store.get("P", "A") == _item("P", "A", v=1)


def test_update_sets_adds_removes_and_returns_new_item(store: MetadataStore) -> None:
    store.put(_item("P", "A", count=1, name="a", gone="x"))
    new = store.update("P", "A", set={"name": "b"}, add={"count": 2, "fresh": 5}, remove=["gone"])
    assert new == _item("P", "A", count=3, name="b", fresh=5)
    assert store.get("P", "A") == new


def test_update_of_missing_item_fails(store: MetadataStore) -> None:
    with pytest.raises(ConditionFailed):
        store.update("P", "nope", set={"x": 1})
    assert store.get("P", "nope") is None


def test_conditional_update_and_delete(store: MetadataStore) -> None:
    store.put(_item("P", "A", state="RUNNING"))
    with pytest.raises(ConditionFailed):
        store.update("P", "A", set={"state": "DONE"}, condition=Condition("equals", "state", "CANCEL"))
    store.update("P", "A", set={"state": "DONE"}, condition=Condition("equals", "state", "RUNNING"))
    with pytest.raises(ConditionFailed):
        store.delete("P", "A", Condition("equals", "state", "RUNNING"))
    store.delete("P", "A", ITEM_EXISTS)
    assert store.get("P", "A") is None
    store.delete("P", "A")  # deleting twice is fine without a condition


def test_query_orders_by_index_with_prefix_limit_offset(store: MetadataStore) -> None:
    for i in range(7):
        store.put(_item("T", f"DS#{i}", ct_sk=f"DS#{i:03d}", ut_sk=f"DS#{6 - i:03d}", i=i))
    store.put(_item("T", "OTHER#1", ct_sk="OTHER#1"))
    by_create = store.query("T", index="by_create", sk_prefix="DS#")
    assert [it["i"] for it in by_create] == list(range(7))
    desc = store.query("T", index="by_create", sk_prefix="DS#", ascending=False, limit=3, offset=1)
    assert [it["i"] for it in desc] == [5, 4, 3]
    by_update = store.query("T", index="by_update", sk_prefix="DS#", limit=2)
    assert [it["i"] for it in by_update] == [6, 5]
    assert store.count("T", index="by_create", sk_prefix="DS#") == 7
    assert store.count("T", sk_prefix="OTHER#") == 1
    assert store.query("T", sk_prefix="DS#", offset=10) == []


def test_pages_read_with_offsets_are_slices_of_the_whole_order(store: MetadataStore) -> None:
    for i in range(12):
        store.put(_item("T", f"DS#{i:02d}", ct_sk=f"DS#{(i * 7) % 12:03d}", i=i, gsi1pk="G", gsi1sk=f"{i % 12:02d}"))
    for index, pk in (("by_create", "T"), ("main", "T")):
        for ascending in (True, False):
            whole = store.query(pk, index=index, sk_prefix="DS#", ascending=ascending)
            assert len(whole) == 12
            for offset in (1, 5, 11, 12):
                page = store.query(pk, index=index, sk_prefix="DS#", ascending=ascending, limit=4, offset=offset)
                assert page == whole[offset : offset + 4]
            assert store.query(pk, index=index, sk_prefix="DS#", ascending=ascending, offset=3) == whole[3:]
    whole = store.query("G", index="gsi1", ascending=False)
    assert store.query("G", index="gsi1", ascending=False, limit=3, offset=2) == whole[2:5]


def test_global_index_finds_items_across_partitions(store: MetadataStore) -> None:
    store.put(_item("A", "1", gsi1pk="KEY#x", gsi1sk="1"))
    store.put(_item("B", "2", gsi1pk="KEY#x", gsi1sk="2"))
    store.put(_item("C", "3", gsi1pk="KEY#y", gsi1sk="3"))
    found = store.query("KEY#x", index="gsi1")
    assert [(it["pk"], it["sk"]) for it in found] == [("A", "1"), ("B", "2")]


def test_batch_get_returns_existing_in_order(store: MetadataStore) -> None:
    for name in ("a", "b", "c"):
        store.put(_item("P", name))
    got = store.batch_get([("P", "c"), ("P", "zz"), ("P", "a")])
    assert [it["sk"] for it in got] == ["c", "a"]


def test_transaction_is_all_or_nothing(store: MetadataStore) -> None:
    store.put(_item("P", "guard"))
    store.put(_item("P", "counter", n=0))
    with pytest.raises(ConditionFailed) as failure:
        store.transact(
            [
                Put(_item("P", "new")),
                Update("P", "counter", add={"n": 1}),
                Put(_item("P", "guard"), ITEM_NOT_EXISTS),
            ]
        )
    assert failure.value.index == 2
    assert store.get("P", "new") is None
    assert store.get("P", "counter") == _item("P", "counter", n=0)

    store.transact(
        [
            Put(_item("P", "new")),
            Update("P", "counter", add={"n": 1}),
            Delete("P", "guard", ITEM_EXISTS),
            Check("P", "new2", ITEM_NOT_EXISTS),
        ]
    )
    assert store.get("P", "new") is not None
    assert store.get("P", "counter") == _item("P", "counter", n=1)
    assert store.get("P", "guard") is None


def test_a_transaction_may_not_touch_one_item_twice(store: MetadataStore) -> None:
    store.put(_item("P", "counter", n=0))
    with pytest.raises(ValueError):
        store.transact([Update("P", "counter", add={"n": 1}), Check("P", "counter", ITEM_EXISTS)])
    assert store.get("P", "counter") == _item("P", "counter", n=0)


def test_concurrent_conditional_creates_have_one_winner(store: MetadataStore) -> None:
    wins: list[int] = []
    losses: list[int] = []
    barrier = threading.Barrier(8)

    def create(n: int) -> None:
        barrier.wait()
        try:
            store.transact([Put(_item("T", "NAME#same", owner=n), ITEM_NOT_EXISTS), Put(_item("T", f"DS#{n}"))])
            wins.append(n)
        except ConditionFailed:
            losses.append(n)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert len(losses) == 7
    assert store.count("T", sk_prefix="DS#") == 1
    guard = store.get("T", "NAME#same")
    assert guard is not None and guard["owner"] == wins[0]


def test_ping(store: MetadataStore) -> None:
    store.ping()


def test_batch_get_projects_attributes(store: MetadataStore) -> None:
    store.put(_item("P", "a", name="first", tags=["x", "y"], meta={"k": 1}, on=True, n=2, gone=None, big="z" * 50))
    store.put(_item("P", "b", other="only"))
    got = store.batch_get([("P", "b"), ("P", "a"), ("P", "zz")], attributes=["name", "tags", "meta", "on", "n", "gone"])
    assert got == [
        {"pk": "P", "sk": "b"},
        {"pk": "P", "sk": "a", "name": "first", "tags": ["x", "y"], "meta": {"k": 1}, "on": True, "n": 2, "gone": None},
    ]
    assert store.batch_get([("P", "a")], attributes=[]) == [{"pk": "P", "sk": "a"}]


def test_sqlite_pages_keep_the_order_of_ties_on_the_sort_key(tmp_path: Path) -> None:
    from shared.adapters.local.sqlite_store import SqliteMetadataStore

    store = SqliteMetadataStore(tmp_path / "meta.sqlite3")
    for i in range(20):
        store.put(_item("T", f"DS#{(i * 13) % 20:02d}", ct_sk=f"DS#{i % 3}", i=i))
    for ascending in (True, False):
        whole = store.query("T", index="by_create", sk_prefix="DS#", ascending=ascending)
        pages = [
            store.query("T", index="by_create", sk_prefix="DS#", ascending=ascending, limit=3, offset=offset)
            for offset in range(0, 20, 3)
        ]
        assert [item for page in pages for item in page] == whole


def test_sqlite_reads_back_what_the_fast_json_parser_refuses(tmp_path: Path) -> None:
    from shared.adapters.local.sqlite_store import SqliteMetadataStore

    store = SqliteMetadataStore(tmp_path / "meta.sqlite3")
    deep: object = []
    for _ in range(250):
        deep = [deep]
    lone = _item("P", "lone", text="broken \ud800 pair", ct_sk="X#1")
    nested = _item("P", "deep", tree=deep, ct_sk="X#2")
    store.put(lone)
    store.put(nested)
    assert store.get("P", "lone") == lone
    assert store.query("P", index="by_create", sk_prefix="X#") == [lone, nested]
    assert store.batch_get([("P", "deep"), ("P", "lone")]) == [nested, lone]
