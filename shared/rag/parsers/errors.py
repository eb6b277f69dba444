"""Why a file could not be turned into text.

The messages are shown to users (a document's ``progress_msg``), so they say what is wrong with the file in
plain words and never carry library internals or stack traces; the original exception stays chained
(``raise ... from``) for the logs.
"""

from __future__ import annotations

from shared.user_errors import UserFacingError


class ParseError(UserFacingError):
    """Base of every extraction failure. ``message`` is user-facing."""


class UnsupportedFormat(ParseError):
    """The file type (by extension) is not one we can parse."""


class EmptyDocument(ParseError):
    """The file is empty or holds no text."""


class CorruptDocument(ParseError):
    """The file is damaged, truncated, encrypted with a password, or not what its extension says."""


class NoTextLayer(ParseError):
    """A PDF whose pages carry no text (scanned images); OCR is not part of this deployment."""

    def __init__(self, filename: str) -> None:
        super().__init__(f"{filename}: this PDF has no text layer (scanned images?); OCR is not available")
