"""ChatModel port: a large language model that answers a conversation, whole or token by token.

The API layer streams answers over SSE (locally through uvicorn, on AWS through Lambda response
streaming): it iterates :meth:`ChatModel.stream` in a worker thread and forwards each delta as it arrives.
When its own client goes away it closes the iterator, and the adapter must then drop the upstream request
at once, so an abandoned answer stops costing tokens. A worker thread blocked reading a model that says
nothing for a while (reasoning before it answers) cannot be closed; the API layer then fires the
:class:`StreamAbort` it iterates under (``aborting_streams``) from its own thread, and the adapter, which
registered how to wake its read (``on_abort``), raises :class:`ChatStreamAborted` from it.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.user_errors import UserFacingError

ChatRole = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its name, what it does, and its arguments as a JSON schema object."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for; ``arguments`` is the JSON text the model wrote (it may not parse)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """One turn of the conversation; ``images`` (PNG/JPEG/GIF/WebP bytes) go to image2text models.

    An assistant turn that called tools carries ``tool_calls``; each result comes back as a ``tool`` turn
    naming the call it answers in ``tool_call_id``.
    """

    role: ChatRole
    content: str
    images: tuple[bytes, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


def image_mime(data: bytes) -> str:
    """The MIME type of an image from its magic bytes (PNG unless recognised otherwise)."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


@dataclass(frozen=True)
class ChatOptions:
    """Sampling settings as RAGFlow's ``llm`` block names them; None leaves the provider's default.

    Providers ignore the settings they lack (Bedrock's Converse API has no presence or frequency penalty).
    """

    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class ChatUsage:
    """Tokens a call consumed, as the provider counted them (estimated with tiktoken when it didn't say)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> ChatUsage:
        return cls(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)

    @classmethod
    def reported(cls, prompt_tokens: int, completion_tokens: int, total_tokens: int | None) -> ChatUsage:
        """Usage as a provider reported it; a missing total is the sum of the two counts."""
        if total_tokens is None:
            return cls.of(prompt_tokens, completion_tokens)
        return cls(prompt_tokens, completion_tokens, int(total_tokens))


@dataclass(frozen=True)
class ChatResult:
    """A whole answer."""

    text: str
    usage: ChatUsage


@dataclass(frozen=True)
class ChatDelta:
    """A piece of a streamed answer.

    Every delta but the last carries non-empty ``text`` and no usage; the last one carries ``usage`` and
    empty text, and arrives only when the answer completed. With tools (:meth:`ChatModel.stream_with_tools`)
    the last delta also carries the ``tool_calls`` the model made, if any.
    """

    text: str
    usage: ChatUsage | None = None
    tool_calls: tuple[ToolCall, ...] = ()


#: What :meth:`ChatModel.stream` returns: a generator, so the consumer can ``close()`` it.
ChatStream = Generator[ChatDelta, None, None]


class ChatModelError(UserFacingError):
    """The model could not answer. ``message`` is fit to show to the API's user; it never holds secrets."""


class ChatModelConfigError(ChatModelError):
    """The model is unknown, has no provider in this deployment, or lacks its endpoint or a valid key."""


class ChatToolsUnsupported(ChatModelConfigError):
    """The model takes no tool definitions (no native function calling); describe the tools in the prompt."""


class ChatModelServiceError(ChatModelError):
    """The model's service failed: unreachable, refused the request, broke off, or answered nonsense."""


class ChatModelTimeout(ChatModelServiceError):
    """The model's service did not answer (or stopped streaming) within the read timeout."""


class ChatStreamAborted(Exception):
    """The stream's consumer gave up on it from another thread (its own client went away): not a model failure,
    so nothing catches it as one; the answer is dropped as on ``close()``."""


class StreamAbort:
    """Stops the model streams read under it, from any thread, even while a read is blocked.

    Adapters register (``on_abort``) how to wake their read: shutting the connection's socket down. A callback
    registered after the abort runs at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._fired = False

    @property
    def fired(self) -> bool:
        return self._fired

    def on_abort(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._fired:
                self._callbacks.append(callback)
                return
        _run(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        """Drop a callback registered with ``on_abort`` (its stream is over), unless it already ran."""
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def fire(self) -> None:
        with self._lock:
            self._fired = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _run(callback)


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # waking a read is best effort: the stream then ends at its next delta instead
        logging.getLogger(__name__).warning("aborting a model stream failed", exc_info=True)


#: The abort of the streams the current context reads (worker threads get a copy of the caller's context).
_STREAM_ABORT: ContextVar[StreamAbort | None] = ContextVar("stream_abort", default=None)


def aborting_streams() -> StreamAbort:
    """A new abort for the model streams read from now on in this context (and in the threads it starts)."""
    abort = StreamAbort()
    _STREAM_ABORT.set(abort)
    return abort


def current_abort() -> StreamAbort | None:
    """The abort the streams read in this context answer to, if any."""
    return _STREAM_ABORT.get()


class ChatModel(ABC):
    """One chat model. Instances are built once per process and are safe to share between threads."""

    #: RAGFlow's ``name@factory`` id of the model.
    model_id: str

    @abstractmethod
    def complete(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatResult:
        """The whole answer to ``messages``. Raises :class:`ChatModelError`."""

    @abstractmethod
    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatStream:
        """The answer to ``messages``, delta by delta as the provider produces them.

        Nothing is sent before the first ``next()``, and every failure, including a rejected key or an
        unreachable endpoint, is raised from the iterator as :class:`ChatModelError`, after the deltas that
        already arrived. ``close()`` (from the thread iterating it, between deltas) drops the upstream
        request at once; a read blocked in between is woken by the :class:`StreamAbort` of the context the
        stream is read in: the adapter reads through ``guarded_reads`` with a ``wake`` that shuts its
        connection down (``shut_down``).
        """

    def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], options: ChatOptions | None = None
    ) -> ChatStream:
        """As :meth:`stream`, offering ``tools`` through the provider's native function calling; the last delta
        carries the calls the model made (none when it answered in text).

        Raises :class:`ChatToolsUnsupported` (at the call, or from the first ``next()``, before any delta) when
        the model or its provider takes no tool definitions; adapters without function calling keep this
        default. Other failures are raised as :meth:`stream` raises them.
        """
        raise ChatToolsUnsupported(f"The chat model {self.model_id} does not support tool calling.")
