"""Schemathesis over the committed OpenAPI document (docs/openapi.json, the same as the live /openapi.json:
test_openapi checks the drift) against the local server, over real HTTP as an authenticated tenant.

Every operation gets generated requests, valid and invalid; each answer must be no server error (no HTTP 5xx
and no code-100 "Internal server error" envelope) and must conform to the documented responses (content
type and schema). Path ids (and ``dataset_ids`` in bodies) are, half of the time, the ids of the tenant's
own dataset, chat and session, so requests get past the ownership checks into the services.

The budget is small so that it runs in `make test`; run it longer with, e.g.,
``FLOWLESS_SCHEMATHESIS_EXAMPLES=200 .venv/bin/pytest tests/integration/test_schemathesis.py``.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from shared.services.tenants import ModelSetting
from tests.support.api import create_dataset
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import RunningServer

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
EXAMPLES = int(os.environ.get("FLOWLESS_SCHEMATHESIS_EXAMPLES", "15"))
MODEL = "fake-chat@OpenAI-API-Compatible"

schema = schemathesis.openapi.from_path(DOCUMENT)


@schemathesis.check
def no_internal_error(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """RAGFlow answers errors with HTTP 200: an unexpected exception is a code-100 "Internal server error"."""
    if "application/json" not in response.headers.get("content-type", [""])[0]:
        return
    body = response.json()
    if isinstance(body, dict) and body.get("code") == 100 and str(body.get("message", "")).startswith("Internal"):
        raise AssertionError(f"{case.operation.label} answered {body}")


CHECKS = [not_a_server_error, no_internal_error, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


@pytest.fixture
def tenant(server: RunningServer, llm: FakeOpenAI) -> Iterator[dict[str, Any]]:
    """A tenant with a chat model, a dataset, a chat and a session, an agent: real ids for the path parameters."""
    _, key = server.container.tenant_service.create(
        "fuzzed", [ModelSetting(MODEL, "chat", api_base=llm.base_url, api_key="sk-test")]
    )
    with server.client(key) as client:
        dataset = create_dataset(client)["id"]
        chat = client.post("/api/v1/chats", json={"name": "fuzzed"}).json()["data"]["id"]
        session = client.post(f"/api/v1/chats/{chat}/sessions", json={}).json()["data"]["id"]
        agent_spec = json.loads((DOCUMENT.parent / "agents" / "customer_service.json").read_text())
        client.post("/api/v1/agents", json=agent_spec)
        agent = client.get("/api/v1/agents").json()["data"][0]["id"]
        yield {
            "key": key,
            "client": client,
            "ids": {"dataset_id": dataset, "chat_id": chat, "session_id": session, "agent_id": agent},
        }


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_no_server_error_and_answers_conform(
    case: schemathesis.Case, server: RunningServer, tenant: dict[str, Any], data: st.DataObject
) -> None:
    for name in case.path_parameters or {}:
        if name in tenant["ids"] and data.draw(st.booleans(), label=f"real {name}"):
            case.path_parameters[name] = tenant["ids"][name]  # type: ignore[index]
    if isinstance(case.body, dict) and "dataset_ids" in case.body and data.draw(st.booleans(), label="real dataset"):
        case.body["dataset_ids"] = [tenant["ids"]["dataset_id"]]
    case.call_and_validate(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {tenant['key']}"},
        checks=CHECKS,
        timeout=30,
    )


def test_the_checks_catch_an_internal_error(server: RunningServer) -> None:
    """The custom check is not vacuous: an envelope with code 100 "Internal server error" fails it."""
    operation = schema["/v1/system/ping"]["GET"]
    case = operation.Case()
    answer = httpx.Response(
        200,
        json={"code": 100, "message": "Internal server error (request id x)"},
        request=httpx.Request("GET", f"{server.base_url}/v1/system/ping"),
    )
    answer.elapsed = datetime.timedelta(0)
    response = schemathesis.Response.from_any(answer)
    with pytest.raises(AssertionError, match="Internal server error"):
        no_internal_error(None, response, case)  # type: ignore[arg-type]
