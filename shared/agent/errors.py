"""Errors of the canvas executor. The service layer maps them to RAGFlow's envelope."""

from __future__ import annotations

from shared.user_errors import UserFacingError


class DslError(UserFacingError):
    """The DSL cannot be accepted (an unsupported component, a malformed graph, bad parameters)."""


class ComponentError(UserFacingError):
    """A component failed while running; ``message`` is shown to the user (in the stream and the trace)."""


class InputError(UserFacingError):
    """A run's inputs do not fit what the Begin component declares."""


class StreamFailure(ComponentError):
    """A model failed while its answer was streaming; ``producer`` is the component that called it."""

    def __init__(self, producer: str, message: str) -> None:
        super().__init__(message)
        self.producer = producer
