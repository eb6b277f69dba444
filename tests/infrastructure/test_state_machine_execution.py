"""The synthesized parse state machine, run by a small States Language interpreter against the real step
handlers (DynamoDB and S3 under moto): the definition's paths, fan-out and catches fit what the handlers
take and return."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.container import Container
from tests.infrastructure.asl import Execution, StateMachine, definition_in_template
from tests.infrastructure.conftest import Synthesized
from tests.integration.test_parse_step_handlers import (
    DATASET,
    DOCUMENT,
    NO_TEXT_LAYER,
    STEPS_MODULE,
    TASK,
    FakeLambdaContext,
    aws_backend,
    load_event,
    reload_handler,
    seed_dataset,
    seed_running_document,
    work_keys,
)
from tests.support import docs

pytestmark = pytest.mark.infrastructure


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    with aws_backend(tmp_path / "index") as container:
        yield container


def _execute(synth: Synthesized, execution_input: dict[str, Any]) -> Execution:
    handlers = {
        logical_id: resource["Properties"]["Handler"]
        for logical_id, resource in synth.template_json["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    steps = reload_handler(STEPS_MODULE)

    def invoke(function: str, payload: dict[str, Any]) -> Any:
        module, name = handlers[function].rsplit(".", 1)
        assert module == STEPS_MODULE
        return getattr(steps, name)(payload, FakeLambdaContext())

    definition = definition_in_template(synth.template_json, synth.state_machine()[0])
    return StateMachine(definition, invoke).run(execution_input)


def _document(container: Container) -> dict[str, Any]:
    record = container.document_repo.get(DATASET, DOCUMENT)
    assert record is not None
    return record


def test_a_parse_runs_through_every_step_to_done(prod: Synthesized, container: Container) -> None:
    seed_running_document(container, seed_dataset(container))

    execution = _execute(prod, load_event("parse_step_prepare.json"))

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.visited == ["Prepare", "PageRanges", "Extract", "Chunk", "Embed", "Index", "Finish", "Parsed"]
    done = _document(container)
    assert done["run"] == "DONE" and done["chunk_count"] == execution.output["chunk_count"] > 0
    assert work_keys() == []


def test_a_long_pdf_fans_out_over_its_page_ranges(prod: Synthesized, container: Container) -> None:
    dataset = seed_dataset(container)
    dataset = {**dataset, "parser_config": {**copy.deepcopy(dataset["parser_config"]), "task_page_size": 2}}
    pages = [f"Page {number} tells of bird number {number}." for number in range(1, 6)]
    seed_running_document(container, dataset, name="birds.pdf", data=docs.make_pdf(pages))

    execution = _execute(prod, load_event("parse_step_prepare.json"))

    assert execution.status == "SUCCEEDED", execution.cause
    # Three ranges ([0, 2], [2, 4], [4, 5]), each through the per-range steps in order.
    assert execution.visited.count("Extract") == 3
    assert execution.visited[1:-2] == ["PageRanges", *["Extract", "Chunk", "Embed", "Index"] * 3]
    done = _document(container)
    assert done["run"] == "DONE", done["progress_msg"]
    chunks = container.document_repo.chunks_of(DOCUMENT)
    assert {page for chunk in chunks for page in chunk["page_numbers"]} == {1, 2, 3, 4, 5}


def test_a_document_that_cannot_be_parsed_ends_failed_with_its_reason(prod: Synthesized, container: Container) -> None:
    seed_running_document(container, seed_dataset(container), name="scan.pdf", data=docs.make_scanned_pdf())

    execution = _execute(prod, load_event("parse_step_prepare.json"))

    assert execution.status == "FAILED" and execution.error == "StepFailed"
    assert execution.visited[-2:] == ["Fail", "Failed"]
    failed = _document(container)
    assert failed["run"] == "FAIL"
    assert failed["progress_msg"].splitlines()[-1].endswith(f"[ERROR] {NO_TEXT_LAYER}")
    assert work_keys() == []


def test_a_superseded_task_ends_quietly(prod: Synthesized, container: Container) -> None:
    seed_running_document(container, seed_dataset(container))
    stale = {**load_event("parse_step_prepare.json"), "task_id": "0" * 32}

    execution = _execute(prod, stale)

    assert execution.status == "SUCCEEDED" and execution.visited == ["Prepare", "Superseded"]
    current = _document(container)
    assert current["run"] == "RUNNING" and current["task_id"] == TASK
