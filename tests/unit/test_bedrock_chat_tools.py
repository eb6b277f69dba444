"""Bedrock Converse function calling without a network: ``toolConfig``, tool turns, streamed ``toolUse``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.adapters.aws.bedrock_chat import BedrockChatModel
from shared.ports.chat_model import ChatMessage, ChatModelServiceError, ChatToolsUnsupported, ToolCall, ToolSpec

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
SEARCH = ToolSpec("search", "Search the documents.", {"type": "object", "properties": {"query": {"type": "string"}}})


class Stream:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.events

    def close(self) -> None:
        self.closed = True


class Client:
    def __init__(self, events: list[dict[str, Any]] | None = None, error: Exception | None = None) -> None:
        self.stream = Stream(events or [])
        self.error = error
        self.requests: list[dict[str, Any]] = []

    def converse_stream(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return {"stream": self.stream}


def _tool_use(index: int, tool_id: str, name: str, *pieces: str) -> list[dict[str, Any]]:
    start = {
        "contentBlockStart": {"start": {"toolUse": {"toolUseId": tool_id, "name": name}}, "contentBlockIndex": index}
    }
    deltas = [{"contentBlockDelta": {"delta": {"toolUse": {"input": p}}, "contentBlockIndex": index}} for p in pieces]
    return [start, *deltas, {"contentBlockStop": {"contentBlockIndex": index}}]


def test_tool_calls_stream_in_and_the_tools_go_out() -> None:
    client = Client(
        [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "Let me look."}, "contentBlockIndex": 0}},
            *_tool_use(1, "tu-1", "search", '{"query": ', '"rye"}'),
            *_tool_use(2, "tu-2", "search", ""),
            {"messageStop": {"stopReason": "tool_use"}},
            {"metadata": {"usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13}}},
        ]
    )
    deltas = list(BedrockChatModel(CLAUDE, client=client).stream_with_tools([ChatMessage("user", "Why?")], [SEARCH]))
    assert [d.text for d in deltas] == ["Let me look.", ""]
    assert deltas[-1].tool_calls == (ToolCall("tu-1", "search", '{"query": "rye"}'), ToolCall("tu-2", "search", "{}"))
    assert client.requests[0]["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "search",
                    "description": "Search the documents.",
                    "inputSchema": {"json": dict(SEARCH.parameters)},
                }
            }
        ]
    }
    assert client.stream.closed


def test_tool_turns_become_tool_use_and_tool_result_blocks() -> None:
    conversation = [
        ChatMessage("system", "Use tools."),
        ChatMessage("user", "Why?"),
        ChatMessage("assistant", "Searching.", tool_calls=(ToolCall("tu-1", "search", '{"query": "rye"}'),)),
        ChatMessage("tool", "Rye is dense.", tool_call_id="tu-1"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("tu-2", "search", "not json"),)),
        ChatMessage("tool", "", tool_call_id="tu-2"),
        ChatMessage("user", "Thanks, and?"),
    ]
    request = BedrockChatModel(CLAUDE, client=None).request(conversation, None)
    assert request["messages"] == [
        {"role": "user", "content": [{"text": "Why?"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Searching."},
                {"toolUse": {"toolUseId": "tu-1", "name": "search", "input": {"query": "rye"}}},
            ],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": "tu-1", "content": [{"text": "Rye is dense."}]}}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tu-2", "name": "search", "input": {}}}]},
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tu-2", "content": [{"text": "(empty)"}]}},
                {"text": "Thanks, and?"},
            ],
        },
    ]
    assert json.dumps(request)  # plain data only


def test_a_model_without_tool_use_says_so() -> None:
    refusal = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "This model doesn't support tool use."}}, "ConverseStream"
    )
    stream = BedrockChatModel(CLAUDE, client=Client(error=refusal)).stream_with_tools(
        [ChatMessage("user", "x")], [SEARCH]
    )
    with pytest.raises(ChatToolsUnsupported, match="does not support tool use"):
        next(stream)
    # the same refusal without tools offered is an ordinary failure
    with pytest.raises(ChatModelServiceError, match="ValidationException"):
        next(BedrockChatModel(CLAUDE, client=Client(error=refusal)).stream([ChatMessage("user", "x")]))
