"""Document parsing in the template: a function per pipeline step, the state machine built from the step
list, and the S3 upload trigger (EventBridge rule, function, dead-letter queue)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra_cdk.app import cdk_json_context
from infra_cdk.config import REPO_ROOT, StageConfig
from infra_cdk.function_construct import Backends, FunctionPackage, RouteGroupFunction, ServiceFunction
from infra_cdk.parsing_construct import (
    BACKEND_TRANSIENT_ERRORS,
    LAMBDA_TRANSIENT_ERRORS,
    MAX_RANGE_CONCURRENCY,
    STEP_HANDLER_MODULE,
    TASK_FIELDS,
    TASK_SUPERSEDED,
    ParsingWorkflow,
)
from infra_cdk.s3_trigger_construct import INGEST_HANDLER
from infra_cdk.storage_construct import StorageConstruct
from shared.constants import (
    ENV_BACKEND,
    ENV_DOCUMENTS_BUCKET,
    ENV_OPENSEARCH_ENDPOINT,
    ENV_STATE_MACHINE_ARN,
    ENV_TABLE_NAME,
)
from shared.pipeline import ALL_STEPS, EMBED, FAIL, INGEST_PREFIX, PARSE_STEPS, RANGE_STEPS, PipelineStep
from shared.routes import DOCUMENTS
from tests.infrastructure.asl import definition_in_template
from tests.infrastructure.conftest import SKIP_BUNDLING, Synthesized

pytestmark = pytest.mark.infrastructure


# -- helpers -----------------------------------------------------------------------------------------
def _function_ids(synth: Synthesized) -> dict[str, str]:
    """Handler -> logical id of its function."""
    return {
        fn["Properties"]["Handler"]: logical_id for logical_id, fn in synth.resources("AWS::Lambda::Function").items()
    }


def _step_handler(step: PipelineStep) -> str:
    return f"{STEP_HANDLER_MODULE}.{step.name}"


def _definition(synth: Synthesized) -> dict[str, Any]:
    return definition_in_template(synth.template_json, synth.state_machine()[0])


def _flow(states: dict[str, Any], start: str) -> list[str]:
    """State names from ``start`` following Next until a state without one."""
    names = [start]
    while "Next" in states[names[-1]]:
        names.append(states[names[-1]]["Next"])
    return names


def _invoked_handler(synth: Synthesized, task: dict[str, Any]) -> str:
    assert task["Type"] == "Task" and task["Resource"].endswith(":states:::lambda:invoke")
    function = synth.resources("AWS::Lambda::Function")[task["Parameters"]["FunctionName"]]
    return str(function["Properties"]["Handler"])


def _layer_names(synth: Synthesized, function: dict[str, Any]) -> set[str]:
    layers = synth.resources("AWS::Lambda::LayerVersion")
    return {
        layers[ref["Ref"]]["Properties"]["Description"].rsplit("layers/", 1)[1].split("/")[0]
        for ref in function["Properties"]["Layers"]
    }


def _statements(synth: Synthesized, function_id: str) -> list[dict[str, Any]]:
    role_id = synth.resources("AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


# -- the step functions ------------------------------------------------------------------------------
@pytest.mark.parametrize("step", ALL_STEPS, ids=lambda step: step.name)
def test_a_function_per_pipeline_step_sized_by_the_step(prod: Synthesized, step: PipelineStep) -> None:
    function_id = _function_ids(prod)[_step_handler(step)]
    function = prod.resources("AWS::Lambda::Function")[function_id]
    props = function["Properties"]
    assert (props["MemorySize"], props["Timeout"]) == (step.memory_mb, step.timeout_s)
    assert props["Architectures"] == ["arm64"] and props["TracingConfig"] == {"Mode": "Active"}
    env = props["Environment"]["Variables"]
    (table_id,) = prod.resources("AWS::DynamoDB::Table")
    assert env[ENV_BACKEND] == "aws" and env[ENV_TABLE_NAME] == {"Ref": table_id}
    assert env[ENV_DOCUMENTS_BUCKET]["Ref"] in prod.resources("AWS::S3::Bucket")
    # Every step gets the search collection (STEP_NEEDS): prepare drops a re-parsed document's chunks, index writes.
    (collection_id,) = prod.resources("AWS::OpenSearchServerless::Collection")
    assert env[ENV_OPENSEARCH_ENDPOINT] == {"Fn::GetAtt": [collection_id, "CollectionEndpoint"]}
    # Steps never start parses.
    assert ENV_STATE_MACHINE_ARN not in env
    # Only the embed step carries onnxruntime and the model; the others the parsers.
    assert _layer_names(prod, function) == {"runtime", "embed" if step == EMBED else "ingest"}
    actions = {action for statement in _statements(prod, function_id) for action in _actions(statement)}
    assert {"dynamodb:PutItem", "dynamodb:Query", "s3:GetObject*", "s3:PutObject", "s3:DeleteObject*"} <= actions
    assert "aoss:APIAccessAll" in actions
    assert not {action for action in actions if action.startswith("states:")}


def _top_level_functions(path: str) -> set[str]:
    tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_handler_the_template_names_exists() -> None:
    # Read, not imported: importing a handler builds the process's container from the environment.
    assert {step.name for step in ALL_STEPS} <= _top_level_functions("functions/parse_steps/handler.py")
    module, name = INGEST_HANDLER.rsplit(".", 1)
    assert name in _top_level_functions(module.replace(".", "/") + ".py")


# -- the state machine -------------------------------------------------------------------------------
def test_state_machine_runs_the_steps_in_the_pipelines_order(prod: Synthesized) -> None:
    definition = _definition(prod)
    states = definition["States"]
    flow = _flow(states, definition["StartAt"])
    handlers = [_invoked_handler(prod, states[name]) if states[name]["Type"] == "Task" else name for name in flow]
    before = list(takewhile(lambda step: not step.per_range, PARSE_STEPS))
    after = PARSE_STEPS[len(before) + len(RANGE_STEPS) :]
    assert not any(step.per_range for step in after)
    assert handlers == [*map(_step_handler, before), flow[len(before)], *map(_step_handler, after), flow[-1]]
    assert states[flow[-1]]["Type"] == "Succeed"

    fan_out = states[flow[len(before)]]
    assert fan_out["Type"] == "Map" and fan_out["ItemsPath"] == "$.ranges"
    assert fan_out["ItemSelector"] == {
        **{f"{name}.$": f"$.{name}" for name in TASK_FIELDS},
        "range.$": "$$.Map.Item.Value",
    }
    assert fan_out["MaxConcurrency"] == MAX_RANGE_CONCURRENCY
    # The steps after the fan-out get the planned state back, not the iterations' outputs.
    assert fan_out["ResultPath"] is None
    processor = fan_out["ItemProcessor"]
    iteration = _flow(processor["States"], processor["StartAt"])
    assert [_invoked_handler(prod, processor["States"][name]) for name in iteration] == [
        _step_handler(step) for step in RANGE_STEPS
    ]
    assert processor["States"][iteration[-1]]["End"] is True
    assert TASK_FIELDS == ("tenant_id", "dataset_id", "document_id", "task_id")


def _tasks(states: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in states.values():
        if state["Type"] == "Task":
            found.append(state)
        if state["Type"] == "Map":
            found.extend(_tasks(state["ItemProcessor"]["States"]))
    return found


def test_every_task_passes_the_steps_json_and_retries_transient_errors(prod: Synthesized) -> None:
    tasks = _tasks(_definition(prod)["States"])
    assert len(tasks) == len(ALL_STEPS)
    for task in tasks:
        assert task["Parameters"]["Payload.$"] == "$" and task["OutputPath"] == "$.Payload"
        retried = {error for retry in task["Retry"] for error in retry["ErrorEquals"]}
        assert retried == {*LAMBDA_TRANSIENT_ERRORS, *BACKEND_TRANSIENT_ERRORS}
        assert all(retry["MaxAttempts"] > 1 and retry["BackoffRate"] > 1 for retry in task["Retry"])
        # Nothing retries a failed step's own error or a superseded task.
        assert not retried & {"States.ALL", "StepFailed", TASK_SUPERSEDED}


def test_failures_go_to_the_failure_step_and_superseded_tasks_succeed(prod: Synthesized) -> None:
    definition = _definition(prod)
    states = definition["States"]
    flow = _flow(states, definition["StartAt"])[:-1]
    failure_targets = set()
    for name in flow:
        superseded, everything = states[name]["Catch"]
        assert superseded["ErrorEquals"] == [TASK_SUPERSEDED]
        assert states[superseded["Next"]]["Type"] == "Succeed"
        assert everything["ErrorEquals"] == ["States.ALL"] and everything["ResultPath"] == "$.error"
        failure_targets.add(everything["Next"])
    (failure,) = failure_targets
    assert _invoked_handler(prod, states[failure]) == _step_handler(FAIL)
    assert "Catch" not in states[failure]
    assert states[states[failure]["Next"]] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }


def test_retried_and_caught_names_are_the_exceptions_the_steps_raise() -> None:
    # Lambda reports a Python exception by its class name; these must stay in step with the code.
    from shared.ports.embedder import EmbeddingServiceError
    from shared.ports.events import EventPublishError
    from shared.ports.metadata import StoreUnavailable
    from shared.services.ingestion import TaskSuperseded

    names = (StoreUnavailable.__name__, EmbeddingServiceError.__name__, EventPublishError.__name__)
    assert names == BACKEND_TRANSIENT_ERRORS
    assert TaskSuperseded.__name__ == TASK_SUPERSEDED


def test_state_machine_logs_errors_traces_and_times_out(prod: Synthesized) -> None:
    _, machine = prod.state_machine()
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ERROR" and logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = prod.resources("AWS::Logs::LogGroup")[log_group_id]["Properties"]
    assert log_group["LogGroupName"].startswith("/aws/vendedlogs/states/") and log_group["RetentionInDays"] == 90
    assert _definition(prod)["TimeoutSeconds"] == 2 * 3600


def test_state_machine_may_invoke_exactly_the_step_functions(prod: Synthesized) -> None:
    _, machine = prod.state_machine()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invoke = [
        statement
        for policy in prod.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in _actions(statement)
    ]
    resources = [resource for statement in invoke for resource in statement["Resource"]]
    step_ids = {_function_ids(prod)[_step_handler(step)] for step in ALL_STEPS}
    assert {resource["Fn::GetAtt"][0] for resource in resources if "Fn::GetAtt" in resource} == step_ids


@pytest.mark.parametrize("handler", [f"{DOCUMENTS.module}.handler.handler", INGEST_HANDLER])
def test_parse_starters_may_start_executions_of_the_state_machine_only(prod: Synthesized, handler: str) -> None:
    function_id = _function_ids(prod)[handler]
    state_machine_id, _ = prod.state_machine()
    states = [s for s in _statements(prod, function_id) if any(a.startswith("states:") for a in _actions(s))]
    assert [(_actions(s), s["Resource"]) for s in states] == [
        ({"states:StartExecution", "states:DescribeStateMachine"}, {"Ref": state_machine_id})
    ]
    env = prod.resources("AWS::Lambda::Function")[function_id]["Properties"]["Environment"]["Variables"]
    assert env[ENV_STATE_MACHINE_ARN] == {"Ref": state_machine_id}


# -- the S3 trigger ----------------------------------------------------------------------------------
def _ingest_rule(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    """The S3 trigger's rule (the stack has others: the webhooks' on the service's own bus)."""
    ((rule_id, rule),) = [
        (logical_id, rule)
        for logical_id, rule in synth.resources("AWS::Events::Rule").items()
        if rule["Properties"]["EventPattern"].get("source") == ["aws.s3"]
    ]
    return rule_id, rule


def _queue_id(synth: Synthesized) -> str:
    """The S3 trigger's dead-letter queue: the one its rule's target sends to."""
    (target,) = _ingest_rule(synth)[1]["Properties"]["Targets"]
    return str(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])


def test_rule_sends_objects_created_under_the_ingest_prefix_to_the_trigger(prod: Synthesized) -> None:
    rule = _ingest_rule(prod)[1]
    props = rule["Properties"]
    buckets = [
        logical_id
        for logical_id, bucket in prod.resources("AWS::S3::Bucket").items()
        if "NotificationConfiguration" in bucket["Properties"]
    ]
    assert props["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [{"Ref": buckets[0]}]}, "object": {"key": [{"prefix": INGEST_PREFIX}]}},
    }
    assert INGEST_PREFIX == "ingest/"
    assert props["State"] == "ENABLED" and "EventBusName" not in props  # the default bus, where S3 publishes
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_function_ids(prod)[INGEST_HANDLER], "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [_queue_id(prod), "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0 and target["RetryPolicy"]["MaximumEventAgeInSeconds"]


def test_failed_trigger_invocations_go_to_the_same_dead_letter_queue(prod: Synthesized) -> None:
    function_ref = {"Ref": _function_ids(prod)[INGEST_HANDLER]}
    (config,) = [
        c
        for c in prod.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == function_ref
    ]
    props = config["Properties"]
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [_queue_id(prod), "Arn"]}}}
    assert props["MaximumRetryAttempts"] == 2


def test_dead_letter_queue_is_encrypted_ssl_only_and_fed_by_the_rule_alone(prod: Synthesized) -> None:
    queue_id = _queue_id(prod)
    assert prod.resources("AWS::SQS::Queue")[queue_id]["Properties"]["SqsManagedSseEnabled"] is True
    (policy,) = [
        p for p in prod.resources("AWS::SQS::QueuePolicy").values() if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    (from_events,) = [s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    rule_id = _ingest_rule(prod)[0]
    assert from_events["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}


def test_trigger_function_registers_and_starts_parses(prod: Synthesized) -> None:
    function_id = _function_ids(prod)[INGEST_HANDLER]
    function = prod.resources("AWS::Lambda::Function")[function_id]
    # It registers and starts parses, never parses: the runtime layer alone (numpy included).
    assert _layer_names(prod, function) == {"runtime"}
    actions = {action for statement in _statements(prod, function_id) for action in _actions(statement)}
    assert {"dynamodb:PutItem", "s3:GetObject*", "states:StartExecution", "sqs:SendMessage"} <= actions


# -- the constructs' hooks, on their own ------------------------------------------------------------------
@dataclass
class FakeSearch:
    """Stands in for the search construct (the real one is tested in test_search.py)."""

    endpoint: str = "https://collection.us-east-1.aoss.amazonaws.com"
    granted: list[str] = field(default_factory=list)

    def grant_read_write(self, function: ServiceFunction) -> None:
        self.granted.append(function.node.path)
        function.function.add_environment(ENV_OPENSEARCH_ENDPOINT, self.endpoint)  # as the real one does


def _bare_stack() -> tuple[Stack, StorageConstruct, FunctionPackage]:
    stack = Stack(App(context={**cdk_json_context(), **SKIP_BUNDLING}), "Parts")
    config = StageConfig("test")
    return (
        stack,
        StorageConstruct(stack, "Storage", removal_policy=config.removal_policy),
        FunctionPackage(stack, "Pkg"),
    )


def test_a_search_construct_gives_the_steps_its_endpoint_and_access() -> None:
    stack, storage, package = _bare_stack()
    search = FakeSearch()
    parsing = ParsingWorkflow(
        stack,
        "Parsing",
        package=package,
        backends=Backends(storage, search=search),
        log_settings=StageConfig("test").logs,
    )
    assert sorted(search.granted) == sorted(function.node.path for function in parsing.step_functions.values())
    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    assert all(
        fn["Properties"]["Environment"]["Variables"][ENV_OPENSEARCH_ENDPOINT] == search.endpoint
        for fn in functions.values()
    )


def test_a_group_that_needs_the_workflow_requires_a_state_machine() -> None:
    stack, storage, package = _bare_stack()
    with pytest.raises(ValueError, match="needs the workflow but no state machine was given"):
        RouteGroupFunction(
            stack,
            "Documents",
            group=DOCUMENTS,
            package=package,
            backends=Backends(storage),
            log_settings=StageConfig("test").logs,
        )
