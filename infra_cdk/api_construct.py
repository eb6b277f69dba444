"""The REST API: one resource tree built from the route registry, RAGFlow-shaped gateway responses.

A REST API (not an HTTP API) because the streaming route group needs REST's
``responseTransferMode: STREAM`` Lambda integration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra_cdk.config import LogSettings
from infra_cdk.nag import acknowledge, cfn_resource
from shared.constants import PRESIGNED_UPLOAD_HINT, PRESIGNED_UPLOAD_ROUTE, SERVICE_NAME
from shared.routes import RouteGroup

#: Steady-state requests per second and burst for the whole stage (per-account limits still apply).
THROTTLE_RATE_LIMIT = 100
THROTTLE_BURST_LIMIT = 200
#: A streaming integration (responseTransferMode STREAM) may run up to 15 minutes, the longest a response
#: stream lasts; buffered integrations keep API Gateway's default (29 s).
STREAMING_INTEGRATION_TIMEOUT_MAX_S = 900


def _ragflow_body(**fields: object) -> str:
    return json.dumps(fields)


# RAGFlow answers these with HTTP 200 and a JSON envelope (werkzeug's exception repr as the message);
# the local server gives the same answers (functions/api/errors.py).
NOT_FOUND_BODY = _ragflow_body(code=100, message="<NotFound '404: Not Found'>")
# A body past Lambda's payload limit: RAGFlow's answer, with where big files go in ``data`` (RAGFlow clients read
# only code and message of an error; the local server answers the same for its own limit).
TOO_LARGE_BODY = _ragflow_body(
    code=100,
    message="<RequestEntityTooLarge '413: Request Entity Too Large'>",
    data={"presigned_upload": PRESIGNED_UPLOAD_ROUTE, "hint": PRESIGNED_UPLOAD_HINT},
)
# RAGFlow's message; its code 0 (clients read success) is a bug not copied: 109, as for a bad key.
MISSING_KEY_BODY = _ragflow_body(code=109, message="`Authorization` can't be empty")
# A key the authorizer refuses: it denies with RAGFlow's code and message in its context
# (functions/authorizer/handler.py): 109 "Authentication error: API key is invalid!" for an unknown
# key, 109 "Please check your authorization format." for a header without one; ``data_field`` carries
# the envelope's ``data`` for a refusal that has one.
REFUSED_KEY_BODY = (
    '{"code": $context.authorizer.code, "message": "$context.authorizer.message"$context.authorizer.data_field}'
)
# Everything else API Gateway answers itself: the envelope around its own message, status kept.
GATEWAY_ERROR_BODY = '{"code": 100, "message": $context.error.messageString}'


@dataclass(frozen=True)
class GatewayAnswer:
    body: str
    #: None keeps API Gateway's status code.
    status: str | None


# What API Gateway can and cannot tell apart, and so which RAGFlow answer each case gets:
# * Unknown method on a known path, and a path no resource matches: the ANY method of every route's
#   resource and a greedy ``/{proxy+}`` resource (no authorizer: RAGFlow routes before it authenticates)
#   send them to the fallback group's function, whose app answers as RAGFlow's router does — 405, 404,
#   or a redirect to the path it would have matched after merging slashes (functions/api/routing.py).
#   A path API Gateway matches to a resource without methods (``/api/v1``) still gets
#   MISSING_AUTHENTICATION_TOKEN (403) before any authorizer runs: RAGFlow's 404 envelope.
# * No Authorization header: the REQUEST authorizer's identity source is missing, so API Gateway
#   answers UNAUTHORIZED (401) without calling the authorizer: RAGFlow's "can't be empty" answer.
#   UNAUTHORIZED is also what an authorizer raising "Unauthorized" produces, so the authorizer must
#   *deny* bad keys instead of raising, or the client would read "can't be empty".
# * Header present but refused (unknown key, or no key after "Bearer"): the authorizer denies, so
#   ACCESS_DENIED (403), whose body is rendered from the authorizer's context. A deny without that
#   context (an authorizer that does not follow the contract) would render invalid JSON.
# * 5XX (authorizer or integration failure, timeout): the envelope with the status kept, so
#   clients and the 5XXError alarm still see a server-side failure.
GATEWAY_ANSWERS: Mapping[apigw.ResponseType, GatewayAnswer] = {
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN: GatewayAnswer(NOT_FOUND_BODY, "200"),
    apigw.ResponseType.RESOURCE_NOT_FOUND: GatewayAnswer(NOT_FOUND_BODY, "200"),
    apigw.ResponseType.UNAUTHORIZED: GatewayAnswer(MISSING_KEY_BODY, "200"),
    apigw.ResponseType.ACCESS_DENIED: GatewayAnswer(REFUSED_KEY_BODY, "200"),
    apigw.ResponseType.REQUEST_TOO_LARGE: GatewayAnswer(TOO_LARGE_BODY, "200"),
    apigw.ResponseType.DEFAULT_4_XX: GatewayAnswer(GATEWAY_ERROR_BODY, None),
    apigw.ResponseType.DEFAULT_5_XX: GatewayAnswer(GATEWAY_ERROR_BODY, None),
}

# Fields of the JSON access log; error fields say which gateway answer a request got and why.
_ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "authorizerError": "$context.authorizer.error",
    "xrayTraceId": "$context.xrayTraceId",
}


class RestApiConstruct(Construct):
    """The API: for each group of ``groups``, every (path, method) integrated with ``functions[group.name]``;
    whatever no route serves goes to ``fallback`` (the fallback group's function, ``shared.routes``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        groups: Sequence[RouteGroup],
        functions: Mapping[str, lambda_.IFunction],
        fallback: lambda_.IFunction,
        authorizer: apigw.IAuthorizer,
        stage_name: str,
        log_settings: LogSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_settings.retention, removal_policy=log_settings.removal_policy
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{SERVICE_NAME}-{stage_name}",
            description="RAGFlow v0.23.1 compatible HTTP API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Uploads are multipart and downloads raw bytes: pass every body through as binary
            # (base64 to and from Lambda) rather than letting API Gateway re-encode it as text.
            binary_media_types=["*/*"],
            # Execution logging needs the account's API Gateway CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(_ACCESS_LOG_FIELDS)),
                throttling_rate_limit=THROTTLE_RATE_LIMIT,
                throttling_burst_limit=THROTTLE_BURST_LIMIT,
            ),
        )
        for response_type, answer in GATEWAY_ANSWERS.items():
            self.rest_api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=answer.status,
                templates={"application/json": answer.body},
            )
        self._seen: dict[tuple[str, str], str] = {}
        for group in groups:
            self._add_group(group, functions[group.name], authorizer)
        self._add_fallback(groups, fallback)
        self._suppress_findings()

    def _add_group(self, group: RouteGroup, function: lambda_.IFunction, authorizer: apigw.IAuthorizer) -> None:
        # A streaming group's function answers through the Lambda Web Adapter in response_stream mode:
        # CDK then invokes it with InvokeWithResponseStream (.../response-streaming-invocations), and
        # the integration may last as long as the function does, within the stream's 15 minutes.
        integration = apigw.LambdaIntegration(
            function,
            # One invoke permission per function for this API rather than two per method: a group
            # serves up to a dozen methods and the function's resource policy is capped at 20 KB.
            scope_permission_to_method=False,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM if group.streaming else None,
            timeout=(
                Duration.seconds(min(group.timeout_s, STREAMING_INTEGRATION_TIMEOUT_MAX_S)) if group.streaming else None
            ),
        )
        for route in group.routes:
            resource = self.rest_api.root.resource_for_path(route.path)
            for method in route.methods:
                owner = self._seen.setdefault((route.path, method), group.name)
                if owner != group.name:
                    raise ValueError(f"{method} {route.path} is in route groups {owner!r} and {group.name!r}")
                api_method = resource.add_method(
                    method,
                    integration,
                    authorizer=authorizer if group.authenticated else None,
                    authorization_type=(
                        apigw.AuthorizationType.CUSTOM if group.authenticated else apigw.AuthorizationType.NONE
                    ),
                )
                acknowledge(
                    cfn_resource(api_method),
                    "AwsSolutions-COG4",
                    "RAGFlow clients authenticate with an API key (Authorization: Bearer), checked by "
                    "the Lambda REQUEST authorizer; there are no Cognito users.",
                )
                if not group.authenticated:
                    acknowledge(
                        cfn_resource(api_method),
                        "AwsSolutions-APIG4",
                        f"Route group '{group.name}' is public by RAGFlow's contract (health checks "
                        "answer without an API key).",
                    )

    def _add_fallback(self, groups: Sequence[RouteGroup], function: lambda_.IFunction) -> None:
        """ANY on every route's resource (methods it does not serve) and a greedy proxy for every path the
        resources do not match, integrated with the fallback function (RAGFlow's 405/404 and slash rules)."""
        integration = apigw.LambdaIntegration(function, scope_permission_to_method=False)
        paths = dict.fromkeys(route.path for group in groups for route in group.routes)
        resources = [self.rest_api.root.resource_for_path(path) for path in paths]
        resources.append(self.rest_api.root.add_resource("{proxy+}"))
        for resource in resources:
            method = resource.add_method("ANY", integration, authorization_type=apigw.AuthorizationType.NONE)
            acknowledge(
                cfn_resource(method),
                "AwsSolutions-APIG4",
                "Answers only what no route serves (RAGFlow's 405/404 and slash rules, before authentication, "
                "as RAGFlow's router does); it reads no data.",
            )
            acknowledge(
                cfn_resource(method),
                "AwsSolutions-COG4",
                "Answers only what no route serves, before authentication as RAGFlow does; no Cognito users.",
            )

    def _suppress_findings(self) -> None:
        cloud_watch_role = self.rest_api.node.find_child("CloudWatchRole")
        acknowledge(
            cloud_watch_role,
            "AwsSolutions-IAM4",
            "The account-level API Gateway logging role uses AmazonAPIGatewayPushToCloudWatchLogs, the "
            "AWS-managed policy made for exactly this role; only API Gateway can assume it.",
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        )
        acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAFv2 web ACL by default: every route but the health checks needs an API key and the "
            "stage is throttled; an ACL (a monthly cost per ACL) can be associated per deployment.",
        )
        acknowledge(
            cfn_resource(self.rest_api),
            "AwsSolutions-APIG2",
            "Requests are validated by the functions' pydantic models, which answer with RAGFlow's "
            "code-101 messages; an API Gateway validator would answer 400 with a body RAGFlow "
            "clients do not understand.",
        )
