"""What every chat adapter does the same way while it reads a provider's stream, whatever the provider."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from shared.ports.chat_model import ChatDelta, ChatMessage, ChatModelError, ChatUsage, ToolCall
from shared.rag.tokens import count_tokens

T = TypeVar("T")

#: A tool call as its streamed fragments are assembled: ``id``, ``name`` and the ``arguments`` JSON text.
PartialCall = dict[str, str]


def estimate_usage(messages: Sequence[ChatMessage], answer: str) -> ChatUsage:
    """Usage counted with tiktoken, for providers that don't report it (message contents only, no overhead)."""
    return ChatUsage.of(sum(count_tokens(message.content) for message in messages), count_tokens(answer))


def guarded_reads(
    source: Iterable[T], errors: tuple[type[Exception], ...], translate: Callable[[Exception], ChatModelError]
) -> Iterator[T]:
    """The items of ``source``; one of ``errors`` raised while reading an item is raised as ``translate(error)``.

    Only the read is guarded: an exception thrown in at the adapter's own ``yield`` (GeneratorExit on close)
    never passes through here, so it reaches the adapter's ``finally`` that drops the connection untouched.
    """
    iterator = iter(source)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except errors as exc:
            raise translate(exc) from exc
        yield item


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
