"""Errors of the canvas executor. The service layer maps them to RAGFlow's envelope."""

from __future__ import annotations


class DslError(Exception):
    """The DSL cannot be accepted (an unsupported component, a malformed graph, bad parameters)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ComponentError(Exception):
    """A component failed while running; ``message`` is shown to the user (in the stream and the trace)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(Exception):
    """A run's inputs do not fit what the Begin component declares."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StreamFailure(ComponentError):
    """A model failed while its answer was streaming; ``producer`` is the component that called it."""

    def __init__(self, producer: str, message: str) -> None:
        super().__init__(message)
        self.producer = producer
