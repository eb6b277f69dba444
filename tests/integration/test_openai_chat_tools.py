"""OpenAIChatModel's function calling over real HTTP against the local OpenAI-compatible test server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from shared.adapters.openai_chat import OpenAIChatModel
from shared.ports.chat_model import ChatDelta, ChatMessage, ChatToolsUnsupported, ToolCall, ToolSpec
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

KEY = "sk-test-tools-0123456789"
SEARCH = ToolSpec(
    "search",
    "Search the documents.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY, tool_less_models={"no-tools"}) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset(server: FakeOpenAI) -> None:
    server.reset()


def model(server: FakeOpenAI, name: str = "fake-chat") -> OpenAIChatModel:
    return OpenAIChatModel(name, api_key=KEY, base_url=server.base_url, max_retries=0)


def test_streamed_tool_calls_are_assembled(server: FakeOpenAI) -> None:
    server.script_tool_calls([("search", {"query": "rye bread"}), ("search", {"query": "yeast"})])
    deltas = list(model(server).stream_with_tools([ChatMessage("user", "Why?")], [SEARCH]))
    assert [d.text for d in deltas] == [""]
    calls = deltas[-1].tool_calls
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("search", {"query": "rye bread"}),
        ("search", {"query": "yeast"}),
    ]
    assert calls[0].id != calls[1].id and deltas[-1].usage is not None
    assert server.last_chat_tools() == [
        {
            "type": "function",
            "function": {
                "name": "search",
                "description": "Search the documents.",
                "parameters": dict(SEARCH.parameters),
            },
        }
    ]


def test_tool_results_go_back_in_openais_shape(server: FakeOpenAI) -> None:
    call = ToolCall("call_1", "search", '{"query": "rye"}')
    conversation = [
        ChatMessage("system", "Use the tools."),
        ChatMessage("user", "Why?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "Rye is dense.", tool_call_id="call_1"),
    ]
    server.script_chat(["Because ", "rye."])
    deltas = list(model(server).stream_with_tools(conversation, [SEARCH]))
    assert [d.text for d in deltas[:-1]] == ["Because ", "rye."] and deltas[-1].tool_calls == ()
    sent = server.last_chat_messages()
    assert sent[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"query": "rye"}'}}
        ],
    }
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "Rye is dense."}


def test_a_model_without_tools_says_so(server: FakeOpenAI) -> None:
    stream = model(server, "no-tools").stream_with_tools([ChatMessage("user", "Why?")], [SEARCH])
    assert server.chat_requests == []  # nothing is sent before the first next()
    with pytest.raises(ChatToolsUnsupported, match="does not support tool calling"):
        next(stream)
    # plain answers still work for it
    assert [d.text for d in model(server, "no-tools").stream([ChatMessage("user", "hi")])][:1] == ["You"]


def test_text_answers_pass_through_with_tools_offered(server: FakeOpenAI) -> None:
    server.script_chat(["Plain ", "text."])
    deltas: list[ChatDelta] = list(model(server).stream_with_tools([ChatMessage("user", "hi")], [SEARCH]))
    assert "".join(d.text for d in deltas) == "Plain text." and deltas[-1].tool_calls == ()
