"""The S3 upload trigger with events/s3_object_created.json: on AWS (DynamoDB, S3 under moto, a recording
workflow, then the parse-step handlers) and on the local backend with the real in-process worker."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock
from urllib.parse import unquote_plus

import boto3
import pytest

from shared.container import Container, get_container
from shared.ports.workflow import BuildTask, ParseTask, Workflow
from shared.repos.documents import Record
from tests.integration.test_parse_step_handlers import (
    BUCKET,
    DATASET,
    STEPS_MODULE,
    TASK_FIELDS,
    TENANT,
    FakeLambdaContext,
    aws_backend,
    call,
    clear_process_caches,
    load_event,
    reload_handler,
    seed_dataset,
    work_keys,
)
from tests.support.dynamo import TEST_REGION

TRIGGER_MODULE = "functions.s3_ingest.handler"
EVENT = load_event("s3_object_created.json")
#: The object key as S3 stores it (events carry keys URL-encoded, spaces as '+').
KEY = unquote_plus(EVENT["detail"]["object"]["key"])
FILENAME = KEY.rsplit("/", 1)[1]
# 39 bytes, the size the sample event reports.
CONTENT = b"Field notes: herons on the eastern bank"
assert len(CONTENT) == EVENT["detail"]["object"]["size"]


@dataclass
class RecordingWorkflow(Workflow):
    """Stands in for Step Functions: remembers the tasks it is asked to start."""

    started: list[ParseTask] = field(default_factory=list)

    def start_parse(self, task: ParseTask) -> None:
        self.started.append(dict(task))

    def start_build(self, task: BuildTask) -> None:
        raise RuntimeError("this test starts no knowledge builds")

    def ping(self) -> None:
        return None


def deliver(trigger: ModuleType, event: dict[str, Any]) -> str:
    result: dict[str, Any] = trigger.handler(copy.deepcopy(event), FakeLambdaContext())
    assert result["key"] == unquote_plus(event["detail"]["object"]["key"])
    return str(result["outcome"])


def documents_of(container: Container) -> list[Record]:
    return container.document_repo.list_all(DATASET)


@dataclass
class OnAws:
    container: Container
    workflow: RecordingWorkflow

    @property
    def trigger(self) -> ModuleType:
        return reload_handler(TRIGGER_MODULE)


@pytest.fixture
def on_aws(tmp_path: Path) -> Iterator[OnAws]:
    with aws_backend(tmp_path / "index") as container:
        seed_dataset(container)
        workflow = RecordingWorkflow()
        container.overrides["workflow"] = workflow
        boto3.client("s3", region_name=TEST_REGION).put_object(Bucket=BUCKET, Key=KEY, Body=CONTENT)
        yield OnAws(container, workflow)


def test_the_sample_event_registers_the_object_and_starts_its_parse(on_aws: OnAws) -> None:
    assert deliver(on_aws.trigger, EVENT) == "registered"

    (document,) = documents_of(on_aws.container)
    assert (document["name"], document["size"], document["blob_key"]) == (FILENAME, len(CONTENT), KEY)
    assert document["source_type"] == "s3" and document["run"] == "RUNNING"
    (task,) = on_aws.workflow.started
    assert task == {
        "tenant_id": TENANT,
        "dataset_id": DATASET,
        "document_id": document["id"],
        "task_id": document["task_id"],
    }
    dataset = on_aws.container.dataset_repo.get(TENANT, DATASET)
    assert dataset is not None and dataset["document_count"] == 1


def test_a_second_delivery_of_the_same_event_changes_nothing(on_aws: OnAws) -> None:
    trigger = on_aws.trigger
    assert deliver(trigger, EVENT) == "registered"
    (before,) = documents_of(on_aws.container)

    assert deliver(trigger, EVENT) == "duplicate"

    assert documents_of(on_aws.container) == [before]
    assert len(on_aws.workflow.started) == 1


@pytest.mark.parametrize(
    ("key", "outcome"),
    [
        ("uploads/notes.txt", "ignored: outside the ingest prefix"),
        (f"ingest/{TENANT}/notes.txt", "ignored: expected ingest/<tenant>/<dataset>/<file>"),
        (f"ingest/{TENANT}/{'0' * 32}/notes.txt", "ignored: no such dataset for that tenant"),
        (f"ingest/{'0' * 32}/{DATASET}/notes.txt", "ignored: no such dataset for that tenant"),
    ],
)
def test_objects_that_name_no_dataset_of_the_tenant_are_ignored(on_aws: OnAws, key: str, outcome: str) -> None:
    event = copy.deepcopy(EVENT)
    event["detail"]["object"]["key"] = key

    assert deliver(on_aws.trigger, event) == outcome

    assert documents_of(on_aws.container) == [] and on_aws.workflow.started == []


def test_an_uploaded_object_is_parsed_by_the_step_handlers(on_aws: OnAws) -> None:
    assert deliver(on_aws.trigger, EVENT) == "registered"
    (task,) = on_aws.workflow.started

    # What the state machine does with the execution input (infra_cdk.parsing_construct).
    steps = reload_handler(STEPS_MODULE)
    prepared = call(steps, "prepare", task)
    for page_range in prepared["ranges"]:
        state = {**{name: prepared[name] for name in TASK_FIELDS}, "range": page_range}
        for step in ("extract", "chunk", "embed", "index"):
            state = call(steps, step, state)
    call(steps, "finish", prepared)

    (document,) = documents_of(on_aws.container)
    assert document["run"] == "DONE" and document["chunk_count"] >= 1, document["progress_msg"]
    chunks = on_aws.container.document_repo.chunks_of(document["id"])
    assert "herons" in chunks[0]["content"]
    assert work_keys() == []
    # The original stays where it was uploaded: it is the document's blob.
    body = boto3.client("s3", region_name=TEST_REGION).get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    assert body == CONTENT


# -- the same handler on one machine -------------------------------------------------------------------
@pytest.fixture
def local(tmp_path: Path) -> Iterator[Container]:
    env = {
        "FLOWLESS_BACKEND": "local",
        "FLOWLESS_DATA_DIR": str(tmp_path / "data"),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    with mock.patch.dict(os.environ, env):
        clear_process_caches()
        container = get_container()
        try:
            yield container
        finally:
            # Stop the worker's threads and close the index, if the test built them.
            for name in ("workflow", "search_index"):
                close = getattr(vars(container).get(name), "close", None)
                if close is not None:
                    close()
            clear_process_caches()


def _wait_for(container: Container, document_id: str, timeout_s: float = 60.0) -> Record:
    deadline = time.monotonic() + timeout_s
    while True:
        record = container.document_repo.get(DATASET, document_id)
        assert record is not None
        if record["run"] != "RUNNING" or time.monotonic() > deadline:
            return record
        time.sleep(0.05)


def test_locally_the_sample_event_parses_the_file_with_the_in_process_worker(local: Container) -> None:
    seed_dataset(local)
    local.blobs.put(KEY, CONTENT, "text/plain")
    trigger = reload_handler(TRIGGER_MODULE)

    assert deliver(trigger, EVENT) == "registered"
    (document,) = documents_of(local)
    done = _wait_for(local, document["id"])

    assert done["run"] == "DONE", done["progress_msg"]
    assert done["chunk_count"] == len(local.document_repo.chunks_of(document["id"])) >= 1
    assert deliver(trigger, EVENT) == "duplicate"
    assert [d["id"] for d in documents_of(local)] == [document["id"]]
