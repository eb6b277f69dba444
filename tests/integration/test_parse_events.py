"""Where a parse ends, one event: DONE from finish, FAIL from fail, CANCEL from a stop — and a retried step
(Step Functions retries finish and fail) publishes the same event again, under the same id, never another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.local.server import local_container
from shared.container import Container
from shared.ports.events import DomainEvent, EventPublisher
from shared.ports.workflow import BuildTask, ParseTask, Workflow
from shared.schemas.common import parse_model
from shared.schemas.datasets import CreateDatasetRequest
from shared.schemas.documents import DocumentIdsRequest
from shared.services.documents import UploadedFile
from shared.services.ingestion import TaskSuperseded
from tests.support.server import TEST_EMBEDDING_MODEL


class Recorder(EventPublisher):
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def publish(self, event: DomainEvent) -> None:
        self.events.append(event)


class HeldWorkflow(Workflow):
    """Keeps the started tasks: the test runs their steps itself, as Step Functions would."""

    def __init__(self) -> None:
        self.tasks: list[ParseTask] = []

    def start_parse(self, task: ParseTask) -> None:
        self.tasks.append(task)

    def start_build(self, task: BuildTask) -> None:
        raise RuntimeError("this test starts no knowledge builds")

    def ping(self) -> None:
        return None


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Container, Recorder, HeldWorkflow, str, str]]:
    container = local_container(tmp_path)
    recorder, workflow = Recorder(), HeldWorkflow()
    container.overrides.update(events=recorder, workflow=workflow)
    tenant, _ = container.tenant_service.create("events", embd_id=TEST_EMBEDDING_MODEL)
    dataset = container.datasets.create(tenant.id, parse_model(CreateDatasetRequest, {"name": "events"}))
    yield container, recorder, workflow, tenant.id, dataset["id"]


def _parse(container: Container, workflow: HeldWorkflow, tenant_id: str, dataset_id: str, data: bytes) -> ParseTask:
    (doc,) = container.documents.upload(tenant_id, dataset_id, [UploadedFile("a.txt", data)])
    container.ingestion.parse(tenant_id, dataset_id, parse_model(DocumentIdsRequest, {"document_ids": [doc["id"]]}))
    return workflow.tasks[-1]


def test_done_is_announced_once_and_a_retried_finish_repeats_the_same_event(
    parts: tuple[Container, Recorder, HeldWorkflow, str, str],
) -> None:
    container, recorder, workflow, tenant_id, dataset_id = parts
    task = _parse(container, workflow, tenant_id, dataset_id, b"Parsing ends with an event.\n")
    container.ingestion.run_task(task)
    (done,) = recorder.events
    record = container.document_repo.get(dataset_id, task["document_id"])
    assert record is not None and record["run"] == "DONE"
    assert (done.type, done.run, done.document_id, done.tenant_id) == (
        "document.parse.done",
        "DONE",
        task["document_id"],
        tenant_id,
    )
    assert done.chunk_count == record["chunk_count"] and done.at == record["update_time"]

    # Step Functions retries a finish whose write succeeded but whose publish did not come back.
    with pytest.raises(TaskSuperseded):
        container.ingestion.finish(task)
    container.ingestion.fail(task, "the retried finish ran out of retries")
    assert [e.id for e in recorder.events] == [done.id] * 3
    assert container.document_repo.get(dataset_id, task["document_id"])["run"] == "DONE"  # type: ignore[index]


def test_fail_and_stop_announce_their_ends(parts: tuple[Container, Recorder, HeldWorkflow, str, str]) -> None:
    container, recorder, workflow, tenant_id, dataset_id = parts
    failing = _parse(container, workflow, tenant_id, dataset_id, b"Some text.\n")
    container.ingestion.prepare(failing)
    container.ingestion.fail(failing, "the extractor crashed")
    (failed,) = recorder.events
    assert failed.type == "document.parse.failed" and failed.run == "FAIL"
    assert "[ERROR] the extractor crashed" in failed.progress_msg

    again = {"document_ids": [failing["document_id"]]}
    container.ingestion.parse(tenant_id, dataset_id, parse_model(DocumentIdsRequest, again))
    running = workflow.tasks[-1]
    container.ingestion.stop(tenant_id, dataset_id, parse_model(DocumentIdsRequest, again))
    canceled = recorder.events[-1]
    assert canceled.type == "document.parse.canceled" and canceled.run == "CANCEL"
    assert canceled.id not in {failed.id} and canceled.chunk_count == 0
    # The stopped task's own steps end quietly: no second event for the cancel.
    with pytest.raises(TaskSuperseded):
        container.ingestion.finish(running)
    container.ingestion.fail(running, "late failure")
    assert len(recorder.events) == 2


def test_every_parse_of_a_document_is_its_own_event(parts: tuple[Container, Recorder, HeldWorkflow, str, str]) -> None:
    container, recorder, workflow, tenant_id, dataset_id = parts
    first = _parse(container, workflow, tenant_id, dataset_id, b"Parsed twice.\n")
    container.ingestion.run_task(first)
    container.ingestion.parse(
        tenant_id, dataset_id, parse_model(DocumentIdsRequest, {"document_ids": [first["document_id"]]})
    )
    container.ingestion.run_task(workflow.tasks[-1])
    assert [e.type for e in recorder.events] == ["document.parse.done"] * 2
    assert recorder.events[0].id != recorder.events[1].id
