"""What API Gateway answers by itself — paths no resource serves, missing or refused API keys, oversized
bodies — read from the synthesized template and rendered, is what the local server answers for the same
request. (Unserved methods and unmatched paths go to the fallback function: test_routing_fallback.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.constants import PRESIGNED_UPLOAD_ROUTE
from tests.infrastructure.conftest import Synthesized
from tests.support.aws_backend import LambdaContext, load_private_module
from tests.support.server import RunningServer

pytestmark = pytest.mark.infrastructure

EVENTS = Path(__file__).resolve().parents[2] / "events"


def gateway_response(synth: Synthesized, response_type: str) -> tuple[int | None, str]:
    """(status code or None to keep API Gateway's, application/json template) of one gateway response."""
    (found,) = [
        r["Properties"]
        for r in synth.resources("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == response_type
    ]
    status = found.get("StatusCode")
    return (int(status) if status else None), found["ResponseTemplates"]["application/json"]


def render(template: str, context: dict[str, Any]) -> Any:
    """The body API Gateway sends: ``$context.<path>`` replaced by its value (the templates use no other VTL)."""

    def value(match: re.Match[str]) -> str:
        node: Any = context
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    return json.loads(re.sub(r"\$context\.([A-Za-z_.]+)", value, template))


def local(server: RunningServer, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    response = httpx.request(method, server.base_url + path, headers=headers or {}, timeout=30)
    return response.status_code, response.json()


def deny_context(server: RunningServer, authorization: str) -> dict[str, Any]:
    """The context of the authorizer's Deny for this header: its handler, run on the server's container."""
    handler = load_private_module("functions.authorizer.handler", server.container)
    event = json.loads((EVENTS / "authorizer_request.json").read_text())
    event["headers"]["Authorization"] = authorization
    answer = handler.handler(event, LambdaContext(function_name="authorizer"))
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    context: dict[str, Any] = answer["context"]
    return context


def test_an_unknown_path_gets_the_local_404(prod: Synthesized, server: RunningServer) -> None:
    for response_type in ("MISSING_AUTHENTICATION_TOKEN", "RESOURCE_NOT_FOUND"):
        status, template = gateway_response(prod, response_type)
        assert (status, render(template, {})) == local(server, "GET", "/api/v1/no_such_thing")


def test_a_request_without_a_key_gets_the_local_answer(prod: Synthesized, server: RunningServer) -> None:
    status, template = gateway_response(prod, "UNAUTHORIZED")
    assert (status, render(template, {})) == local(server, "GET", "/api/v1/datasets")


@pytest.mark.parametrize("authorization", ["Bearer ragflow-not-a-key", "Bearer"])
def test_a_refused_key_gets_the_local_answer(prod: Synthesized, server: RunningServer, authorization: str) -> None:
    status, template = gateway_response(prod, "ACCESS_DENIED")
    body = render(template, {"authorizer": deny_context(server, authorization)})
    assert (status, body) == local(server, "GET", "/api/v1/datasets", {"Authorization": authorization})


def test_a_body_too_large_gets_the_local_answer(prod: Synthesized, server: RunningServer) -> None:
    """API Gateway refuses payloads over 10 MB; the local server refuses a JSON body over its route's limit.
    Both answer RAGFlow's code and message; the gateway, which cannot tell the route, adds the presigned
    upload route as ``data`` (test_beyond.py)."""
    status, template = gateway_response(prod, "REQUEST_TOO_LARGE")
    huge = b'{"name": "' + b"a" * (11 * 1024 * 1024) + b'"}'
    response = httpx.post(
        f"{server.base_url}/api/v1/datasets",
        headers={"Authorization": f"Bearer {server.new_tenant_key()}", "Content-Type": "application/json"},
        content=huge,
        timeout=60,
    )
    answer = render(template, {})
    assert answer.pop("data")["presigned_upload"] == PRESIGNED_UPLOAD_ROUTE
    assert (status, answer) == (response.status_code, response.json())
