"""The EventBridge publisher retries failed entries and calls, then gives up with EventPublishError; events
keep their id (the consumers' dedupe key) through retries."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from shared.adapters.aws.eventbridge_events import ATTEMPTS, EventBridgePublisher
from shared.ports.events import DomainEvent, EventPublishError, event_id

EVENT = DomainEvent(
    id=event_id("parse", "doc", "task", "DONE"),
    type="document.parse.done",
    tenant_id="t",
    dataset_id="d",
    document_id="doc",
    run="DONE",
    chunk_count=3,
    token_count=42,
    progress_msg="Task done",
    at=1,
)
FAILED = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}


def _publisher() -> tuple[EventBridgePublisher, Stubber, list[float]]:
    client = boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    slept: list[float] = []
    return EventBridgePublisher("bus", region="us-east-1", client=client, sleep=slept.append), Stubber(client), slept


def test_failed_entries_are_retried_with_backoff_and_the_same_event() -> None:
    publisher, stub, slept = _publisher()
    expected = {
        "Entries": [{"Source": "flowless", "DetailType": "document.parse.done", "Detail": ANY, "EventBusName": "bus"}]
    }
    stub.add_response("put_events", FAILED, expected)
    stub.add_response("put_events", FAILED, expected)
    stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]}, expected)
    with stub:
        publisher.publish(EVENT)
    stub.assert_no_pending_responses()
    assert slept == sorted(slept) and len(slept) == 2


def test_an_event_that_cannot_be_published_raises() -> None:
    publisher, stub, slept = _publisher()
    for _ in range(ATTEMPTS - 1):
        stub.add_response("put_events", FAILED)
    stub.add_client_error("put_events", "ThrottlingException")
    with stub, pytest.raises(EventPublishError, match=EVENT.id):
        publisher.publish(EVENT)
    assert len(slept) == ATTEMPTS - 1


def test_events_round_trip_and_ids_are_stable() -> None:
    assert DomainEvent.from_dict(json.loads(json.dumps(EVENT.to_dict()))) == EVENT
    assert event_id("parse", "doc", "task", "DONE") == EVENT.id != event_id("parse", "doc", "task", "FAIL")
    with pytest.raises(ValueError, match="not a flowless event type"):
        DomainEvent.from_dict({**EVENT.to_dict(), "type": "aws.s3"})
