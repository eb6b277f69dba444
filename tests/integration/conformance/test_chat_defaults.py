"""Chat assistant defaults as RAGFlow's server sets them: ``knowledge`` is a required variable, its opener, a
system prompt using ``{knowledge}``, ``prompt.top_n: 0`` accepted, unknown ``llm`` keys kept and echoed."""

from __future__ import annotations

from typing import Any

from shared.schemas.chats import DEFAULT_SYSTEM_PROMPT
from tests.support.conformance import Backend, Client

OPENER = "Hi! I'm your assistant. What can I do for you?"


def new_chat(api: Client, name: str = "assistant", **fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.post("/api/v1/chats", json={"name": name, **fields}).json()
    return answer


def only_chat(api: Client) -> dict[str, Any]:
    (chat,) = api.get("/api/v1/chats").json()["data"]
    return dict(chat)


def test_the_default_prompt(ragflow: Backend) -> None:
    api = ragflow.tenant()
    prompt = new_chat(api)["data"]["prompt"]
    assert prompt["variables"] == [{"key": "knowledge", "optional": False}]
    assert prompt["opener"] == OPENER
    assert prompt["prompt"] == DEFAULT_SYSTEM_PROMPT and "{knowledge}" in prompt["prompt"]
    assert prompt["empty_response"] == "Sorry! No relevant content was found in the knowledge base!"
    assert (prompt["top_n"], prompt["similarity_threshold"], prompt["keywords_similarity_weight"]) == (6, 0.2, 0.7)
    assert prompt["show_quote"] is True and prompt["rerank_model"] == ""


def test_a_new_session_opens_with_the_opener(ragflow: Backend) -> None:
    api = ragflow.tenant()
    chat = new_chat(api)["data"]
    session = api.post(f"/api/v1/chats/{chat['id']}/sessions", json={"name": "s"}).json()["data"]
    assert session["messages"] == [{"role": "assistant", "content": OPENER}]


def test_knowledge_is_not_optional_on_create(ragflow: Backend) -> None:
    api = ragflow.tenant()
    res = new_chat(api, prompt={"prompt": "You answer tersely."})
    assert res == {"code": 102, "message": "Parameter 'knowledge' is not used"}
    assert api.get("/api/v1/chats").json()["data"] == []
    # declaring it optional (or no variables) lets a prompt do without it
    optional = new_chat(api, "o", prompt={"prompt": "Terse.", "variables": [{"key": "knowledge", "optional": True}]})
    assert optional["code"] == 0


def test_knowledge_is_not_optional_on_update(ragflow: Backend) -> None:
    api = ragflow.tenant()
    chat = new_chat(api)["data"]
    res = api.put(f"/api/v1/chats/{chat['id']}", json={"prompt": {"prompt": "No placeholder here."}}).json()
    assert res == {"code": 102, "message": "Parameter 'knowledge' is not used"}
    assert only_chat(api)["prompt"]["prompt"] == DEFAULT_SYSTEM_PROMPT


def test_top_n_zero_is_accepted(ragflow: Backend) -> None:
    api = ragflow.tenant()
    assert new_chat(api, prompt={"top_n": 0})["data"]["prompt"]["top_n"] == 0
    chat = only_chat(api)
    assert api.put(f"/api/v1/chats/{chat['id']}", json={"prompt": {"top_n": 0}}).json() == {"code": 0}
    assert new_chat(api, "negative", prompt={"top_n": -1})["code"] == 101


def test_unknown_llm_keys_are_stored_and_echoed(ragflow: Backend) -> None:
    api = ragflow.tenant()
    llm = {"temperature": 0.2, "seed": 7, "reasoning": {"effort": "low"}}
    created = new_chat(api, llm=llm)["data"]["llm"]
    assert created["seed"] == 7 and created["reasoning"] == {"effort": "low"} and created["temperature"] == 0.2
    chat = only_chat(api)
    assert chat["llm"]["seed"] == 7
    assert api.put(f"/api/v1/chats/{chat['id']}", json={"llm": {"seed": 8, "stop": ["\n\n"]}}).json()["code"] == 0
    updated = only_chat(api)["llm"]
    assert (updated["seed"], updated["stop"], updated["reasoning"]) == (8, ["\n\n"], {"effort": "low"})
    # the keys RAGFlow knows keep their types
    assert new_chat(api, "bad", llm={"temperature": "warm"})["code"] == 101


def test_empty_llm_and_prompt_on_update_change_nothing(ragflow: Backend) -> None:
    # RAGFlow fails these with a database error (do not copy): here they are accepted and change nothing.
    api = ragflow.tenant()
    chat = new_chat(api)["data"]
    before = only_chat(api)
    assert api.put(f"/api/v1/chats/{chat['id']}", json={"llm": {}, "prompt": {}}).json() == {"code": 0}
    after = only_chat(api)
    assert (after["llm"], after["prompt"]) == (before["llm"], before["prompt"])
