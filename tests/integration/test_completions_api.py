"""Chat answers end to end: the local server, a real OpenAI-compatible test server as the chat model, the
builtin embedder, RAGFlow's SSE frames and the official `openai` client on the compatible endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from shared.services.tenants import ModelSetting
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.fake_openai import FakeOpenAI, Gate
from tests.support.server import RunningServer

MODEL = "fake-chat@OpenAI-API-Compatible"
#: How long a test waits for an event of a gated model answer: a bound on waiting when something is broken,
#: never a claim about speed.
GATE_WAIT = 30.0


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


@pytest.fixture
def chat_api(server: RunningServer, llm: FakeOpenAI) -> Iterator[httpx.Client]:
    llm.reset()
    _, key = server.container.tenant_service.create(
        "chatty", [ModelSetting(MODEL, "chat", api_base=llm.base_url, api_key="sk-test")]
    )
    with server.client(key) as client:
        yield client


@pytest.fixture
def assistant(chat_api: httpx.Client) -> dict[str, Any]:
    ds = create_dataset(chat_api, chunk_method="one")
    doc = upload_one(chat_api, ds["id"], "bread.txt", b"Bread rises because yeast ferments sugar into carbon dioxide.")
    assert parse_and_wait(chat_api, ds["id"], doc["id"])["run"] == "DONE"
    res = chat_api.post("/api/v1/chats", json={"name": "baker", "dataset_ids": [ds["id"]]}).json()
    assert res["code"] == 0, res
    chat: dict[str, Any] = res["data"]
    return chat


def sse_frames(response: httpx.Response) -> list[Any]:
    frames = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            frames.append(json.loads(line[len("data:") :]))
    return frames


def ask(api: httpx.Client, chat_id: str, **payload: Any) -> list[Any]:
    with api.stream("POST", f"/api/v1/chats/{chat_id}/completions", json=payload) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_frames(response)


def test_streamed_answer_with_reference_citations_and_session(
    chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI
) -> None:
    llm.script_chat(["Yeast ", "ferments ", "sugar ", "into carbon dioxide."])
    frames = ask(chat_api, assistant["id"], question="Why does bread rise?")
    assert frames[-1] == {"code": 0, "message": "", "data": True}
    partial = [f["data"]["answer"] for f in frames[:-2]]
    assert partial == [
        "Yeast ",
        "Yeast ferments ",
        "Yeast ferments sugar ",
        "Yeast ferments sugar into carbon dioxide.",
    ]
    final = frames[-2]["data"]
    assert final["answer"].endswith("##0$$")  # the sentence cites the bread chunk
    assert final["reference"]["chunks"][0]["document_name"] == "bread.txt"
    assert final["reference"]["doc_aggs"][0]["doc_name"] == "bread.txt"
    assert "Bread rises because yeast" in final["prompt"]  # {knowledge} filled in
    session_id = final["session_id"]
    prompt = llm.last_chat_messages()
    assert prompt[0]["role"] == "system" and "yeast ferments sugar" in prompt[0]["content"]
    assert prompt[-1] == {"role": "user", "content": "Why does bread rise?"}

    # second turn in the same session: the history goes to the model
    llm.script_chat(["Sourdough too."])
    second = ask(chat_api, assistant["id"], question="Does sourdough bread rise with yeast?", session_id=session_id)
    assert second[-2]["data"]["session_id"] == session_id
    roles = [m["role"] for m in llm.last_chat_messages()]
    assert roles == ["system", "user", "assistant", "user"]
    sessions = chat_api.get(f"/api/v1/chats/{assistant['id']}/sessions", params={"id": session_id}).json()["data"]
    messages = sessions[0]["messages"]
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == "Why does bread rise?" and messages[-1]["content"].startswith("Sourdough")


def test_non_streamed_answer(chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI) -> None:
    llm.script_chat(["Because of yeast."])
    res = chat_api.post(
        f"/api/v1/chats/{assistant['id']}/completions", json={"question": "Why does bread rise?", "stream": False}
    ).json()
    assert res["code"] == 0
    assert res["data"]["answer"].startswith("Because of yeast.") and res["data"]["session_id"]
    assert res["data"]["reference"]["total"] >= 1


def test_frames_are_forwarded_as_the_model_produces_them(
    chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI
) -> None:
    tokens = ["one ", "two ", "three ", "four"]
    gate = Gate()
    llm.script_chat(tokens, gate=gate)
    gate.release()  # the answer starts with its first token
    # The client's 30 s read timeout ends the test if a frame waits for tokens the model holds back.
    with chat_api.stream(
        "POST", f"/api/v1/chats/{assistant['id']}/completions", json={"question": "Why does bread rise?"}
    ) as response:
        frames = (json.loads(line[len("data:") :]) for line in response.iter_lines() if line.startswith("data:"))
        for produced in range(1, len(tokens) + 1):
            # Each frame reaches the client while the model holds back everything after its token.
            assert next(frames)["data"]["answer"] == "".join(tokens[:produced])
            assert gate.wait_holding(GATE_WAIT)
            assert llm.streams[-1].tokens == tokens[:produced]
            gate.release()
        rest = list(frames)
    assert rest[0]["data"]["answer"].startswith("one two three four") and rest[1:] == [
        {"code": 0, "message": "", "data": True}
    ]


def test_model_failure_mid_stream_ends_with_an_error_frame_and_keeps_what_was_said(
    chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI
) -> None:
    llm.script_chat(["Half ", "an ", "answer"], fail_after=2, failure="error")
    frames = ask(chat_api, assistant["id"], question="Does yeast make bread rise?")
    assert frames[-1] == {"code": 0, "message": "", "data": True}
    error = frames[-2]
    assert error["code"] == 500 and error["data"]["answer"].startswith("**ERROR**")
    session_id = frames[0]["data"]["session_id"]
    stored = chat_api.get(f"/api/v1/chats/{assistant['id']}/sessions", params={"id": session_id}).json()["data"]
    assert stored[0]["messages"][-1]["content"] == "Half an "


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "Please input your question."),
        ({"question": "  "}, "Please input your question."),
        ({"question": "q", "session_id": "nope"}, "Session does not exist"),
    ],
)
def test_bad_requests(chat_api: httpx.Client, assistant: dict[str, Any], payload: dict[str, Any], message: str) -> None:
    res = chat_api.post(f"/api/v1/chats/{assistant['id']}/completions", json=payload).json()
    assert res == {"code": 102, "message": message}


def test_foreign_chat_and_no_model(chat_api: httpx.Client, api: httpx.Client, assistant: dict[str, Any]) -> None:
    foreign = api.post(f"/api/v1/chats/{assistant['id']}/completions", json={"question": "q"}).json()
    assert foreign == {"code": 102, "message": f"You don't own the chat {assistant['id']}"}
    created = api.post("/api/v1/chats", json={"name": "no model"}).json()["data"]
    res = api.post(f"/api/v1/chats/{created['id']}/completions", json={"question": "q"}).json()
    assert res["code"] == 102 and "No chat model is configured" in res["message"]


def test_empty_response_when_nothing_is_retrieved(
    chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI
) -> None:
    chat_api.put(
        f"/api/v1/chats/{assistant['id']}",
        json={"prompt": {"empty_response": "Nothing found.", "similarity_threshold": 0.99}},
    )
    frames = ask(chat_api, assistant["id"], question="quantum chromodynamics")
    assert frames[-2]["data"]["answer"] == "Nothing found."
    assert llm.chat_requests == []  # the model was not called


def test_openai_client_stream_and_whole(
    server: RunningServer, chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI
) -> None:
    key = chat_api.headers["Authorization"].split()[1]
    client = openai.OpenAI(base_url=f"{server.base_url}/api/v1/chats_openai/{assistant['id']}", api_key=key)
    llm.script_chat(["Yeast ", "does it."])
    whole = client.chat.completions.create(
        model="model", messages=[{"role": "user", "content": "Why does bread rise?"}], stream=False
    )
    assert whole.choices[0].message.content.startswith("Yeast does it.")
    assert whole.choices[0].finish_reason == "stop" and whole.usage is not None and whole.usage.total_tokens > 0

    llm.script_chat(["Yeast ", "again."])
    stream = client.chat.completions.create(
        model="model",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Why does bread rise?"},
        ],
        stream=True,
        extra_body={"extra_body": {"reference": True}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Yeast again."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    last_delta = chunks[-1].choices[0].delta.model_dump()
    assert last_delta["reference"]["chunks"][0]["document_name"] == "bread.txt"
    assert [m["role"] for m in llm.last_chat_messages()] == ["system", "user", "assistant", "user"]

    # RAGFlow answers a conversation that doesn't end with the user in its own envelope
    bad = chat_api.post(
        f"/api/v1/chats_openai/{assistant['id']}/chat/completions",
        json={"model": "model", "messages": [{"role": "assistant", "content": "hi"}], "stream": False},
    ).json()
    assert bad == {"code": 102, "message": "The last content of this conversation is not from user."}


def test_related_questions(chat_api: httpx.Client, llm: FakeOpenAI, server: RunningServer) -> None:
    from shared.repos.tenants import TenantRepository  # noqa: F401  (the tenant defaults come from the CLI)

    llm.script_chat(["1. What makes Neovim better?\n2. Why choose Neovim over Vim?\n3. Neovim benefits?"])
    res = chat_api.post(
        "/api/v1/sessions/related_questions", json={"question": "Neovim vs Vim?", "industry": "software"}
    ).json()
    assert res["code"] == 0 and res["data"][0] == "What makes Neovim better?" and len(res["data"]) == 3
    assert "software" in llm.last_chat_messages()[0]["content"]
    assert chat_api.post("/api/v1/sessions/related_questions", json={}).json()["code"] == 102


def test_auto_keywords_and_questions_use_the_chat_model(
    chat_api: httpx.Client, server: RunningServer, llm: FakeOpenAI
) -> None:
    ds = create_dataset(chat_api, chunk_method="one", parser_config={"auto_keywords": 3, "auto_questions": 2})
    doc = upload_one(chat_api, ds["id"], "tea.txt", b"Green tea is steamed to stop oxidation.")
    llm.script_chat(["green tea, steaming, oxidation"])
    llm.script_chat(["1. How is green tea made?\n2. Why is tea steamed?"])
    done = parse_and_wait(chat_api, ds["id"], doc["id"])
    assert done["run"] == "DONE", done["progress_msg"]
    assert "Keywords and questions generated" in done["progress_msg"]
    chunk = server.container.document_repo.chunks_of(doc["id"])[0]
    assert chunk["important_keywords"] == ["green tea", "steaming", "oxidation"]
    assert chunk["questions"] == ["How is green tea made?", "Why is tea steamed?"]


def test_auto_keywords_without_a_chat_model_say_so(api: httpx.Client) -> None:
    ds = create_dataset(api, parser_config={"auto_keywords": 2})
    doc = upload_one(api, ds["id"], "x.txt", b"Some words to index.")
    done = parse_and_wait(api, ds["id"], doc["id"])
    assert done["run"] == "DONE"
    assert "skipped: no chat model is configured" in done["progress_msg"]


def test_a_chat_whose_datasets_were_deleted_says_so(chat_api: httpx.Client, assistant: dict[str, Any]) -> None:
    for dataset_id in assistant["dataset_ids"]:
        chat_api.request("DELETE", "/api/v1/datasets", json={"ids": [dataset_id]})
    res = chat_api.post(f"/api/v1/chats/{assistant['id']}/completions", json={"question": "Why does bread rise?"})
    assert res.json() == {
        "code": 102,
        "message": "The datasets of this chat assistant no longer exist; update its `dataset_ids`.",
    }


def test_a_client_that_hangs_up_stops_the_model(
    chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI
) -> None:
    llm.script_chat(["a "] * 50, delay=0.1)
    with chat_api.stream(
        "POST", f"/api/v1/chats/{assistant['id']}/completions", json={"question": "Why does bread rise?"}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                break  # read one frame, then hang up
    record = llm.streams[-1]
    assert record.wait_ended(5.0) and record.disconnected
    assert len(record.tokens) < 50


@pytest.mark.parametrize("path", ["completions", "openai"])
def test_a_client_that_hangs_up_while_the_model_says_nothing_stops_the_model(
    chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI, path: str
) -> None:
    # A reasoning model may stream nothing for minutes: the upstream request must drop when the client
    # leaves, not when the model next speaks (the gate holds the second token until the test ends).
    gate = Gate()
    llm.script_chat(["Because ", "yeast."], gate=gate)
    gate.release()  # the headers, the role frame and the first token; the second is held
    if path == "completions":
        url, body = f"/api/v1/chats/{assistant['id']}/completions", {"question": "Why does bread rise?"}
    else:
        url = f"/api/v1/chats_openai/{assistant['id']}/chat/completions"
        body = {"model": "model", "messages": [{"role": "user", "content": "Why does bread rise?"}], "stream": True}
    with chat_api.stream("POST", url, json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data:") and "Because" in line:
                break  # the first token arrived: hang up while the model is silent
    assert gate.wait_abandoned(10.0), "the upstream request stayed open after the client left"
    record = llm.streams[-1]
    assert record.wait_ended(10.0) and record.disconnected and record.tokens == ["Because "]


def test_picture_method_with_an_image2text_model(server: RunningServer, llm: FakeOpenAI) -> None:
    llm.reset()
    _, key = server.container.tenant_service.create(
        "vision", [ModelSetting("vision@OpenAI-API-Compatible", "image2text", api_base=llm.base_url, api_key="sk-test")]
    )
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8cfc0f01f0005000201"
        "e2b0f4580000000049454e44ae426082"
    )
    with server.client(key) as client:
        ds = create_dataset(client, chunk_method="picture")
        doc = upload_one(client, ds["id"], "chart.png", png)
        llm.script_chat(["A bar chart of monthly bread sales rising from January to June."])
        done = parse_and_wait(client, ds["id"], doc["id"])
    assert done["run"] == "DONE", done["progress_msg"]
    chunk = server.container.document_repo.chunks_of(doc["id"])[0]
    assert "bar chart of monthly bread sales" in chunk["content"]
    sent = llm.last_chat_messages()[-1]["content"]
    assert sent[1]["type"] == "image_url" and sent[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_retrieval_keyword_and_cross_languages_use_the_chat_model(
    chat_api: httpx.Client, assistant: dict[str, Any], llm: FakeOpenAI
) -> None:
    dataset_ids = assistant["dataset_ids"]
    plain = chat_api.post(
        "/api/v1/retrieval",
        json={
            "question": "what happens to the dough",
            "dataset_ids": dataset_ids,
            "vector_similarity_weight": 0,
        },
    ).json()["data"]
    assert plain["total"] == 0  # no word of the question is in the corpus
    llm.script_chat(["yeast, carbon dioxide"])
    expanded = chat_api.post(
        "/api/v1/retrieval",
        json={
            "question": "what happens to the dough",
            "dataset_ids": dataset_ids,
            "vector_similarity_weight": 0,
            "keyword": True,
        },
    ).json()["data"]
    assert expanded["total"] == 1 and expanded["chunks"][0]["document_keyword"] == "bread.txt"
    llm.script_chat(["La levadura fermenta el azúcar"])
    chat_api.post(
        "/api/v1/retrieval",
        json={
            "question": "yeast",
            "dataset_ids": dataset_ids,
            "cross_languages": ["Spanish"],
        },
    )
    assert "Spanish" in llm.last_chat_messages()[0]["content"]


def test_retrieval_keyword_without_a_chat_model(api: httpx.Client) -> None:
    ds = create_dataset(api)
    res = api.post("/api/v1/retrieval", json={"question": "q", "dataset_ids": [ds["id"]], "keyword": True}).json()
    assert res["code"] == 102 and "need a chat model" in res["message"]
