"""What a real account needs, on the synthesized template: Bedrock for the functions that call models (scoped to
the region's foundation models and inference profiles of the stage's list), tenants' model keys in SSM, one KMS
key for the table, the bucket and those keys, dead-letter queues and alarms on the asynchronous paths, X-Ray on
the state machine; and the ``search_engine=embedded`` stage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from infra_cdk.config import StageConfig
from infra_cdk.function_construct import route_group_handler
from infra_cdk.knowledge_construct import BUILD_HANDLER_MODULE
from infra_cdk.models_construct import BEDROCK_ACTIONS, ModelAccess
from infra_cdk.parsing_construct import STEP_HANDLER_MODULE, UNFINISHED_STATUSES
from shared.constants import ENV_OPENSEARCH_ENDPOINT, ENV_SEARCH_ENGINE, ENV_SECRETS_KMS_KEY, ENV_SECRETS_PREFIX
from shared.pipeline import ALL_BUILD_STEPS, ALL_STEPS
from shared.routes import ROUTE_GROUPS
from tests.infrastructure.conftest import Synthesized

pytestmark = pytest.mark.infrastructure


def _functions(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """Handler -> the function's properties."""
    return {fn["Properties"]["Handler"]: fn["Properties"] for fn in synth.resources("AWS::Lambda::Function").values()}


def _statements(synth: Synthesized, function: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _with_action(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    def actions(statement: dict[str, Any]) -> list[str]:
        action = statement["Action"]
        return [action] if isinstance(action, str) else list(action)

    return [s for s in statements if any(a.startswith(prefix) for a in actions(s))]


def _model_callers(synth: Synthesized) -> dict[str, bool]:
    """Handler -> whether it calls models: the route groups that need "models", and every parse and knowledge
    build step."""
    callers = {route_group_handler(group): "models" in group.needs for group in ROUTE_GROUPS}
    callers.update({f"{STEP_HANDLER_MODULE}.{step.name}": True for step in ALL_STEPS})
    callers.update({f"{BUILD_HANDLER_MODULE}.{step.name}": True for step in ALL_BUILD_STEPS})
    return callers


def _resolved(value: Any) -> str:
    """An ARN template with its pseudo parameters named (Fn::Join of strings and Refs)."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)


def test_bedrock_only_for_functions_that_call_models_on_the_regions_models(prod: Synthesized) -> None:
    """Without a bedrock_models list: every model of the stack's region (tenants name their Bedrock models)."""
    functions = _functions(prod)
    expected = {
        "arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/*",
        "arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/*",
    }
    for handler, calls_models in _model_callers(prod).items():
        bedrock = _with_action(_statements(prod, functions[handler]), "bedrock:")
        if not calls_models:
            assert bedrock == [], handler
            continue
        (statement,) = bedrock
        assert sorted(statement["Action"]) == sorted(BEDROCK_ACTIONS)  # Converse(Stream) authorize as these
        assert {_resolved(resource) for resource in statement["Resource"]} == expected, handler


def test_a_stage_setting_narrows_the_bedrock_models() -> None:
    def granted(models: tuple[str, ...] | None) -> list[dict[str, Any]]:
        stack = Stack(App(), "ModelsOnly")
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        access = ModelAccess(
            stack, "Models", bedrock_models=models, secrets_prefix="/flowless/x/", key=kms.Key(stack, "Key")
        )
        access.grant(_FunctionStub(role))  # type: ignore[arg-type]
        template = Template.from_stack(stack).to_json()
        return [
            statement
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::IAM::Policy"
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        ]

    (bedrock,) = _with_action(granted(("amazon.titan-embed-text-v2:0",)), "bedrock:")
    assert {_resolved(r).rsplit("/", 1)[1] for r in bedrock["Resource"]} == {
        "amazon.titan-embed-text-v2:0",
        "*.amazon.titan-embed-text-v2:0",
    }
    assert _with_action(granted(()), "bedrock:") == []  # none at all: no Bedrock access
    assert StageConfig.from_context("dev", bedrock_models="amazon.nova-lite-v1:0").bedrock_models == (
        "amazon.nova-lite-v1:0",
    )
    assert StageConfig.from_context("dev").bedrock_models is None  # every model of the region
    (everything,) = _with_action(granted(None), "bedrock:")
    assert {_resolved(r).rsplit(":", 1)[1] for r in everything["Resource"]} == {
        "foundation-model/*",
        "inference-profile/*",
    }
    with pytest.raises(ValueError, match="not Bedrock model ids"):
        StageConfig.from_context("dev", bedrock_models="amazon.nova-lite-v1:0,arn:aws:iam::*")


class _FunctionStub:
    """What ModelAccess.grant touches of a ServiceFunction: its role and its environment."""

    def __init__(self, role: iam.Role) -> None:
        self.role = role
        self.function = self
        self.environment: dict[str, str] = {}

    def add_environment(self, name: str, value: str) -> None:
        self.environment[name] = value


def test_tenant_keys_are_read_from_the_stages_ssm_path_with_the_data_key(prod: Synthesized) -> None:
    functions = _functions(prod)
    (key_id,) = prod.resources("AWS::KMS::Key")
    prefix = StageConfig("prod").secrets_prefix
    for handler, calls_models in _model_callers(prod).items():
        statements = _statements(prod, functions[handler])
        ssm = _with_action(statements, "ssm:")
        env = functions[handler]["Environment"]["Variables"]
        if not calls_models:
            assert ssm == [] and ENV_SECRETS_PREFIX not in env, handler
            continue
        (statement,) = ssm
        assert statement["Action"] == "ssm:GetParameter"
        assert _resolved(statement["Resource"]) == (
            f"arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter{prefix}tenants/*"
        )
        assert env[ENV_SECRETS_PREFIX] == prefix and env[ENV_SECRETS_KMS_KEY] == {"Fn::GetAtt": [key_id, "Arn"]}
        decrypt = [s for s in _with_action(statements, "kms:") if s["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}]
        assert any("kms:Decrypt" in s["Action"] for s in decrypt), handler


def test_one_rotated_key_encrypts_the_table_and_the_documents_and_prod_keeps_it(
    prod: Synthesized, dev: Synthesized
) -> None:
    for synth, policy in [(prod, "Retain"), (dev, "Delete")]:
        ((key_id, key),) = synth.resources("AWS::KMS::Key").items()
        assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == policy
        (table,) = synth.resources("AWS::DynamoDB::Table").values()
        assert table["Properties"]["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    outputs = prod.template_json["Outputs"]
    assert {"ModelKeysPrefix", "DataKeyArn"} <= set(outputs)


def test_unfinished_executions_land_in_watched_dead_letter_queues(prod: Synthesized) -> None:
    """Parses and knowledge builds that end without their failure step (timed out, stopped) leave their record
    running: each state machine's such executions go to a queue with an alarm."""
    rules = [r["Properties"] for r in prod.resources("AWS::Events::Rule").values()]
    watched = [
        a["Properties"]["Dimensions"][0]["Value"]
        for a in prod.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    ]
    machines = prod.resources("AWS::StepFunctions::StateMachine")
    assert len(machines) == 2  # parses, knowledge builds
    for machine_id in machines:
        (rule,) = [
            r for r in rules if r["EventPattern"].get("detail", {}).get("stateMachineArn") == [{"Ref": machine_id}]
        ]
        assert rule["EventPattern"]["source"] == ["aws.states"]
        assert rule["EventPattern"]["detail"]["status"] == list(UNFINISHED_STATUSES)
        ((target_queue,),) = [[t["Arn"]["Fn::GetAtt"][0] for t in rule["Targets"]]]
        queue = prod.resources("AWS::SQS::Queue")[target_queue]["Properties"]
        assert queue["SqsManagedSseEnabled"] is True
        assert {"Fn::GetAtt": [target_queue, "QueueName"]} in watched
    # every asynchronous Lambda invocation (the S3 trigger's, the webhook fan-out's) has an on-failure queue too
    invoke_configs = prod.resources("AWS::Lambda::EventInvokeConfig").values()
    assert len(invoke_configs) == 2
    assert all("OnFailure" in config["Properties"]["DestinationConfig"] for config in invoke_configs)


def test_the_state_machines_are_traced_with_x_ray(prod: Synthesized) -> None:
    for machine in prod.resources("AWS::StepFunctions::StateMachine").values():
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def test_the_opensearch_collection_group_scales_to_zero(prod: Synthesized) -> None:
    ((group_id, group),) = prod.resources("AWS::OpenSearchServerless::CollectionGroup").items()
    props = group["Properties"]
    assert props["Generation"] == "NEXTGEN"
    limits = props["CapacityLimits"]
    assert limits["MinIndexingCapacityInOcu"] == limits["MinSearchCapacityInOcu"] == 0
    assert limits["MaxIndexingCapacityInOcu"] >= 2 and limits["MaxSearchCapacityInOcu"] >= 2
    (collection,) = prod.resources("AWS::OpenSearchServerless::Collection").values()
    assert collection["Properties"]["CollectionGroupName"] == props["Name"]
    assert group_id in collection["DependsOn"]


def test_the_embedded_engine_stage_has_no_collection_and_gives_shards_their_prefix(embedded: Synthesized) -> None:
    assert embedded.resources("AWS::OpenSearchServerless::Collection") == {}
    assert embedded.resources("AWS::OpenSearchServerless::CollectionGroup") == {}
    functions = _functions(embedded)
    (bucket_id,) = [
        logical_id
        for logical_id, bucket in embedded.resources("AWS::S3::Bucket").items()
        if "VersioningConfiguration" in bucket["Properties"]
    ]
    for group in ROUTE_GROUPS:
        props = functions[route_group_handler(group)]
        env = props["Environment"]["Variables"]
        assert ENV_OPENSEARCH_ENDPOINT not in env
        if "search" not in group.needs:
            assert ENV_SEARCH_ENGINE not in env
            continue
        assert env[ENV_SEARCH_ENGINE] == "embedded"
        assert props["EphemeralStorage"]["Size"] >= 1024
        s3 = _with_action(_statements(embedded, props), "s3:")
        resources = [
            json.dumps(r) for s in s3 for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        ]
        assert any(bucket_id in r and "/index/*" in r for r in resources), group.name


def test_the_embedded_engine_stage_passes_cdk_nag_and_cfn_lint(embedded: Synthesized) -> None:
    from cfnlint.api import lint_file

    from tests.infrastructure.test_compliance import ACCEPTED_CFN_LINT_WARNINGS, _nag_violations

    assert _nag_violations(embedded) == []
    matches = [m for m in lint_file(embedded.template_path) if m.rule.id not in ACCEPTED_CFN_LINT_WARNINGS]
    assert [str(m) for m in matches if m.rule.severity in ("error", "warning")] == []


def test_stage_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="search_engine"):
        StageConfig.from_context("dev", search_engine="elasticsearch")
    with pytest.raises(ValueError, match="search_min_ocu"):
        StageConfig.from_context("dev", search_min_ocu="-1")
    assert StageConfig.from_context("dev").removal_policy == RemovalPolicy.DESTROY
