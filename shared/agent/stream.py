"""Text a model produces piece by piece, handed from the component that calls the model (LLM, Agent) to
the Message that shows it, so the first token reaches the client as soon as the model sends it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from shared.agent.errors import ComponentError, StreamFailure
from shared.ports.chat_model import ChatModelError


class TextStream:
    """A text produced lazily by ``producer`` (a component id). Iterated once, by the Message that streams
    it; anything else asking for the value reads :meth:`text`, which drains what is left. When the text is
    complete ``on_done`` receives it (the producer stores it as its output). A model failing midway is raised
    as :class:`StreamFailure` naming the producer, after the pieces already produced."""

    def __init__(self, producer: str, pieces: Callable[[], Iterator[str]], on_done: Callable[[str], None]) -> None:
        self.producer = producer
        self._pieces = pieces
        self._on_done = on_done
        self._parts: list[str] = []
        self._started = False
        self._done = False
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        return self._done

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            if self._started:
                raise RuntimeError(f"the output of {self.producer} is being read already")
            self._started = True
        iterator = self._pieces()
        try:
            for piece in iterator:
                if piece:
                    self._parts.append(piece)
                    yield piece
        except StreamFailure:
            raise  # an upstream stream failed: it names its own producer
        except (ChatModelError, ComponentError) as exc:
            raise StreamFailure(self.producer, exc.message) from exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # the consumer stopped early: stop the model upstream
        self._done = True
        self._on_done("".join(self._parts))

    def text(self) -> str:
        """The whole text (drained now if nobody streamed it)."""
        if not self._started:
            for _ in self:
                pass
        return "".join(self._parts)

    def so_far(self) -> str:
        return "".join(self._parts)
