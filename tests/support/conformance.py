"""The same conformance cases on both backends.

``local``: the local server over real HTTP. ``lambda``: the route groups' Lambda handlers on DynamoDB and S3
under moto, behind an emulation of the deployed REST API built from what the CDK app builds it from — the
route registry (a served method goes to its group's function, with the authorizer in front), the authorizer
function, the gateway responses of ``infra_cdk/api_construct.py``, and the fallback (the ANY method of every
route's resource and the ``/{proxy+}`` resource) for everything else. A 308 the fallback answers is followed as
a client would follow it. Both answer with ``httpx.Response``, so a case does not know where it runs.
"""

from __future__ import annotations

import base64
import importlib
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, Union
from unittest import mock

import boto3
import httpx
from aws_cdk import aws_apigateway as apigw
from moto import mock_aws

from shared.container import Container
from shared.routes import FALLBACK_GROUP, ROUTE_GROUPS, Route, RouteGroup
from shared.services.tenants import FactorySetting, ModelSetting
from tests.support.dynamo import FAKE_AWS_ENV
from tests.support.server import RunningServer

STAGE = "api"
GATEWAY_HOST = "abc123.execute-api.us-east-1.amazonaws.com"
TABLE = "flowless-conformance"
BUCKET = "flowless-conformance-documents"


class Backend(Protocol):
    name: str

    @property
    def container(self) -> Container: ...

    def tenant(
        self, name: str = "t", *, models: Sequence[ModelSetting] = (), factories: Sequence[FactorySetting] = ()
    ) -> Client:
        """A client authenticated as a new tenant with these model settings."""
        ...

    def anonymous(self, headers: dict[str, str] | None = None) -> Client:
        """A client sending no Authorization header (or the given headers)."""
        ...


def _new_tenant(
    container: Container, name: str, models: Sequence[ModelSetting], factories: Sequence[FactorySetting]
) -> tuple[str, str]:
    tenant, key = container.tenant_service.create(name, list(models))
    for setting in factories:
        container.tenant_service.set_factory(tenant.id, setting)
    return tenant.id, key


@dataclass
class LocalBackend:
    server: RunningServer
    name: str = "local"
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def container(self) -> Container:
        return self.server.container

    def tenant(
        self, name: str = "t", *, models: Sequence[ModelSetting] = (), factories: Sequence[FactorySetting] = ()
    ) -> Client:
        _, key = _new_tenant(self.container, name, models, factories)
        client = self.server.client(key)
        self._clients.append(client)
        return client

    def anonymous(self, headers: dict[str, str] | None = None) -> Client:
        client = httpx.Client(base_url=self.server.base_url, headers=headers or {}, timeout=30)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


#: What a case calls: httpx.Client's request methods (the local client is one; LambdaClient has the same).
Client = Union[httpx.Client, "LambdaClient"]


# -- the deployed API, emulated ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """Where API Gateway sends a request: a function, the resource it matched and the path parameters."""

    group: RouteGroup
    resource: str
    path_parameters: dict[str, str] | None
    authorized: bool


def _route_params(route: Route, path: str) -> dict[str, str] | None:
    if route.pattern.match(path) is None:
        return None
    names = [part[1:-1] for part in route.path.split("/") if part.startswith("{")]
    values = [value for part, value in zip(route.path.split("/"), path.split("/"), strict=True) if part[:1] == "{"]
    return dict(zip(names, values, strict=True))


def gateway_target(method: str, path: str) -> _Target:
    """API Gateway's choice for ``method path`` (the path as sent: it neither merges slashes nor knows
    RAGFlow's rules): the serving method, else the resource's ANY method, else ``/{proxy+}``."""
    resources: list[tuple[RouteGroup, Route, dict[str, str]]] = []
    for group in ROUTE_GROUPS:
        for route in group.routes:
            params = _route_params(route, path)
            if params is not None:
                resources.append((group, route, params))
    for group, route, params in resources:
        if method in route.methods:
            return _Target(group, route.path, params or None, group.authenticated)
    if resources:
        _, route, params = resources[0]
        return _Target(FALLBACK_GROUP, route.path, params or None, False)
    return _Target(FALLBACK_GROUP, "/{proxy+}", {"proxy": path.lstrip("/")}, False)


def _gateway_answer(response_type: apigw.ResponseType, context: dict[str, Any] | None = None) -> httpx.Response:
    """A gateway response as ``infra_cdk/api_construct.py`` configures it (``$context.authorizer.*`` rendered)."""
    from infra_cdk.api_construct import GATEWAY_ANSWERS

    # jsii hands out a new ResponseType object per access: compare the names.
    (answer,) = [a for t, a in GATEWAY_ANSWERS.items() if t.response_type == response_type.response_type]
    body = answer.body
    for key, value in (context or {}).items():
        body = body.replace(f"$context.authorizer.{key}", str(value))
    return httpx.Response(int(answer.status or 403), headers={"content-type": "application/json"}, content=body)


@dataclass
class LambdaClient:
    backend: LambdaBackend
    headers: dict[str, str]

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """As ``httpx.Client.request`` (``json``, ``params``, ``files``, ``headers``, ``content``)."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        sent = httpx.Request(method, f"https://{GATEWAY_HOST}{url}", headers=headers, **kwargs)
        body = sent.read() or None
        sent_headers = {k: v for k, v in sent.headers.items() if k.lower() not in ("host", "content-length")}
        path, query = sent.url.path, sent.url.query.decode()
        for _ in range(3):  # a client follows the fallback's redirects
            response = self.backend.call(method, path, query, sent_headers, body)
            if response.status_code != 308:
                return response
            location = response.headers["location"]
            path, _, query = location.partition("?")
            path = path.removeprefix(f"/{STAGE}")
        raise AssertionError("redirected in a loop")

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@dataclass
class LambdaBackend:
    services: Container
    authorizer: ModuleType
    name: str = "lambda"
    _handlers: dict[str, ModuleType] = field(default_factory=dict)

    @property
    def container(self) -> Container:
        return self.services

    def tenant(
        self, name: str = "t", *, models: Sequence[ModelSetting] = (), factories: Sequence[FactorySetting] = ()
    ) -> Client:
        _, key = _new_tenant(self.container, name, models, factories)
        return LambdaClient(self, {"Authorization": f"Bearer {key}"})

    def anonymous(self, headers: dict[str, str] | None = None) -> Client:
        return LambdaClient(self, dict(headers or {}))

    def _handler(self, group: RouteGroup) -> ModuleType:
        if group.streaming:
            raise NotImplementedError(f"{group.name} streams through the Lambda Web Adapter, not a handler")
        if group.name not in self._handlers:
            self._handlers[group.name] = importlib.import_module(f"{group.module}.handler")
        return self._handlers[group.name]

    def call(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes | None) -> httpx.Response:
        target = gateway_target(method, path)
        context: dict[str, Any] = {}
        if target.authorized:
            authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            if not authorization.strip():  # the identity source is missing: the authorizer is not called
                return _gateway_answer(apigw.ResponseType.UNAUTHORIZED)
            decision = self.authorizer.handler(_authorizer_event(method, path, authorization), _Context())
            if decision["policyDocument"]["Statement"][0]["Effect"] != "Allow":
                return _gateway_answer(apigw.ResponseType.ACCESS_DENIED, decision["context"])
            context = {**decision["context"], "principalId": decision["principalId"]}
        event = _proxy_event(method, path, query, headers, body, target, context)
        answer = self._handler(target.group).handler(event, _Context())
        content = answer.get("body") or ""
        raw = base64.b64decode(content) if answer.get("isBase64Encoded") else content.encode()
        response_headers = {k: v for k, v in (answer.get("headers") or {}).items()}
        for key, values in (answer.get("multiValueHeaders") or {}).items():
            response_headers[key] = values[-1]
        return httpx.Response(answer["statusCode"], headers=response_headers, content=raw)


@dataclass
class _Context:
    function_name: str = "flowless-conformance"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:flowless-conformance"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _authorizer_event(method: str, path: str, authorization: str) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:abc123/{STAGE}/{method}{path}",
        "path": path,
        "httpMethod": method,
        "headers": {"Authorization": authorization},
        "requestContext": {"stage": STAGE, "httpMethod": method, "path": f"/{STAGE}{path}"},
    }


def _proxy_event(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes | None,
    target: _Target,
    authorizer: dict[str, Any],
) -> dict[str, Any]:
    """An API Gateway REST proxy event, shaped as the samples in events/ are."""
    multi_query: dict[str, list[str]] = {}
    for key, value in httpx.QueryParams(query).multi_items():
        multi_query.setdefault(key, []).append(value)
    all_headers = {"Host": GATEWAY_HOST, **headers}
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "abc123",
        "domainName": GATEWAY_HOST,
        "httpMethod": method,
        "identity": {"sourceIp": "203.0.113.10", "userAgent": "conformance"},
        "path": f"/{STAGE}{path}",
        "protocol": "HTTP/1.1",
        "requestId": str(uuid.uuid4()),
        "resourcePath": target.resource,
        "stage": STAGE,
    }
    if authorizer:
        context["authorizer"] = authorizer
    return {
        "resource": target.resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": target.path_parameters,
        "stageVariables": None,
        "requestContext": context,
        # binary_media_types */*: API Gateway hands every body over base64-encoded.
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


@contextmanager
def lambda_backend(index_dir: Path) -> Iterator[LambdaBackend]:
    """The handlers on a fresh table and bucket under moto; the search index is the embedded engine (a stage
    setting on AWS too) in ``index_dir``."""
    from shared.adapters.aws.dynamodb_store import DynamoMetadataStore
    from shared.adapters.local.embedded_index import EmbeddedSearchIndex
    from shared.config import get_settings
    from shared.container import get_container

    env = {
        **FAKE_AWS_ENV,
        "FLOWLESS_BACKEND": "aws",
        "FLOWLESS_TABLE_NAME": TABLE,
        "FLOWLESS_DOCUMENTS_BUCKET": BUCKET,
        "FLOWLESS_SECRETS_PREFIX": "/flowless/conformance/",  # tenants' model keys: SSM, under moto too
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "flowless",
        "POWERTOOLS_METRICS_NAMESPACE": "Flowless",
    }
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env))
        stack.enter_context(mock_aws())
        get_settings.cache_clear()
        get_container.cache_clear()
        DynamoMetadataStore(TABLE, region="us-east-1").create_table()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        container = get_container()
        container.overrides["search_index"] = EmbeddedSearchIndex(index_dir)
        authorizer = importlib.reload(importlib.import_module("functions.authorizer.handler"))
        try:
            yield LambdaBackend(container, authorizer)
        finally:
            get_settings.cache_clear()
            get_container.cache_clear()
