"""RestApiConstruct on its own, with registry entries the real registry may not have yet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from infra_cdk.api_construct import RestApiConstruct
from infra_cdk.app import cdk_json_context
from infra_cdk.config import LogSettings
from shared.routes import Route, RouteGroup

pytestmark = pytest.mark.infrastructure

_LOGS = LogSettings(retention=logs.RetentionDays.ONE_DAY, removal_policy=RemovalPolicy.DESTROY)


def _api_template(*groups: RouteGroup) -> Mapping[str, Any]:
    stack = Stack(App(context=cdk_json_context()), "ApiOnly")

    def function(name: str) -> lambda_.Function:
        return lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context): ..."),
        )

    authorizer = apigw.RequestAuthorizer(
        stack,
        "Authorizer",
        handler=function("AuthorizerFn"),
        identity_sources=[apigw.IdentitySource.header("Authorization")],
        results_cache_ttl=Duration.seconds(0),
    )
    RestApiConstruct(
        stack,
        "Api",
        groups=groups,
        functions={group.name: function(f"{group.name}Fn") for group in groups},
        fallback=function("FallbackFn"),
        authorizer=authorizer,
        stage_name="test",
        log_settings=_LOGS,
    )
    return Template.from_stack(stack).to_json()


def test_streaming_groups_get_a_streaming_integration() -> None:
    completions = RouteGroup(
        name="completions",
        module="functions.completions",
        routes=(Route("/api/v1/chats/{chat_id}/completions", ("POST",)),),
        streaming=True,
    )
    datasets = RouteGroup(name="datasets", module="functions.datasets", routes=(Route("/api/v1/datasets", ("GET",)),))
    methods = [
        r["Properties"]
        for r in _api_template(completions, datasets)["Resources"].values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["HttpMethod"] != "ANY"  # ANY: the fallback
    ]
    modes = sorted(m["Integration"].get("ResponseTransferMode", "BUFFERED") for m in methods)
    assert modes == ["BUFFERED", "STREAM"]
    (streaming,) = [m for m in methods if m["Integration"].get("ResponseTransferMode") == "STREAM"]
    assert "response-streaming-invocations" in str(streaming["Integration"]["Uri"])


def test_a_route_in_two_groups_is_refused() -> None:
    first = RouteGroup(name="first", module="functions.first", routes=(Route("/api/v1/x", ("GET",)),))
    second = RouteGroup(name="second", module="functions.second", routes=(Route("/api/v1/x", ("GET", "POST")),))
    with pytest.raises(ValueError, match="GET /api/v1/x is in route groups 'first' and 'second'"):
        _api_template(first, second)
