"""In-memory stand-ins for the canvas executor's unit tests: a scripted chat model (text, token streams,
tool calls, failures; with or without native tools) and a fixed set of datasets. Both implement the
executor's ports, so components run exactly as they do against real models and the retrieval service."""

from __future__ import annotations

import copy
import itertools
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.agent.canvas import Canvas
from shared.agent.errors import ComponentError
from shared.agent.runtime import RetrievalSettings, RetrievedChunks, Runtime
from shared.ports.chat_model import (
    ChatDelta,
    ChatMessage,
    ChatModel,
    ChatModelServiceError,
    ChatOptions,
    ChatResult,
    ChatStream,
    ChatToolsUnsupported,
    ChatUsage,
    ToolCall,
    ToolSpec,
)


@dataclass(frozen=True)
class Calls:
    """A scripted answer calling tools: ``(name, arguments)`` pairs."""

    calls: tuple[tuple[str, Mapping[str, Any]], ...]


@dataclass(frozen=True)
class Breaks:
    """A scripted answer that streams ``tokens`` then fails."""

    tokens: tuple[str, ...]
    message: str = "the model broke off"


Answer = str | list[str] | Calls | Breaks


@dataclass
class Seen:
    messages: list[ChatMessage]
    tools: list[ToolSpec] | None
    options: ChatOptions | None


class ScriptedModel(ChatModel):
    """Answers from a script, in order; unscripted, it echoes the last user message. ``native_tools=False``
    refuses tool definitions as models without function calling do."""

    def __init__(self, *answers: Answer, native_tools: bool = True, model_id: str = "scripted@Test") -> None:
        self.model_id = model_id
        self.answers: deque[Answer] = deque(answers)
        self.native_tools = native_tools
        self.seen: list[Seen] = []
        self._ids = itertools.count(1)

    def _next(self, messages: Sequence[ChatMessage]) -> Answer:
        if self.answers:
            return self.answers.popleft()
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return f"echo: {last}"

    def complete(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatResult:
        self.seen.append(Seen(list(messages), None, options))
        answer = self._next(messages)
        if isinstance(answer, Breaks):
            raise ChatModelServiceError(answer.message)
        text = answer if isinstance(answer, str) else "".join(answer) if isinstance(answer, list) else ""
        return ChatResult(text, ChatUsage.of(1, 1))

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatStream:
        self.seen.append(Seen(list(messages), None, options))
        return self._stream(self._next(messages))

    def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], options: ChatOptions | None = None
    ) -> ChatStream:
        if not self.native_tools:
            raise ChatToolsUnsupported(f"{self.model_id} does not support tools")
        self.seen.append(Seen(list(messages), list(tools), options))
        return self._stream(self._next(messages))

    def _stream(self, answer: Answer) -> ChatStream:
        if isinstance(answer, Calls):
            calls = tuple(
                ToolCall(f"call_{next(self._ids)}", name, json.dumps(arguments)) for name, arguments in answer.calls
            )
            yield ChatDelta("", ChatUsage.of(1, 1), calls)
            return
        tokens = answer.tokens if isinstance(answer, Breaks) else [answer] if isinstance(answer, str) else answer
        for token in tokens:
            yield ChatDelta(token)
        if isinstance(answer, Breaks):
            raise ChatModelServiceError(answer.message)
        yield ChatDelta("", ChatUsage.of(1, 1))


@dataclass
class StaticKnowledge:
    """Datasets by id and name, each with its chunks; retrieval returns the chunks sharing a word with the
    question, best overlap first."""

    datasets: dict[str, str] = field(default_factory=dict)  # id -> name
    chunks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # dataset id -> chunks
    searches: list[tuple[str, RetrievalSettings]] = field(default_factory=list)

    def dataset_id(self, name_or_id: str) -> str | None:
        if name_or_id in self.datasets:
            return name_or_id
        return next((i for i, name in self.datasets.items() if name == name_or_id), None)

    def retrieve(self, question: str, settings: RetrievalSettings) -> RetrievedChunks:
        self.searches.append((question, settings))
        missing = [i for i in settings.dataset_ids if i not in self.datasets]
        if missing:
            raise ComponentError(f"You don't own the dataset {missing[0]}.")
        words = set(question.lower().split())
        scored = []
        for dataset_id in settings.dataset_ids:
            for chunk in self.chunks.get(dataset_id, []):
                overlap = len(words & set(str(chunk["content"]).lower().split()))
                if overlap:
                    scored.append((overlap, chunk))
        found = [chunk for _, chunk in sorted(scored, key=lambda pair: -pair[0])][: settings.top_n]
        docs: dict[str, dict[str, Any]] = {}
        for chunk in found:
            entry = docs.setdefault(
                chunk["document_id"],
                {"doc_name": chunk["document_keyword"], "doc_id": chunk["document_id"], "count": 0},
            )
            entry["count"] += 1
        return RetrievedChunks(found, list(docs.values()))


def chunk(chunk_id: str, content: str, document: str = "notes.txt", dataset_id: str = "ds1") -> dict[str, Any]:
    """A chunk as the retrieval service returns it."""
    return {
        "id": chunk_id,
        "content": content,
        "document_id": f"doc-{document}",
        "document_keyword": document,
        "dataset_id": dataset_id,
        "similarity": 0.9,
        "vector_similarity": 0.8,
        "term_similarity": 1.0,
        "positions": [],
    }


def node(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    downstream: Sequence[str] = (),
    upstream: Sequence[str] = (),
    parent_id: str | None = None,
) -> dict[str, Any]:
    """One component entry of a DSL."""
    entry: dict[str, Any] = {
        "obj": {"component_name": name, "params": dict(params or {})},
        "downstream": list(downstream),
        "upstream": list(upstream),
    }
    if parent_id is not None:
        entry["parent_id"] = parent_id
    return entry


def dsl(**components: dict[str, Any]) -> dict[str, Any]:
    """A DSL of ``components`` (``begin`` included by the caller); ids with ``__`` stand for ``:``."""
    return {
        "components": {cid.replace("__", ":"): copy.deepcopy(entry) for cid, entry in components.items()},
        "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": []},
        "history": [],
        "path": [],
        "retrieval": [],
    }


def canvas(spec: Mapping[str, Any], model: ChatModel | None = None, knowledge: StaticKnowledge | None = None) -> Canvas:
    chosen = model or ScriptedModel()
    return Canvas(spec, Runtime(lambda _llm_id: chosen, knowledge or StaticKnowledge()), "agent-1")


def run(board: Canvas, question: str = "hello", inputs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every event of one turn."""
    board.prepare_inputs(inputs)
    return list(board.run(question))


def said(events: Sequence[Mapping[str, Any]]) -> str:
    return "".join(e["data"]["content"] for e in events if e["event"] == "message")


def finished(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ids of the components that finished, in order."""
    return [e["data"]["component_id"] for e in events if e["event"] == "node_finished"]
