"""OpenAIChatModel over real HTTP (the openai client, unmocked) against the local OpenAI-compatible test server."""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest

from shared.adapters.openai_chat import OpenAIChatModel
from shared.ports.chat_model import (
    ChatDelta,
    ChatMessage,
    ChatModelConfigError,
    ChatModelServiceError,
    ChatModelTimeout,
    ChatOptions,
    ChatUsage,
)
from shared.rag.chat_models import build_chat_model, chat_model_for_tenant, clear_chat_model_cache
from shared.rag.tokens import count_tokens
from shared.repos.tenants import Tenant, TenantModel
from tests.support.fake_openai import CHAT_PATH, FakeOpenAI, Gate, Reply

pytestmark = pytest.mark.integration

KEY = "sk-test-chat-0123456789"
MODEL = "fake-chat"
FAST_RETRY = {"retry-after-ms": "10"}  # the client honours it, so retry tests don't sleep for seconds
#: How long a test waits for an event of a gated answer: a bound on waiting when something is broken, never a
#: claim about speed (a working path gets there in milliseconds).
GATE_WAIT = 30.0
QUESTION = [
    ChatMessage("system", "You are terse."),
    ChatMessage("assistant", "Hi! How can I help?"),
    ChatMessage("user", "What is RAG?"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY, chat_models={MODEL, "other-chat"}) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset(server: FakeOpenAI) -> None:
    server.reset()


def chat(server: FakeOpenAI, **overrides: object) -> OpenAIChatModel:
    options: dict[str, object] = {"api_key": KEY, "base_url": server.base_url, "max_retries": 0}
    options.update(overrides)
    return OpenAIChatModel(MODEL, model_id=f"{MODEL}@OpenAI-API-Compatible", **options)  # type: ignore[arg-type]


def drain(stream: Iterator[ChatDelta], into: list[str]) -> ChatUsage | None:
    """Collect the streamed texts in ``into`` (so they survive an exception); the final usage."""
    usage = None
    for delta in stream:
        if delta.usage is not None:
            usage = delta.usage
        else:
            into.append(delta.text)
    return usage


# -- whole answers -----------------------------------------------------------------------------------------


def test_complete_sends_the_conversation_and_options(server: FakeOpenAI) -> None:
    options = ChatOptions(temperature=0.1, top_p=0.3, presence_penalty=0.4, frequency_penalty=0.7, max_tokens=512)

    result = chat(server).complete(QUESTION, options)

    assert result.text == "You said: What is RAG?"
    (request,) = server.chat_requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "assistant", "content": "Hi! How can I help?"},
            {"role": "user", "content": "What is RAG?"},
        ],
        "temperature": 0.1,
        "top_p": 0.3,
        "presence_penalty": 0.4,
        "frequency_penalty": 0.7,
        "max_tokens": 512,
    }


def test_complete_leaves_unset_options_to_the_provider(server: FakeOpenAI) -> None:
    chat(server).complete([ChatMessage("user", "hi")], ChatOptions(temperature=0.5))

    assert server.chat_requests[0].body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
    }


def test_complete_reports_the_servers_usage(server: FakeOpenAI) -> None:
    server.script_chat(["Retrieval-", "augmented ", "generation."], usage={"prompt_tokens": 31, "completion_tokens": 3})

    result = chat(server).complete(QUESTION)

    assert result.text == "Retrieval-augmented generation."
    assert result.usage == ChatUsage(31, 3, 34)


def test_complete_estimates_usage_the_server_does_not_report(server: FakeOpenAI) -> None:
    message = {"role": "assistant", "content": "Forty-two."}
    body = {"object": "chat.completion", "model": MODEL, "choices": [{"index": 0, "message": message}]}
    server.script(CHAT_PATH, Reply(body=body))

    result = chat(server).complete(QUESTION)

    prompt = sum(count_tokens(m.content) for m in QUESTION)
    assert result.usage == ChatUsage(prompt, count_tokens("Forty-two."), prompt + count_tokens("Forty-two."))


# -- streamed answers --------------------------------------------------------------------------------------


def test_stream_yields_each_token_then_the_usage(server: FakeOpenAI) -> None:
    server.script_chat(["Hel", "lo", ", ", "world"], usage={"prompt_tokens": 9, "completion_tokens": 4})

    deltas = list(chat(server).stream(QUESTION))

    assert deltas == [
        ChatDelta("Hel"),
        ChatDelta("lo"),
        ChatDelta(", "),
        ChatDelta("world"),
        ChatDelta("", ChatUsage(9, 4, 13)),
    ]
    body = server.chat_requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][-1] == {"role": "user", "content": "What is RAG?"}


def test_stream_delivers_tokens_as_they_are_produced(server: FakeOpenAI) -> None:
    tokens = ["one", " two", " three", " four"]
    gate = Gate()
    server.script_chat(tokens, gate=gate)
    gate.release()  # the answer starts with its first token
    # A stream that held tokens back would wait for the held ones and end in this read timeout.
    stream = chat(server, read_timeout=GATE_WAIT).stream([ChatMessage("user", "count")])

    for produced, token in enumerate(tokens, start=1):
        # Each token reaches the client while the model holds back everything after it: forwarded as it is
        # produced, the first one included, not when the answer is complete.
        assert next(stream) == ChatDelta(token)
        assert gate.wait_holding(GATE_WAIT)
        assert server.streams[-1].tokens == tokens[:produced]
        gate.release()

    rest = list(stream)
    assert [delta.text for delta in rest] == [""] and rest[0].usage is not None
    record = server.streams[-1]
    assert record.wait_ended(GATE_WAIT) and record.completed


def test_stream_estimates_usage_when_the_server_sends_none(server: FakeOpenAI) -> None:
    server.script_chat(["An ", "answer ", "here."], send_usage=False)

    texts: list[str] = []
    usage = drain(chat(server).stream(QUESTION), texts)

    prompt = sum(count_tokens(m.content) for m in QUESTION)
    completion = count_tokens("An answer here.")
    assert "".join(texts) == "An answer here."
    assert usage == ChatUsage(prompt, completion, prompt + completion)


def test_unscripted_stream_echoes_the_last_user_message(server: FakeOpenAI) -> None:
    texts: list[str] = []
    usage = drain(chat(server).stream(QUESTION), texts)

    assert texts == FakeOpenAI.split_tokens("You said: What is RAG?")
    assert usage is not None and usage.completion_tokens == len(texts)


def test_stream_broken_off_raises_after_the_tokens_that_arrived(server: FakeOpenAI) -> None:
    server.script_chat(["a", "b", "c", "d"], fail_after=2)
    texts: list[str] = []

    with pytest.raises(ChatModelServiceError, match="broke off in the middle of the answer") as caught:
        drain(chat(server).stream(QUESTION), texts)

    assert texts == ["a", "b"]
    assert not isinstance(caught.value, ChatModelTimeout)


def test_stream_error_event_carries_the_provider_message(server: FakeOpenAI) -> None:
    server.script_chat(["a", "b", "c"], fail_after=1, failure="error", error_message="the GPU caught fire")
    texts: list[str] = []

    with pytest.raises(ChatModelServiceError, match="failed mid-answer: the GPU caught fire"):
        drain(chat(server).stream(QUESTION), texts)

    assert texts == ["a"]


def test_unreadable_stream_is_a_service_error(server: FakeOpenAI) -> None:
    server.script(CHAT_PATH, Reply(chunks=iter([b"data: this is not json\n\n"])))

    with pytest.raises(ChatModelServiceError, match="unreadable answer"):
        list(chat(server).stream(QUESTION))


@pytest.mark.parametrize("body", [{"object": "chat.completion"}, {"choices": []}, "plain text"])
def test_unreadable_answer_is_a_service_error(server: FakeOpenAI, body: object) -> None:
    server.script(CHAT_PATH, Reply(body=body))

    with pytest.raises(ChatModelServiceError, match="unreadable answer"):
        chat(server).complete(QUESTION)


# -- cancellation ------------------------------------------------------------------------------------------


def test_closing_the_stream_drops_the_upstream_request(server: FakeOpenAI) -> None:
    gate = Gate()
    server.script_chat(["first", " second", " third", " fourth"], gate=gate)
    gate.release()  # "first" only: the rest is held for good, so only a hang-up can end the answer
    stream = chat(server).stream(QUESTION)

    assert next(stream) == ChatDelta("first")
    stream.close()

    assert gate.wait_abandoned(GATE_WAIT), "the upstream request stayed open after the client closed"
    record = server.streams[-1]
    assert record.wait_ended(GATE_WAIT)
    assert record.disconnected
    assert not record.completed
    assert record.tokens == ["first"]


def test_closing_from_the_consuming_thread_between_deltas(server: FakeOpenAI) -> None:
    # How the API layer uses it: a worker thread iterates and stops when the HTTP client has gone.
    tokens = [f" t{i}" for i in range(20)]
    gate = Gate()
    server.script_chat(tokens, gate=gate)
    client_gone = threading.Event()
    seen: queue.Queue[str] = queue.Queue()

    def worker() -> None:
        stream = chat(server).stream(QUESTION)
        try:
            for delta in stream:
                if client_gone.is_set():
                    break  # the HTTP client went away while this delta was on its way
                seen.put(delta.text)
        finally:
            stream.close()

    thread = threading.Thread(target=worker)
    gate.release(3)
    thread.start()
    assert [seen.get(timeout=GATE_WAIT) for _ in range(3)] == tokens[:3]
    client_gone.set()
    gate.release()  # the fourth token: the worker sees the client gone and stops between deltas
    thread.join(timeout=GATE_WAIT)

    assert not thread.is_alive()
    assert gate.wait_abandoned(GATE_WAIT), "the upstream request stayed open after the worker stopped"
    record = server.streams[-1]
    assert record.wait_ended(GATE_WAIT)
    assert record.disconnected and not record.completed
    assert record.tokens == tokens[:4]
    assert seen.empty()


def test_a_stream_never_iterated_sends_nothing(server: FakeOpenAI) -> None:
    stream = chat(server).stream(QUESTION)
    stream.close()

    assert server.chat_requests == []


# -- failures ----------------------------------------------------------------------------------------------


# A held answer is never released in these: only the client's own read timeout can end the call, so the
# timeout is shown to fire by itself (it does not wait for the model) and the client hangs up on the model.


def test_complete_times_out_while_the_model_is_silent(server: FakeOpenAI) -> None:
    gate = Gate()
    server.script_chat(["late"], gate=gate)

    with pytest.raises(ChatModelTimeout, match=r"timed out after 0\.3s"):
        chat(server, read_timeout=0.3).complete(QUESTION)

    assert gate.wait_abandoned(GATE_WAIT)
    assert len(server.chat_requests) == 1


def test_stream_times_out_before_the_first_token(server: FakeOpenAI) -> None:
    gate = Gate()
    server.script_chat(["late"], gate=gate)

    with pytest.raises(ChatModelTimeout):
        list(chat(server, read_timeout=0.3).stream(QUESTION))

    assert gate.wait_abandoned(GATE_WAIT)
    assert server.streams[-1].sent == []


def test_stream_times_out_when_tokens_stop_coming(server: FakeOpenAI) -> None:
    gate = Gate()
    server.script_chat(["quick", " then", " silence"], gate=gate)
    gate.release()  # "quick", then nothing
    texts: list[str] = []

    with pytest.raises(ChatModelTimeout, match=r"timed out after 0\.3s"):
        drain(chat(server, read_timeout=0.3).stream(QUESTION), texts)

    assert texts == ["quick"]
    assert gate.wait_abandoned(GATE_WAIT)
    assert server.streams[-1].tokens == ["quick"]


def test_rejected_key_is_a_config_error_without_the_key(server: FakeOpenAI) -> None:
    secret = "sk-wrong-secret-value"
    model = chat(server, api_key=secret, max_retries=2)

    with pytest.raises(ChatModelConfigError, match="API key was rejected") as whole:
        model.complete(QUESTION)
    with pytest.raises(ChatModelConfigError, match="API key was rejected") as streamed:
        next(model.stream(QUESTION))

    for caught in (whole, streamed):
        assert secret not in caught.value.message
        assert secret not in str(caught.value)
        assert server.url in caught.value.message
    assert len(server.chat_requests) == 2  # a 401 is final: never retried


def test_unknown_model_is_a_config_error(server: FakeOpenAI) -> None:
    model = OpenAIChatModel("no-such-model", api_key=KEY, base_url=server.base_url, max_retries=0)

    with pytest.raises(ChatModelConfigError, match="no-such-model was not found"):
        model.complete(QUESTION)


def test_server_error_before_the_stream_is_retried(server: FakeOpenAI) -> None:
    server.script(CHAT_PATH, Reply.error(503, "overloaded", headers=FAST_RETRY))
    server.script_chat(["fine"])

    deltas = list(chat(server, max_retries=2).stream(QUESTION))

    assert [delta.text for delta in deltas] == ["fine", ""]
    assert len(server.chat_requests) == 2


def test_persistent_server_error_carries_the_provider_message(server: FakeOpenAI) -> None:
    server.script(CHAT_PATH, *[Reply.error(500, "the GPU caught fire", headers=FAST_RETRY)] * 2)

    with pytest.raises(ChatModelServiceError, match=r"HTTP 500\): the GPU caught fire"):
        list(chat(server, max_retries=1).stream(QUESTION))
    assert len(server.chat_requests) == 2


def test_bad_request_carries_the_provider_message(server: FakeOpenAI) -> None:
    server.script(CHAT_PATH, Reply.error(400, "maximum context length exceeded", type="invalid_request_error"))

    with pytest.raises(ChatModelServiceError, match=r"HTTP 400\): maximum context length exceeded"):
        chat(server).complete(QUESTION)


def test_rate_limit(server: FakeOpenAI) -> None:
    server.script(CHAT_PATH, Reply.error(429, "slow down", type="rate_limit_error"))

    with pytest.raises(ChatModelServiceError, match="rate limited"):
        chat(server).complete(QUESTION)


def test_failed_whole_answer(server: FakeOpenAI) -> None:
    server.script_chat(["x"], fail_after=0, failure="error", error_message="backend exploded")

    with pytest.raises(ChatModelServiceError, match=r"HTTP 500\): backend exploded"):
        chat(server).complete(QUESTION)


def test_unreachable_endpoint() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIChatModel(MODEL, api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)

    with pytest.raises(
        ChatModelServiceError, match=f"Could not connect to the chat service at http://127.0.0.1:{port}"
    ):
        list(model.stream(QUESTION))


# -- the factory -------------------------------------------------------------------------------------------


def test_factory_serves_any_model_of_an_openai_compatible_endpoint(server: FakeOpenAI) -> None:
    clear_chat_model_cache()
    try:
        model = build_chat_model("other-chat@OpenAI-API-Compatible", api_base=server.base_url, api_key=KEY)
        assert model is build_chat_model("other-chat@OpenAI-API-Compatible", api_base=server.base_url, api_key=KEY)
        assert model.model_id == "other-chat@OpenAI-API-Compatible"

        assert model.complete([ChatMessage("user", "ping")]).text == "You said: ping"
        assert server.chat_requests[0].body["model"] == "other-chat"
    finally:
        clear_chat_model_cache()


def test_tenant_default_chat_model_uses_the_tenants_endpoint_and_key(server: FakeOpenAI) -> None:
    setting = TenantModel("OpenAI-API-Compatible", MODEL, "chat", api_base=server.base_url, api_key=KEY)
    tenant = Tenant(id="t1", name="t", create_time=0, llm_id=f"{MODEL}@OpenAI-API-Compatible", models=[setting])
    clear_chat_model_cache()
    try:
        texts: list[str] = []
        drain(chat_model_for_tenant(tenant).stream([ChatMessage("user", "hello there")]), texts)
    finally:
        clear_chat_model_cache()

    assert "".join(texts) == "You said: hello there"
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"


# -- the test server itself --------------------------------------------------------------------------------


def _sse(server: FakeOpenAI, body: dict[str, object]) -> list[str]:
    with httpx.stream(
        "POST", f"{server.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        raw = response.read().decode()
    return [frame.removeprefix("data: ") for frame in raw.split("\n\n") if frame]


def test_test_server_streams_openai_chunks_with_a_usage_frame(server: FakeOpenAI) -> None:
    server.script_chat(["a", "b"], usage={"prompt_tokens": 5, "completion_tokens": 2})
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True}

    frames = _sse(server, {**body, "stream_options": {"include_usage": True}})

    assert frames[-1] == "[DONE]"
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["a", "b"]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert all(chunk["usage"] is None for chunk in chunks[:4])

    plain = [json.loads(frame) for frame in _sse(server, body)[:-1]]
    assert all("usage" not in chunk for chunk in plain)  # no usage unless asked for


def test_test_server_serves_the_plain_openai_client(server: FakeOpenAI) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0)

    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream me"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    whole = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": "parts"}]}]
    )

    assert text == "You said: stream me"
    assert whole.choices[0].message.content == "You said: parts"
    assert whole.usage is not None and whole.usage.completion_tokens == 3
    assert server.last_chat_messages() == [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, 400),
        ({"model": MODEL, "messages": []}, 400),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 400),
        ({"model": "unknown-chat", "messages": [{"role": "user", "content": "x"}]}, 404),
    ],
)
def test_test_server_validates_chat_requests(server: FakeOpenAI, body: dict[str, object], status: int) -> None:
    response = httpx.post(f"{server.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})

    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_test_server_lists_chat_models(server: FakeOpenAI) -> None:
    response = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {KEY}"})

    assert {model["id"] for model in response.json()["data"]} == {MODEL, "other-chat"}
