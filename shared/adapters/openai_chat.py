"""Chat answers from any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, Ollama, LiteLLM ...).

Used by both deployments, so it lives beside ``aws/`` and ``local/`` rather than in either.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from typing import Any

import openai

from shared.adapters.chat_streaming import PartialCall, estimate_usage, guarded_reads, last_delta, shut_down
from shared.adapters.openai_common import endpoint_label, provider_message, request_error
from shared.ports.chat_model import (
    ChatDelta,
    ChatMessage,
    ChatModel,
    ChatModelConfigError,
    ChatModelError,
    ChatModelServiceError,
    ChatModelTimeout,
    ChatOptions,
    ChatResult,
    ChatStream,
    ChatToolsUnsupported,
    ChatUsage,
    ToolSpec,
    image_mime,
)

DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
#: Longest silence allowed while waiting for the answer or between two streamed chunks.
DEFAULT_READ_TIMEOUT_SECONDS = 60.0
#: Retries after the first attempt, with the client's exponential backoff (connection errors, 408, 409,
#: 429 and 5xx are retried; other 4xx are final). A stream is retried only until its first byte arrives.
DEFAULT_MAX_RETRIES = 2

_MIN_SCRUBBED_KEY = 8

_ClientKey = tuple[str | None, str, float, float, int]
_clients: dict[_ClientKey, openai.OpenAI] = {}
_clients_lock = threading.Lock()


def openai_client(
    base_url: str | None,
    api_key: str,
    *,
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> openai.OpenAI:
    """The process's client for one endpoint and key (built on first use): its connection pool is shared by
    every model served there. Write and pool timeouts follow the read timeout."""
    key: _ClientKey = (base_url, api_key, read_timeout, connect_timeout, max_retries)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                timeout = openai.Timeout(read_timeout, connect=connect_timeout)
                client = _clients[key] = openai.OpenAI(
                    api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
                )
    return client


class OpenAIChatModel(ChatModel):
    """One model of an OpenAI-compatible endpoint.

    ``base_url`` None means the openai package's default (``OPENAI_BASE_URL``, else OpenAI's own API).
    """

    def __init__(
        self,
        model: str,
        *,
        model_id: str | None = None,
        api_key: str,
        base_url: str | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if not api_key:
            raise ChatModelConfigError(f"No API key is configured for the chat model {model_id or model}.")
        self.model = model
        self.model_id = model_id or f"{model}@OpenAI"
        self._api_key = api_key
        self._read_timeout = read_timeout
        self._client = openai_client(
            base_url, api_key, read_timeout=read_timeout, connect_timeout=connect_timeout, max_retries=max_retries
        )
        self._endpoint = endpoint_label(self._client)

    def complete(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatResult:
        try:
            response = self._client.chat.completions.create(**self._request(messages, options))
        except openai.APIError as exc:
            raise self._error(exc, midstream=False) from exc
        try:
            text = response.choices[0].message.content or ""
            reported = response.usage
            usage = _usage(reported) if reported is not None else estimate_usage(messages, text)
        except (AttributeError, IndexError, TypeError) as exc:  # no choices, missing fields
            raise self._unreadable() from exc
        return ChatResult(text=text, usage=usage)

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatStream:
        # A generator itself, so even a request that cannot be built fails at the first next().
        yield from self._stream(self._request(messages, options), messages)

    def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], options: ChatOptions | None = None
    ) -> ChatStream:
        request = self._request(messages, options)
        request["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
            }
            for t in tools
        ]
        yield from self._stream(request, messages)

    def _stream(self, request: dict[str, Any], messages: Sequence[ChatMessage]) -> ChatStream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
        try:
            chunks = self._client.chat.completions.create(**request)
        except openai.BadRequestError as exc:
            if "tools" in request and "tool" in self._detail(exc).lower():
                # Servers without function calling (Ollama's older models, vLLM without a tool parser) say so
                # with a 400 naming tools: the caller falls back to describing the tools in the prompt.
                raise ChatToolsUnsupported(
                    f"The chat model {self.model_id} does not support tool calling: {self._detail(exc)}"
                ) from exc
            raise self._error(exc, midstream=False) from exc
        except openai.APIError as exc:
            raise self._error(exc, midstream=False) from exc
        parts: list[str] = []
        usage: ChatUsage | None = None
        calls: dict[int, PartialCall] = {}
        try:
            # A data line that is not JSON raises ValueError.
            reads = guarded_reads(
                chunks, (openai.APIError, ValueError), self._midstream_error, wake=lambda: shut_down(chunks.response)
            )
            for chunk in reads:
                try:
                    if chunk.usage is not None:  # the last chunk when include_usage is honoured
                        usage = _usage(chunk.usage)
                    delta = chunk.choices[0].delta if chunk.choices else None
                    text = delta.content if delta is not None else None
                    for piece in (getattr(delta, "tool_calls", None) or []) if delta is not None else []:
                        _merge_tool_call(calls, piece)
                except (AttributeError, TypeError) as exc:
                    raise self._unreadable() from exc
                if text:
                    parts.append(text)
                    yield ChatDelta(text)
        finally:
            chunks.close()  # on close() mid-answer: the connection is dropped, so the server stops generating
        yield last_delta(messages, parts, usage, calls)

    def _request(self, messages: Sequence[ChatMessage], options: ChatOptions | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_openai_message(message) for message in messages],
        }
        if options is not None:
            settings = {
                "temperature": options.temperature,
                "top_p": options.top_p,
                "presence_penalty": options.presence_penalty,
                "frequency_penalty": options.frequency_penalty,
                # ``max_tokens`` rather than ``max_completion_tokens``: every compatible server knows it.
                "max_tokens": options.max_tokens,
            }
            request.update({name: value for name, value in settings.items() if value is not None})
        return request

    def _error(self, exc: openai.APIError, *, midstream: bool) -> ChatModelError:
        """A user-facing error for a failed request; the API key never appears in it."""
        known = request_error(
            exc,
            noun="chat model",
            model=self.model,
            model_id=self.model_id,
            where=f"the chat service at {self._endpoint}",
            timeout_s=self._read_timeout,
            detail=self._detail(exc),
            config=ChatModelConfigError,
            service=ChatModelServiceError,
            timeout=ChatModelTimeout,
            midstream=midstream,
        )
        if known is not None:
            return known
        if isinstance(exc, openai.APIResponseValidationError):
            return self._unreadable()
        # An error event inside the stream (``data: {"error": {...}}``).
        return ChatModelServiceError(f"The chat model {self.model_id} failed mid-answer: {self._detail(exc)}")

    def _midstream_error(self, exc: Exception) -> ChatModelError:
        return self._error(exc, midstream=True) if isinstance(exc, openai.APIError) else self._unreadable()

    def _detail(self, exc: openai.APIError) -> str:
        """The provider's own error message, kept short and scrubbed of the key should it be echoed."""
        detail = provider_message(exc)
        # Real keys are long; scrubbing a short placeholder key ("x") would garble ordinary words.
        return detail.replace(self._api_key, "***") if len(self._api_key) >= _MIN_SCRUBBED_KEY else detail

    def _unreadable(self) -> ChatModelServiceError:
        return ChatModelServiceError(
            f"The chat service at {self._endpoint} gave an unreadable answer for {self.model_id}."
        )


def _usage(reported: Any) -> ChatUsage:
    prompt, completion = int(reported.prompt_tokens or 0), int(reported.completion_tokens or 0)
    return ChatUsage.reported(prompt, completion, getattr(reported, "total_tokens", None))


def _merge_tool_call(calls: dict[int, dict[str, str]], piece: Any) -> None:
    """Fold one streamed tool-call fragment into the calls being assembled (keyed by the call's index):
    the id and name come once, the arguments' JSON text arrives in pieces."""
    call = calls.setdefault(int(piece.index or 0), {"id": "", "name": "", "arguments": ""})
    if piece.id:
        call["id"] = str(piece.id)
    function = piece.function
    if function is not None:
        if function.name:
            call["name"] += str(function.name)
        if function.arguments:
            call["arguments"] += str(function.arguments)


def _openai_message(message: ChatMessage) -> dict[str, Any]:
    """A message in OpenAI's shape; images become ``image_url`` parts with data URIs (vision models)."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ],
        }
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    for image in message.images:
        encoded = base64.b64encode(image).decode("ascii")
        parts.append({"type": "image_url", "image_url": {"url": f"data:{image_mime(image)};base64,{encoded}"}})
    return {"role": message.role, "content": parts}
