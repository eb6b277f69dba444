"""Agents and their sessions over real HTTP: RAGFlow's answers, the DSL checks, versions, tenant isolation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.repos.agents import KEPT_VERSIONS, AgentRepository
from tests.support.server import RunningServer

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "agents"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


def simple_dsl(prologue: str = "Hello there!", **begin_inputs: Any) -> dict[str, Any]:
    return {
        "components": {
            "begin": {
                "obj": {"component_name": "Begin", "params": {"prologue": prologue, "inputs": begin_inputs}},
                "downstream": ["Message:Echo"],
                "upstream": [],
            },
            "Message:Echo": {
                "obj": {"component_name": "Message", "params": {"content": ["You asked: {sys.query}"]}},
                "downstream": [],
                "upstream": ["begin"],
            },
        },
        "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": []},
        "history": [],
        "path": [],
        "retrieval": [],
    }


def create_agent(api: httpx.Client, title: str = "helper", dsl: dict[str, Any] | None = None) -> dict[str, Any]:
    res = api.post("/api/v1/agents", json={"title": title, "dsl": dsl or simple_dsl(), "description": "d"}).json()
    assert res == {"code": 0, "data": True, "message": "success"}, res
    listed = api.get("/api/v1/agents", params={"title": title}).json()
    assert listed["code"] == 0, listed
    agent: dict[str, Any] = listed["data"][0]
    return agent


# -- agents -------------------------------------------------------------------------------------------------
def test_create_list_update_delete(api: httpx.Client) -> None:
    agent = create_agent(api, "helper")
    assert agent["title"] == "helper" and agent["description"] == "d"
    assert agent["dsl"]["components"]["begin"]["obj"]["component_name"] == "Begin"
    assert {"id", "create_time", "create_date", "update_time", "update_date", "user_id", "avatar"} <= set(agent)

    second = create_agent(api, "second")
    listed = api.get("/api/v1/agents").json()["data"]
    assert [a["id"] for a in listed] == [second["id"], agent["id"]]  # update_time, newest first
    asc = api.get("/api/v1/agents", params={"orderby": "create_time", "desc": "false"}).json()["data"]
    assert [a["id"] for a in asc] == [agent["id"], second["id"]]
    assert api.get("/api/v1/agents", params={"page": 2, "page_size": 1}).json()["data"][0]["id"] == agent["id"]
    assert api.get("/api/v1/agents", params={"id": agent["id"]}).json()["data"][0]["title"] == "helper"

    res = api.put(f"/api/v1/agents/{agent['id']}", json={"title": "renamed", "description": None}).json()
    assert res == {"code": 0, "data": True, "message": "success"}
    updated = api.get("/api/v1/agents", params={"id": agent["id"]}).json()["data"][0]
    assert updated["title"] == "renamed" and updated["description"] == "d"  # null changes nothing

    assert api.delete(f"/api/v1/agents/{agent['id']}").json() == {"code": 0, "data": True, "message": "success"}
    assert api.get("/api/v1/agents", params={"id": agent["id"]}).json() == {
        "code": 102,
        "message": "The agent doesn't exist.",
    }


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"title": "x"}, 101, "No DSL data in request."),
        ({"title": "x", "dsl": None}, 101, "No DSL data in request."),
        ({"dsl": {}}, 101, "No title in request."),
        ({"title": "  ", "dsl": simple_dsl()}, 102, "`title` cannot be empty."),
        ({"title": "x", "dsl": "{not json"}, 101, "`dsl` is not valid JSON"),
        ({"title": "x", "dsl": []}, 101, "`dsl` should be a JSON object."),
        ({"title": "x", "dsl": {}}, 102, "The DSL has no `components`."),
        ({"title": 5, "dsl": simple_dsl()}, 101, "Field: <title>"),
    ],
)
def test_create_refusals(api: httpx.Client, body: dict[str, Any], code: int, message: str) -> None:
    res = api.post("/api/v1/agents", json=body).json()
    assert res["code"] == code and res["message"].startswith(message), res
    assert api.get("/api/v1/agents").json()["data"] == []


def test_dsl_may_be_json_text(api: httpx.Client) -> None:
    res = api.post("/api/v1/agents", json={"title": "text", "dsl": json.dumps(simple_dsl())}).json()
    assert res["code"] == 0
    assert api.get("/api/v1/agents").json()["data"][0]["dsl"]["components"]["Message:Echo"]


def test_duplicate_title(api: httpx.Client) -> None:
    create_agent(api, "same")
    res = api.post("/api/v1/agents", json={"title": "same", "dsl": simple_dsl()}).json()
    assert res == {"code": 102, "message": "Agent with title same already exists."}
    other = create_agent(api, "other")
    res = api.put(f"/api/v1/agents/{other['id']}", json={"title": "Same"}).json()
    assert res == {"code": 102, "message": "Agent with title Same already exists."}


@pytest.mark.parametrize("component", ["Invoke", "ExeSQL", "Generate", "Code"])
def test_unsupported_components_are_refused_at_create_and_update(api: httpx.Client, component: str) -> None:
    dsl = simple_dsl()
    dsl["components"]["Other:X"] = {"obj": {"component_name": component, "params": {}}, "downstream": []}
    res = api.post("/api/v1/agents", json={"title": "bad", "dsl": dsl}).json()
    assert res == {"code": 102, "message": f"Component '{component}' is not supported"}
    agent = create_agent(api, "good")
    res = api.put(f"/api/v1/agents/{agent['id']}", json={"dsl": dsl}).json()
    assert res == {"code": 102, "message": f"Component '{component}' is not supported"}
    assert "Other:X" not in api.get("/api/v1/agents").json()["data"][0]["dsl"]["components"]


def test_unsupported_agent_tools_are_refused(api: httpx.Client) -> None:
    dsl = copy.deepcopy(example("research_agent")["dsl"])
    dsl["components"]["Agent:Researcher"]["obj"]["params"]["tools"].append(
        {"component_name": "TavilySearch", "name": "web", "params": {}}
    )
    res = api.post("/api/v1/agents", json={"title": "bad", "dsl": dsl}).json()
    assert res == {"code": 102, "message": "Component 'TavilySearch' is not supported"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["components"].pop("begin"), "The DSL needs a Begin component with the id `begin`."),
        (
            lambda d: d["components"]["begin"].update(downstream=["Nowhere"]),
            "Component 'begin': `downstream` names unknown components: Nowhere",
        ),
        (
            lambda d: d["components"]["Message:Echo"]["obj"].update(params={"content": 5}),
            "Component 'Message:Echo' (Message): `content`",
        ),
        (
            lambda d: d["components"]["Message:Echo"]["obj"].pop("component_name"),
            "Component 'Message:Echo' has no `obj.component_name`.",
        ),
    ],
)
def test_malformed_dsls_are_refused(api: httpx.Client, change: Any, message: str) -> None:
    dsl = simple_dsl()
    change(dsl)
    res = api.post("/api/v1/agents", json={"title": "bad", "dsl": dsl}).json()
    assert res["code"] == 102 and res["message"].startswith(message), res


def test_the_examples_are_accepted(api: httpx.Client) -> None:
    for name in ("retrieval_qa", "customer_service", "research_agent"):
        spec = example(name)
        res = api.post("/api/v1/agents", json=spec).json()
        assert res["code"] == 0, (name, res)


def test_update_with_a_dsl_alone_applies_whole_and_keeps_twenty_versions(
    api: httpx.Client, server: RunningServer
) -> None:
    agent = create_agent(api, "versions")
    for n in range(KEPT_VERSIONS + 2):
        res = api.put(f"/api/v1/agents/{agent['id']}", json={"dsl": simple_dsl(prologue=f"v{n}")}).json()
        assert res["code"] == 0, res
    stored = api.get("/api/v1/agents", params={"id": agent["id"]}).json()["data"][0]
    assert stored["title"] == "versions"
    assert stored["dsl"]["components"]["begin"]["obj"]["params"]["prologue"] == f"v{KEPT_VERSIONS + 1}"
    versions = AgentRepository(server.container.metadata).versions(agent["id"])
    assert len(versions) == KEPT_VERSIONS
    assert versions[0]["dsl"]["components"]["begin"]["obj"]["params"]["prologue"] == f"v{KEPT_VERSIONS + 1}"
    assert all(v["title"].startswith("versions_") for v in versions)


def test_a_refused_update_changes_nothing(api: httpx.Client) -> None:
    agent = create_agent(api, "steady")
    bad = simple_dsl()
    bad["components"]["X"] = {"obj": {"component_name": "Nope", "params": {}}}
    res = api.put(f"/api/v1/agents/{agent['id']}", json={"title": "moved", "dsl": bad}).json()
    assert res["code"] == 102
    assert api.get("/api/v1/agents", params={"id": agent["id"]}).json()["data"][0]["title"] == "steady"


def test_list_filters_and_paging_refusals(api: httpx.Client) -> None:
    create_agent(api, "one")
    assert api.get("/api/v1/agents", params={"title": "nope"}).json() == {
        "code": 102,
        "message": "The agent doesn't exist.",
    }
    assert api.get("/api/v1/agents", params={"page": 0}).json()["code"] == 101
    assert api.get("/api/v1/agents", params={"orderby": "title"}).json()["code"] == 101
    assert api.get("/api/v1/agents", params={"page_size": 0}).json() == {"code": 0, "data": []}


# -- sessions -----------------------------------------------------------------------------------------------
def test_session_lifecycle(api: httpx.Client) -> None:
    agent = create_agent(api, "sessions")
    res = api.post(f"/api/v1/agents/{agent['id']}/sessions", json={}).json()
    assert res["code"] == 0, res
    session = res["data"]
    assert set(session) == {"id", "agent_id", "user_id", "message", "source", "dsl"}
    assert session["agent_id"] == agent["id"] and session["source"] == "agent"
    assert session["message"] == [{"role": "assistant", "content": "Hello there!"}]
    assert session["user_id"]  # the tenant, when none is given
    assert session["dsl"]["history"] == [] and session["dsl"]["globals"]["sys.conversation_turns"] == 0

    mine = api.post(f"/api/v1/agents/{agent['id']}/sessions", params={"user_id": "u-7"}).json()["data"]
    assert mine["user_id"] == "u-7"
    listed = api.get(f"/api/v1/agents/{agent['id']}/sessions").json()["data"]
    assert [s["id"] for s in listed] == [mine["id"], session["id"]]
    assert listed[0]["messages"] == [{"role": "assistant", "content": "Hello there!"}] and "message" not in listed[0]
    assert "dsl" in listed[0]
    assert "dsl" not in api.get(f"/api/v1/agents/{agent['id']}/sessions", params={"dsl": "false"}).json()["data"][0]
    by_user = api.get(f"/api/v1/agents/{agent['id']}/sessions", params={"user_id": "u-7"}).json()["data"]
    assert [s["id"] for s in by_user] == [mine["id"]]
    by_id = api.get(f"/api/v1/agents/{agent['id']}/sessions", params={"id": session["id"]}).json()["data"]
    assert [s["id"] for s in by_id] == [session["id"]]

    res = api.request("DELETE", f"/api/v1/agents/{agent['id']}/sessions", json={"ids": [session["id"]]}).json()
    assert res == {"code": 0}
    assert [s["id"] for s in api.get(f"/api/v1/agents/{agent['id']}/sessions").json()["data"]] == [mine["id"]]


def test_session_keeps_the_begin_inputs_given(api: httpx.Client) -> None:
    agent = create_agent(
        api,
        "inputs",
        simple_dsl(
            name={"name": "Name", "type": "line", "optional": False},
            age={"name": "Age", "type": "integer", "optional": True},
        ),
    )
    res = api.post(f"/api/v1/agents/{agent['id']}/sessions", json={"name": "Ada", "age": "36", "x": 1}).json()
    inputs = res["data"]["dsl"]["components"]["begin"]["obj"]["params"]["inputs"]
    assert inputs["name"]["value"] == "Ada" and inputs["age"]["value"] == 36
    res = api.post(f"/api/v1/agents/{agent['id']}/sessions", json={"age": "old"}).json()
    assert res == {"code": 102, "message": "The input `age` should be an integer."}


def test_partial_and_refused_session_deletes(api: httpx.Client) -> None:
    agent = create_agent(api, "deletes")
    url = f"/api/v1/agents/{agent['id']}/sessions"
    first = api.post(url, json={}).json()["data"]["id"]
    second = api.post(url, json={}).json()["data"]["id"]
    res = api.request("DELETE", url, json={"ids": [first, "missing"]}).json()
    assert res == {
        "code": 0,
        "message": "Partially deleted 1 sessions with 1 errors",
        "data": {"success_count": 1, "errors": ["The agent doesn't own the session missing"]},
    }
    res = api.request("DELETE", url, json={"ids": ["missing", "gone"]}).json()
    assert res == {
        "code": 102,
        "message": "The agent doesn't own the session missing; The agent doesn't own the session gone",
    }
    res = api.request("DELETE", url, json={"ids": [second, second]}).json()
    assert res == {
        "code": 0,
        "message": "Partially deleted 1 sessions with 1 errors",
        "data": {"success_count": 1, "errors": [f"Duplicate session ids: {second}"]},
    }
    for _ in range(2):
        api.post(url, json={})
    assert api.request("DELETE", url).json() == {"code": 0}  # no body: every session
    assert api.get(url).json()["data"] == []


def test_deleting_an_agent_deletes_its_sessions(api: httpx.Client, server: RunningServer) -> None:
    agent = create_agent(api, "gone")
    api.post(f"/api/v1/agents/{agent['id']}/sessions", json={})
    api.delete(f"/api/v1/agents/{agent['id']}")
    assert server.container.metadata.query(f"AGENT#{agent['id']}") == []


# -- tenant isolation ---------------------------------------------------------------------------------------
def test_another_tenant_is_answered_as_for_a_missing_agent(api: httpx.Client, other_api: httpx.Client) -> None:
    agent = create_agent(api, "private")
    session = api.post(f"/api/v1/agents/{agent['id']}/sessions", json={}).json()["data"]
    for client, agent_id in ((other_api, agent["id"]), (api, "0" * 32)):
        assert client.get("/api/v1/agents", params={"id": agent_id}).json() == {
            "code": 102,
            "message": "The agent doesn't exist.",
        }
        owner_only = {"code": 103, "message": "Only owner of canvas authorized for this operation."}
        assert client.put(f"/api/v1/agents/{agent_id}", json={"title": "mine"}).json() == owner_only
        assert client.delete(f"/api/v1/agents/{agent_id}").json() == owner_only
        assert client.post(f"/api/v1/agents/{agent_id}/sessions", json={}).json() == {
            "code": 102,
            "message": "You cannot access the agent.",
        }
        assert client.get(f"/api/v1/agents/{agent_id}/sessions").json() == {
            "code": 102,
            "message": f"You don't own the agent {agent_id}.",
        }
        res = client.request("DELETE", f"/api/v1/agents/{agent_id}/sessions", json={"ids": [session["id"]]})
        assert res.json() == {"code": 102, "message": f"You don't own the agent {agent_id}"}
    assert other_api.get("/api/v1/agents").json()["data"] == []
    assert api.get("/api/v1/agents", params={"id": agent["id"]}).json()["data"][0]["title"] == "private"
    assert len(api.get(f"/api/v1/agents/{agent['id']}/sessions").json()["data"]) == 1
