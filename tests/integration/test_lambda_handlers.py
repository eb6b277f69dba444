"""The Lambda handlers invoked with the sample API Gateway events in events/, on DynamoDB and S3 under moto."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
from shared.repos.keys import tenant_pk
from shared.repos.tenants import Tenant, TenantRepository
from shared.routes import ROUTE_GROUPS, RouteGroup
from tests.support.dynamo import FAKE_AWS_ENV

EVENTS = Path(__file__).resolve().parents[2] / "events"
TENANT = "3af81804241d11f0a6a79f24fc270c7f"  # the tenant id the sample events carry
SAMPLE_KEY = "ragflow-sample-key-0000000000000000"
TABLE = "flowless-test"
BUCKET = "flowless-test-documents"


@dataclass
class FakeLambdaContext:
    function_name: str = "flowless-datasets"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:flowless-datasets"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@dataclass
class Stack:
    store: DynamoMetadataStore

    def handler(self, group: str) -> ModuleType:
        return importlib.reload(importlib.import_module(f"functions.{group}.handler"))


@pytest.fixture
def stack() -> Iterator[Stack]:
    env = {
        **FAKE_AWS_ENV,
        "FLOWLESS_BACKEND": "aws",
        "FLOWLESS_TABLE_NAME": TABLE,
        "FLOWLESS_DOCUMENTS_BUCKET": BUCKET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "flowless",
        "POWERTOOLS_METRICS_NAMESPACE": "Flowless",
    }
    from shared.config import get_settings
    from shared.container import get_container

    with mock.patch.dict(os.environ, env), mock_aws():
        get_settings.cache_clear()
        get_container.cache_clear()
        store = DynamoMetadataStore(TABLE, region="us-east-1")
        store.create_table()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        tenants = TenantRepository(store)
        tenants.create(Tenant(id=TENANT, name="sample", create_time=1))
        yield Stack(store)
    get_settings.cache_clear()
    get_container.cache_clear()


def invoke(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = module.handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_datasets_lifecycle_through_the_sample_events(stack: Stack) -> None:
    datasets = stack.handler("datasets")
    status, created = invoke(datasets, load_event("datasets_create.json"))
    assert status == 200 and created["code"] == 0, created
    assert created["data"]["tenant_id"] == TENANT
    assert created["data"]["parser_config"]["chunk_token_num"] == 256
    dataset_id = created["data"]["id"]

    status, listed = invoke(datasets, load_event("datasets_list.json"))
    assert listed["code"] == 0 and listed["total"] == 1 and listed["data"][0]["id"] == dataset_id

    update = load_event("datasets_update.json")
    update["path"] = f"/api/v1/datasets/{dataset_id}"
    update["pathParameters"] = {"dataset_id": dataset_id}
    status, updated = invoke(datasets, update)
    assert updated["code"] == 0 and updated["data"]["name"] == "updated_dataset" and updated["data"]["pagerank"] == 10

    delete = load_event("datasets_delete.json")
    delete["body"] = json.dumps({"ids": [dataset_id]})
    assert invoke(datasets, delete)[1] == {"code": 0}
    assert invoke(datasets, load_event("datasets_list.json"))[1]["total"] == 0


def test_sample_update_of_unknown_dataset_is_refused(stack: Stack) -> None:
    status, body = invoke(stack.handler("datasets"), load_event("datasets_update.json"))
    assert status == 200 and body["code"] == 108 and "lacks permission" in body["message"]


def test_invalid_create_event_gets_code_101_and_writes_nothing(stack: Stack) -> None:
    datasets = stack.handler("datasets")
    status, body = invoke(datasets, load_event("datasets_create_invalid.json"))
    assert status == 200 and body["code"] == 101
    assert "Field: <name>" in body["message"] and "Field: <unknown_field>" in body["message"]
    assert invoke(datasets, load_event("datasets_list.json"))[1]["total"] == 0


def test_without_authorizer_context_the_header_is_checked(stack: Stack) -> None:
    event = load_event("datasets_list.json")
    del event["requestContext"]["authorizer"]
    assert invoke(stack.handler("datasets"), event)[1] == {
        "code": 109,
        "message": "Authentication error: API key is invalid!",
    }


def test_health_event_reports_metadata_and_storage(stack: Stack) -> None:
    status, body = invoke(stack.handler("system"), load_event("system_healthz.json"))
    assert status == 200, body
    assert body["db"] == "ok" and body["storage"] == "ok" and body["status"] == "ok"
    ping = stack.handler("system").handler(load_event("system_ping.json"), FakeLambdaContext())
    assert ping["statusCode"] == 200 and ping["body"] == "pong"


def test_health_reports_nok_with_details_when_the_table_is_gone(stack: Stack) -> None:
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName=TABLE)
    status, body = invoke(stack.handler("system"), load_event("system_healthz.json"))
    assert status == 500
    assert body["db"] == "nok" and body["status"] == "nok" and body["_meta"]["db"]["error"]


def test_authorizer_allows_known_keys_for_the_whole_stage_and_denies_others(stack: Stack) -> None:
    tenants = TenantRepository(stack.store)
    api_key = tenants.issue_api_key(TENANT)
    authorizer = stack.handler("authorizer")
    event = load_event("authorizer_request.json")
    event["headers"]["Authorization"] = f"Bearer {api_key}"
    allowed = authorizer.handler(event, FakeLambdaContext())
    statement = allowed["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/api/*/*"
    assert allowed["context"] == {"tenant_id": TENANT} and allowed["principalId"] == TENANT

    denied_event = copy.deepcopy(event)
    denied_event["headers"]["Authorization"] = f"Bearer {SAMPLE_KEY}"
    denied = authorizer.handler(denied_event, FakeLambdaContext())
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert denied["context"]["code"] == 109
    malformed_event = copy.deepcopy(event)
    malformed_event["headers"]["Authorization"] = "Bearer"
    malformed = authorizer.handler(malformed_event, FakeLambdaContext())
    assert malformed["context"] == {
        "code": 0,
        "message": "Please check your authorization format.",
        "data_field": ', "data": false',
    }


# -- every route group's handler with its sample events --------------------------------------------------
SAMPLE_DATASET = "6e211ee0723611efa10a0242ac120007"  # the dataset id the documents/chunks/retrieval events carry
SAMPLE_DOCUMENT = "b330ec2e91ec11efbc510242ac120004"
SAMPLE_CHAT = "2ca4b22e878011ef88fe0242ac120005"


def group_events(group: RouteGroup) -> list[Path]:
    return sorted(EVENTS.glob(f"{group.name}_*.json"))


@pytest.mark.parametrize("group", [g for g in ROUTE_GROUPS if not g.streaming], ids=lambda g: g.name)
def test_every_buffered_route_group_has_sample_events_of_its_own_routes(group: RouteGroup) -> None:
    events = group_events(group)
    assert events, f"no events/{group.name}_*.json"
    served = {(route.path, method) for route in group.routes for method in route.methods}
    for path in events:
        event = json.loads(path.read_text())
        assert (event["resource"], event["httpMethod"]) in served, path.name
        if group.authenticated:
            assert event["requestContext"]["authorizer"]["tenant_id"] == TENANT, path.name


def test_the_streaming_group_runs_under_the_web_adapter_not_mangum() -> None:
    """Its entry point is functions/<group>/run.sh (uvicorn on app.py), exercised over HTTP in
    test_streaming_app.py and by the aws backend of the API suite; API Gateway events never reach Python."""
    for group in (g for g in ROUTE_GROUPS if g.streaming):
        package = Path(__file__).resolve().parents[2] / group.module.replace(".", "/")
        assert (package / "run.sh").is_file() and (package / "app.py").is_file()
        assert not (package / "handler.py").exists()


@pytest.fixture
def served_stack(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """``stack`` with the parse state machine (moto records its executions) and an embedded search index
    (OpenSearch Serverless has no moto backend), and the sample dataset."""
    from shared.adapters.local.embedded_index import EmbeddedSearchIndex
    from shared.container import get_container
    from tests.integration.test_parse_step_handlers import create_state_machine, seed_dataset

    os.environ["FLOWLESS_STATE_MACHINE_ARN"] = create_state_machine()
    get_container.cache_clear()
    container = get_container()
    index = EmbeddedSearchIndex(tmp_path / "index")
    container.overrides["search_index"] = index
    stack.store.delete(tenant_pk(TENANT), "TENANT")  # seed_dataset creates the sample tenant itself
    dataset = seed_dataset(container)
    assert dataset["id"] == SAMPLE_DATASET
    try:
        yield stack
    finally:
        index.close()


def _with_ids(event: dict[str, Any], **ids: str) -> dict[str, Any]:
    """The sample event aimed at the records this test created (their ids are generated)."""
    for name, value in ids.items():
        sample = {"document_id": SAMPLE_DOCUMENT, "chat_id": SAMPLE_CHAT}[name]
        event["path"] = event["path"].replace(sample, value)
        event["pathParameters"][name] = value
    return event


def test_documents_chunks_retrieval_and_chats_answer_their_sample_events(served_stack: Stack) -> None:
    documents, chunks = served_stack.handler("documents"), served_stack.handler("chunks")
    status, uploaded = invoke(documents, load_event("documents_upload.json"))
    assert status == 200 and uploaded["code"] == 0, uploaded
    (document,) = uploaded["data"]
    assert document["name"] == "field_notes.txt" and document["size"] > 0
    listed = invoke(documents, load_event("documents_list.json"))[1]
    assert listed["code"] == 0 and [d["id"] for d in listed["data"]["docs"]] == [document["id"]]

    parse = load_event("documents_parse.json")
    parse["body"] = base64.b64encode(json.dumps({"document_ids": [document["id"]]}).encode()).decode()
    assert invoke(documents, parse)[1] == {"code": 0}
    executions = boto3.client("stepfunctions", region_name="us-east-1").list_executions(
        stateMachineArn=os.environ["FLOWLESS_STATE_MACHINE_ARN"]
    )["executions"]
    assert len(executions) == 1  # the parse itself runs in Step Functions (tests/infrastructure runs it)

    added = invoke(chunks, _with_ids(load_event("chunks_add.json"), document_id=document["id"]))[1]
    assert added["code"] == 0 and added["data"]["chunk"]["important_keywords"] == ["heron"], added
    chunk_list = invoke(chunks, _with_ids(load_event("chunks_list.json"), document_id=document["id"]))[1]
    assert [c["id"] for c in chunk_list["data"]["chunks"]] == [added["data"]["chunk"]["id"]]

    found = invoke(served_stack.handler("retrieval"), load_event("retrieval_search.json"))[1]
    assert found["code"] == 0 and [c["id"] for c in found["data"]["chunks"]] == [added["data"]["chunk"]["id"]]

    chats = served_stack.handler("chats")
    created = invoke(chats, load_event("chats_create.json"))[1]
    assert created["code"] == 0 and created["data"]["dataset_ids"] == [SAMPLE_DATASET], created
    assert [c["id"] for c in invoke(chats, load_event("chats_list.json"))[1]["data"]] == [created["data"]["id"]]
    session = invoke(chats, _with_ids(load_event("chats_session_create.json"), chat_id=created["data"]["id"]))[1]
    assert session["code"] == 0 and session["data"]["name"] == "first questions", session
