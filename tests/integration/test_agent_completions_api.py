"""Agent runs end to end: the local server over real HTTP, a real OpenAI-compatible test server as the model
(tool calls included), the builtin embedder for retrieval, RAGFlow's event stream, and the official
`openai` client on the OpenAI-compatible endpoint. The three example agents in docs/agents run here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from shared.agent.reference import reference_number
from shared.services.tenants import ModelSetting
from tests.integration.test_agents_api import create_agent, example, simple_dsl
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import RunningServer

MODEL = "fake-chat@OpenAI-API-Compatible"
PLAIN_MODEL = "plain-chat@OpenAI-API-Compatible"  # served without function calling
BREAD = b"Bread rises because yeast ferments sugar into carbon dioxide gas."
EVENT_KEYS = {"event", "message_id", "created_at", "task_id", "session_id", "data"}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test", tool_less_models={"plain-chat"}) as fake:
        yield fake


def _tenant(server: RunningServer, llm: FakeOpenAI, model: str) -> httpx.Client:
    _, key = server.container.tenant_service.create(
        "agent-user", [ModelSetting(model, "chat", api_base=llm.base_url, api_key="sk-test")]
    )
    return server.client(key)


@pytest.fixture
def agent_api(server: RunningServer, llm: FakeOpenAI) -> Iterator[httpx.Client]:
    llm.reset()
    with _tenant(server, llm, MODEL) as client:
        yield client


@pytest.fixture
def bread(agent_api: httpx.Client) -> dict[str, Any]:
    """A parsed dataset named ``bakery`` with one chunk about bread; returns that chunk."""
    ds = create_dataset(agent_api, name="bakery", chunk_method="one")
    doc = upload_one(agent_api, ds["id"], "bread.txt", BREAD)
    assert parse_and_wait(agent_api, ds["id"], doc["id"])["run"] == "DONE"
    chunks = agent_api.get(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks").json()["data"]["chunks"]
    chunk: dict[str, Any] = chunks[0]
    return chunk


def events(response: httpx.Response) -> list[Any]:
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            payload = line[len("data:") :]
            frames.append(payload if payload == "[DONE]" else json.loads(payload))
    return frames


def converse(api: httpx.Client, agent_id: str, **payload: Any) -> list[Any]:
    with api.stream("POST", f"/api/v1/agents/{agent_id}/completions", json=payload) as response:
        return events(response)


def install(api: httpx.Client, name: str) -> str:
    spec = example(name)
    assert api.post("/api/v1/agents", json=spec).json()["code"] == 0
    agent_id: str = api.get("/api/v1/agents", params={"title": spec["title"]}).json()["data"][0]["id"]
    return agent_id


def messages_of(api: httpx.Client, agent_id: str, session_id: str) -> list[dict[str, Any]]:
    res = api.get(f"/api/v1/agents/{agent_id}/sessions", params={"id": session_id}).json()
    found: list[dict[str, Any]] = res["data"][0]["messages"]
    return found


def text_of(frames: list[Any]) -> str:
    return "".join(f["data"]["content"] for f in frames if isinstance(f, dict) and f["event"] == "message")


# -- the event stream ---------------------------------------------------------------------------------------
def test_stream_events_shape_and_the_turn_saved(agent_api: httpx.Client) -> None:
    agent = create_agent(agent_api, "echo")
    frames = converse(agent_api, agent["id"], question="What is sourdough?")
    assert frames[-1] == "[DONE]"
    body = frames[:-1]
    assert all(set(f) == EVENT_KEYS for f in body)
    assert [f["event"] for f in body] == ["node_finished", "message", "message_end", "node_finished"]
    assert {f["task_id"] for f in body} == {agent["id"]} and len({f["message_id"] for f in body}) == 1
    begin, message, end, echo = body
    assert begin["data"]["component_id"] == "begin" and begin["data"]["component_type"] == "Begin"
    assert set(begin["data"]) == {
        "inputs",
        "outputs",
        "component_id",
        "component_name",
        "component_type",
        "error",
        "elapsed_time",
        "created_at",
    }
    assert message["data"] == {"content": "You asked: What is sourdough?"}
    assert end["data"] == {"reference": None}
    assert echo["data"]["outputs"]["content"] == "You asked: What is sourdough?"
    assert echo["data"]["inputs"] == {"sys.query": "What is sourdough?"}

    session_id = body[0]["session_id"]
    stored = messages_of(agent_api, agent["id"], session_id)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("assistant", "Hello there!"),
        ("user", "What is sourdough?"),
        ("assistant", "You asked: What is sourdough?"),
    ]
    again = converse(agent_api, agent["id"], question="And rye?", session_id=session_id)
    assert text_of(again) == "You asked: And rye?" and again[0]["session_id"] == session_id
    session = agent_api.get(f"/api/v1/agents/{agent['id']}/sessions", params={"id": session_id}).json()["data"][0]
    assert session["dsl"]["globals"]["sys.conversation_turns"] == 2
    assert [turn[0] for turn in session["dsl"]["history"]] == ["user", "assistant", "user", "assistant"]


def test_non_stream_answer_with_trace(agent_api: httpx.Client) -> None:
    agent = create_agent(agent_api, "echo")
    res = agent_api.post(
        f"/api/v1/agents/{agent['id']}/completions",
        json={"question": "Hi", "stream": False, "return_trace": True},
    ).json()
    assert res["code"] == 0, res
    data = res["data"]
    assert data["event"] == "workflow_finished" and data["task_id"] == agent["id"] and data["session_id"]
    assert data["data"]["content"] == "You asked: Hi" and data["data"]["reference"] == {}
    assert data["data"]["outputs"]["content"] == "You asked: Hi"
    assert [t["component_id"] for t in data["data"]["trace"]] == ["begin", "Message:Echo"]


def test_stream_trace_accumulates_in_node_finished(agent_api: httpx.Client) -> None:
    agent = create_agent(agent_api, "echo")
    frames = converse(agent_api, agent["id"], question="Hi", return_trace=True)
    finished = [f for f in frames[:-1] if f["event"] == "node_finished"]
    assert [len(f["data"]["trace"]) for f in finished] == [1, 2]
    assert finished[-1]["data"]["trace"][0]["trace"][0]["component_id"] == "begin"


def test_begin_inputs_reach_the_components(agent_api: httpx.Client) -> None:
    dsl = simple_dsl(name={"name": "Name", "type": "line", "optional": False})
    dsl["components"]["Message:Echo"]["obj"]["params"]["content"] = ["Hello {begin@name}, you asked {sys.query}"]
    agent = create_agent(agent_api, "inputs", dsl)
    res = agent_api.post(f"/api/v1/agents/{agent['id']}/completions", json={"question": "q", "stream": False}).json()
    assert res == {"code": 102, "message": "The input `name` of the Begin component is required."}
    frames = converse(agent_api, agent["id"], question="q1", inputs={"name": {"type": "line", "value": "Ada"}})
    assert text_of(frames) == "Hello Ada, you asked q1"
    # the session keeps the value for the next turns
    again = converse(agent_api, agent["id"], question="q2", session_id=frames[0]["session_id"])
    assert text_of(again) == "Hello Ada, you asked q2"


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({}, 102, "`question` is required."),
        ({"question": "  "}, 102, "`question` is required."),
        ({"question": "q", "session_id": "nope"}, 102, "Session not found!"),
        ({"question": "q", "stream": "yes"}, 101, "Field: <stream>"),
        ({"question": "q", "inputs": [1]}, 101, "Field: <inputs>"),
    ],
)
def test_refused_requests_start_nothing(
    agent_api: httpx.Client, payload: dict[str, Any], code: int, message: str
) -> None:
    agent = create_agent(agent_api, "echo")
    res = agent_api.post(f"/api/v1/agents/{agent['id']}/completions", json=payload).json()
    assert res["code"] == code and res["message"].startswith(message), res
    assert agent_api.get(f"/api/v1/agents/{agent['id']}/sessions").json()["data"] == []


def test_another_tenants_agent_and_session_are_denied(
    agent_api: httpx.Client, other_api: httpx.Client, server: RunningServer
) -> None:
    agent = create_agent(agent_api, "private")
    session_id = converse(agent_api, agent["id"], question="Hi")[0]["session_id"]
    for path, body in (
        (f"/api/v1/agents/{agent['id']}/completions", {"question": "Hi", "session_id": session_id}),
        (f"/api/v1/agents/{agent['id']}/completions", {"question": "Hi", "stream": False}),
        (
            f"/api/v1/agents_openai/{agent['id']}/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
        ),
    ):
        assert other_api.post(path, json=body).json() == {
            "code": 102,
            "message": f"You don't own the agent {agent['id']}",
        }
    # the other tenant's own agent does not open this tenant's session either
    mine = create_agent(other_api, "mine")
    res = other_api.post(f"/api/v1/agents/{mine['id']}/completions", json={"question": "Hi", "session_id": session_id})
    assert res.json() == {"code": 102, "message": "Session not found!"}
    assert len(messages_of(agent_api, agent["id"], session_id)) == 3


# -- the example agents -------------------------------------------------------------------------------------
def test_retrieval_qa_example_answers_with_citations(
    agent_api: httpx.Client, llm: FakeOpenAI, bread: dict[str, Any]
) -> None:
    agent_id = install(agent_api, "retrieval_qa")
    session = agent_api.post(f"/api/v1/agents/{agent_id}/sessions", json={"dataset": "bakery"}).json()["data"]
    assert session["message"][0]["content"].startswith("Hi! Ask me anything")
    number = reference_number(bread["id"])
    llm.script_chat(["Yeast ", "ferments ", "sugar ", f"[ID:{number}]."])
    frames = converse(agent_api, agent_id, question="Why does bread rise?", session_id=session["id"])
    messages = [f["data"]["content"] for f in frames[:-1] if f["event"] == "message"]
    assert messages == ["Yeast ", "ferments ", "sugar ", f"[ID:{number}]."]  # token by token
    end = next(f for f in frames[:-1] if f["event"] == "message_end")
    chunk = end["data"]["reference"]["chunks"][str(number)]
    assert chunk["id"] == bread["id"] and chunk["document_name"] == "bread.txt" and "yeast" in chunk["content"]
    assert end["data"]["reference"]["doc_aggs"]["bread.txt"]["doc_id"] == chunk["document_id"]
    prompt = llm.last_chat_messages()
    assert f"ID: {number}" in prompt[0]["content"] and "yeast ferments sugar" in prompt[0]["content"]
    assert "[ID:n]" in prompt[0]["content"]  # asked to cite
    assert prompt[-1] == {"role": "user", "content": "Why does bread rise?"}
    retrieval = next(
        f for f in frames[:-1] if f["event"] == "node_finished" and f["data"]["component_type"] == "Retrieval"
    )
    assert retrieval["data"]["component_name"] == "Find passages" and retrieval["data"]["outputs"]["json"]

    stored = messages_of(agent_api, agent_id, session["id"])
    assert stored[-1]["content"] == f"Yeast ferments sugar [ID:{number}]."
    assert stored[-1]["reference"][0]["id"] == bread["id"]

    llm.script_chat(["It takes about an hour."])
    converse(agent_api, agent_id, question="How long does it take?", session_id=session["id"])
    roles = [m["role"] for m in llm.last_chat_messages()]
    assert roles == ["system", "user", "assistant", "user"]  # the history goes to the model


def test_customer_service_example_follows_the_chosen_branch(agent_api: httpx.Client, llm: FakeOpenAI) -> None:
    agent_id = install(agent_api, "customer_service")
    llm.script_chat(["refund"])
    llm.script_chat(["Sure, ", "send ", "me ", "the ", "order ", "number."])
    frames = converse(agent_api, agent_id, question="I want my money back for these shoes")
    assert text_of(frames) == "Sure, send me the order number."
    finished = [f["data"] for f in frames[:-1] if f["event"] == "node_finished"]
    assert [f["component_id"] for f in finished] == ["begin", "Categorize:Triage", "LLM:Refund", "Message:Reply"]
    assert finished[1]["outputs"]["category_name"] == "refund" and finished[1]["outputs"]["_next"] == ["LLM:Refund"]
    classify, answer = (r.body["messages"] for r in llm.chat_requests)
    assert "refund" in classify[0]["content"] and "shipping" in classify[0]["content"]
    assert "Refunds are possible within 30 days" in answer[0]["content"]

    llm.reset()
    llm.script_chat(["This is about something else (other)."])
    frames = converse(agent_api, agent_id, question="Do you sell gift cards?")
    assert text_of(frames).startswith("Thanks for your message!")
    assert len(llm.chat_requests) == 1  # the canned branch calls no model


def test_research_agent_example_uses_its_retrieval_tool(
    agent_api: httpx.Client, llm: FakeOpenAI, bread: dict[str, Any]
) -> None:
    agent_id = install(agent_api, "research_agent")
    number = reference_number(bread["id"])
    llm.script_tool_calls([("search_my_dataset", {"query": "bread rise yeast"})])
    llm.script_chat(["Yeast makes it rise ", f"[ID:{number}]."])
    frames = converse(agent_api, agent_id, question="Why does bread rise?", inputs={"dataset": "bakery"})
    assert text_of(frames) == f"Yeast makes it rise [ID:{number}]."
    first, second = llm.chat_requests
    tools = first.body["tools"]
    assert [t["function"]["name"] for t in tools] == ["search_my_dataset"]
    assert tools[0]["function"]["parameters"]["required"] == ["query"]
    tool_turns = [m for m in second.body["messages"] if m["role"] == "tool"]
    assert len(tool_turns) == 1 and "yeast ferments sugar" in tool_turns[0]["content"]
    assert second.body["messages"][-2]["tool_calls"][0]["function"]["name"] == "search_my_dataset"
    end = next(f for f in frames[:-1] if f["event"] == "message_end")
    assert end["data"]["reference"]["chunks"][str(number)]["id"] == bread["id"]
    agent = next(
        f["data"] for f in frames[:-1] if f["event"] == "node_finished" and f["data"]["component_type"] == "Agent"
    )
    assert agent["outputs"]["use_tools"][0]["name"] == "search_my_dataset"
    assert agent["outputs"]["use_tools"][0]["arguments"] == {"query": "bread rise yeast"}


def test_agent_without_native_tools_calls_them_in_json(
    server: RunningServer, llm: FakeOpenAI, bread: dict[str, Any], agent_api: httpx.Client
) -> None:
    dsl = example("research_agent")["dsl"]
    dsl["components"]["Agent:Researcher"]["obj"]["params"]["llm_id"] = PLAIN_MODEL
    server.container.tenant_service.set_models(
        _tenant_id(agent_api, server),
        [
            ModelSetting(MODEL, "chat", api_base=llm.base_url, api_key="sk-test"),
            ModelSetting(PLAIN_MODEL, "chat", api_base=llm.base_url, api_key="sk-test"),
        ],
    )
    agent = create_agent(agent_api, "plain", dsl)
    number = reference_number(bread["id"])
    llm.script_chat(['{"tool_calls": [{"name": "search_my_dataset", ', '"arguments": {"query": "yeast"}}]}'])
    llm.script_chat(["From the documents: ", f"yeast [ID:{number}]."])
    frames = converse(agent_api, agent["id"], question="Why does bread rise?", inputs={"dataset": "bakery"})
    assert text_of(frames) == f"From the documents: yeast [ID:{number}]."
    refused, asked, answered = llm.chat_requests
    assert refused.body["tools"] and "tools" not in asked.body and "tools" not in answered.body
    assert (
        "# Tools" in asked.body["messages"][0]["content"]
        and "search_my_dataset" in asked.body["messages"][0]["content"]
    )
    assert "yeast ferments sugar" in answered.body["messages"][-1]["content"]


def _tenant_id(api: httpx.Client, server: RunningServer) -> str:
    key = api.headers["Authorization"].removeprefix("Bearer ")
    tenant_id = server.container.tenants.tenant_for_key(key)
    assert tenant_id is not None
    return tenant_id


# -- failures -----------------------------------------------------------------------------------------------
def test_model_failure_mid_stream_keeps_what_was_said(agent_api: httpx.Client, llm: FakeOpenAI) -> None:
    agent_id = install(agent_api, "customer_service")
    llm.script_chat(["shipping"])
    llm.script_chat(["Parcels ", "leave ", "within"], fail_after=2, failure="error")
    frames = converse(agent_api, agent_id, question="Where is my parcel?")
    assert frames[-1] == "[DONE]"
    body = frames[:-1]
    said = [f["data"]["content"] for f in body if f["event"] == "message"]
    assert said[:2] == ["Parcels ", "leave "] and said[2].startswith("**ERROR**: ")
    failed = next(
        f["data"] for f in body if f["event"] == "node_finished" and f["data"]["component_id"] == "LLM:Shipping"
    )
    assert failed["error"] and failed["error"] in said[2]
    stored = messages_of(agent_api, agent_id, body[0]["session_id"])
    assert [(m["role"], m["content"]) for m in stored[-2:]] == [
        ("user", "Where is my parcel?"),
        ("assistant", "Parcels leave "),
    ]


def test_a_client_leaving_midway_stops_the_model_and_keeps_what_was_said(
    agent_api: httpx.Client, llm: FakeOpenAI
) -> None:
    agent_id = install(agent_api, "customer_service")
    llm.script_chat(["shipping"])
    llm.script_chat(["Parcels ", "leave ", "within ", "two ", "working ", "days."], delay=0.3)
    with agent_api.stream(
        "POST", f"/api/v1/agents/{agent_id}/completions", json={"question": "Where is my parcel?"}
    ) as response:
        for line in response.iter_lines():
            if '"event": "message"' in line:
                session_id = json.loads(line[len("data:") :])["session_id"]
                break  # and hang up
    deadline = time.monotonic() + 15
    while len(stored := messages_of(agent_api, agent_id, session_id)) < 3:
        assert time.monotonic() < deadline, stored
        time.sleep(0.05)
    answer = stored[-1]["content"]
    assert answer.startswith("Parcels ") and "Parcels leave within two working days.".startswith(answer)
    assert answer != "Parcels leave within two working days."
    assert llm.streams[-1].wait_ended(10) and llm.streams[-1].disconnected  # the model was stopped too


def test_a_failing_component_ends_the_run_with_its_error(agent_api: httpx.Client) -> None:
    dsl = simple_dsl()
    dsl["components"]["begin"]["downstream"] = ["Retrieval:Nowhere"]
    dsl["components"]["Retrieval:Nowhere"] = {
        "obj": {"component_name": "Retrieval", "params": {"kb_ids": ["begin@missing_dataset"]}},
        "downstream": ["Message:Echo"],
        "upstream": ["begin"],
    }
    agent = create_agent(agent_api, "broken", dsl)
    res = agent_api.post(f"/api/v1/agents/{agent['id']}/completions", json={"question": "q", "stream": False}).json()
    assert res["code"] == 0
    assert res["data"]["data"]["content"] == "**ERROR**: No dataset is selected."
    assert res["data"]["data"]["error"] == "No dataset is selected."


# -- the OpenAI-compatible endpoint -------------------------------------------------------------------------
def test_openai_client_streams_and_continues_a_session(
    agent_api: httpx.Client, server: RunningServer, llm: FakeOpenAI, bread: dict[str, Any]
) -> None:
    agent_id = install(agent_api, "retrieval_qa")
    key = agent_api.headers["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(api_key=key, base_url=f"{server.base_url}/api/v1/agents_openai/{agent_id}", max_retries=0)
    llm.script_chat(["Because ", "of ", "yeast."])
    stream = client.chat.completions.create(
        model="model",
        messages=[{"role": "user", "content": "Why does bread rise?"}],
        stream=True,
        extra_body={"inputs": {"dataset": "bakery"}},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Because of yeast."
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0 and chunks[0].model == agent_id
    session_id = chunks[0].id

    llm.script_chat(["About ", "an ", "hour."])
    whole = client.chat.completions.create(
        model="model",
        messages=[{"role": "user", "content": "How long?"}],
        extra_body={"session_id": session_id},
    )
    assert whole.choices[0].message.content == "About an hour." and whole.id == session_id
    assert whole.usage is not None and whole.usage.prompt_tokens > 0
    assert [m["role"] for m in llm.last_chat_messages()] == ["system", "user", "assistant", "user"]
    stored = messages_of(agent_api, agent_id, session_id)
    assert [m["content"] for m in stored[1:]] == [
        "Why does bread rise?",
        "Because of yeast.",
        "How long?",
        "About an hour.",
    ]


def test_openai_session_from_id_or_metadata(agent_api: httpx.Client) -> None:
    agent = create_agent(agent_api, "echo")
    url = f"/api/v1/agents_openai/{agent['id']}/chat/completions"
    first = agent_api.post(url, json={"model": "m", "messages": [{"role": "user", "content": "one"}]}).json()
    session_id = first["id"]
    assert first["choices"][0]["message"]["content"] == "You asked: one" and first["model"] == agent["id"]
    for given in ({"id": session_id}, {"metadata": {"id": session_id}}):
        res = agent_api.post(url, json={"model": "m", "messages": [{"role": "user", "content": "again"}], **given})
        assert res.json()["id"] == session_id
    stored = messages_of(agent_api, agent["id"], session_id)
    assert [m["content"] for m in stored if m["role"] == "user"] == ["one", "again", "again"]


def test_openai_history_seeds_a_new_session(agent_api: httpx.Client, llm: FakeOpenAI) -> None:
    agent_id = install(agent_api, "customer_service")
    llm.script_chat(["shipping"])
    llm.script_chat(["Three days."])
    res = agent_api.post(
        f"/api/v1/agents_openai/{agent_id}/chat/completions",
        json={
            "model": "m",
            "messages": [
                {"role": "system", "content": "ignored"},
                {"role": "user", "content": "I ordered shoes."},
                {"role": "assistant", "content": "Thanks!"},
                {"role": "user", "content": [{"type": "text", "text": "When do they arrive?"}]},
            ],
        },
    ).json()
    assert res["object"] == "chat.completion" and res["choices"][0]["message"]["content"] == "Three days."
    answer = llm.last_chat_messages()
    assert [m["content"] for m in answer[1:]] == ["I ordered shoes.", "Thanks!", "When do they arrive?"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"messages": [{"role": "user", "content": "x"}]},
            {"code": 101, "message": "required argument are missing: model; "},
        ),
        ({}, {"code": 101, "message": "required argument are missing: model,messages; "}),
        ({"model": "m", "messages": []}, {"code": 102, "message": "You must provide at least one message."}),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "session_id": "nope"},
            {"code": 102, "message": "Session not found!"},
        ),
    ],
)
def test_openai_refusals(agent_api: httpx.Client, body: dict[str, Any], expected: dict[str, Any]) -> None:
    agent = create_agent(agent_api, "echo")
    assert agent_api.post(f"/api/v1/agents_openai/{agent['id']}/chat/completions", json=body).json() == expected


def test_openai_without_usable_messages(agent_api: httpx.Client) -> None:
    agent = create_agent(agent_api, "echo")
    res = agent_api.post(
        f"/api/v1/agents_openai/{agent['id']}/chat/completions",
        json={"model": "m", "messages": [{"role": "system", "content": "only a system prompt"}], "stream": True},
    ).json()
    assert res["choices"][0]["message"]["content"] == "No valid messages found (user or assistant)."
    assert agent_api.get(f"/api/v1/agents/{agent['id']}/sessions").json()["data"] == []
