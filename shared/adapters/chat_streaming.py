"""What every chat adapter does the same way while it reads a provider's stream, whatever the provider."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from shared.ports.chat_model import (
    ChatDelta,
    ChatMessage,
    ChatModelError,
    ChatStreamAborted,
    ChatUsage,
    ToolCall,
    current_abort,
)
from shared.rag.tokens import count_tokens

T = TypeVar("T")

#: A tool call as its streamed fragments are assembled: ``id``, ``name`` and the ``arguments`` JSON text.
PartialCall = dict[str, str]


def estimate_usage(messages: Sequence[ChatMessage], answer: str) -> ChatUsage:
    """Usage counted with tiktoken, for providers that don't report it (message contents only, no overhead)."""
    return ChatUsage.of(sum(count_tokens(message.content) for message in messages), count_tokens(answer))


def guarded_reads(
    source: Iterable[T],
    errors: tuple[type[Exception], ...],
    translate: Callable[[Exception], ChatModelError],
    *,
    wake: Callable[[], None] | None = None,
) -> Iterator[T]:
    """The items of ``source``; one of ``errors`` raised while reading an item is raised as ``translate(error)``.

    Only the read is guarded: an exception thrown in at the adapter's own ``yield`` (GeneratorExit on close)
    never passes through here, so it reaches the adapter's ``finally`` that drops the connection untouched.
    ``wake`` (from another thread) makes a blocked read return or fail: it is registered with the current
    :class:`StreamAbort`, and once that fired, however the read ends, :class:`ChatStreamAborted` is raised.
    """
    abort = current_abort()
    if abort is not None and wake is not None:
        abort.on_abort(wake)
    try:
        iterator = iter(source)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                if abort is not None and abort.fired:
                    raise ChatStreamAborted() from None
                return
            except Exception as exc:
                if abort is not None and abort.fired:
                    raise ChatStreamAborted() from exc
                if isinstance(exc, errors):
                    raise translate(exc) from exc
                raise
            yield item
    finally:
        if abort is not None and wake is not None:
            abort.forget(wake)  # the stream is over: its connection may serve another request now


def shut_down(response: Any) -> None:
    """Wake a read blocked on an HTTP response (httpx's or urllib3's) from another thread: shut its
    connection's socket down. Closing the response would not do (a ``recv`` blocked on a socket closed by
    another thread on Linux waits on), and it takes the connection's lock the reading thread may hold.

    A response already closed is left alone: its connection went back to the client's pool and may carry
    another request (urllib3 also forgets the connection of a released response)."""
    if getattr(response, "is_closed", False):  # httpx
        return
    stream = (getattr(response, "extensions", None) or {}).get("network_stream")  # httpx (openai)
    if stream is not None:
        sock = stream.get_extra_info("socket")
    else:  # urllib3 (botocore)
        sock = getattr(getattr(response, "connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed: nothing is blocked on it
            sock.shutdown(socket.SHUT_RDWR)


def last_delta(
    messages: Sequence[ChatMessage], parts: Sequence[str], usage: ChatUsage | None, calls: dict[int, PartialCall]
) -> ChatDelta:
    """The stream's closing delta: the usage (estimated when the provider reported none) and the tool calls
    assembled by index (nameless fragments dropped, a call without an id named after its index)."""
    tool_calls = tuple(
        ToolCall(id=c["id"] or f"call_{index}", name=c["name"], arguments=c["arguments"] or "{}")
        for index, c in sorted(calls.items())
        if c["name"]
    )
    return ChatDelta("", usage or estimate_usage(messages, "".join(parts)), tool_calls)
