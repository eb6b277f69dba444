"""Aborting model streams from another thread (shared/ports/chat_model.py, shared/adapters/chat_streaming.py)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator

import pytest

from shared.adapters.chat_streaming import guarded_reads
from shared.ports.chat_model import ChatModelServiceError, ChatStreamAborted, StreamAbort, aborting_streams

pytestmark = pytest.mark.unit


class Upstream:
    """A provider's stream whose second read blocks until it is woken (as a socket shut down wakes a recv)."""

    def __init__(self) -> None:
        self.woken = threading.Event()
        self.blocked = threading.Event()

    def wake(self) -> None:
        self.woken.set()

    def __iter__(self) -> Iterator[str]:
        yield "first"
        self.blocked.set()
        if not self.woken.wait(10.0):
            yield "too late"
        raise ConnectionResetError("the connection was shut down")


def _translate(exc: Exception) -> ChatModelServiceError:
    return ChatModelServiceError(f"broke off: {exc}")


def test_an_abort_wakes_a_blocked_read_and_says_the_stream_was_aborted() -> None:
    upstream = Upstream()
    outcome: list[object] = []
    context = contextvars.copy_context()
    abort = context.run(aborting_streams)

    def consume() -> None:  # a worker thread, in a copy of the caller's context (as anyio runs it)
        reads = guarded_reads(upstream, (ConnectionResetError,), _translate, wake=upstream.wake)
        try:
            outcome.extend(reads)
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=context.copy().run, args=(consume,))
    worker.start()
    assert upstream.blocked.wait(10.0)
    abort.fire()
    worker.join(10.0)
    assert outcome[0] == "first" and isinstance(outcome[1], ChatStreamAborted)  # not a model failure


def test_without_an_abort_a_broken_read_is_the_models_failure() -> None:
    upstream = Upstream()
    upstream.wake()
    with pytest.raises(ChatModelServiceError, match="broke off"):
        list(guarded_reads(upstream, (ConnectionResetError,), _translate, wake=upstream.wake))


def test_a_callback_registered_after_the_abort_runs_at_once_and_failures_are_contained() -> None:
    abort = StreamAbort()
    calls: list[str] = []

    def failing() -> None:
        raise OSError("already closed")

    abort.on_abort(failing)
    abort.on_abort(lambda: calls.append("before"))
    abort.fire()
    abort.on_abort(lambda: calls.append("after"))
    assert abort.fired and calls == ["before", "after"]


def test_a_forgotten_callback_never_runs() -> None:
    # A stream that ended forgets its wake: its connection may already carry another request.
    abort = StreamAbort()
    calls: list[str] = []

    def wake() -> None:
        calls.append("woken")

    abort.on_abort(wake)
    abort.forget(wake)
    abort.forget(wake)  # twice, or after the abort: nothing happens
    abort.fire()
    assert calls == []


def test_a_stream_that_ended_forgets_its_wake() -> None:
    calls: list[str] = []
    context = contextvars.copy_context()
    abort = context.run(aborting_streams)
    assert context.run(lambda: list(guarded_reads(["a", "b"], (), _translate, wake=lambda: calls.append("x")))) == [
        "a",
        "b",
    ]
    abort.fire()
    assert calls == []
