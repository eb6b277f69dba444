"""Behind API Gateway, what no route serves reaches the fallback group's function: the ANY method of every
route's resource (a method the path is not served with: RAGFlow's 405) and a greedy ``/{proxy+}`` resource (a
path no resource matches: RAGFlow's 404, or a redirect to the path its router would have matched).

The synthesized template is routed here as API Gateway routes (most specific resource first, then the
method, else ANY), and checked against the emulation the conformance suite runs the Lambda handlers behind.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.routes import FALLBACK_GROUP, ROUTE_GROUPS
from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.test_stack import _function_id, _handler, _integrated_function, _methods, _resource_paths
from tests.support.conformance import gateway_target


def _segments_rank(resource: str, path: str) -> tuple[int, ...] | None:
    """How specifically ``resource`` matches ``path`` (static 2, parameter 1, greedy 0 per segment); None when
    it does not match. An empty segment (``//``) matches only the greedy proxy: should API Gateway merge the
    slashes itself, the request reaches the serving function directly, which answers the same."""
    parts = resource.split("/")[1:]
    wanted = path.split("/")[1:]
    rank: list[int] = []
    for index, part in enumerate(parts):
        if part.endswith("+}"):
            return (*rank, 0) if len(wanted) > index else None
        if index >= len(wanted):
            return None
        if part.startswith("{") and wanted[index]:
            rank.append(1)
        elif part == wanted[index]:
            rank.append(2)
        else:
            return None
    return tuple(rank) if len(parts) == len(wanted) else None


def route_in_template(synth: Synthesized, method: str, path: str) -> str | None:
    """The logical id of the function API Gateway invokes for ``method path``; None for its own 403
    (MISSING_AUTHENTICATION_TOKEN: a resource without that method nor ANY)."""
    methods = _methods(synth)
    resources = set(_resource_paths(synth).values())
    ranked = [(rank, r) for r in resources if (rank := _segments_rank(r, path)) is not None]
    if not ranked:
        return None
    _, resource = max(ranked)
    chosen = methods.get((resource, method)) or methods.get((resource, "ANY"))
    return None if chosen is None else _integrated_function(chosen)


def test_every_routes_resource_has_an_any_method_for_the_fallback(prod: Synthesized) -> None:
    methods = _methods(prod)
    fallback = _function_id(prod, _handler(FALLBACK_GROUP))
    paths = {route.path for group in ROUTE_GROUPS for route in group.routes}
    any_methods = {path for (path, verb) in methods if verb == "ANY"}
    assert any_methods == paths | {"/{proxy+}"}
    for path in any_methods:
        method = methods[(path, "ANY")]
        assert _integrated_function(method) == fallback
        assert method["Integration"]["Type"] == "AWS_PROXY"
        # RAGFlow routes before it authenticates: 405 and 404 need no key
        assert method["AuthorizationType"] == "NONE" and "AuthorizerId" not in method


def test_the_fallback_function_may_be_invoked_by_the_api(prod: Synthesized) -> None:
    fallback = _function_id(prod, _handler(FALLBACK_GROUP))
    permissions = [
        p["Properties"]
        for p in prod.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [fallback, "Arn"]}
        and p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert permissions
    assert any("/*/*" in json.dumps(p["SourceArn"]) for p in permissions)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/chats"),  # served
        ("PUT", "/api/v1/chats/c1"),
        ("POST", "/api/v1/chats/c1/completions"),
        ("GET", "/v1/system/healthz"),
        ("PATCH", "/api/v1/chats"),  # 405
        ("GET", "/api/v1/chats/c1"),
        ("DELETE", "/api/v1/retrieval"),
        ("GET", "/api/v1/nothing"),  # 404 or merged slashes: the proxy
        ("GET", "/api/v1/chats/c1/nothing"),
        ("PUT", "/api/v1/datasets//documents"),
        ("GET", "/api/v1//chats"),
        ("GET", "/nothing"),
    ],
)
def test_the_template_routes_as_the_conformance_emulation_does(prod: Synthesized, method: str, path: str) -> None:
    target = gateway_target(method, path)
    assert route_in_template(prod, method, path) == _function_id(prod, _handler(target.group))


def test_intermediate_resources_are_answered_by_the_gateways_404(prod: Synthesized) -> None:
    # /api/v1 is a resource (a parent of routes) without methods: MISSING_AUTHENTICATION_TOKEN, whose
    # gateway response is RAGFlow's 404 envelope.
    assert route_in_template(prod, "GET", "/api/v1") is None
    (missing,) = [
        r["Properties"]
        for r in prod.resources("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "MISSING_AUTHENTICATION_TOKEN"
    ]
    body: dict[str, Any] = json.loads(missing["ResponseTemplates"]["application/json"])
    assert body == {"code": 100, "message": "<NotFound '404: Not Found'>"}
