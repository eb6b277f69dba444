"""Deleting chats and sessions with some invalid ids: RAGFlow acts on the valid ones, then reports; and the
``delete_all`` rule of newer clients (v0.25+), whose default call must never wipe data."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.test_agents_api import simple_dsl
from tests.support.conformance import Backend, Client


def make_chats(api: Client, count: int) -> list[str]:
    return [api.post("/api/v1/chats", json={"name": f"chat{i}"}).json()["data"]["id"] for i in range(count)]


def chat_ids(api: Client) -> set[str]:
    return {chat["id"] for chat in api.get("/api/v1/chats", params={"page_size": 100}).json()["data"]}


def make_sessions(api: Client, chat_id: str, count: int) -> list[str]:
    return [
        api.post(f"/api/v1/chats/{chat_id}/sessions", json={"name": f"s{i}"}).json()["data"]["id"] for i in range(count)
    ]


def session_ids(api: Client, chat_id: str) -> set[str]:
    listed = api.get(f"/api/v1/chats/{chat_id}/sessions", params={"page_size": 100}).json()["data"]
    return {session["id"] for session in listed}


def delete_chats(api: Client, body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.request("DELETE", "/api/v1/chats", json=body).json()
    return answer


def delete_sessions(api: Client, chat_id: str, body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.request("DELETE", f"/api/v1/chats/{chat_id}/sessions", json=body).json()
    return answer


# -- partial success ------------------------------------------------------------------------------------


def test_chats_the_found_ones_are_deleted_and_the_others_reported(ragflow: Backend) -> None:
    api = ragflow.tenant()
    kept, gone = make_chats(api, 2)
    missing = uuid.uuid1().hex
    theirs = make_chats(ragflow.tenant("other"), 1)[0]  # another tenant's id is just as unknown
    res = delete_chats(api, {"ids": [gone, missing, theirs]})
    assert res == {
        "code": 0,
        "message": "Partially deleted 1 chats with 2 errors",
        "data": {"success_count": 1, "errors": [f"Assistant({missing}) not found.", f"Assistant({theirs}) not found."]},
    }
    assert chat_ids(api) == {kept}


def test_chats_nothing_found_is_an_error_and_changes_nothing(ragflow: Backend) -> None:
    api = ragflow.tenant()
    ids = make_chats(api, 2)
    res = delete_chats(api, {"ids": ["x", "y"]})
    assert res == {"code": 102, "message": "Assistant(x) not found.; Assistant(y) not found."}
    assert chat_ids(api) == set(ids)


def test_chats_repeated_ids_are_reported_when_every_id_was_found(ragflow: Backend) -> None:
    api = ragflow.tenant()
    a, b = make_chats(api, 2)
    res = delete_chats(api, {"ids": [a, a, b]})
    assert res == {
        "code": 0,
        "message": "Partially deleted 2 chats with 1 errors",
        "data": {"success_count": 2, "errors": [f"Duplicate assistant ids: {a}"]},
    }
    # with unknown ids too, RAGFlow reports only those
    c = make_chats(api, 1)[0]
    res = delete_chats(api, {"ids": [c, c, "nope"]})
    assert res["message"] == "Partially deleted 1 chats with 1 errors"
    assert res["data"] == {"success_count": 1, "errors": ["Assistant(nope) not found."]}
    assert chat_ids(api) == set()


def test_sessions_the_found_ones_are_deleted_and_the_others_reported(ragflow: Backend) -> None:
    api = ragflow.tenant()
    chat, other_chat = make_chats(api, 2)
    kept, gone = make_sessions(api, chat, 2)
    elsewhere = make_sessions(api, other_chat, 1)[0]
    res = delete_sessions(api, chat, {"ids": [gone, "nope", elsewhere]})
    assert res == {
        "code": 0,
        "message": "Partially deleted 1 sessions with 2 errors",
        "data": {
            "success_count": 1,
            "errors": ["The chat doesn't own the session nope", f"The chat doesn't own the session {elsewhere}"],
        },
    }
    assert session_ids(api, chat) == {kept} and session_ids(api, other_chat) == {elsewhere}
    res = delete_sessions(api, chat, {"ids": ["nope"]})
    assert res == {"code": 102, "message": "The chat doesn't own the session nope"}
    res = delete_sessions(api, chat, {"ids": [kept, kept]})
    assert res == {
        "code": 0,
        "message": "Partially deleted 1 sessions with 1 errors",
        "data": {"success_count": 1, "errors": [f"Duplicate session ids: {kept}"]},
    }


# -- newer clients --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"ids": None, "delete_all": False},  # ragflow-sdk v0.25+'s default call
        {"ids": [], "delete_all": False},
        {"delete_all": False},
        {"delete_all": None},
        {"ids": None, "delete_all": None},
    ],
)
def test_a_body_with_delete_all_deletes_nothing_unless_it_is_true(ragflow: Backend, body: dict[str, Any]) -> None:
    api = ragflow.tenant()
    chats = make_chats(api, 2)
    sessions = make_sessions(api, chats[0], 2)
    assert delete_sessions(api, chats[0], body) == {"code": 0}
    assert session_ids(api, chats[0]) == set(sessions)
    assert delete_chats(api, body) == {"code": 0}
    assert chat_ids(api) == set(chats)


def test_delete_all_true_deletes_everything_and_ids_still_select(ragflow: Backend) -> None:
    api = ragflow.tenant()
    theirs = ragflow.tenant("other")
    spared = make_chats(theirs, 1)
    a, b, c = make_chats(api, 3)
    s1, s2 = make_sessions(api, a, 2)
    assert delete_sessions(api, a, {"ids": [s1], "delete_all": False}) == {"code": 0}
    assert session_ids(api, a) == {s2}
    assert delete_sessions(api, a, {"ids": None, "delete_all": True}) == {"code": 0}
    assert session_ids(api, a) == set()
    assert delete_chats(api, {"ids": [a], "delete_all": False}) == {"code": 0}
    assert chat_ids(api) == {b, c}
    assert delete_chats(api, {"delete_all": True}) == {"code": 0}
    assert chat_ids(api) == set() and chat_ids(theirs) == set(spared)


@pytest.mark.parametrize("body", [None, {}, {"ids": None}, {"ids": []}])
def test_without_delete_all_the_v0_23_rule_stands(ragflow: Backend, body: Any) -> None:
    api = ragflow.tenant()
    chats = make_chats(api, 2)
    make_sessions(api, chats[0], 2)
    payload = {} if body is None else {"json": body}
    assert api.request("DELETE", f"/api/v1/chats/{chats[0]}/sessions", **payload).json() == {"code": 0}
    assert session_ids(api, chats[0]) == set()
    assert api.request("DELETE", "/api/v1/chats", **payload).json() == {"code": 0}
    assert chat_ids(api) == set()


@pytest.mark.parametrize("body", [{"delete_all": "yes"}, {"delete_all": 1}, {"ids": "abc"}, {"id": ["x"]}])
def test_malformed_delete_bodies_are_refused_and_delete_nothing(ragflow: Backend, body: dict[str, Any]) -> None:
    # A string where a list is required is refused (RAGFlow iterates it character by character: do not copy);
    # a misspelt key is refused rather than read as "delete everything".
    api = ragflow.tenant()
    chats = make_chats(api, 1)
    sessions = make_sessions(api, chats[0], 1)
    assert delete_chats(api, body)["code"] == 101
    assert delete_sessions(api, chats[0], body)["code"] == 101
    assert chat_ids(api) == set(chats) and session_ids(api, chats[0]) == set(sessions)


def test_agent_sessions_follow_the_delete_all_rule_too(ragflow: Backend) -> None:
    api = ragflow.tenant()
    created = api.post("/api/v1/agents", json={"title": "helper", "dsl": simple_dsl(), "description": "d"}).json()
    assert created["code"] == 0, created
    (agent,) = api.get("/api/v1/agents", params={"title": "helper"}).json()["data"]
    url = f"/api/v1/agents/{agent['id']}/sessions"
    sessions = {api.post(url, json={}).json()["data"]["id"] for _ in range(2)}

    def listed() -> set[str]:
        return {s["id"] for s in api.get(url).json()["data"]}

    assert api.request("DELETE", url, json={"ids": None, "delete_all": False}).json() == {"code": 0}
    assert listed() == sessions
    assert api.request("DELETE", url, json={"delete_all": True}).json() == {"code": 0}
    assert listed() == set()
