"""Data passed between the ingestion steps: extracted document → chunk drafts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SectionKind = Literal["text", "heading", "table", "slide", "email_header", "qa", "image"]


@dataclass
class Section:
    """One piece of a document in reading order.

    ``level`` is the heading depth (1 = top) for headings, 0 otherwise. ``page`` is 1-based where the
    format has pages (PDF pages, slides, sheets count as pages for tables), else None. ``rows`` holds a
    table's cells (first row = header when ``has_header``).
    """

    text: str
    kind: SectionKind = "text"
    level: int = 0
    page: int | None = None
    rows: list[list[str]] | None = None
    has_header: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExtractedDocument:
    """What a parser gives the chunkers. ``pages`` counts pages where the format has them."""

    filename: str
    sections: list[Section]
    pages: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(section.text for section in self.sections if section.text)


@dataclass
class ChunkDraft:
    """A chunk before embedding. ``questions``/``keywords`` feed RAGFlow's question_kwd/important_kwd."""

    content: str
    page_numbers: list[int] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
