"""Knowledge builds on AWS: a function per build step, the state machine (prepare → a Map over the documents
→ finish, failures to the failure step), who may start it — and the synthesized definition run by the States
Language interpreter against the real step handlers (DynamoDB, S3 and Step Functions under moto, a local
OpenAI-compatible server as the chat model)."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra_cdk.config import REPO_ROOT
from infra_cdk.knowledge_construct import (
    BUILD_FIELDS,
    BUILD_HANDLER_MODULE,
    CUT_SHORT_ERRORS,
    DOCUMENT_FIELD,
    MODEL_TRANSIENT_ERRORS,
    step_layers,
)
from infra_cdk.parsing_construct import TASK_SUPERSEDED
from shared.container import Container
from shared.pipeline import ALL_BUILD_STEPS, BUILD_FINISH, BUILD_TIMEOUT_S, BuildStep
from shared.routes import KNOWLEDGE as KNOWLEDGE_GROUP
from shared.services.knowledge_builds import BUILD_TASK_FIELDS
from shared.services.tenants import ModelSetting
from tests.infrastructure.asl import Execution, StateMachine, definition_in_template
from tests.infrastructure.conftest import KNOWLEDGE, Synthesized
from tests.integration.test_parse_step_handlers import (
    BUCKET,
    DATASET,
    DOCUMENT,
    TASK,
    TENANT,
    FakeLambdaContext,
    aws_backend,
    reload_handler,
    seed_dataset,
    seed_running_document,
)
from tests.support import knowledge_model
from tests.support.dynamo import TEST_REGION
from tests.support.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.infrastructure

MODEL = "fake-chat@OpenAI-API-Compatible"


def _handler(step: BuildStep) -> str:
    return f"{BUILD_HANDLER_MODULE}.{step.name}"


def _functions(synth: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    """Handler -> (logical id, properties) of every function."""
    return {
        fn["Properties"]["Handler"]: (logical_id, fn["Properties"])
        for logical_id, fn in synth.resources("AWS::Lambda::Function").items()
    }


def _definition(synth: Synthesized) -> dict[str, Any]:
    return definition_in_template(synth.template_json, synth.state_machine(KNOWLEDGE)[0])


# -- the construct ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", ALL_BUILD_STEPS, ids=lambda step: step.name)
def test_a_function_per_build_step_sized_by_the_step(prod: Synthesized, step: BuildStep) -> None:
    _, props = _functions(prod)[_handler(step)]
    assert props["MemorySize"] == step.memory_mb and props["Timeout"] == step.timeout_s
    layers = {layer["Ref"] for layer in props["Layers"]}
    descriptions = {prod.template_json["Resources"][layer]["Properties"]["Description"] for layer in layers}
    for spec in step_layers(step):
        assert any(f"layers/{spec.name}/" in d for d in descriptions), (step.name, spec.name)
    assert len(layers) == 1 + len(step_layers(step))
    assert (step == BUILD_FINISH) == any("layers/graph/" in d for d in descriptions)  # networkx: merge only


def test_every_build_handler_exists() -> None:
    # Read, not imported: importing the module builds the process's container (the run tests below do).
    tree = ast.parse((REPO_ROOT / (BUILD_HANDLER_MODULE.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {step.name for step in ALL_BUILD_STEPS} <= defined


def test_the_state_machine_fans_out_over_documents_then_merges(prod: Synthesized) -> None:
    definition = _definition(prod)
    assert definition["TimeoutSeconds"] == BUILD_TIMEOUT_S
    states = definition["States"]
    assert definition["StartAt"] == "BuildPrepare"
    assert states["BuildPrepare"]["Next"] == "Documents" and states["Documents"]["Next"] == "BuildFinish"
    assert states["BuildFinish"]["Next"] == "Built" and states["Built"]["Type"] == "Succeed"
    fan_out = states["Documents"]
    assert fan_out["Type"] == "Map" and fan_out["ItemsPath"] == "$.documents" and fan_out["ResultPath"] is None
    assert fan_out["ItemSelector"] == {
        **{f"{field}.$": f"$.{field}" for field in BUILD_FIELDS},
        f"{DOCUMENT_FIELD}.$": "$$.Map.Item.Value",
    }
    assert tuple(BUILD_FIELDS) == BUILD_TASK_FIELDS
    (document_state,) = fan_out["ItemProcessor"]["States"].values()
    handlers = {logical_id: handler for handler, (logical_id, _) in _functions(prod).items()}
    for name, step in (("BuildPrepare", "prepare"), ("BuildFinish", "finish"), ("BuildFail", "fail")):
        assert handlers[states[name]["Parameters"]["FunctionName"]] == f"{BUILD_HANDLER_MODULE}.{step}"
    assert handlers[document_state["Parameters"]["FunctionName"]] == f"{BUILD_HANDLER_MODULE}.document"
    retried = {error for retry in document_state["Retry"] for error in retry["ErrorEquals"]}
    assert set(MODEL_TRANSIENT_ERRORS) | {"StoreUnavailable", "EmbeddingServiceError"} <= retried
    # A document or merge step cut short by Lambda's timeout is run again (it carries on where it stopped).
    for state in (document_state, states["BuildFinish"]):
        assert {e for r in state["Retry"] for e in r["ErrorEquals"]} >= set(CUT_SHORT_ERRORS)
    assert not {e for r in states["BuildPrepare"]["Retry"] for e in r["ErrorEquals"]} & set(CUT_SHORT_ERRORS)
    for name in ("BuildPrepare", "Documents", "BuildFinish"):
        catches = [(c["ErrorEquals"], c["Next"]) for c in states[name]["Catch"]]
        assert catches == [([TASK_SUPERSEDED], "BuildSuperseded"), (["States.ALL"], "BuildFail")]
    assert states["BuildFail"]["Next"] == "BuildFailed" and states["BuildFailed"]["Type"] == "Fail"


def test_the_state_machine_invokes_exactly_the_build_functions_and_only_the_knowledge_group_starts_it(
    prod: Synthesized,
) -> None:
    machine_id, machine = prod.state_machine(KNOWLEDGE)
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invoked = set()
    starters = set()
    for policy in prod.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if {"Ref": role_id} in policy["Properties"]["Roles"] and "lambda:InvokeFunction" in actions:
                invoked |= {r["Fn::GetAtt"][0] for r in resources if isinstance(r, dict) and "Fn::GetAtt" in r}
            if "states:StartExecution" in actions and {"Ref": machine_id} in resources:
                starters |= {role["Ref"] for role in policy["Properties"]["Roles"]}
    functions = _functions(prod)
    assert invoked == {functions[_handler(step)][0] for step in ALL_BUILD_STEPS}
    (knowledge_role,) = starters
    knowledge_fn = functions[f"{KNOWLEDGE_GROUP.module}.handler.handler"][1]
    assert knowledge_fn["Role"]["Fn::GetAtt"][0] == knowledge_role


# -- the definition, run against the real handlers ------------------------------------------------------------
@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


@pytest.fixture
def container(tmp_path: Path, llm: FakeOpenAI) -> Iterator[Container]:
    llm.reset()
    llm.respond_with(knowledge_model.answer)
    with aws_backend(tmp_path / "index", with_build_state_machine=True) as container:
        dataset = seed_dataset(container)
        container.tenant_service.set_models(
            TENANT, [ModelSetting(MODEL, "chat", api_base=llm.base_url, api_key="sk-test")]
        )
        notes = b"Ada Lovelace worked with Charles Babbage in London.\n\nMarie Curie lived in Paris.\n"
        seed_running_document(container, dataset, data=notes)
        container.ingestion.run_task(
            {"tenant_id": TENANT, "dataset_id": DATASET, "document_id": DOCUMENT, "task_id": TASK}
        )
        parsed = container.document_repo.get(DATASET, DOCUMENT)
        assert parsed is not None and parsed["run"] == "DONE", parsed
        yield container


def _execute(synth: Synthesized, execution_input: dict[str, Any]) -> Execution:
    functions = _functions(synth)
    by_id = {logical_id: handler for handler, (logical_id, _) in functions.items()}
    steps = reload_handler(BUILD_HANDLER_MODULE)

    def invoke(function: str, payload: dict[str, Any]) -> Any:
        module, name = by_id[function].rsplit(".", 1)
        assert module == BUILD_HANDLER_MODULE
        return getattr(steps, name)(payload, FakeLambdaContext())

    return StateMachine(_definition(synth), invoke).run(execution_input)


def _started_build(container: Container) -> dict[str, Any]:
    """What the API started: the execution moto recorded (named by the task id), with its input."""
    answer = container.knowledge.run(TENANT, DATASET, "graphrag")
    client = boto3.client("stepfunctions", region_name=TEST_REGION)
    arn = container.settings.build_state_machine_arn
    (execution,) = client.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == answer["graphrag_task_id"]
    started: dict[str, Any] = json.loads(client.describe_execution(executionArn=execution["executionArn"])["input"])
    return started


def _work_keys() -> list[str]:
    listed = boto3.client("s3", region_name=TEST_REGION).list_objects_v2(Bucket=BUCKET, Prefix="kg/")
    return [item["Key"] for item in listed.get("Contents", []) if "/work/" in item["Key"]]


def test_a_build_runs_through_every_step_to_a_graph(prod: Synthesized, container: Container) -> None:
    started = _started_build(container)
    assert set(started) == {"tenant_id", "dataset_id", "task_id", "task_type"}

    execution = _execute(prod, started)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.visited == ["BuildPrepare", "Documents", "BuildDocument", "BuildFinish", "Built"]
    task = container.knowledge.trace(TENANT, DATASET, "graphrag")
    assert task["progress"] == 1.0 and "Knowledge Graph done" in task["progress_msg"], task["progress_msg"]
    graph = container.knowledge.knowledge_graph(TENANT, DATASET)["graph"]
    assert {"ADA LOVELACE", "CHARLES BABBAGE", "MARIE CURIE"} <= {n["id"] for n in graph["nodes"]}
    assert graph["graph"]["source_id"] == [DOCUMENT]
    assert _work_keys() == []
    entities = container.graph_store.records.records(DATASET, "entity")  # read back from DynamoDB
    assert {e["name"] for e in entities} == {n["id"] for n in graph["nodes"]}


def test_a_failing_model_ends_the_build_failed_with_its_reason(
    prod: Synthesized, container: Container, llm: FakeOpenAI
) -> None:
    llm.script("/v1/chat/completions", *[Reply.error(400, "The model refuses this text.")] * 3)
    execution = _execute(prod, _started_build(container))

    assert execution.status == "FAILED" and execution.error == "ChatModelServiceError"
    assert execution.visited[-2:] == ["BuildFail", "BuildFailed"]
    task = container.knowledge.trace(TENANT, DATASET, "graphrag")
    last = task["progress_msg"].splitlines()[-1]
    assert task["progress"] == -1.0 and "[ERROR] The chat model failed:" in last and "refuses" in last, last
    assert container.knowledge.knowledge_graph(TENANT, DATASET) == {"graph": {}, "mind_map": {}}
    assert _work_keys() == []


def test_a_superseded_build_ends_quietly(prod: Synthesized, container: Container) -> None:
    started = _started_build(container)
    execution = _execute(prod, {**started, "task_id": "0" * 32})
    assert execution.status == "SUCCEEDED" and execution.visited == ["BuildPrepare", "BuildSuperseded"]
    assert container.knowledge.trace(TENANT, DATASET, "graphrag")["progress"] == 0.0


def test_the_sample_events_are_the_states_the_steps_pass_on(container: Container) -> None:
    from tests.integration.test_parse_step_handlers import load_event

    prepare_event = load_event("knowledge_step_prepare.json")
    assert (prepare_event["tenant_id"], prepare_event["dataset_id"]) == (TENANT, DATASET)
    _started_build(container)  # a task of the dataset; the sample events carry another id: make it theirs
    record = container.knowledge.trace(TENANT, DATASET, "graphrag")
    from shared.repos.knowledge import BuildTaskRepository

    tasks = BuildTaskRepository(container.metadata)
    current = tasks.get(DATASET, "graphrag")
    assert current is not None and current["id"] == record["id"]
    tasks.replace({**current, "id": prepare_event["task_id"]}, current)

    steps = reload_handler(BUILD_HANDLER_MODULE)
    prepared = steps.prepare(prepare_event, FakeLambdaContext())
    assert prepared == load_event("knowledge_step_finish.json")
    item = {**{field: prepared[field] for field in BUILD_FIELDS}, DOCUMENT_FIELD: prepared["documents"][0]}
    assert item == load_event("knowledge_step_document.json")

    steps.fail(load_event("knowledge_step_fail.json"), FakeLambdaContext())
    failed = container.knowledge.trace(TENANT, DATASET, "graphrag")
    assert failed["progress"] == -1.0
    assert (
        failed["progress_msg"]
        .splitlines()[-1]
        .endswith("[ERROR] The chat model failed: The chat model's service answered 503: overloaded")
    )


def test_a_retried_document_step_does_not_ask_the_model_again_for_what_it_got(tmp_path: Path, llm: FakeOpenAI) -> None:
    """A document step cut short (here: the model fails on the second block) keeps the answers it got: the
    retry asks only for what is missing."""
    llm.reset()
    llm.respond_with(knowledge_model.answer)
    first = " ".join(f"Ada Lovelace wrote note {i} about the Analytical Engine." for i in range(350))
    second = " ".join(f"Marie Curie measured sample {i} in Paris." for i in range(350))
    with aws_backend(tmp_path / "index", with_build_state_machine=True) as container:
        dataset = seed_dataset(container)
        dataset = {**dataset, "parser_config": {**dataset["parser_config"], "chunk_token_num": 2048}}
        container.tenant_service.set_models(
            TENANT, [ModelSetting(MODEL, "chat", api_base=llm.base_url, api_key="sk-test")]
        )
        seed_running_document(container, dataset, data=f"{first}\n\n{second}\n".encode())
        container.ingestion.run_task(
            {"tenant_id": TENANT, "dataset_id": DATASET, "document_id": DOCUMENT, "task_id": TASK}
        )
        steps = reload_handler(BUILD_HANDLER_MODULE)
        prepared = steps.prepare(_started_build(container), FakeLambdaContext())
        item = {**{field: prepared[field] for field in BUILD_FIELDS}, DOCUMENT_FIELD: DOCUMENT}

        def refuse_curie(request: Any) -> Reply:
            if "Task: extract" in str(request.body) and "Marie Curie" in str(request.body):
                return Reply.error(400, "Not now.")
            return llm.handle_chat(request)

        llm.route("POST", "/v1/chat/completions", refuse_curie)
        try:
            with pytest.raises(Exception, match="Not now") as failed:
                steps.document(item, FakeLambdaContext())
            assert type(failed.value).__name__ == "ChatModelServiceError"  # retried by the state machine
        finally:
            llm.route("POST", "/v1/chat/completions", llm.handle_chat)

        def asked() -> list[str]:
            return [
                r.body["messages"][-1]["content"]
                for r in llm.chat_requests
                if r.body["messages"][-1]["content"].startswith("Task: extract")
            ]

        before = asked()
        answered = {p for p in before if "Marie Curie" not in p}
        refused = {p for p in before if "Marie Curie" in p}
        assert answered and refused and len(before) == len(answered | refused) > 1
        steps.document(item, FakeLambdaContext())  # the retry
        again = asked()[len(before) :]
        assert set(again) == refused and len(again) == len(refused)  # what was answered is not asked again
        steps.finish(prepared, FakeLambdaContext())
        names = {n["id"] for n in container.knowledge.knowledge_graph(TENANT, DATASET)["graph"]["nodes"]}
        assert {"ADA LOVELACE", "MARIE CURIE"} <= names
