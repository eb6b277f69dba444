"""Parse-completion events delivered to webhooks, over real HTTP: the local server parses, a receiver on
127.0.0.1 verifies every delivery's signature like a real receiver would; retries on 5xx, the delivery log,
filters, the outbound URL policy and tenant isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.webhooks import signing
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.server import RunningServer, run_local_server
from tests.support.webhook_receiver import Receiver, run_receiver

#: Fast retries so a test sees every attempt; loopback targets allowed (a test receiver), as a stage may allow.
WEBHOOK_SETTINGS = {
    "webhook_allow_private": True,
    "webhook_backoff_s": 0.05,
    "webhook_max_backoff_s": 0.2,
    "webhook_max_attempts": 4,
}


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_local_server(Path(tmp_path_factory.mktemp("flowless-webhooks")), settings=WEBHOOK_SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with run_receiver() as running:
        yield running


@pytest.fixture
def hooks(webhook_server: RunningServer) -> Iterator[httpx.Client]:
    with webhook_server.client(webhook_server.new_tenant_key()) as client:
        yield client


def create_webhook(api: httpx.Client, url: str, **fields: object) -> dict[str, object]:
    res = api.post("/api/v1/flowless/webhooks", json={"url": url, **fields}).json()
    assert res["code"] == 0, res
    webhook: dict[str, object] = res["data"]
    return webhook


def deliveries(api: httpx.Client, webhook_id: object, **params: object) -> dict[str, object]:
    res = api.get(f"/api/v1/flowless/webhooks/{webhook_id}/deliveries", params=params).json()
    assert res["code"] == 0, res
    data: dict[str, object] = res["data"]
    return data


def wait_status(api: httpx.Client, webhook_id: object, status: str, timeout: float = 30) -> dict[str, object]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        log = deliveries(api, webhook_id)["deliveries"]
        assert isinstance(log, list)
        if log and all(entry["status"] == status for entry in log):
            return log[0]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


def test_a_parse_that_ends_is_delivered_signed_to_the_webhook(hooks: httpx.Client, receiver: Receiver) -> None:
    dataset = create_dataset(hooks, "events")
    webhook = create_webhook(hooks, f"{receiver.url}/done", description="parse ends")
    secret = str(webhook["secret"])
    assert webhook["secret_hint"] == secret[-4:] and webhook["events"] == [] and webhook["enabled"] is True
    doc = upload_one(hooks, dataset["id"], "notes.txt", b"Webhooks tell integrations when parsing is done.\n")
    done = parse_and_wait(hooks, dataset["id"], doc["id"])
    assert done["run"] == "DONE"

    (request,) = receiver.wait_for("/done", 1)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert signing.verify(secret, request.body, headers["x-flowless-timestamp"], headers["x-flowless-signature"])
    assert not signing.verify(
        "another-secret-of-16", request.body, headers["x-flowless-timestamp"], headers["x-flowless-signature"]
    )
    assert not signing.verify(
        secret, request.body + b" ", headers["x-flowless-timestamp"], headers["x-flowless-signature"]
    )
    event = json.loads(request.body)
    assert headers["x-flowless-event"] == event["type"] == "document.parse.done"
    assert headers["x-flowless-event-id"] == event["id"]
    assert event["tenant_id"] == dataset["tenant_id"] and event["dataset_id"] == dataset["id"]
    assert event["document_id"] == doc["id"] and event["run"] == "DONE"
    assert event["chunk_count"] == done["chunk_count"] >= 1 and event["token_count"] == done["token_count"]
    assert "Task done" in event["progress_msg"] and isinstance(event["at"], int)

    entry = wait_status(hooks, webhook["id"], "succeeded")
    assert entry["id"] == headers["x-flowless-delivery"] and entry["attempts"] == 1
    assert entry["response_status"] == 200 and entry["event"] == event and entry["error"] is None


def test_a_failed_parse_is_delivered_and_5xx_answers_are_retried(hooks: httpx.Client, receiver: Receiver) -> None:
    receiver.answer = lambda path, n: 500 if path == "/flaky" and n < 2 else None
    dataset = create_dataset(hooks, "flaky")
    webhook = create_webhook(hooks, f"{receiver.url}/flaky", events=["document.parse.failed"])
    ok = upload_one(hooks, dataset["id"], "ok.txt", b"This one parses.\n")
    assert parse_and_wait(hooks, dataset["id"], ok["id"])["run"] == "DONE"
    blank = upload_one(hooks, dataset["id"], "blank.txt", b"   \n\n  \n")
    assert parse_and_wait(hooks, dataset["id"], blank["id"])["run"] == "FAIL"

    attempts = receiver.wait_for("/flaky", 3)
    entry = wait_status(hooks, webhook["id"], "succeeded")
    # Only the failure was subscribed to; it took three attempts, all one delivery (the receiver's dedupe key).
    assert entry["attempts"] == 3 and entry["event_type"] == "document.parse.failed"
    assert {a.headers["X-Flowless-Delivery"] for a in attempts} == {entry["id"]}
    assert all(a.body == attempts[0].body for a in attempts)
    event = json.loads(attempts[0].body)
    assert event["document_id"] == blank["id"] and event["run"] == "FAIL" and "[ERROR]" in event["progress_msg"]
    assert len(receiver.to("/flaky")) == 3


def test_deliveries_that_keep_failing_end_failed_in_the_log(hooks: httpx.Client, receiver: Receiver) -> None:
    receiver.answer = lambda path, n: 503 if path == "/down" else None
    dataset = create_dataset(hooks, "down")
    webhook = create_webhook(hooks, f"{receiver.url}/down")
    doc = upload_one(hooks, dataset["id"], "a.txt", b"Receivers may be down for a while.\n")
    parse_and_wait(hooks, dataset["id"], doc["id"])
    entry = wait_status(hooks, webhook["id"], "failed")
    assert entry["attempts"] == WEBHOOK_SETTINGS["webhook_max_attempts"]
    assert entry["response_status"] == 503 and entry["error"] == "HTTP 503" and entry["next_attempt_time"] is None
    assert len(receiver.to("/down")) == WEBHOOK_SETTINGS["webhook_max_attempts"]
    failed = deliveries(hooks, webhook["id"], status="failed")
    assert failed["total"] == 1 and deliveries(hooks, webhook["id"], status="succeeded")["total"] == 0


def test_the_dataset_filter_and_disabled_webhooks(hooks: httpx.Client, receiver: Receiver) -> None:
    watched, other = create_dataset(hooks, "watched"), create_dataset(hooks, "unwatched")
    filtered = create_webhook(hooks, f"{receiver.url}/filtered", dataset_ids=[watched["id"]])
    off = create_webhook(hooks, f"{receiver.url}/off", enabled=False)
    for dataset in (other, watched):
        doc = upload_one(hooks, dataset["id"], "x.txt", b"Only the watched dataset's events go out.\n")
        parse_and_wait(hooks, dataset["id"], doc["id"])
    (request,) = receiver.wait_for("/filtered", 1)
    assert json.loads(request.body)["dataset_id"] == watched["id"]
    assert deliveries(hooks, filtered["id"])["total"] == 1
    assert deliveries(hooks, off["id"])["total"] == 0 and receiver.to("/off") == []


def test_webhook_crud(hooks: httpx.Client, receiver: Receiver) -> None:
    dataset = create_dataset(hooks, "crud")
    created = create_webhook(hooks, f"{receiver.url}/crud", secret="s" * 20, events=["document.parse.done"] * 2)
    assert created["secret"] == "s" * 20 and created["events"] == ["document.parse.done"]
    listed = hooks.get("/api/v1/flowless/webhooks").json()["data"]
    assert listed["total"] == 1 and "secret" not in listed["webhooks"][0]
    assert listed["webhooks"][0]["id"] == created["id"]

    path = f"/api/v1/flowless/webhooks/{created['id']}"
    changed = hooks.put(path, json={"dataset_ids": [dataset["id"]], "enabled": False, "description": "d"}).json()
    assert changed["code"] == 0 and changed["data"]["dataset_ids"] == [dataset["id"]]
    assert changed["data"]["enabled"] is False and "secret" not in changed["data"]
    rotated = hooks.put(path, json={"secret": "t" * 16}).json()["data"]
    assert rotated["secret"] == "t" * 16
    assert hooks.get(path).json()["data"]["secret_hint"] == "tttt"

    assert hooks.delete(path).json() == {"code": 0}
    assert hooks.get(path).json() == {"code": 102, "message": f"You don't own the webhook {created['id']}."}
    assert hooks.get(f"{path}/deliveries").json()["code"] == 102


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"url": "ftp://example.com/x"}, 101, "must start with https://"),
        ({"url": "https://user:pw@example.com/x"}, 101, "credentials"),
        ({"url": "https://169.254.169.254/latest"}, 101, "metadata endpoint"),
        ({"url": "https://[fe80::1]/x"}, 101, "link-local"),
        ({"url": "https://example.com/x", "events": ["document.parse.maybe"]}, 101, "Field: <events.0>"),
        ({"url": "https://example.com/x", "secret": "short"}, 101, "Field: <secret>"),
        ({"url": "https://example.com/x", "unknown": 1}, 101, "Field: <unknown>"),
        ({"url": "https://example.com/x", "dataset_ids": ["not-a-uuid"]}, 101, "Invalid UUID1 format"),
    ],
)
def test_invalid_webhooks_are_refused(hooks: httpx.Client, body: dict[str, object], code: int, fragment: str) -> None:
    res = hooks.post("/api/v1/flowless/webhooks", json=body).json()
    assert res["code"] == code and fragment in res["message"], res
    assert hooks.get("/api/v1/flowless/webhooks").json()["data"]["total"] == 0


def test_another_tenants_webhooks_and_datasets_look_missing(
    hooks: httpx.Client, webhook_server: RunningServer, receiver: Receiver
) -> None:
    mine = create_webhook(hooks, f"{receiver.url}/mine")
    with webhook_server.client(webhook_server.new_tenant_key("other")) as other:
        theirs = create_dataset(other, "theirs")
        for call in (other.get, other.delete):
            assert call(f"/api/v1/flowless/webhooks/{mine['id']}").json() == {
                "code": 102,
                "message": f"You don't own the webhook {mine['id']}.",
            }
        assert other.get("/api/v1/flowless/webhooks").json()["data"] == {"total": 0, "webhooks": []}
    res = hooks.post("/api/v1/flowless/webhooks", json={"url": f"{receiver.url}/x", "dataset_ids": [theirs["id"]]})
    assert res.json() == {"code": 102, "message": f"You don't own the dataset {theirs['id']}."}


def test_the_default_policy_refuses_loopback_and_private_targets(api: httpx.Client) -> None:
    """The shared server keeps the default policy: no private, loopback or link-local targets."""
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "https://10.1.2.3/x", "https://[::ffff:127.0.0.1]/"):
        res = api.post("/api/v1/flowless/webhooks", json={"url": url}).json()
        assert res["code"] == 101 and "refused" in res["message"], (url, res)


@pytest.mark.parametrize(("route", "kind"), [("run_raptor", "raptor"), ("run_graphrag", "graphrag")])
def test_knowledge_builds_that_end_are_delivered(
    hooks: httpx.Client, receiver: Receiver, route: str, kind: str
) -> None:
    dataset = create_dataset(hooks, f"builds-{kind}")
    create_webhook(hooks, f"{receiver.url}/{kind}", events=[f"dataset.{kind}.done", f"dataset.{kind}.failed"])
    upload_one(hooks, dataset["id"], "unparsed.txt", b"Not parsed yet: the build has nothing to do.\n")
    started = hooks.post(f"/api/v1/datasets/{dataset['id']}/{route}").json()
    assert started["code"] == 0, started
    (request,) = receiver.wait_for(f"/{kind}", 1)
    event = json.loads(request.body)
    trace = hooks.get(f"/api/v1/datasets/{dataset['id']}/trace_{kind}").json()["data"]
    assert event["dataset_id"] == dataset["id"] and event["document_id"] is None
    assert event["type"] == f"dataset.{kind}.{'done' if trace['progress'] == 1.0 else 'failed'}"
    assert event["run"] in ("DONE", "FAIL") and event["progress_msg"].endswith(trace["progress_msg"][-40:])
