"""The synthesized template: the REST API built from the route registry, functions, authorizer, storage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra_cdk.api_construct import STREAMING_INTEGRATION_TIMEOUT_MAX_S
from infra_cdk.auth_construct import AUTHORIZER_HANDLER
from infra_cdk.config import REPO_ROOT
from infra_cdk.function_construct import (
    LAMBDA_WEB_ADAPTER_ACCOUNT,
    LAMBDA_WEB_ADAPTER_LAYER_NAME,
    LAMBDA_WEB_ADAPTER_VERSION,
    route_group_handler,
)
from infra_cdk.knowledge_construct import BUILD_HANDLER_MODULE
from infra_cdk.parsing_construct import STEP_HANDLER_MODULE
from infra_cdk.s3_trigger_construct import INGEST_HANDLER
from infra_cdk.webhooks_construct import DELIVER_HANDLER, FAN_OUT_HANDLER
from shared.constants import (
    ENV_BACKEND,
    ENV_BUILD_STATE_MACHINE_ARN,
    ENV_DOCUMENTS_BUCKET,
    ENV_STATE_MACHINE_ARN,
    ENV_TABLE_NAME,
    METRICS_NAMESPACE,
    SERVICE_NAME,
)
from shared.pipeline import ALL_BUILD_STEPS, ALL_STEPS
from shared.ports.metadata import INDEX_KEYS
from shared.routes import ROUTE_GROUPS, RouteGroup
from tests.infrastructure.conftest import KNOWLEDGE, Synthesized

pytestmark = pytest.mark.infrastructure


def _handler(group: RouteGroup) -> str:
    return route_group_handler(group)


def _function_id(synth: Synthesized, handler: str) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, fn in synth.resources("AWS::Lambda::Function").items()
        if fn["Properties"]["Handler"] == handler
    ]
    return logical_id


def _resource_paths(synth: Synthesized) -> dict[str, str]:
    """Logical id of each API Gateway resource -> its full path, rebuilt from PathPart/ParentId."""
    resources = synth.resources("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            parent = props["ParentId"]
            parent_path = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[logical_id] = f"{parent_path}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def _methods(synth: Synthesized) -> dict[tuple[str, str], dict[str, Any]]:
    """(path, HTTP method) -> the method's properties."""
    paths = _resource_paths(synth)
    return {
        (paths[props["ResourceId"]["Ref"]], props["HttpMethod"]): props
        for props in (m["Properties"] for m in synth.resources("AWS::ApiGateway::Method").values())
    }


def _integrated_function(method: dict[str, Any]) -> str:
    uri_parts = method["Integration"]["Uri"]["Fn::Join"][1]
    (function_id,) = [part["Fn::GetAtt"][0] for part in uri_parts if isinstance(part, dict) and "Fn::GetAtt" in part]
    return str(function_id)


def test_api_is_a_rest_api(prod: Synthesized) -> None:
    prod.template.resource_count_is("AWS::ApiGateway::RestApi", 1)
    prod.template.resource_count_is("AWS::ApiGatewayV2::Api", 0)


def test_one_function_per_route_group_the_authorizer_the_parse_steps_and_the_s3_trigger(prod: Synthesized) -> None:
    functions = prod.resources("AWS::Lambda::Function")
    workers = {FAN_OUT_HANDLER, DELIVER_HANDLER}  # the webhook fan-out and deliveries
    assert len(functions) == len(ROUTE_GROUPS) + 1 + len(ALL_STEPS) + 1 + len(ALL_BUILD_STEPS) + len(workers)
    handlers = {fn["Properties"]["Handler"] for fn in functions.values()}
    steps = {f"{STEP_HANDLER_MODULE}.{step.name}" for step in ALL_STEPS}
    steps |= {f"{BUILD_HANDLER_MODULE}.{step.name}" for step in ALL_BUILD_STEPS}
    expected = {_handler(group) for group in ROUTE_GROUPS} | {AUTHORIZER_HANDLER, INGEST_HANDLER} | steps | workers
    assert handlers == expected
    prod.template.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "Architectures": ["arm64"],
            "Runtime": Match.string_like_regexp(r"^python3\.1\d$"),
            "TracingConfig": {"Mode": "Active"},
            "Layers": Match.any_value(),
            "LoggingConfig": {"LogGroup": Match.any_value()},
        },
    )


@pytest.mark.parametrize("group", ROUTE_GROUPS, ids=lambda group: group.name)
def test_function_size_and_environment_come_from_the_registry(prod: Synthesized, group: RouteGroup) -> None:
    props = prod.resources("AWS::Lambda::Function")[_function_id(prod, _handler(group))]["Properties"]
    assert props["MemorySize"] == group.memory_mb
    assert props["Timeout"] == group.timeout_s
    env = props["Environment"]["Variables"]
    assert env[ENV_BACKEND] == "aws"
    assert env["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert env["LOG_LEVEL"]
    assert env["OPENBLAS_NUM_THREADS"] == "1"  # as `flowless serve` runs numpy
    (table_id,) = prod.resources("AWS::DynamoDB::Table")
    assert env[ENV_TABLE_NAME] == {"Ref": table_id}
    assert env[ENV_DOCUMENTS_BUCKET]["Ref"] in prod.resources("AWS::S3::Bucket")
    state_machine_id, _ = prod.state_machine()
    assert env.get(ENV_STATE_MACHINE_ARN) == ({"Ref": state_machine_id} if "workflow" in group.needs else None)
    builds_id, _ = prod.state_machine(KNOWLEDGE)
    assert env.get(ENV_BUILD_STATE_MACHINE_ARN) == ({"Ref": builds_id} if "builds" in group.needs else None)


def _listed(action: str | list[str]) -> list[str]:
    return [action] if isinstance(action, str) else action


def _statements_of(synth: Synthesized, handler: str) -> list[dict[str, Any]]:
    function = synth.resources("AWS::Lambda::Function")[_function_id(synth, handler)]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _granted_actions(synth: Synthesized, handler: str) -> set[str]:
    function = synth.resources("AWS::Lambda::Function")[_function_id(synth, handler)]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                actions.update([action] if isinstance(action, str) else action)
    return actions


@pytest.mark.parametrize("group", ROUTE_GROUPS, ids=lambda group: group.name)
def test_grants_follow_the_groups_needs(prod: Synthesized, group: RouteGroup) -> None:
    actions = _granted_actions(prod, _handler(group))
    services = {action.split(":")[0] for action in actions}
    assert ("dynamodb" in services) == ("metadata" in group.needs)
    # "uploads": presigned uploads under the uploads prefix, reads for imports (test_beyond.py).
    assert ("s3" in services) == ("blobs" in group.needs or "uploads" in group.needs)
    assert ("events" in services) == ("events" in group.needs)
    # The workflow port starts executions and pings (describes) the state machines: the parse one for
    # "workflow", the knowledge-build one for "builds".
    if "workflow" in group.needs or "builds" in group.needs:
        assert {"states:StartExecution", "states:DescribeStateMachine"} <= actions
        machines = {
            statement["Resource"]["Ref"]
            for statement in _statements_of(prod, _handler(group))
            if any(str(a).startswith("states:") for a in _listed(statement["Action"]))
        }
        expected = {prod.state_machine()[0]} if "workflow" in group.needs else set()
        expected |= {prod.state_machine(KNOWLEDGE)[0]} if "builds" in group.needs else set()
        assert machines == expected
    else:
        assert "states" not in services
    # The search collection: IAM access here, the data access policy in test_search.py.
    assert ("aoss" in services) == ("search" in group.needs)
    # Models: Bedrock, and the tenants' keys in SSM (test_permissions.py); the stack's KMS key encrypts the
    # table, the bucket and those keys.
    assert ("bedrock" in services) == ("ssm" in services) == ("models" in group.needs)
    assert ("kms" in services) == bool({"metadata", "blobs", "models", "uploads"} & set(group.needs))
    assert services <= {"dynamodb", "s3", "xray", "logs", "states", "aoss", "events", "bedrock", "ssm", "kms"}


def test_authorizer_only_reads_the_table(prod: Synthesized) -> None:
    actions = _granted_actions(prod, AUTHORIZER_HANDLER)
    table_actions = {action for action in actions if action.startswith("dynamodb:")}
    assert "dynamodb:GetItem" in table_actions
    assert not {a for a in table_actions if a.split(":")[1].startswith(("Put", "Update", "Delete", "BatchWrite"))}
    assert not {action for action in actions if action.startswith("s3:")}


def test_every_registered_route_is_a_method_of_its_groups_function(prod: Synthesized) -> None:
    methods = _methods(prod)
    expected = {(route.path, verb) for group in ROUTE_GROUPS for route in group.routes for verb in route.methods}
    # Besides them, the fallback's ANY methods (tests/infrastructure/test_routing_fallback.py).
    assert {key for key in methods if key[1] != "ANY"} == expected
    for group in ROUTE_GROUPS:
        function_id = _function_id(prod, _handler(group))
        for route in group.routes:
            for verb in route.methods:
                method = methods[(route.path, verb)]
                assert method["Integration"]["Type"] == "AWS_PROXY"
                assert _integrated_function(method) == function_id
                assert method["AuthorizationType"] == ("CUSTOM" if group.authenticated else "NONE")
                assert ("AuthorizerId" in method) == group.authenticated


STREAMING_GROUPS = [group for group in ROUTE_GROUPS if group.streaming]
#: What runs a streaming group's function: the Lambda Web Adapter's layer (ARN with the Region as a token).
WEB_ADAPTER_LAYER = {
    "Fn::Join": [
        "",
        [
            "arn:aws:lambda:",
            {"Ref": "AWS::Region"},
            f":{LAMBDA_WEB_ADAPTER_ACCOUNT}:layer:{LAMBDA_WEB_ADAPTER_LAYER_NAME}:{LAMBDA_WEB_ADAPTER_VERSION}",
        ],
    ]
}


def test_the_completions_group_streams() -> None:
    # The registry keeps its streaming group: the tests below are not vacuous.
    assert [group.name for group in STREAMING_GROUPS] == ["completions"]
    assert route_group_handler(STREAMING_GROUPS[0]) == "functions/completions/run.sh"


@pytest.mark.parametrize("group", ROUTE_GROUPS, ids=lambda group: group.name)
def test_streaming_groups_run_uvicorn_under_the_lambda_web_adapter(prod: Synthesized, group: RouteGroup) -> None:
    props = prod.resources("AWS::Lambda::Function")[_function_id(prod, _handler(group))]["Properties"]
    env = props["Environment"]["Variables"]
    adapter_layers = [layer for layer in props["Layers"] if "Ref" not in layer]
    if not group.streaming:
        assert props["Handler"].endswith(".handler.handler")
        assert not adapter_layers
        assert not {name for name in env if name.startswith(("AWS_LWA_", "AWS_LAMBDA_EXEC_WRAPPER"))}
        return
    handler = props["Handler"]
    assert handler == f"{group.module.replace('.', '/')}/run.sh"
    assert (REPO_ROOT / handler).stat().st_mode & 0o111, f"{handler} must be executable"
    assert f"{group.module}.app:app" in (REPO_ROOT / handler).read_text(encoding="utf-8")
    assert adapter_layers == [WEB_ADAPTER_LAYER]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_PORT"] == "8080"
    assert env["AWS_LWA_READINESS_CHECK_PROTOCOL"] == "tcp"


@pytest.mark.parametrize("group", ROUTE_GROUPS, ids=lambda group: group.name)
def test_streaming_groups_methods_stream_from_their_function(prod: Synthesized, group: RouteGroup) -> None:
    methods = _methods(prod)
    function_id = _function_id(prod, _handler(group))
    for route in group.routes:
        for verb in route.methods:
            integration = methods[(route.path, verb)]["Integration"]
            assert _integrated_function(methods[(route.path, verb)]) == function_id
            uri = json.dumps(integration["Uri"])
            if group.streaming:
                assert integration["ResponseTransferMode"] == "STREAM"
                assert "/response-streaming-invocations" in uri
                expected_ms = min(group.timeout_s, STREAMING_INTEGRATION_TIMEOUT_MAX_S) * 1000
                assert integration["TimeoutInMillis"] == expected_ms
            else:
                assert integration.get("ResponseTransferMode", "BUFFERED") == "BUFFERED"
                assert "/invocations" in uri and "response-streaming" not in uri
                assert "TimeoutInMillis" not in integration


def test_dataset_routes_use_the_api_key_authorizer(prod: Synthesized) -> None:
    methods = _methods(prod)
    (authorizer_id,) = prod.resources("AWS::ApiGateway::Authorizer")
    for key in [
        ("/api/v1/datasets", "GET"),
        ("/api/v1/datasets", "POST"),
        ("/api/v1/datasets", "DELETE"),
        ("/api/v1/datasets/{dataset_id}", "PUT"),
    ]:
        assert methods[key]["AuthorizationType"] == "CUSTOM"
        assert methods[key]["AuthorizerId"] == {"Ref": authorizer_id}


def test_health_check_is_public(prod: Synthesized) -> None:
    healthz = _methods(prod)[("/v1/system/healthz", "GET")]
    assert healthz["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in healthz


def test_authorizer_is_a_cached_request_authorizer_on_the_authorization_header(prod: Synthesized) -> None:
    prod.template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.Authorization",
            "AuthorizerResultTtlInSeconds": 300,
            "AuthorizerUri": Match.any_value(),
        },
    )
    (authorizer,) = prod.resources("AWS::ApiGateway::Authorizer").values()
    uri_parts = authorizer["Properties"]["AuthorizerUri"]["Fn::Join"][1]
    authorizer_fn = _function_id(prod, AUTHORIZER_HANDLER)
    assert {"Fn::GetAtt": [authorizer_fn, "Arn"]} in uri_parts


def test_stage_traces_logs_and_throttles(prod: Synthesized) -> None:
    prod.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "prod",
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "MethodSettings": Match.array_with(
                [Match.object_like({"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": Match.any_value()})]
            ),
        },
    )


def test_table_has_the_metadata_ports_key_schema(prod: Synthesized) -> None:
    (table,) = prod.resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": INDEX_KEYS["main"][0], "KeyType": "HASH"},
        {"AttributeName": INDEX_KEYS["main"][1], "KeyType": "RANGE"},
    ]
    indexes = {
        index["IndexName"]: [key["AttributeName"] for key in index["KeySchema"]]
        for index in props["LocalSecondaryIndexes"] + props["GlobalSecondaryIndexes"]
    }
    assert indexes == {name: list(keys) for name, keys in INDEX_KEYS.items() if name != "main"}
    assert [index["IndexName"] for index in props["LocalSecondaryIndexes"]] == ["by_create", "by_update"]
    assert [index["IndexName"] for index in props["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    (key_id,) = prod.resources("AWS::KMS::Key")
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
    }


def test_prod_retains_data_and_dev_does_not(prod: Synthesized, dev: Synthesized) -> None:
    for synth, policy in [(prod, "Retain"), (dev, "Delete")]:
        for resource_type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key"):
            for resource in synth.resources(resource_type).values():
                assert resource["DeletionPolicy"] == policy, resource_type
                assert resource["UpdateReplacePolicy"] == policy, resource_type
    (prod_table,) = prod.resources("AWS::DynamoDB::Table").values()
    assert prod_table["Properties"]["DeletionProtectionEnabled"] is True


def test_buckets_are_private_encrypted_and_ssl_only(prod: Synthesized) -> None:
    prod.template.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    (key_id,) = prod.resources("AWS::KMS::Key")
    encryption = [
        bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        for bucket in prod.resources("AWS::S3::Bucket").values()
    ]
    assert sorted(encryption, key=json.dumps) == sorted(
        [
            [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}],
            [
                {
                    "BucketKeyEnabled": True,
                    "ServerSideEncryptionByDefault": {
                        "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                        "SSEAlgorithm": "aws:kms",
                    },
                }
            ],
        ],
        key=json.dumps,
    )
    for policy in prod.resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_documents_bucket_is_versioned_logged_and_sends_events_to_eventbridge(prod: Synthesized) -> None:
    prod.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": Match.any_value()},
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
        },
    )
    # EventBridge is enabled natively, without the notifications custom resource.
    prod.template.resource_count_is("Custom::S3BucketNotifications", 0)


NOT_FOUND = {"code": 100, "message": "<NotFound '404: Not Found'>"}


@pytest.mark.parametrize(
    ("response_type", "status", "body"),
    [
        ("MISSING_AUTHENTICATION_TOKEN", "200", NOT_FOUND),
        ("RESOURCE_NOT_FOUND", "200", NOT_FOUND),
        ("UNAUTHORIZED", "200", {"code": 109, "message": "`Authorization` can't be empty"}),
    ],
)
def test_gateway_answers_like_ragflow(
    prod: Synthesized, response_type: str, status: str, body: dict[str, object]
) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in prod.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    response = responses[response_type]
    assert response["StatusCode"] == status
    assert json.loads(response["ResponseTemplates"]["application/json"]) == body


def _render(template: str, context: dict[str, str]) -> object:
    """What API Gateway sends: each ``$context.authorizer.<key>`` replaced by the key's string value."""
    for key, value in context.items():
        template = template.replace(f"$context.authorizer.{key}", value)
    return json.loads(template)


@pytest.mark.parametrize(
    ("code", "message"),
    [("109", "Authentication error: API key is invalid!"), ("109", "Please check your authorization format.")],
)
def test_refused_keys_get_the_authorizers_ragflow_answer(prod: Synthesized, code: str, message: str) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in prod.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    denied = responses["ACCESS_DENIED"]
    assert denied["StatusCode"] == "200"
    # The authorizer's deny context carries code and message (functions/authorizer/handler.py).
    data_field = ', "data": false' if code == "0" else ""
    body = _render(
        denied["ResponseTemplates"]["application/json"], {"code": code, "message": message, "data_field": data_field}
    )
    assert body == {"code": int(code), "message": message, **({"data": False} if code == "0" else {})}


@pytest.mark.parametrize("response_type", ["DEFAULT_4XX", "DEFAULT_5XX"])
def test_other_gateway_errors_keep_their_status_in_the_ragflow_envelope(prod: Synthesized, response_type: str) -> None:
    prod.template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": response_type,
            "StatusCode": Match.absent(),
            "ResponseTemplates": {"application/json": '{"code": 100, "message": $context.error.messageString}'},
        },
    )


def test_alarms_watch_the_functions_the_api_the_parses_and_the_dead_letters(prod: Synthesized) -> None:
    alarms = prod.resources("AWS::CloudWatch::Alarm").values()
    metrics = [(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms]
    # Route groups, the authorizer, the S3 trigger and the parse and build failure steps (the other steps
    # raise by design: superseded tasks, unparsable documents, failing models), and the two webhook workers.
    assert metrics.count(("AWS/Lambda", "Errors")) == len(ROUTE_GROUPS) + 4 + 2
    assert metrics.count(("AWS/ApiGateway", "5XXError")) == 1
    assert metrics.count(("AWS/States", "ExecutionsTimedOut")) == 2  # parses and builds
    # The S3 trigger's dead letters, parse and build executions that ended without their failure step, the
    # webhook fan-out's dead letters and the webhook deliveries'.
    assert metrics.count(("AWS/SQS", "ApproximateNumberOfMessagesVisible")) == 5
