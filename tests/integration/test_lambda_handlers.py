"""The Lambda handlers invoked with the sample API Gateway events in events/, on DynamoDB and S3 under moto."""

from __future__ import annotations

import base64
import contextlib
import copy
import fnmatch
import importlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from shared.access import access_table
from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
from shared.repos.keys import tenant_pk
from shared.repos.tenants import Tenant, TenantRepository
from shared.routes import ROUTE_GROUPS, RouteGroup
from shared.schemas.webhooks import ListDeliveriesQuery
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
        "FLOWLESS_SECRETS_PREFIX": "/flowless/test/",  # tenants' model keys: SSM, mocked too
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
    assert allowed["context"]["tenant_id"] == TENANT and allowed["principalId"] == TENANT
    assert allowed["context"]["scope"] == "write" and "ids" not in allowed["context"]

    denied_event = copy.deepcopy(event)
    denied_event["headers"]["Authorization"] = f"Bearer {SAMPLE_KEY}"
    denied = authorizer.handler(denied_event, FakeLambdaContext())
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert denied["context"]["code"] == 109
    malformed_event = copy.deepcopy(event)
    malformed_event["headers"]["Authorization"] = "Bearer"
    malformed = authorizer.handler(malformed_event, FakeLambdaContext())
    assert malformed["context"] == {"code": 109, "message": "Please check your authorization format.", "data_field": ""}


# -- every route group's handler with its sample events --------------------------------------------------
SAMPLE_DATASET = "6e211ee0723611efa10a0242ac120007"  # the dataset id the documents/chunks/retrieval events carry
SAMPLE_DOCUMENT = "b330ec2e91ec11efbc510242ac120004"
SAMPLE_CHAT = "2ca4b22e878011ef88fe0242ac120005"


def group_events(group: RouteGroup) -> list[Path]:
    """The group's API Gateway sample events (events/<group>_*.json; a group's step events are not requests)."""
    return sorted(path for path in EVENTS.glob(f"{group.name}_*.json") if "httpMethod" in json.loads(path.read_text()))


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
    """``stack`` with the parse and knowledge-build state machines (moto records their executions) and an
    embedded search index (OpenSearch Serverless has no moto backend), and the sample dataset."""
    from shared.adapters.local.embedded_index import EmbeddedSearchIndex
    from shared.container import get_container
    from tests.integration.test_parse_step_handlers import create_state_machine, seed_dataset

    os.environ["FLOWLESS_STATE_MACHINE_ARN"] = create_state_machine()
    os.environ["FLOWLESS_BUILD_STATE_MACHINE_ARN"] = create_state_machine("flowless-knowledge")
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


def test_a_v027_clients_default_delete_deletes_no_chat(stack: Stack) -> None:
    chats = stack.handler("chats")
    create = load_event("chats_create.json")
    create.update(body=json.dumps({"name": "sample assistant"}), isBase64Encoded=False)  # no dataset in `stack`
    status, created = invoke(chats, create)
    assert status == 200 and created["code"] == 0, created
    assert invoke(chats, load_event("chats_delete_v027.json"))[1] == {"code": 0}
    listing = load_event("chats_create.json")
    listing.update(httpMethod="GET", body=None)
    assert [c["id"] for c in invoke(chats, listing)[1]["data"]] == [created["data"]["id"]]


def test_the_fallback_function_answers_what_no_route_serves(stack: Stack) -> None:
    system = stack.handler("system")
    # API Gateway's ANY method on /api/v1/chats/{chat_id}: a method RAGFlow's router does not serve there.
    status, body = invoke(system, load_event("fallback_method_not_allowed.json"))
    assert (status, body) == (200, {"code": 100, "message": "<MethodNotAllowed '405: Method Not Allowed'>"})
    # The /{proxy+} resource: a path with merged slashes goes to where RAGFlow's router would take it.
    response = system.handler(load_event("fallback_proxy.json"), FakeLambdaContext())
    assert response["statusCode"] == 308
    location = response.get("headers", {}).get("location") or response["multiValueHeaders"]["location"][0]
    assert location == "/api/api/v1/chats"
    unknown = load_event("fallback_proxy.json")
    unknown.update(path="/api/v1/nothing", pathParameters={"proxy": "api/v1/nothing"})
    assert invoke(system, unknown) == (200, {"code": 100, "message": "<NotFound '404: Not Found'>"})


def _seed_dataset_with_a_document(stack: Stack, dataset_id: str) -> None:
    """The knowledge events' dataset, and a document in it (what a build needs to start)."""
    from shared.ids import http_date, now_ms
    from shared.repos.datasets import DatasetRepository
    from shared.repos.documents import DocumentRepository
    from shared.schemas.parser_config import PARSER_CONFIG_DEFAULTS
    from shared.services.documents import new_document_record

    now = now_ms()
    dataset = {
        "id": dataset_id,
        "tenant_id": TENANT,
        "name": "knowledge",
        "language": "English",
        "embedding_model": "all-MiniLM-L6-v2@Builtin",
        "chunk_method": "naive",
        "parser_config": copy.deepcopy(PARSER_CONFIG_DEFAULTS["naive"]),
        "chunk_count": 0,
        "document_count": 0,
        "token_num": 0,
        "create_time": now,
        "create_date": http_date(now),
        "update_time": now,
        "update_date": http_date(now),
    }
    DatasetRepository(stack.store).create(dataset)
    document = new_document_record(
        "b330ec2e91ec11efbc510242ac120004",
        TENANT,
        dataset,
        "notes.txt",
        size=3,
        blob="docs/x",
        source_type="local",
        now=now,
    )
    DocumentRepository(stack.store).create(document)


def test_knowledge_events_start_trace_read_and_delete(stack: Stack) -> None:
    from shared.config import get_settings
    from shared.container import get_container
    from tests.integration.test_parse_step_handlers import create_state_machine

    os.environ["FLOWLESS_BUILD_STATE_MACHINE_ARN"] = arn = create_state_machine("flowless-knowledge")
    get_settings.cache_clear()
    get_container.cache_clear()
    knowledge = stack.handler("knowledge")
    run = load_event("knowledge_run_graphrag.json")
    dataset_id = run["pathParameters"]["dataset_id"]
    missing = {"code": 102, "message": "The dataset doesn't exist"}
    assert invoke(knowledge, run) == (200, {"code": 102, "message": "Invalid Dataset ID"})
    assert invoke(knowledge, load_event("knowledge_graph_get.json")) == (200, missing)

    _seed_dataset_with_a_document(stack, dataset_id)
    status, started = invoke(knowledge, run)
    assert status == 200 and started["code"] == 0, started
    task_id = started["data"]["graphrag_task_id"]
    client = boto3.client("stepfunctions", region_name="us-east-1")
    (execution,) = client.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == task_id
    assert json.loads(client.describe_execution(executionArn=execution["executionArn"])["input"]) == {
        "tenant_id": TENANT,
        "dataset_id": dataset_id,
        "task_id": task_id,
        "task_type": "graphrag",
    }
    _, traced = invoke(knowledge, load_event("knowledge_trace_graphrag.json"))
    assert traced["data"]["id"] == task_id and traced["data"]["progress"] == 0.0
    assert traced["data"]["progress_msg"].endswith("created task graphrag")
    _, refused = invoke(knowledge, run)
    assert refused["code"] == 102 and refused["message"].endswith("A Graph Task is already running.")
    assert invoke(knowledge, load_event("knowledge_trace_raptor.json"))[1] == {"code": 0, "data": {}}
    assert invoke(knowledge, load_event("knowledge_run_raptor.json"))[1]["code"] == 0

    assert invoke(knowledge, load_event("knowledge_graph_get.json"))[1] == {
        "code": 0,
        "data": {"graph": {}, "mind_map": {}},
    }
    assert invoke(knowledge, load_event("knowledge_graph_delete.json"))[1] == {"code": 0, "data": True}


def test_a_build_that_cannot_be_started_ends_failed(stack: Stack) -> None:
    from shared.config import get_settings
    from shared.container import get_container

    os.environ["FLOWLESS_BUILD_STATE_MACHINE_ARN"] = "arn:aws:states:us-east-1:123456789012:stateMachine:gone"
    get_settings.cache_clear()
    get_container.cache_clear()
    knowledge = stack.handler("knowledge")
    run = load_event("knowledge_run_graphrag.json")
    _seed_dataset_with_a_document(stack, run["pathParameters"]["dataset_id"])
    _, answer = invoke(knowledge, run)
    assert answer["code"] != 0 and "graphrag_task_id" not in str(answer)
    _, traced = invoke(knowledge, load_event("knowledge_trace_graphrag.json"))
    assert traced["data"]["progress"] == -1.0
    assert traced["data"]["progress_msg"].endswith("[ERROR] The build could not be started.")
    # and nothing is left "running": a new build may be asked for at once
    assert "already running" not in invoke(knowledge, run)[1].get("message", "")


# -- files ------------------------------------------------------------------------------------------------------
SAMPLE_FILE = "d2b1f3a091ec11efbc510242ac120004"  # the file id the files_* sample events carry


def file_event(name: str, *, body: dict[str, Any] | None = None, **query: str) -> dict[str, Any]:
    """A files_* sample event with its body or query parameters replaced."""
    event = load_event(f"files_{name}.json")
    if body is not None:
        event["body"] = json.dumps(body)
    if query:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {key: [value] for key, value in query.items()}
    return event


def bucket_keys(prefix: str) -> list[str]:
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_files_lifecycle_through_the_sample_events(stack: Stack, tmp_path: Path) -> None:
    from shared.adapters.local.embedded_index import EmbeddedSearchIndex
    from shared.container import get_container

    # rm removes documents' index entries: the embedded index stands in for OpenSearch (no moto backend).
    get_container().overrides["search_index"] = index = EmbeddedSearchIndex(tmp_path / "index")
    files = stack.handler("files")
    root = invoke(files, load_event("files_root_folder.json"))[1]["data"]["root_folder"]
    assert root["name"] == "/" and root["tenant_id"] == TENANT
    folder = invoke(files, load_event("files_create.json"))[1]["data"]
    assert folder["name"] == "New Folder" and folder["type"] == "folder" and folder["parent_id"] == root["id"]
    status, uploaded = invoke(files, load_event("files_upload.json"))
    assert status == 200 and uploaded["code"] == 0, uploaded
    file = uploaded["data"][0]
    assert file["name"] == "test1.txt" and file["parent_id"] == root["id"] and file["size"] > 0
    assert bucket_keys("files/") == [f"files/{TENANT}/{file['id']}"]

    listed = invoke(files, load_event("files_list.json"))[1]["data"]
    assert {f["name"] for f in listed["files"]} == {"test1.txt", "New Folder", ".knowledgebase"}
    parent = invoke(files, file_event("parent_folder", file_id=file["id"]))[1]["data"]["parent_folder"]
    assert parent["id"] == root["id"]
    renamed = invoke(files, file_event("rename", body={"file_id": file["id"], "name": "new_name.txt"}))[1]
    assert renamed == {"code": 0, "data": True}

    download = load_event("files_get.json")
    download["path"] = f"/api/v1/file/get/{file['id']}"
    download["pathParameters"] = {"file_id": file["id"]}
    response = files.handler(download, FakeLambdaContext())
    body = base64.b64decode(response["body"]) if response["isBase64Encoded"] else response["body"].encode()
    assert response["statusCode"] == 200 and b"Herons nested" in body

    moved = invoke(files, file_event("mv", body={"src_file_ids": [file["id"]], "dest_file_id": folder["id"]}))[1]
    assert moved == {"code": 0, "data": True}
    chain = invoke(files, file_event("all_parent_folder", file_id=file["id"]))[1]["data"]["parent_folders"]
    assert [f["name"] for f in chain] == ["new_name.txt", "New Folder", "/"]

    dataset_id = invoke(stack.handler("datasets"), load_event("datasets_create.json"))[1]["data"]["id"]
    links = invoke(files, file_event("convert", body={"file_ids": [folder["id"]], "kb_ids": [dataset_id]}))[1]
    assert links["code"] == 0 and links["data"][0]["file_id"] == file["id"]
    assert invoke(stack.handler("datasets"), load_event("datasets_list.json"))[1]["data"][0]["document_count"] == 1

    assert invoke(files, file_event("rm", body={"file_ids": [folder["id"]]}))[1] == {"code": 0, "data": True}
    assert invoke(stack.handler("datasets"), load_event("datasets_list.json"))[1]["data"][0]["document_count"] == 0
    assert bucket_keys("files/") == []
    index.close()


def test_files_sample_events_for_unknown_ids_answer_not_found(stack: Stack) -> None:
    files = stack.handler("files")
    assert invoke(files, load_event("files_parent_folder.json"))[1] == {"code": 404, "message": "Folder not found!"}
    assert invoke(files, load_event("files_all_parent_folder.json"))[1]["code"] == 404
    assert invoke(files, load_event("files_get.json"))[1] == {"code": 404, "message": "Document not found!"}
    assert invoke(files, load_event("files_rename.json"))[1] == {"code": 404, "message": "File not found!"}
    assert invoke(files, load_event("files_mv.json"))[1] == {"code": 102, "message": "File or Folder not found!"}
    assert invoke(files, load_event("files_rm.json"))[1] == {"code": 404, "message": "File or Folder not found!"}
    assert invoke(files, load_event("files_convert.json"))[1] == {"code": 404, "message": "File not found!"}


# -- agents ---------------------------------------------------------------------------------------------------
SAMPLE_AGENT = "9f3c2a1e8b7d11f0a1b2c3d4e5f60718"  # the agent id the sample agent events carry


def agent_event(name: str, agent_id: str, body: Any = None) -> dict[str, Any]:
    event = load_event(name)
    event["path"] = event["path"].replace(SAMPLE_AGENT, agent_id)
    event["pathParameters"] = {"agent_id": agent_id}
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def test_agents_lifecycle_through_the_sample_events(stack: Stack) -> None:
    agents = stack.handler("agents")
    assert invoke(agents, load_event("agents_create.json")) == (200, {"code": 0, "data": True, "message": "success"})
    _, listed = invoke(agents, load_event("agents_list.json"))
    assert listed["code"] == 0 and [a["title"] for a in listed["data"]] == ["echo agent"], listed
    agent_id = listed["data"][0]["id"]
    assert listed["data"][0]["user_id"] == TENANT

    assert invoke(agents, agent_event("agents_update.json", agent_id))[1]["code"] == 0
    assert invoke(agents, load_event("agents_list.json"))[1]["data"][0]["title"] == "echo agent v2"

    _, session = invoke(agents, agent_event("agents_session_create.json", agent_id))
    assert session["code"] == 0, session
    assert session["data"]["user_id"] == "user-42" and session["data"]["agent_id"] == agent_id
    assert session["data"]["message"] == [{"role": "assistant", "content": "Hi! I repeat what you say."}]
    _, sessions = invoke(agents, agent_event("agents_sessions_list.json", agent_id))
    assert [s["id"] for s in sessions["data"]] == [session["data"]["id"]] and "dsl" not in sessions["data"][0]

    delete = agent_event("agents_sessions_delete.json", agent_id, {"ids": [session["data"]["id"]]})
    assert invoke(agents, delete)[1] == {"code": 0}
    assert invoke(agents, agent_event("agents_delete.json", agent_id))[1] == {
        "code": 0,
        "data": True,
        "message": "success",
    }
    assert invoke(agents, load_event("agents_list.json"))[1] == {"code": 0, "data": []}


def test_sample_agent_with_an_unsupported_component_is_refused(stack: Stack) -> None:
    agents = stack.handler("agents")
    status, body = invoke(agents, load_event("agents_create_unsupported.json"))
    assert status == 200 and body == {"code": 102, "message": "Component 'ExeSQL' is not supported"}
    assert invoke(agents, load_event("agents_list.json"))[1] == {"code": 0, "data": []}


def test_sample_agent_events_for_an_unknown_agent(stack: Stack) -> None:
    agents = stack.handler("agents")
    owner_only = {"code": 103, "message": "Only owner of canvas authorized for this operation."}
    assert invoke(agents, load_event("agents_update.json"))[1] == owner_only
    assert invoke(agents, load_event("agents_delete.json"))[1] == owner_only
    assert invoke(agents, load_event("agents_sessions_list.json"))[1] == {
        "code": 102,
        "message": f"You don't own the agent {SAMPLE_AGENT}.",
    }


#: (route group, sample event) of every buffered group's API Gateway events.
API_EVENTS = [(group.name, path.name) for group in ROUTE_GROUPS if not group.streaming for path in group_events(group)]


def test_every_sample_event_is_answered_by_its_groups_handler(served_stack: Stack) -> None:
    """Whatever the event asks (some name records this test never made), the handler answers with a RAGFlow
    envelope and no unexpected error. (One stack for all: each event is answered on its own.)"""
    handlers = {group: served_stack.handler(group) for group in dict.fromkeys(group for group, _ in API_EVENTS)}
    unanswered = []
    for group, name in API_EVENTS:
        response = handlers[group].handler(load_event(name), FakeLambdaContext())
        raw = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"].encode()
        body = {"code": 0} if raw == b"pong" else json.loads(raw)
        envelope = isinstance(body.get("code"), int) or body.get("status") == "ok"
        if response["statusCode"] != 200 or not envelope or "Internal server error" in str(body.get("message")):
            unanswered.append((name, response["statusCode"], body))
    assert unanswered == []
    assert len(API_EVENTS) >= len([g for g in ROUTE_GROUPS if not g.streaming])


# -- beyond RAGFlow: scoped keys, webhooks, presigned uploads, imports, events -------------------------------
UPLOAD_SAMPLE_DATASET = "5d1ce1d2f0a511f1b1e0a2c3d4e5f601"  # the dataset id the sample upload/import events carry


@contextlib.contextmanager
def configured(**env: str) -> Iterator[None]:
    """More settings for the functions built inside (their handler modules read the container at import)."""
    from shared.config import get_settings
    from shared.container import get_container

    with mock.patch.dict(os.environ, env):
        get_settings.cache_clear()
        get_container.cache_clear()
        yield
    get_settings.cache_clear()
    get_container.cache_clear()


def with_dataset(event: dict[str, Any], dataset_id: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["path"] = event["path"].replace(UPLOAD_SAMPLE_DATASET, dataset_id)
    event["pathParameters"] = {**(event["pathParameters"] or {}), "dataset_id": dataset_id}
    return event


def new_dataset(stack: Stack, name: str = "beyond") -> str:
    create = load_event("datasets_create.json")
    create["body"] = json.dumps({"name": name})
    _, created = invoke(stack.handler("datasets"), create)
    assert created["code"] == 0, created
    return str(created["data"]["id"])


def _method_arn(method: str, path: str) -> str:
    concrete = re.sub(r"\{[^}]+\}", "0123456789abcdef0123456789abcdef", path)
    return f"arn:aws:execute-api:us-east-1:123456789012:abc123/api/{method}{concrete}"


def test_the_authorizers_policy_for_scoped_keys_covers_exactly_what_they_may_call(stack: Stack) -> None:
    tenants = TenantRepository(stack.store)
    authorizer = stack.handler("authorizer")
    table = access_table()

    def policy(key: str) -> tuple[list[str], dict[str, Any]]:
        event = load_event("authorizer_request.json")
        event["headers"]["Authorization"] = f"Bearer {key}"
        answer = authorizer.handler(event, FakeLambdaContext())
        (statement,) = answer["policyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"]
        return ([resources] if isinstance(resources, str) else resources), answer["context"]

    reader, context = policy(tenants.issue_api_key(TENANT, scope="read"))
    assert context["scope"] == "read" and context["code"] == 108 and context["message"].startswith("Permission denied.")
    for (method, path), access in table.items():
        allowed = any(fnmatch.fnmatchcase(_method_arn(method, path), resource) for resource in reader)
        assert allowed == (access.scope == "read"), (method, path)

    restricted, context = policy(tenants.issue_api_key(TENANT, ids={"dataset": [UPLOAD_SAMPLE_DATASET]}))
    assert json.loads(context["ids"]) == {"dataset": [UPLOAD_SAMPLE_DATASET]}
    for (method, path), access in table.items():
        allowed = any(fnmatch.fnmatchcase(_method_arn(method, path), resource) for resource in restricted)
        assert allowed == (not access.tenant_wide and access.kinds == {"dataset"}), (method, path)


def test_functions_enforce_the_grant_the_authorizer_passes(stack: Stack) -> None:
    datasets = stack.handler("datasets")
    create = load_event("datasets_create.json")
    create["requestContext"]["authorizer"]["scope"] = "read"
    status, refused = invoke(datasets, create)
    assert status == 200 and refused["code"] == 108 and "'write' scope" in refused["message"]
    listing = load_event("datasets_list.json")
    listing["requestContext"]["authorizer"]["scope"] = "read"
    assert invoke(datasets, listing)[1]["code"] == 0

    mine, other = new_dataset(stack, "mine"), new_dataset(stack, "other")
    update = load_event("datasets_update.json")
    update["requestContext"]["authorizer"]["ids"] = json.dumps({"dataset": [mine]})
    update["path"], update["pathParameters"] = f"/api/v1/datasets/{other}", {"dataset_id": other}
    _, out_of_reach = invoke(datasets, update)
    assert out_of_reach["code"] == 108 and f"The dataset {other} is out of reach" in out_of_reach["message"]
    update["path"], update["pathParameters"] = f"/api/v1/datasets/{mine}", {"dataset_id": mine}
    assert invoke(datasets, update)[1]["code"] == 0


def test_webhooks_through_the_sample_events(stack: Stack) -> None:
    webhooks = stack.handler("webhooks")
    _, created = invoke(webhooks, load_event("webhooks_create.json"))
    assert created["code"] == 0 and created["data"]["secret"].startswith("whsec_"), created
    _, listed = invoke(webhooks, load_event("webhooks_list.json"))
    assert listed["data"]["total"] == 1 and listed["data"]["webhooks"][0]["url"] == "https://hooks.example.com/flowless"
    _, unknown = invoke(webhooks, load_event("webhooks_deliveries.json"))
    assert unknown["code"] == 102 and "You don't own the webhook" in unknown["message"]
    deliveries = load_event("webhooks_deliveries.json")
    deliveries["path"] = f"/api/v1/flowless/webhooks/{created['data']['id']}/deliveries"
    deliveries["pathParameters"] = {"webhook_id": created["data"]["id"]}
    assert invoke(webhooks, deliveries)[1] == {"code": 0, "data": {"total": 0, "deliveries": []}}


def test_a_presigned_upload_on_s3_goes_straight_to_the_bucket(stack: Stack) -> None:
    import requests

    dataset_id = new_dataset(stack)
    uploads = stack.handler("uploads")
    _, started = invoke(uploads, with_dataset(load_event("uploads_create.json"), dataset_id))
    assert started["code"] == 0, started
    upload = started["data"]
    assert upload["part_count"] == 3 and len(upload["parts"]) == 3
    data = (b"0123456789abcdef" * (upload["size"] // 16 + 1))[: upload["size"]]
    for part in upload["parts"]:
        assert part["url"].startswith(f"https://{BUCKET}.s3.us-east-1.amazonaws.com/uploads/{TENANT}/{dataset_id}/")
        assert "X-Amz-Signature=" in part["url"] and "uploadId=" in part["url"]
        start = (part["part_number"] - 1) * upload["part_size"]
        answer = requests.put(part["url"], data=data[start : start + part["size"]], timeout=30)
        assert answer.status_code == 200 and answer.headers["ETag"]

    complete = with_dataset(load_event("uploads_complete.json"), dataset_id)
    complete["path"] = complete["path"].replace("8b3e5d7ff0a511f1b1e0a2c3d4e5f603", upload["upload_id"])
    complete["pathParameters"]["upload_id"] = upload["upload_id"]
    _, document = invoke(uploads, complete)
    assert document["code"] == 0 and document["data"]["size"] == len(data), document
    key = f"uploads/{TENANT}/{dataset_id}/{upload['upload_id']}"
    assert boto3.client("s3", region_name="us-east-1").get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_imports_on_s3_point_documents_at_the_objects(stack: Stack) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    area = f"imports/{TENANT}/"  # the tenant's import area of the documents bucket
    s3.put_object(Bucket=BUCKET, Key=f"{area}corpus/guide.md", Body=b"# Guide\nImported from the bucket.\n")
    s3.put_object(Bucket=BUCKET, Key=f"{area}corpus/tool.exe", Body=b"MZ")
    dataset_id = new_dataset(stack)
    _, imported = invoke(stack.handler("uploads"), with_dataset(load_event("imports_create.json"), dataset_id))
    assert imported["code"] == 0, imported
    (document,) = imported["data"]["documents"]
    assert (
        document["name"] == "guide.md"
        and imported["data"]["skipped"][0]["uri"] == f"s3://{BUCKET}/{area}corpus/tool.exe"
    )
    from shared.container import get_container

    container = get_container()
    record = container.document_repo.get(dataset_id, document["id"])
    assert record is not None and record["blob_key"] == f"s3://{BUCKET}/{area}corpus/guide.md"
    assert container.document_blobs.get(record["blob_key"]) == b"# Guide\nImported from the bucket.\n"
    container.document_blobs.delete(record["blob_key"])  # what deleting the document does to its original
    assert s3.get_object(Bucket=BUCKET, Key=f"{area}corpus/guide.md")["Body"].read().startswith(b"# Guide")


def test_webhook_workers_fan_out_and_deliver_signed_with_retries(stack: Stack) -> None:
    from shared.schemas.common import parse_model
    from shared.schemas.webhooks import CreateWebhookRequest
    from shared.webhooks import signing
    from tests.support.webhook_receiver import run_receiver

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="flowless-webhook-deliveries")["QueueUrl"]
    env = {
        "FLOWLESS_WEBHOOK_QUEUE_URL": queue_url,
        "FLOWLESS_WEBHOOK_ALLOW_HTTP": "true",
        "FLOWLESS_WEBHOOK_ALLOW_PRIVATE": "true",
        # The retry's message becomes visible again at once (SQS counts whole seconds).
        "FLOWLESS_WEBHOOK_BACKOFF_S": "0.1",
    }
    with run_receiver() as receiver, configured(**env):
        receiver.answer = lambda path, n: 500 if n == 0 else None
        worker = stack.handler("webhook_worker")
        from shared.container import get_container

        request = parse_model(CreateWebhookRequest, {"url": f"{receiver.url}/hook"})
        webhook = get_container().webhooks.create(TENANT, request)
        sample = load_event("webhook_event.json")
        assert worker.fan_out(sample, FakeLambdaContext()) == {"event_id": sample["detail"]["id"], "queued": 1}
        assert worker.fan_out(sample, FakeLambdaContext())["queued"] == 0  # the event came twice: one delivery

        def attempt() -> dict[str, Any]:
            (message,) = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0, WaitTimeSeconds=0)["Messages"]
            event = load_event("webhook_delivery.json")
            event["Records"][0].update(body=message["Body"], receiptHandle=message["ReceiptHandle"])
            result: dict[str, Any] = worker.deliver(event, FakeLambdaContext())
            return result

        failed = attempt()
        assert failed == {"batchItemFailures": [{"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d"}]}
        assert attempt() == {"batchItemFailures": []}
        first, second = receiver.to("/hook")
        assert first.headers["X-Flowless-Delivery"] == second.headers["X-Flowless-Delivery"]
        assert signing.verify(
            webhook["secret"],
            second.body,
            second.headers["X-Flowless-Timestamp"],
            second.headers["X-Flowless-Signature"],
        )
        assert json.loads(second.body) == sample["detail"]
        (entry,) = get_container().webhooks.deliveries(TENANT, webhook["id"], parse_model(ListDeliveriesQuery, {}))[0]
        assert entry["status"] == "succeeded" and entry["attempts"] == 2


def test_parse_ends_are_published_on_eventbridge(stack: Stack) -> None:
    from shared.adapters.aws.eventbridge_events import EventBridgePublisher
    from shared.ports.events import DomainEvent

    events_client = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events_client.create_event_bus(Name="flowless-test-events")
    queue_url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(
        Name="tap", EventBusName="flowless-test-events", EventPattern=json.dumps({"source": ["flowless"]})
    )
    events_client.put_targets(Rule="tap", EventBusName="flowless-test-events", Targets=[{"Id": "q", "Arn": queue_arn}])
    event = DomainEvent.from_dict(load_event("webhook_event.json")["detail"])
    EventBridgePublisher("flowless-test-events", region="us-east-1").publish(event)
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    delivered = json.loads(message["Body"])
    assert delivered["source"] == "flowless" and delivered["detail-type"] == "document.parse.done"
    assert DomainEvent.from_dict(delivered["detail"]) == event
