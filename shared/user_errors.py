"""The base of errors whose message is written for the API's user (a model, parser, chunker or canvas failure)."""

from __future__ import annotations


class UserFacingError(Exception):
    """``message`` is fit to show to the API's user as it is: plain words, no internals, no secrets."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
