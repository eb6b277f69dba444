"""Agent runs in the completions group: RAGFlow's event stream (``data:{event}`` lines, then ``data:[DONE]``)
and OpenAI's chat completion shape, streamed or whole. The run goes on in a worker thread, one event per
hop, so each model token reaches the client as it arrives; a client that goes away ends the run."""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from contextlib import closing
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from functions.api.deps import ContainerDep, Envelope, Json, TenantId, ok
from functions.completions.router import OPENAI_ANSWERS, _events, _sse, event_stream
from shared.schemas.agents import AgentCompletionRequest, AgentOpenAIRequest
from shared.services.agent_completions import NO_VALID_MESSAGES, AgentCompletionService, AgentTurn

_AGENT_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "session_id": {"type": "string"}, "data": {}},
    "required": ["event", "data"],
}
_EVENT_STREAM = {
    "x-flowless-content": {
        "text/event-stream": _events(
            {
                "anyOf": [
                    {"type": "string", "contentMediaType": "application/json", "contentSchema": _AGENT_EVENT},
                    {"const": "[DONE]"},
                ]
            },
            "The agent's events (message, message_end, node_finished), then `[DONE]`",
        )
    }
}


def ragflow_events(service: AgentCompletionService, turn: AgentTurn) -> Generator[str, None, None]:
    """RAGFlow's stream of an agent run: messages, message ends and finished components, then ``[DONE]``."""
    with closing(service.stream(turn)) as events:  # a client gone: the run ends and the turn is saved now
        for event in events:
            yield _sse(event)
    yield "data:[DONE]\n\n"


def _openai_line(data: Any) -> str:
    return "data: " + json.dumps(data, ensure_ascii=False) + "\n\n"


def openai_chunks(service: AgentCompletionService, turn: AgentTurn, agent_id: str) -> Generator[str, None, None]:
    """OpenAI's ``chat.completion.chunk`` stream of an agent run, a last chunk with the usage, ``[DONE]``."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> str:
        body: dict[str, Any] = {
            "id": turn.session_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": agent_id,
            "choices": [{"delta": delta, "finish_reason": finish, "index": 0}],
        }
        if usage is not None:
            body["usage"] = usage
        return _openai_line(body)

    with closing(service.stream(turn)) as events:
        for event in events:
            if event["event"] == "message":
                yield chunk({"role": "assistant", "content": event["data"].get("content") or ""})
            elif event["event"] == "message_end" and event["data"].get("reference"):
                yield chunk({"role": "assistant", "content": "", "reference": event["data"]["reference"]})
    yield chunk({}, "stop", service.usage(turn.question, turn.content))
    yield "data: [DONE]\n\n"


def openai_completion(
    service: AgentCompletionService, turn: AgentTurn | None, agent_id: str, question: str = ""
) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` of a whole agent run."""
    if turn is None:
        content, session_id, reference = NO_VALID_MESSAGES, agent_id, {}
    else:
        service.answer(turn)
        content, session_id, reference, question = turn.content, turn.session_id, turn.reference, turn.question
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reference:
        message["reference"] = reference
    return {
        "id": session_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": agent_id,
        "param": None,
        "usage": service.usage(question, content),
        "choices": [{"message": message, "logprobs": None, "finish_reason": "stop", "index": 0}],
    }


def add_agent_routes(router: APIRouter) -> None:
    """The two agent completion endpoints, on the completions group's router (prefix ``/api/v1``)."""

    @router.post("/agents/{agent_id}/completions", response_model=None, openapi_extra=_EVENT_STREAM)
    def agent_completion(
        agent_id: str, tenant_id: TenantId, body: Json[AgentCompletionRequest], services: ContainerDep
    ) -> StreamingResponse | Envelope:
        service = services.agent_completions
        turn = service.prepare(tenant_id, agent_id, body)
        if not body.stream:
            return ok(service.answer(turn))
        return event_stream(ragflow_events(service, turn))

    @router.post("/agents_openai/{agent_id}/chat/completions", response_model=None, openapi_extra=OPENAI_ANSWERS)
    def agent_openai_completion(
        agent_id: str, tenant_id: TenantId, body: Json[AgentOpenAIRequest], services: ContainerDep
    ) -> StreamingResponse | JSONResponse:
        service = services.agent_completions
        turn = service.prepare_openai(tenant_id, agent_id, body)
        if turn is None or not body.stream:
            return JSONResponse(openai_completion(service, turn, agent_id))
        return event_stream(openai_chunks(service, turn, agent_id))
