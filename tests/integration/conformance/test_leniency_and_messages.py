"""What RAGFlow's server lets through on the chat side and in retrieval (sessions ordered by any column, page 0,
a vector weight above 1), and the messages it answers (duplicate chat names, empty session names, UUID1)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.support.conformance import Backend, Client


def new_chat(api: Client, name: str = "assistant") -> str:
    chat_id: str = api.post("/api/v1/chats", json={"name": name}).json()["data"]["id"]
    return chat_id


def session_names(api: Client, chat_id: str, **params: Any) -> list[str]:
    res = api.get(f"/api/v1/chats/{chat_id}/sessions", params=params).json()
    assert res["code"] == 0, res
    return [session["name"] for session in res["data"]]


# -- leniency -------------------------------------------------------------------------------------------


def test_sessions_can_be_ordered_by_any_column(ragflow: Backend) -> None:
    api = ragflow.tenant()
    chat = new_chat(api)
    for name, user in (("banana", "u2"), ("apple", "u3"), ("cherry", "u1")):
        api.post(f"/api/v1/chats/{chat}/sessions", json={"name": name, "user_id": user})
        time.sleep(0.002)  # distinct creation times
    assert session_names(api, chat, orderby="name", desc="false") == ["apple", "banana", "cherry"]
    assert session_names(api, chat, orderby="name") == ["cherry", "banana", "apple"]
    assert session_names(api, chat, orderby="user_id", desc="false") == ["cherry", "banana", "apple"]
    assert session_names(api, chat, orderby="create_date", desc="false") == ["banana", "apple", "cherry"]
    assert session_names(api, chat, orderby="name", desc="false", page=2, page_size=2) == ["cherry"]
    assert session_names(api, chat, orderby="name", user_id="u3") == ["apple"]
    # the JSON columns (messages, references) and names of no column are refused clearly
    res = api.get(f"/api/v1/chats/{chat}/sessions", params={"orderby": "message"}).json()
    assert res["code"] == 101 and "Field: <orderby>" in res["message"]


@pytest.mark.parametrize("what", ["chats", "sessions"])
def test_page_zero_is_the_first_page(ragflow: Backend, what: str) -> None:
    api = ragflow.tenant()
    chat = new_chat(api, "first")
    if what == "chats":
        new_chat(api, "second")
        path = "/api/v1/chats"
    else:
        for name in ("s1", "s2"):
            api.post(f"/api/v1/chats/{chat}/sessions", json={"name": name})
        path = f"/api/v1/chats/{chat}/sessions"
    first = api.get(path, params={"page": 1, "page_size": 1}).json()["data"]
    assert api.get(path, params={"page": 0, "page_size": 1}).json()["data"] == first
    assert api.get(path, params={"page": -1}).json()["code"] == 101


def test_retrieval_clamps_a_vector_similarity_weight_above_one(ragflow: Backend) -> None:
    api = ragflow.tenant()
    dataset = api.post("/api/v1/datasets", json={"name": "otters"}).json()["data"]["id"]
    upload = api.post(f"/api/v1/datasets/{dataset}/documents", files=[("file", ("otters.txt", b"Otters."))]).json()
    document = upload["data"][0]["id"]
    added = api.post(
        f"/api/v1/datasets/{dataset}/documents/{document}/chunks",
        json={"content": "Otters hold hands while they sleep so they do not drift apart."},
    ).json()
    assert added["code"] == 0, added

    def similarities(weight: float) -> list[tuple[float, float, float]]:
        res = api.post(
            "/api/v1/retrieval",
            json={
                "question": "why do otters hold hands",
                "dataset_ids": [dataset],
                "vector_similarity_weight": weight,
                "similarity_threshold": 0,
            },
        ).json()
        assert res["code"] == 0, res
        return [(c["similarity"], c["vector_similarity"], c["term_similarity"]) for c in res["data"]["chunks"]]

    clamped = similarities(1.5)
    assert clamped and clamped == similarities(1.0)
    res = api.post(
        "/api/v1/retrieval", json={"question": "q", "dataset_ids": [dataset], "vector_similarity_weight": -1}
    )
    assert res.json()["code"] == 102


# -- messages -------------------------------------------------------------------------------------------


def test_duplicate_chat_names(ragflow: Backend) -> None:
    api = ragflow.tenant()
    first = new_chat(api, "Support")
    res = api.post("/api/v1/chats", json={"name": "support"}).json()
    assert res == {"code": 102, "message": "Duplicated chat name in creating chat."}
    second = new_chat(api, "Sales")
    res = api.put(f"/api/v1/chats/{second}", json={"name": "SUPPORT"}).json()
    assert res == {"code": 102, "message": "Duplicated chat name in updating chat."}
    # renaming a chat to its own name in another case is no clash
    assert api.put(f"/api/v1/chats/{first}", json={"name": "SUPPORT"}).json() == {"code": 0}


@pytest.mark.parametrize("name", ["", "   ", None])
def test_empty_session_names(ragflow: Backend, name: str | None) -> None:
    api = ragflow.tenant()
    chat = new_chat(api)
    res = api.post(f"/api/v1/chats/{chat}/sessions", json={"name": name}).json()
    assert res == {"code": 102, "message": "`name` can not be empty."}
    session = api.post(f"/api/v1/chats/{chat}/sessions", json={"name": "kept"}).json()["data"]["id"]
    res = api.put(f"/api/v1/chats/{chat}/sessions/{session}", json={"name": name}).json()
    assert res == {"code": 102, "message": "`name` can not be empty."}
    assert session_names(api, chat) == ["kept"]


@pytest.mark.parametrize("dataset_id", ["not-a-uuid", uuid.uuid4().hex, "0" * 32])
def test_an_id_that_is_not_a_uuid1_is_invalid_uuid1_format(ragflow: Backend, dataset_id: str) -> None:
    api = ragflow.tenant()
    res = api.put(f"/api/v1/datasets/{dataset_id}", json={"name": "x"}).json()
    assert res["code"] == 101 and "Invalid UUID1 format" in res["message"], res
    res = api.get("/api/v1/datasets", params={"id": dataset_id}).json()
    assert res["code"] == 101 and "Invalid UUID1 format" in res["message"], res
    res = api.request("DELETE", "/api/v1/datasets", json={"ids": [dataset_id]}).json()
    assert res["code"] == 101 and "Invalid UUID1 format" in res["message"], res


def test_unknown_ids_answer_ragflow_messages_not_exceptions(ragflow: Backend) -> None:
    # RAGFlow answers some unknown ids with a Python exception's repr and code 100: do not copy.
    api = ragflow.tenant()
    unknown = uuid.uuid1().hex
    assert api.put(f"/api/v1/chats/{unknown}", json={"name": "x"}).json() == {
        "code": 102,
        "message": "You do not own the chat",
    }
    res = api.get(f"/api/v1/chats/{unknown}/sessions").json()
    assert res == {"code": 102, "message": f"You don't own the assistant {unknown}."}
    res = api.put(f"/api/v1/chats/{unknown}/sessions/{unknown}", json={"name": "x"}).json()
    assert res == {"code": 102, "message": "You do not own the session"}
    res = api.post("/api/v1/chats", json={"name": "c", "dataset_ids": "abc"}).json()
    assert res["code"] == 101 and "Field: <dataset_ids>" in res["message"]
