"""Why a document could not be chunked.

The messages are shown to users (a document's ``progress_msg``), so they name the problem and what to do
about it in plain words.
"""

from __future__ import annotations

from shared.user_errors import UserFacingError


class ChunkingError(UserFacingError):
    """Base of every chunking failure. ``message`` is user-facing."""


class UnknownChunkMethod(ChunkingError):
    """The chunk method name is not one RAGFlow defines."""

    def __init__(self, chunk_method: str) -> None:
        super().__init__(f"Unknown chunk method '{chunk_method}'")
        self.chunk_method = chunk_method


class InvalidParserConfig(ChunkingError):
    """A ``parser_config`` value the chunker needs has the wrong type or range."""


class ModelRequired(ChunkingError):
    """The method needs a model (e.g. image2text) that the caller did not provide."""


class NothingToChunk(ChunkingError):
    """The document holds no text the method can turn into chunks."""


class UnsupportedDocument(ChunkingError):
    """The method does not apply to this kind of document (e.g. ``picture`` on a text file)."""
