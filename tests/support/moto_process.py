"""moto's ThreadedMotoServer in a process of its own, for tests that need AWS APIs over real HTTP.

Why a process: moto's backends are module globals, and ``mock_aws()`` (used by many other tests of the same
pytest process) resets every backend when it starts. A ThreadedMotoServer in the test process would lose its
tables and buckets whenever such a test ran. Run as ``python -m tests.support.moto_process PORT``: it serves on
127.0.0.1:PORT until its standard input closes (the parent exited or closed the pipe).

DynamoDB requests are answered one at a time (``serialized_moto_dynamodb``): moto's backend is not thread-safe,
and the threaded server would otherwise show races DynamoDB never has.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.dynamo import FAKE_AWS_ENV

_REPO = Path(__file__).resolve().parents[2]


@contextmanager
def run_moto_server(*, startup_timeout_s: float = 30.0) -> Iterator[str]:
    """A moto server on a free loopback port; yields its URL and stops it afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, **FAKE_AWS_ENV, "PYTHONPATH": os.pathsep.join([str(_REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.moto_process", str(port)],
        stdin=subprocess.PIPE,
        env=env,
        cwd=_REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def item_level_transaction_rollback() -> Iterator[None]:
    """moto's ``TransactWriteItems`` backs up the *whole table* (a deep copy, once per operation) to roll a
    cancelled transaction back: O(table) per transaction, which a table shared by a whole test session makes
    slower and slower until requests time out. This keeps moto's own conditions and writes, lets its table
    backup be the table itself, and on cancellation restores just the items the transaction targeted (deep
    copies taken before it ran): the same all-or-nothing outcome. Requests are serialized
    (``serialized_moto_dynamodb``), so nothing else changes those items meanwhile."""
    import copy
    from unittest import mock

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _TableAsItsOwnBackup:
        @staticmethod
        def deepcopy(value: object, memo: dict[int, object] | None = None) -> object:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: models.DynamoDBBackend, transact_items: list[dict[str, object]]) -> None:
        saved = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            attrs = op["Item"] if op_type == "Put" else op.get("Key", {})
            if table.hash_key_attr not in attrs:
                continue
            hash_value = DynamoType(attrs[table.hash_key_attr])
            range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr in attrs else None
            saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            with mock.patch.object(models, "copy", _TableAsItsOwnBackup):
                original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                holder = table.items[hash_value] if range_value is not None else table.items
                key = range_value if range_value is not None else hash_value
                if item is None:
                    holder.pop(key, None)
                else:
                    holder[key] = item
            raise

    with mock.patch.object(models.DynamoDBBackend, "transact_write_items", transact_write_items):
        yield


@contextmanager
def partition_scoped_queries() -> Iterator[None]:
    """moto answers every ``Query`` by sorting *all* the table's items and scanning them (O(table) with slow
    comparisons): a session-long table makes a 40-item query take 150 ms. A query on the table or on a local
    secondary index names one partition of the table, so here it looks at that partition's items only — the
    same candidates in the same order; moto's own key conditions, filters, paging and projections then apply.
    Global index queries keep the full scan."""
    import threading
    from unittest import mock

    from moto.dynamodb.models.table import Table

    scoped = threading.local()
    all_items, query = Table.all_items, Table.query

    def partition_items(self: Table) -> list[object]:
        only = getattr(scoped, "partition", None)
        if only is None or only[0] is not self:
            return all_items(self)
        found = self.items.get(only[1])
        if found is None:
            return []
        if not self.range_key_attr:
            return [found]
        return sorted(found.values(), key=lambda item: item.range_key)

    def partition_query(self: Table, hash_key: object, *args: object, **kwargs: object) -> object:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        local = {index.name for index in self.indexes}
        partition = None
        if index_name is None:
            partition = hash_key
        elif index_name in local:
            conditions = kwargs.get("hash_key_conditions") or []
            partition = next((v for name, v in conditions if name == self.hash_key_attr), hash_key)  # type: ignore[attr-defined]
        scoped.partition = (self, partition) if partition is not None else None
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            scoped.partition = None

    with mock.patch.object(Table, "all_items", partition_items), mock.patch.object(Table, "query", partition_query):
        yield


def _serve(port: int) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request

    from tests.support.dynamo import serialized_moto_dynamodb

    with serialized_moto_dynamodb(), item_level_transaction_rollback(), partition_scoped_queries():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            sys.stdin.read()  # returns when the parent closes the pipe or exits
        finally:
            server.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
