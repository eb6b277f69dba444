"""The parse-step Lambda handlers with the sample events in events/, on DynamoDB and S3 under moto.

The search index is the embedded one (OpenSearch has no moto backend), put into the container before the
handler module is (re)imported. Each step's output is fed to the next the way the state machine does
(a Map iteration gets the task fields and its range; the steps after the Map get the planned state), and
each sample event is checked to be exactly such a state.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
from shared.adapters.aws.stepfunctions_workflow import StepFunctionsWorkflow
from shared.adapters.local.embedded_index import EmbeddedSearchIndex
from shared.catalog import BUILTIN_EMBEDDING_MODEL
from shared.config import get_settings
from shared.container import Container, get_container
from shared.ids import http_date, now_ms
from shared.ports.embedder import Embedder, EmbeddingConfigError, EmbeddingServiceError, Vectors
from shared.ports.search import SearchQuery
from shared.repos.documents import Record
from shared.repos.tenants import Tenant
from shared.schemas.files import ConvertFilesRequest, RemoveFilesRequest
from shared.schemas.parser_config import PARSER_CONFIG_DEFAULTS
from shared.services.documents import UploadedFile, blob_key, content_type, new_document_record
from shared.services.ingestion import decode_vector
from tests.support.dynamo import FAKE_AWS_ENV, TEST_REGION

EVENTS = Path(__file__).resolve().parents[2] / "events"
# The ids the sample events carry.
TENANT = "3af81804241d11f0a6a79f24fc270c7f"
DATASET = "6e211ee0723611efa10a0242ac120007"
DOCUMENT = "b330ec2e91ec11efbc510242ac120004"
TASK = "c1f0a3de91ec11efbc510242ac120004"
TABLE = "flowless-test"
BUCKET = "flowless-test-documents"
STEPS_MODULE = "functions.parse_steps.handler"
#: What a Map iteration of the state machine gets besides its range (infra_cdk.parsing_construct.TASK_FIELDS).
TASK_FIELDS = ("tenant_id", "dataset_id", "document_id", "task_id")
WORK_PREFIX = f"work/{TENANT}/{DATASET}/{DOCUMENT}/{TASK}/"
NOTES = (
    "Field notes from the river survey.\n\n"
    "The water level rose two meters after the spring rains.\n\n"
    "Herons nested on the eastern bank; no otters were seen this year.\n"
)
NO_TEXT_LAYER = "scan.pdf: this PDF has no text layer (scanned images?); OCR is not available"


@dataclass
class FakeLambdaContext:
    function_name: str = "flowless-parse-step"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:flowless-parse-step"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def reload_handler(module: str) -> ModuleType:
    """The handler module imported afresh, so it binds the container built from the current environment."""
    return importlib.reload(importlib.import_module(module))


def clear_process_caches() -> None:
    get_settings.cache_clear()
    get_container.cache_clear()


def create_state_machine(name: str = "flowless-parse") -> str:
    """A state machine in moto (executions are recorded, not run); its ARN."""
    created = boto3.client("stepfunctions", region_name=TEST_REGION).create_state_machine(
        name=name,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/flowless-parse",
    )
    return str(created["stateMachineArn"])


@contextmanager
def aws_backend(
    index_dir: Path, *, with_state_machine: bool = False, with_build_state_machine: bool = False
) -> Iterator[Container]:
    """The process's container on the AWS backend: DynamoDB, S3 (and the parse / knowledge-build state
    machines of Step Functions) under moto, the embedded search index."""
    env = {
        **FAKE_AWS_ENV,
        "FLOWLESS_BACKEND": "aws",
        "FLOWLESS_TABLE_NAME": TABLE,
        "FLOWLESS_DOCUMENTS_BUCKET": BUCKET,
        "FLOWLESS_SECRETS_PREFIX": "/flowless/test/",  # tenants' model keys: SSM, mocked too
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "flowless",
        "POWERTOOLS_METRICS_NAMESPACE": "Flowless",
    }
    with mock.patch.dict(os.environ, env), mock_aws():
        clear_process_caches()
        DynamoMetadataStore(TABLE, region=TEST_REGION).create_table()
        boto3.client("s3", region_name=TEST_REGION).create_bucket(Bucket=BUCKET)
        if with_state_machine:
            os.environ["FLOWLESS_STATE_MACHINE_ARN"] = create_state_machine()
        if with_build_state_machine:
            os.environ["FLOWLESS_BUILD_STATE_MACHINE_ARN"] = create_state_machine("flowless-knowledge")
        container = get_container()
        index = EmbeddedSearchIndex(index_dir)
        container.overrides["search_index"] = index
        try:
            yield container
        finally:
            index.close()
            clear_process_caches()


def seed_dataset(container: Container, *, embedding_model: str = BUILTIN_EMBEDDING_MODEL) -> Record:
    """The sample events' tenant and its dataset (naive chunking, the builtin embedder)."""
    container.tenants.create(Tenant(id=TENANT, name="sample", create_time=1))
    now = now_ms()
    record: Record = {
        "id": DATASET,
        "tenant_id": TENANT,
        "created_by": TENANT,
        "name": "field_notes",
        "avatar": None,
        "description": None,
        "language": "English",
        "embedding_model": embedding_model,
        "permission": "me",
        "chunk_method": "naive",
        "parser_config": copy.deepcopy(PARSER_CONFIG_DEFAULTS["naive"]),
        "pipeline_id": None,
        "parse_type": None,
        "pagerank": 0,
        "similarity_threshold": 0.2,
        "vector_similarity_weight": 0.3,
        "status": "1",
        "chunk_count": 0,
        "document_count": 0,
        "token_num": 0,
        "create_time": now,
        "create_date": http_date(now),
        "update_time": now,
        "update_date": http_date(now),
    }
    container.dataset_repo.create(record)
    return record


def seed_running_document(container: Container, dataset: Record, name: str = "notes.txt", data: bytes = b"") -> Record:
    """The sample events' document, its original in blob storage, RUNNING under the sample task."""
    data = data or NOTES.encode("utf-8")
    key = blob_key(TENANT, DATASET, DOCUMENT)
    container.blobs.put(key, data, content_type(name))
    now = now_ms()
    record = new_document_record(
        DOCUMENT, TENANT, dataset, name, size=len(data), blob=key, source_type="local", now=now
    )
    container.document_repo.create(record)
    # What IngestionService.start writes, with the sample task's id.
    return container.document_repo.update(
        record,
        {
            "run": "RUNNING",
            "progress": 0.0,
            "progress_msg": "",
            "task_id": TASK,
            "progress_token": f"{TASK}:0",
            "process_begin_at": http_date(now),
            "process_begin_ms": now,
            "process_duration": 0.0,
            "update_time": now,
            "update_date": http_date(now),
        },
    )


def work_keys(bucket: str = BUCKET) -> list[str]:
    listed = boto3.client("s3", region_name=TEST_REGION).list_objects_v2(Bucket=bucket, Prefix="work/")
    return [item["Key"] for item in listed.get("Contents", [])]


def call(module: ModuleType, step: str, state: dict[str, Any]) -> dict[str, Any]:
    """Invoke one step handler as Lambda does, with a copy of the state (Step Functions passes JSON)."""
    result: dict[str, Any] = getattr(module, step)(json.loads(json.dumps(state)), FakeLambdaContext())
    json.dumps(result)  # what a step returns must be JSON, or Step Functions could not pass it on
    return result


@dataclass
class Parse:
    container: Container
    index: EmbeddedSearchIndex
    dataset: Record
    document: Record

    @property
    def steps(self) -> ModuleType:
        return reload_handler(STEPS_MODULE)

    def current(self) -> Record:
        record = self.container.document_repo.get(DATASET, DOCUMENT)
        assert record is not None
        return record


@pytest.fixture
def parse(tmp_path: Path) -> Iterator[Parse]:
    with aws_backend(tmp_path / "index") as container:
        dataset = seed_dataset(container)
        document = seed_running_document(container, dataset)
        index = container.overrides["search_index"]
        assert isinstance(index, EmbeddedSearchIndex)
        yield Parse(container, index, dataset, document)


def _assert_parsed(parse: Parse) -> None:
    done = parse.current()
    assert done["run"] == "DONE", done["progress_msg"]
    assert done["progress"] == 1.0 and done["task_id"] == TASK
    chunks = parse.container.document_repo.chunks_of(DOCUMENT)  # read back from DynamoDB
    assert done["chunk_count"] == len(chunks) > 0
    assert done["token_count"] == sum(chunk["token_count"] for chunk in chunks) > 0
    assert "herons nested" in " ".join(chunk["content"] for chunk in chunks).lower()
    assert all(decode_vector(chunk["vector"]).shape == (384,) for chunk in chunks)
    dataset = parse.container.dataset_repo.get(TENANT, DATASET)
    assert dataset is not None and dataset["chunk_count"] == done["chunk_count"]
    lines = done["progress_msg"].splitlines()
    assert lines[0].endswith("Task has been received.") and "Task done" in lines[-1]
    assert work_keys() == []  # the step artifacts are removed once the document is DONE
    assert parse.index.count() == len(chunks)
    found = parse.index.search(SearchQuery(tenant_id=TENANT, dataset_ids=[DATASET], text="herons"))
    assert {candidate.chunk_id for candidate in found} <= {chunk["id"] for chunk in chunks} and found


def test_each_step_passes_on_the_state_the_next_sample_event_shows(parse: Parse) -> None:
    steps = parse.steps
    prepared = call(steps, "prepare", load_event("parse_step_prepare.json"))
    assert prepared == {**load_event("parse_step_prepare.json"), "ranges": [[0, 100_000_000]]}

    outputs = []
    for page_range in prepared["ranges"]:
        # The Map's ItemSelector: the task fields and this iteration's range.
        state = {**{field: prepared[field] for field in TASK_FIELDS}, "range": page_range}
        for step, next_event in [
            ("extract", "parse_step_chunk.json"),
            ("chunk", "parse_step_embed.json"),
            ("embed", "parse_step_index.json"),
            ("index", None),
        ]:
            state = call(steps, step, state)
            if next_event is not None:
                expected = load_event(next_event)
                assert {key: state[key] for key in expected} == expected, step
        outputs.append(state)
    assert [out["indexed"] for out in outputs] == [len(parse.container.document_repo.chunks_of(DOCUMENT))]
    assert all(state["range"] == page_range for state, page_range in zip(outputs, prepared["ranges"], strict=True))

    # The Map's result is discarded: the steps after it get the planned state.
    finished = call(steps, "finish", prepared)
    assert finished["chunk_count"] == outputs[0]["indexed"]
    _assert_parsed(parse)


def test_every_sample_event_is_a_valid_input_of_its_step(parse: Parse) -> None:
    steps = parse.steps
    sample_extract = load_event("parse_step_extract.json")
    assert call(steps, "prepare", load_event("parse_step_prepare.json"))["ranges"] == sample_extract["ranges"]
    for step in ("extract", "chunk", "embed", "index", "finish"):
        call(steps, step, load_event(f"parse_step_{step}.json"))
    _assert_parsed(parse)


def test_steps_are_idempotent_when_the_state_machine_retries_them(parse: Parse) -> None:
    steps = parse.steps
    prepared = call(steps, "prepare", load_event("parse_step_prepare.json"))
    state = {**{field: prepared[field] for field in TASK_FIELDS}, "range": prepared["ranges"][0]}
    for step in ("extract", "chunk", "embed", "index"):
        first = call(steps, step, state)
        assert call(steps, step, state) == first, step  # a retried step rewrites the same artifacts and chunks
        state = first
    call(steps, "finish", prepared)
    _assert_parsed(parse)


def test_fail_with_the_sample_event_marks_the_document_failed(parse: Parse) -> None:
    parse.container.blobs.put(f"{WORK_PREFIX}0-100000000/extracted.json", b"{}", "application/json")
    event = load_event("parse_step_fail.json")

    result = call(parse.steps, "fail", event)

    assert result == {**event, "failed": True}
    failed = parse.current()
    assert failed["run"] == "FAIL" and failed["progress"] == -1.0
    assert failed["progress_msg"].splitlines()[-1].endswith(f"[ERROR] {NO_TEXT_LAYER}")
    assert work_keys() == []


def test_a_stopped_or_replaced_task_ends_with_task_superseded(parse: Parse) -> None:
    steps = parse.steps
    other_task = {**load_event("parse_step_prepare.json"), "task_id": "0" * 32}
    with pytest.raises(Exception) as raised:
        call(steps, "prepare", other_task)
    # Lambda reports the class name as errorType; the state machine catches exactly this name.
    assert type(raised.value).__name__ == "TaskSuperseded"
    # The failure step leaves a document that moved on alone.
    call(steps, "fail", {**other_task, "error": load_event("parse_step_fail.json")["error"]})
    assert parse.current()["run"] == "RUNNING"


class _FailingEmbedder(Embedder):
    model_id = "broken@Test"

    def __init__(self, error: Exception) -> None:
        self._error = error

    @property
    def dimension(self) -> int:
        return 384

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        raise self._error


def _state_before_embed(parse: Parse) -> dict[str, Any]:
    """Run the steps before embed; the embed step's input."""
    steps = parse.steps
    prepared = call(steps, "prepare", load_event("parse_step_prepare.json"))
    state = {**{field: prepared[field] for field in TASK_FIELDS}, "range": prepared["ranges"][0]}
    state = call(steps, "chunk", call(steps, "extract", state))
    return state


def test_a_providers_failure_leaves_embed_by_name_for_the_state_machine_to_retry(
    parse: Parse, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state_before_embed(parse)
    monkeypatch.setattr(
        "shared.rag.embedding.build_embedder",
        lambda *args, **kwargs: _FailingEmbedder(EmbeddingServiceError("the provider timed out")),
    )
    steps = parse.steps
    with pytest.raises(EmbeddingServiceError) as raised:
        call(steps, "embed", state)
    # Retries spent, the state machine hands the error to the failure step as Lambda reported it.
    error = {
        "Error": type(raised.value).__name__,
        "Cause": json.dumps({"errorMessage": str(raised.value), "errorType": type(raised.value).__name__}),
    }
    call(steps, "fail", {**state, "error": error})
    failed = parse.current()
    assert failed["run"] == "FAIL"
    assert failed["progress_msg"].splitlines()[-1].endswith("[ERROR] Embedding failed: the provider timed out")


def test_a_misconfigured_model_fails_the_step_for_good(parse: Parse, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state_before_embed(parse)
    monkeypatch.setattr(
        "shared.rag.embedding.build_embedder",
        lambda *args, **kwargs: _FailingEmbedder(EmbeddingConfigError("No API key is configured")),
    )
    with pytest.raises(Exception) as raised:
        call(parse.steps, "embed", state)
    assert type(raised.value).__name__ == "StepFailed"  # not retried: the fail step reports it


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"Error": "StepFailed", "Cause": json.dumps({"errorMessage": NO_TEXT_LAYER})}, NO_TEXT_LAYER),
        ({"Error": "EmbeddingServiceError", "Cause": json.dumps({"errorMessage": "503"})}, "Embedding failed: 503"),
        ({"Error": "States.Timeout", "Cause": ""}, None),
        ({"Error": "KeyError", "Cause": json.dumps({"errorMessage": "'secret'"})}, None),
        ({"Error": "StepFailed", "Cause": "not json"}, None),
        ({"Error": "StepFailed", "Cause": "[1]"}, None),
        (None, None),
    ],
)
def test_only_user_facing_errors_reach_the_document(error: dict[str, str] | None, message: str | None) -> None:
    from functions.parse_steps.handler import GENERIC_FAILURE, failure_message

    assert failure_message(error) == (message or GENERIC_FAILURE)


# -- the workflow adapter ------------------------------------------------------------------------------
@pytest.fixture
def state_machine_arn() -> Iterator[str]:
    with mock.patch.dict(os.environ, FAKE_AWS_ENV), mock_aws():
        yield create_state_machine()


def _executions(arn: str) -> list[dict[str, Any]]:
    client = boto3.client("stepfunctions", region_name=TEST_REGION)
    return [dict(execution) for execution in client.list_executions(stateMachineArn=arn)["executions"]]


def test_a_task_starts_one_execution_named_after_it(state_machine_arn: str) -> None:
    workflow = StepFunctionsWorkflow(state_machine_arn, region=TEST_REGION)
    task = load_event("parse_step_prepare.json")

    workflow.start_parse(task)
    workflow.start_parse(task)  # a retried API call or a duplicate S3 event
    workflow.start_parse({**task, "retried": True})  # same task id, other input: refused, not raised

    (execution,) = _executions(state_machine_arn)
    assert execution["name"] == TASK
    described = boto3.client("stepfunctions", region_name=TEST_REGION).describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == task
    workflow.ping()


def test_the_container_starts_parses_on_its_state_machine(tmp_path: Path) -> None:
    with aws_backend(tmp_path / "index", with_state_machine=True) as container:
        arn = container.settings.state_machine_arn
        assert arn is not None and isinstance(container.workflow, StepFunctionsWorkflow)
        # The system function's health probe: DescribeStateMachine.
        container.health_probes()["workflow"]()
        dataset = seed_dataset(container)
        record = seed_running_document(container, dataset)

        task = container.ingestion.start(record)

        (execution,) = _executions(arn)
        assert execution["name"] == task["task_id"] != TASK
        assert set(task) == set(TASK_FIELDS)


def test_a_document_converted_from_a_file_parses_through_the_steps_reading_the_files_blob(tmp_path: Path) -> None:
    with aws_backend(tmp_path / "index", with_state_machine=True) as container:
        seed_dataset(container)
        (file,) = container.files.upload(TENANT, None, [UploadedFile("river.txt", NOTES.encode("utf-8"))])
        (link,) = container.files.convert(TENANT, ConvertFilesRequest(file_ids=[file["id"]], kb_ids=[DATASET]))
        document = container.document_repo.get(DATASET, link["document_id"])
        assert document is not None and document["blob_key"] == f"files/{TENANT}/{file['id']}"

        task = container.ingestion.start(document)
        steps = reload_handler(STEPS_MODULE)
        prepared = call(steps, "prepare", dict(task))
        for page_range in prepared["ranges"]:
            state = {**{field: prepared[field] for field in TASK_FIELDS}, "range": page_range}
            for step in ("extract", "chunk", "embed", "index"):
                state = call(steps, step, state)
        call(steps, "finish", prepared)

        done = container.document_repo.get(DATASET, link["document_id"])
        assert done is not None and done["run"] == "DONE", done and done["progress_msg"]
        chunks = container.document_repo.chunks_of(link["document_id"])
        assert chunks and "herons nested" in " ".join(chunk["content"] for chunk in chunks).lower()
        listed = boto3.client("s3", region_name=TEST_REGION).list_objects_v2(Bucket=BUCKET)
        assert [item["Key"] for item in listed.get("Contents", [])] == [f"files/{TENANT}/{file['id']}"]  # no copy

        container.files.remove(TENANT, RemoveFilesRequest(file_ids=[file["id"]]))
        assert container.document_repo.get(DATASET, link["document_id"]) is None
        assert container.document_repo.chunks_of(link["document_id"]) == []
        index = container.overrides["search_index"]
        assert isinstance(index, EmbeddedSearchIndex) and index.count() == 0
        assert boto3.client("s3", region_name=TEST_REGION).list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
