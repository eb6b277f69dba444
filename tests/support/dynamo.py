"""A DynamoMetadataStore on a fresh table under moto, for contract and integration tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from shared.adapters.aws.dynamodb_store import DynamoMetadataStore

TEST_REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": TEST_REGION,
    "AWS_REGION": TEST_REGION,
}


@contextmanager
def fake_aws_env() -> Iterator[None]:
    """Fake credentials and region for the duration, so nothing can reach a real account."""
    with mock.patch.dict(os.environ, FAKE_AWS_ENV):
        yield


@contextmanager
def serialized_moto_dynamodb() -> Iterator[None]:
    """Make moto answer one DynamoDB request at a time, as DynamoDB's per-request atomicity promises.

    moto's backend is not thread-safe: ``transact_write_items`` checks conditions and writes without a
    lock, and rolls a failed transaction back by restoring a deep copy of the whole table taken before
    it started, which erases writes other threads made meanwhile. Concurrency tests would then see
    races DynamoDB itself never has. A lock around each request's handling removes them.
    """
    lock = threading.Lock()
    handle: Callable[[DynamoHandler], Any] = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with lock:
            return handle(self)

    with mock.patch.object(DynamoHandler, "call_action", call_action):
        yield


@contextmanager
def moto_dynamo_store(table_name: str = "flowless-test") -> Iterator[DynamoMetadataStore]:
    """Yield a DynamoMetadataStore on a new table, built from the model, in a mocked AWS account."""
    with fake_aws_env(), mock_aws(), serialized_moto_dynamodb():
        store = DynamoMetadataStore(table_name, region=TEST_REGION)
        store.create_table(wait=True)
        yield store
