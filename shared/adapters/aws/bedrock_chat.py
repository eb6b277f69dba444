"""Chat answers from Amazon Bedrock's Converse API (``bedrock-runtime`` ``converse`` / ``converse_stream``).

Converse speaks one message shape for every model family (Claude, Nova, Llama, Mistral ...): system prompts
go apart from the turns, and the turns must start with the user and alternate, so the conversation is
normalized before it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

from shared.adapters.chat_streaming import PartialCall, guarded_reads, last_delta, shut_down
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

DEFAULT_CONNECT_TIMEOUT_SECONDS = 10
DEFAULT_READ_TIMEOUT_SECONDS = 60

# Error codes as botocore reports them. Errors inside a stream carry the event's member name
# (``throttlingException``), so codes are compared with their first letter upper-cased.
_THROTTLED = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}
_UNAVAILABLE = {"ServiceUnavailableException", "ModelNotReadyException"}
_CONFIG_ERRORS = {"AccessDeniedException", "ResourceNotFoundException", "UnrecognizedClientException"}
_TIMEOUTS = {"ModelTimeoutException"}


def bedrock_chat_client(
    region: str, *, endpoint_url: str | None = None, read_timeout: int = DEFAULT_READ_TIMEOUT_SECONDS
) -> Any:
    """A ``bedrock-runtime`` client for chat: bounded timeouts, a few standard retries; build once, share."""
    config = Config(
        region_name=region,
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=DEFAULT_CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
    )
    return boto3.client("bedrock-runtime", endpoint_url=endpoint_url, config=config)


class BedrockChatModel(ChatModel):
    """One Bedrock model (``modelId`` or inference profile id). ``client`` is a ``bedrock-runtime`` client."""

    def __init__(self, model: str, *, client: Any, model_id: str | None = None) -> None:
        self.model = model
        self.model_id = model_id or f"{model}@Bedrock"
        self._client = client

    def complete(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatResult:
        request = self.request(messages, options)
        try:
            response = self._client.converse(**request)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from exc
        try:
            blocks = response["output"]["message"]["content"]
            text = "".join(block["text"] for block in blocks if "text" in block)
            usage = _usage(response["usage"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unreadable() from exc
        return ChatResult(text=text, usage=usage)

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatStream:
        # A generator itself, so even a request that cannot be built fails at the first next().
        yield from self._stream(self.request(messages, options), messages)

    def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], options: ChatOptions | None = None
    ) -> ChatStream:
        request = self.request(messages, options)
        request["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": {"json": dict(t.parameters)},
                    }
                }
                for t in tools
            ]
        }
        yield from self._stream(request, messages)

    def _stream(self, request: dict[str, Any], messages: Sequence[ChatMessage]) -> ChatStream:
        try:
            events = self._client.converse_stream(**request)["stream"]
        except (ClientError, BotoCoreError) as exc:
            if "toolConfig" in request and _refuses_tools(exc):
                raise ChatToolsUnsupported(f"The Bedrock model {self.model} does not support tool use.") from exc
            raise self._error(exc) from exc
        parts: list[str] = []
        usage: ChatUsage | None = None
        calls: dict[int, PartialCall] = {}
        try:
            reads = guarded_reads(
                events,
                (ClientError, BotoCoreError, urllib3.exceptions.HTTPError),
                self._error,
                wake=lambda: shut_down(getattr(events, "_raw_stream", None)),  # botocore's EventStream: urllib3's
            )
            for event in reads:
                text = None
                try:
                    if "contentBlockDelta" in event:
                        delta = event["contentBlockDelta"]["delta"]
                        text = delta.get("text")
                        if "toolUse" in delta:
                            index = int(event["contentBlockDelta"].get("contentBlockIndex", 0))
                            call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                            call["arguments"] += str(delta["toolUse"].get("input") or "")
                    elif "contentBlockStart" in event and "toolUse" in event["contentBlockStart"]["start"]:
                        index = int(event["contentBlockStart"].get("contentBlockIndex", 0))
                        started = event["contentBlockStart"]["start"]["toolUse"]
                        calls[index] = {"id": str(started["toolUseId"]), "name": str(started["name"]), "arguments": ""}
                    elif "metadata" in event and "usage" in event["metadata"]:
                        usage = _usage(event["metadata"]["usage"])
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    raise self._unreadable() from exc
                if text:
                    parts.append(text)
                    yield ChatDelta(text)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # on close() mid-answer: drop the HTTP response so Bedrock stops generating
        yield last_delta(messages, parts, usage, calls)

    def request(self, messages: Sequence[ChatMessage], options: ChatOptions | None) -> dict[str, Any]:
        """The Converse request for ``messages``.

        System messages become ``system`` blocks. Blank turns are dropped, consecutive turns of one role are
        joined, and turns before the first user turn (a chat's greeting) are dropped: Converse rejects all
        three. Penalties have no Converse equivalent and are not sent.
        """
        system = [{"text": message.content} for message in messages if message.role == "system" and message.content]
        turns: list[dict[str, Any]] = []
        for message in messages:
            if message.role == "system" or not (message.content.strip() or message.tool_calls or message.tool_call_id):
                continue
            if not turns and message.role != "user":
                continue
            role, blocks = _converse_blocks(message)
            if turns and turns[-1]["role"] == role:
                last = turns[-1]["content"]
                if blocks and "text" in blocks[0] and last and "text" in last[0] and role == message.role:
                    last[0]["text"] += "\n\n" + blocks.pop(0)["text"]
                last.extend(blocks)
            else:
                turns.append({"role": role, "content": blocks})
        if not turns:
            raise ChatModelError("The conversation has no user message for the model to answer.")
        request: dict[str, Any] = {"modelId": self.model, "messages": turns}
        if system:
            request["system"] = system
        if options is not None:
            settings = {"temperature": options.temperature, "topP": options.top_p, "maxTokens": options.max_tokens}
            inference = {name: value for name, value in settings.items() if value is not None}
            if inference:
                request["inferenceConfig"] = inference
        return request

    def _error(self, exc: Exception) -> ChatModelError:
        """A user-facing error; AWS error messages name no credentials, so the provider's message is kept."""
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))[:300]
            code = code[:1].upper() + code[1:]
            if code in _THROTTLED:
                return ChatModelServiceError(f"The Bedrock model {self.model} is throttled; try again later.")
            if code in _UNAVAILABLE:
                return ChatModelServiceError(f"The Bedrock model {self.model} is unavailable ({code}): {message}")
            if code in _TIMEOUTS:
                return ChatModelTimeout(f"The Bedrock model {self.model} timed out: {message}")
            if code in _CONFIG_ERRORS:
                return ChatModelConfigError(f"The Bedrock model {self.model} refused the request ({code}): {message}")
            return ChatModelServiceError(f"The Bedrock model {self.model} failed ({code or 'error'}): {message}")
        if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | urllib3.exceptions.ReadTimeoutError):
            return ChatModelTimeout(f"The Bedrock model {self.model} timed out.")
        if isinstance(exc, NoCredentialsError):
            return ChatModelConfigError(f"No AWS credentials are available to call the Bedrock model {self.model}.")
        if isinstance(exc, urllib3.exceptions.HTTPError):
            return ChatModelServiceError(
                f"The connection to Bedrock broke off in the middle of the answer of {self.model}."
            )
        return ChatModelServiceError(f"Could not call the Bedrock model {self.model}: {exc}")

    def _unreadable(self) -> ChatModelServiceError:
        return ChatModelServiceError(f"The Bedrock model {self.model} gave an unreadable answer.")


def _converse_blocks(message: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    """The Converse role and content blocks of one message: a tool result is a user turn's ``toolResult``,
    an assistant's tool calls are ``toolUse`` blocks after its text."""
    if message.role == "tool":
        result = {"toolUseId": message.tool_call_id or "", "content": [{"text": message.content or "(empty)"}]}
        return "user", [{"toolResult": result}]
    blocks: list[dict[str, Any]] = [{"text": message.content}] if message.content.strip() else []
    blocks.extend(
        {"image": {"format": image_mime(image).split("/")[1], "source": {"bytes": image}}} for image in message.images
    )
    for call in message.tool_calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = {}
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments}})
    return message.role, blocks


def _refuses_tools(exc: Exception) -> bool:
    """Bedrock's answer to a toolConfig for a model without tool use: a ValidationException naming tools."""
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    return str(error.get("Code", "")) == "ValidationException" and "tool" in str(error.get("Message", "")).lower()


def _usage(reported: dict[str, Any]) -> ChatUsage:
    return ChatUsage.reported(int(reported["inputTokens"]), int(reported["outputTokens"]), reported.get("totalTokens"))
