"""The CDK app's parts for flowless's own features: the event bus and who may publish on it, the webhook
fan-out and delivery queue with their dead-letter queues, presigned uploads' permissions and lifecycle rule,
and RAGFlow's 413 answer pointing at the presigned route. A second synth covers the stage settings (the
default bus, import buckets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra_cdk.knowledge_construct import BUILD_HANDLER_MODULE
from infra_cdk.parsing_construct import STEP_HANDLER_MODULE
from infra_cdk.webhooks_construct import DELIVER_HANDLER, DELIVER_TIMEOUT_S, FAN_OUT_HANDLER, MAX_RECEIVES
from shared.constants import (
    ENV_EVENT_BUS,
    ENV_IMPORT_BUCKETS,
    ENV_WEBHOOK_ALLOW_HTTP,
    ENV_WEBHOOK_ALLOW_PRIVATE,
    ENV_WEBHOOK_QUEUE_URL,
    PRESIGNED_UPLOAD_ROUTE,
)
from shared.pipeline import ALL_STEPS
from shared.routes import ROUTE_GROUPS, UPLOADS, WEBHOOKS
from tests.infrastructure.conftest import Synthesized, synthesize


def _function_ids(synth: Synthesized) -> dict[str, str]:
    return {
        fn["Properties"]["Handler"]: logical_id for logical_id, fn in synth.resources("AWS::Lambda::Function").items()
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


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _env(synth: Synthesized, function_id: str) -> dict[str, Any]:
    variables: dict[str, Any] = synth.resources("AWS::Lambda::Function")[function_id]["Properties"]["Environment"][
        "Variables"
    ]
    return variables


def _webhook_rule(synth: Synthesized) -> dict[str, Any]:
    (rule,) = [
        r
        for r in synth.resources("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"] == {"source": ["flowless"]}
    ]
    return rule


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        "staging",
        Path(tmp_path_factory.mktemp("cdk-settings")),
        event_bus="default",
        import_buckets="corpus-bucket,archive.example",
        webhook_allow_private="true",
    )


def test_the_stack_has_its_own_bus_and_only_the_steps_that_end_parses_or_builds_and_stopping_publish(
    prod: Synthesized,
) -> None:
    (bus_id, bus), *others = prod.resources("AWS::Events::EventBus").items()
    assert not others and bus["Properties"]["Name"] == "flowless-prod-events"
    ids = _function_ids(prod)
    publishers = {
        handler
        for handler, function_id in ids.items()
        if any("events:PutEvents" in _actions(s) for s in _statements(prod, function_id))
    }
    documents = next(f"{g.module}.handler.handler" for g in ROUTE_GROUPS if g.name == "documents")
    assert publishers == {
        f"{STEP_HANDLER_MODULE}.finish",
        f"{STEP_HANDLER_MODULE}.fail",
        f"{BUILD_HANDLER_MODULE}.finish",  # knowledge-graph / RAPTOR builds end there
        f"{BUILD_HANDLER_MODULE}.fail",
        documents,
    }
    for handler in publishers:
        (put,) = [s for s in _statements(prod, ids[handler]) if "events:PutEvents" in _actions(s)]
        assert _resources(put) == [{"Fn::GetAtt": [bus_id, "Arn"]}]
        assert _env(prod, ids[handler])[ENV_EVENT_BUS] == {"Ref": bus_id}
    assert len([s for s in ALL_STEPS if f"{STEP_HANDLER_MODULE}.{s.name}" in publishers]) == 2


def test_every_event_goes_to_the_webhook_fan_out_with_a_dead_letter_queue(prod: Synthesized) -> None:
    rule = _webhook_rule(prod)["Properties"]
    (bus_id,) = prod.resources("AWS::Events::EventBus")
    assert rule["EventBusName"] == {"Ref": bus_id}
    (target,) = rule["Targets"]
    ids = _function_ids(prod)
    assert target["Arn"] == {"Fn::GetAtt": [ids[FAN_OUT_HANDLER], "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8 and "DeadLetterConfig" in target
    fan_out_dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    (config,) = [
        c
        for c in prod.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": ids[FAN_OUT_HANDLER]}
    ]
    assert config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [fan_out_dlq, "Arn"]}


def test_deliveries_run_from_a_queue_with_backoff_and_a_dead_letter_queue(prod: Synthesized) -> None:
    ids = _function_ids(prod)
    queues = prod.resources("AWS::SQS::Queue")
    (queue_id,) = [q for q, queue in queues.items() if "RedrivePolicy" in queue["Properties"]]
    queue = queues[queue_id]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES and queue["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 6 * DELIVER_TIMEOUT_S
    (mapping,) = prod.resources("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": ids[DELIVER_HANDLER]}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    deliver_actions = {a for s in _statements(prod, ids[DELIVER_HANDLER]) for a in _actions(s)}
    assert "sqs:ChangeMessageVisibility" in deliver_actions and "sqs:SendMessage" not in deliver_actions
    fan_out_actions = {a for s in _statements(prod, ids[FAN_OUT_HANDLER]) for a in _actions(s)}
    assert "sqs:SendMessage" in fan_out_actions and not {a for a in fan_out_actions if a.startswith("s3:")}
    for handler in (FAN_OUT_HANDLER, DELIVER_HANDLER):
        assert _env(prod, ids[handler])[ENV_WEBHOOK_QUEUE_URL] == {"Ref": queue_id}
    env = _env(prod, ids[DELIVER_HANDLER])
    assert env["FLOWLESS_WEBHOOK_ALLOW_HTTP"] == "false" and env["FLOWLESS_WEBHOOK_ALLOW_PRIVATE"] == "false"


def test_presigned_uploads_may_write_under_the_uploads_prefix_only(prod: Synthesized) -> None:
    function_id = _function_ids(prod)[f"{UPLOADS.module}.handler.handler"]
    statements = _statements(prod, function_id)
    writes = [
        s
        for s in statements
        if {a for a in _actions(s) if a.startswith("s3:")} - {"s3:GetObject*", "s3:GetBucket*", "s3:List*"}
    ]
    (write,) = writes
    assert _actions(write) == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    (resource,) = _resources(write)
    assert resource["Fn::Join"][1][-1] == "/uploads/*"
    assert not any("s3:DeleteObject*" in _actions(s) for s in statements)


def test_unfinished_uploads_are_aborted_by_a_lifecycle_rule(prod: Synthesized) -> None:
    buckets = [b for b in prod.resources("AWS::S3::Bucket").values() if "NotificationConfiguration" in b["Properties"]]
    rules = buckets[0]["Properties"]["LifecycleConfiguration"]["Rules"]
    (uploads,) = [r for r in rules if r.get("Prefix") == "uploads/"]
    assert uploads["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1} and uploads["Status"] == "Enabled"


def test_the_413_answer_points_at_the_presigned_route(prod: Synthesized) -> None:
    (response,) = [
        r
        for r in prod.resources("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "REQUEST_TOO_LARGE"
    ]
    import json

    body = json.loads(response["Properties"]["ResponseTemplates"]["application/json"])
    assert body["code"] == 100 and body["message"] == "<RequestEntityTooLarge '413: Request Entity Too Large'>"
    assert body["data"]["presigned_upload"] == PRESIGNED_UPLOAD_ROUTE


def test_stage_settings_the_default_bus_and_import_buckets(settings: Synthesized) -> None:
    assert settings.resources("AWS::Events::EventBus") == {}
    rule = _webhook_rule(settings)["Properties"]
    assert rule.get("EventBusName", "default") == "default"
    ids = _function_ids(settings)
    finish = ids[f"{STEP_HANDLER_MODULE}.finish"]
    (put,) = [s for s in _statements(settings, finish) if "events:PutEvents" in _actions(s)]
    assert "event-bus/default" in str(_resources(put))
    assert _env(settings, finish)[ENV_EVENT_BUS] == "default"
    # Documents may point at objects of the import buckets: whoever reads originals may read those.
    for handler in (
        f"{STEP_HANDLER_MODULE}.extract",
        f"{UPLOADS.module}.handler.handler",
        "functions.documents.handler.handler",
    ):
        reads = str([_resources(s) for s in _statements(settings, ids[handler]) if "s3:GetObject*" in _actions(s)])
        assert "corpus-bucket/*" in reads and "archive.example/*" in reads, handler
        assert _env(settings, ids[handler])[ENV_IMPORT_BUCKETS] == '["corpus-bucket", "archive.example"]'
    # The API refuses at registration what the deliverer would refuse: both read the stage's policy.
    for handler in (DELIVER_HANDLER, f"{WEBHOOKS.module}.handler.handler"):
        env = _env(settings, ids[handler])
        assert (env[ENV_WEBHOOK_ALLOW_PRIVATE], env[ENV_WEBHOOK_ALLOW_HTTP]) == ("true", "false"), handler


def test_webhook_targets_are_https_and_public_by_default_for_the_api_and_the_deliverer(prod: Synthesized) -> None:
    ids = _function_ids(prod)
    for handler in (DELIVER_HANDLER, f"{WEBHOOKS.module}.handler.handler"):
        env = _env(prod, ids[handler])
        assert (env[ENV_WEBHOOK_ALLOW_PRIVATE], env[ENV_WEBHOOK_ALLOW_HTTP]) == ("false", "false"), handler


def test_stage_settings_are_checked() -> None:
    from infra_cdk.config import StageConfig

    with pytest.raises(ValueError, match="event_bus"):
        StageConfig.from_context("dev", event_bus="mine")
    with pytest.raises(ValueError, match="import_buckets"):
        StageConfig.from_context("dev", import_buckets="Not_A_Bucket")
    config = StageConfig.from_context("dev", import_buckets=" a-bucket , ,b.bucket")
    assert config.import_buckets == ("a-bucket", "b.bucket") and config.event_bus == "stack"


def test_the_stage_settings_synth_is_cdk_nag_and_cfn_lint_clean(settings: Synthesized) -> None:
    from cfnlint.api import lint_file

    from tests.infrastructure.test_compliance import ACCEPTED_CFN_LINT_WARNINGS, _nag_violations

    assert _nag_violations(settings) == []
    findings = [m for m in lint_file(settings.template_path) if m.rule.id not in ACCEPTED_CFN_LINT_WARNINGS]
    assert [str(m) for m in findings if m.rule.severity in ("error", "warning")] == []
