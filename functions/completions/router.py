"""HTTP surface of the completions group: answers streamed as server-sent events (RAGFlow's frames and
OpenAI's chunks), or whole. The model is iterated in a worker thread; each delta is forwarded as soon as
it arrives, and a client that goes away stops the model upstream."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Generator
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from functions.api.deps import ContainerDep, Envelope, Json, TenantId, ok
from shared.ports.chat_model import ChatModelError, ChatStreamAborted, aborting_streams
from shared.schemas.completions import CompletionRequest, OpenAICompletionRequest, RelatedQuestionsRequest
from shared.services.completions import CompletionService, Conversation

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
# How the answers are documented (functions.api.openapi): each server-sent event's `data` is JSON — RAGFlow's
# envelope per frame, or OpenAI's chat.completion.chunk then `[DONE]`; the OpenAI-compatible route answers a
# whole chat.completion object when it succeeds, RAGFlow's envelope when it refuses.
_FRAME = {"type": "object", "properties": {"code": {"type": "integer"}, "data": {}}, "required": ["code"]}
_CHUNK = {
    "type": "object",
    "properties": {"object": {"const": "chat.completion.chunk"}, "choices": {"type": "array"}},
    "required": ["id", "object", "choices"],
}
_OPENAI_COMPLETION = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object"}},
        "usage": {"type": "object"},
    },
    "required": ["id", "object", "choices"],
}


def _events(data: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "schema": {"type": "object", "description": description, "properties": {"data": data}, "required": ["data"]}
    }


RAGFLOW_STREAM = {
    "x-flowless-content": {
        "text/event-stream": _events(
            {"type": "string", "contentMediaType": "application/json", "contentSchema": _FRAME},
            "RAGFlow's frames: the answer so far in each, the last with its references, then `data: true`",
        )
    }
}
OPENAI_ANSWERS = {
    "x-flowless-content": {
        "text/event-stream": _events(
            {
                "anyOf": [
                    {"type": "string", "contentMediaType": "application/json", "contentSchema": _CHUNK},
                    {"const": "[DONE]"},
                ]
            },
            "OpenAI's chat.completion.chunk events, then `[DONE]`",
        ),
        "application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/Envelope"}, _OPENAI_COMPLETION]}},
    }
}
_DONE = object()
logger = logging.getLogger(__name__)


def _sse(data: Any) -> str:
    return "data:" + json.dumps(data, ensure_ascii=False) + "\n\n"


#: How long a hang-up waits for the worker thread to let go of the answer's generator once the model streams
#: were aborted (a read blocked before the model's response headers is not woken: it ends at its timeout).
ABORT_GRACE_SECONDS = 5.0


async def _in_thread(generator: Generator[str, None, None]) -> AsyncIterator[str]:
    """Drive a blocking generator from the event loop, one item per worker-thread hop, closing it on exit.

    When the client hangs up (this task is cancelled) while the thread waits on a model that says nothing,
    the wait is given up at once and the model streams read under this task's ``StreamAbort`` are aborted:
    their connections drop, so the model stops generating, and the thread's read fails and lets go.
    """
    abort = aborting_streams()  # the worker threads below run in copies of this context
    try:
        while True:
            idle = threading.Event()
            try:
                item = await anyio.to_thread.run_sync(_step, generator, idle, abandon_on_cancel=True)
            except anyio.get_cancelled_exc_class():
                abort.fire()
                await anyio.to_thread.run_sync(idle.wait, ABORT_GRACE_SECONDS)  # shielded: not abandoned
                raise
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        await anyio.to_thread.run_sync(_close, generator)


def _step(generator: Generator[str, None, None], idle: threading.Event) -> object:
    try:
        return next(generator, _DONE)
    except ChatStreamAborted:  # the client went away: the answer is dropped as by close()
        return _DONE
    finally:
        idle.set()


def _close(generator: Generator[str, None, None]) -> None:
    try:
        generator.close()
    except ValueError:  # still running in an abandoned thread (a read no abort wakes): it ends on its own
        logger.warning("an abandoned answer is still waiting on its model; it ends at the model's timeout")


def event_stream(generator: Generator[str, None, None]) -> StreamingResponse:
    """An SSE answer of a blocking generator's lines, each sent as soon as it is produced."""
    return StreamingResponse(_in_thread(generator), media_type="text/event-stream", headers=SSE_HEADERS)


def ragflow_frames(service: CompletionService, conv: Conversation) -> Generator[str, None, None]:
    """RAGFlow's SSE: the answer so far in each frame, the final one with references, then ``data: true``."""
    session_id = conv.session["id"] if conv.session else None
    answer = ""
    try:
        for delta in service.stream(conv):
            answer += delta
            data: dict[str, Any] = {
                "answer": answer,
                "reference": {},
                "audio_binary": None,
                "id": conv.message_id,
                "session_id": session_id,
            }
            yield _sse({"code": 0, "message": "", "data": data})
    except ChatModelError as exc:
        service.finish(conv, answer, failed=True)
        yield _sse(
            {"code": 500, "message": exc.message, "data": {"answer": f"**ERROR**: {exc.message}", "reference": []}}
        )
    else:
        yield _sse({"code": 0, "message": "", "data": service.finish(conv, answer)})
    yield _sse({"code": 0, "message": "", "data": True})


def openai_chunks(
    service: CompletionService, conv: Conversation, model: str, with_reference: bool
) -> Generator[str, None, None]:
    """OpenAI's chat.completion.chunk stream, ending with usage and ``data:[DONE]``."""
    completion_id = f"chatcmpl-{conv.message_id.replace('-', '')}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None, usage: Any = None) -> str:
        return _sse(
            {
                "id": completion_id,
                "choices": [{"delta": delta, "finish_reason": finish, "index": 0, "logprobs": None}],
                "created": created,
                "model": model,
                "object": "chat.completion.chunk",
                "system_fingerprint": "",
                "usage": usage,
            }
        )

    answer = ""
    try:
        for delta in service.stream(conv):
            answer += delta
            yield chunk(
                {
                    "content": delta,
                    "role": "assistant",
                    "function_call": None,
                    "tool_calls": None,
                    "reasoning_content": None,
                },
                None,
            )
    except ChatModelError as exc:
        yield chunk({"content": f"**ERROR**: {exc.message}", "role": "assistant"}, "stop")
        yield "data:[DONE]\n\n"
        return
    final = service.finish(conv, answer)
    usage = conv.usage
    last: dict[str, Any] = {
        "content": None,
        "role": "assistant",
        "function_call": None,
        "tool_calls": None,
        "reasoning_content": None,
    }
    if with_reference:
        last["reference"] = final["reference"]
    yield chunk(
        last,
        "stop",
        None
        if usage is None
        else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    )
    yield "data:[DONE]\n\n"


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post("/chats/{chat_id}/completions", response_model=None, openapi_extra=RAGFLOW_STREAM)
    def chat_completion(
        chat_id: str, tenant_id: TenantId, body: Json[CompletionRequest], services: ContainerDep
    ) -> StreamingResponse | Envelope:
        service = services.completions
        conv = service.prepare(tenant_id, chat_id, body)
        if not body.stream:
            return ok(service.answer(conv))
        return event_stream(ragflow_frames(service, conv))

    @router.post("/chats_openai/{chat_id}/chat/completions", response_model=None, openapi_extra=OPENAI_ANSWERS)
    def openai_completion(
        chat_id: str, tenant_id: TenantId, body: Json[OpenAICompletionRequest], services: ContainerDep
    ) -> StreamingResponse | JSONResponse:
        service = services.completions
        conv = service.prepare_openai(tenant_id, chat_id, body)
        model, with_reference = body.model, body.extra_body.reference
        if not body.stream:
            final = service.answer(conv)
            usage = conv.usage
            message: dict[str, Any] = {"content": final["answer"], "role": "assistant"}
            if with_reference:
                message["reference"] = final["reference"]
            return JSONResponse(
                {
                    "choices": [{"finish_reason": "stop", "index": 0, "logprobs": None, "message": message}],
                    "created": int(final["created_at"]),
                    "id": f"chatcmpl-{conv.message_id.replace('-', '')}",
                    "model": model,
                    "object": "chat.completion",
                    "usage": {
                        "completion_tokens": usage.completion_tokens if usage else 0,
                        "completion_tokens_details": {
                            "accepted_prediction_tokens": usage.completion_tokens if usage else 0,
                            "reasoning_tokens": 0,
                            "rejected_prediction_tokens": 0,
                        },
                        "prompt_tokens": usage.prompt_tokens if usage else 0,
                        "total_tokens": usage.total_tokens if usage else 0,
                    },
                }
            )
        return event_stream(openai_chunks(service, conv, model, with_reference))

    @router.post("/sessions/related_questions")
    def related_questions(tenant_id: TenantId, body: Json[RelatedQuestionsRequest], services: ContainerDep) -> Envelope:
        return ok(services.completions.related_questions(tenant_id, body), message="success")

    from functions.completions.agents import add_agent_routes  # it reuses this module's SSE helpers

    add_agent_routes(router)
    return router
