"""Greedy packing of text pieces into chunks that fit a token budget.

Every piece is tokenized once when it is made; a chunk's size is the sum of its pieces, and each finished
chunk is counted once more as a whole (BPE counts are not exactly additive), so chunking is linear in the
document's length.
"""

# ruff: noqa: RUF001  # CJK and typographic punctuation in patterns are intended

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.rag.tokens import count_tokens, truncate
from shared.rag.types import ChunkDraft

from .options import Delimiters

# Preferred cut points when a piece has to be split by tokens: after a sentence end, else after whitespace.
_SENTENCE_END = re.compile(r"[.!?;](?=\s)|[。！？；…]")


@dataclass(frozen=True, slots=True)
class Piece:
    """An unsplittable run of text (up to and including its delimiter) with its token count and page.

    ``heading`` pieces are kept with the piece after them; ``cut_before`` forces a new chunk.
    """

    text: str
    tokens: int
    page: int | None = None
    heading: bool = False
    cut_before: bool = False


class PieceStream:
    """Collects pieces from a document's sections in reading order."""

    def __init__(self, delimiters: Delimiters) -> None:
        self._delimiters = delimiters
        self._pieces: list[Piece] = []
        self._cut = False

    def cut(self) -> None:
        """The next piece starts a new chunk."""
        self._cut = True

    def add_text(self, text: str, *, page: int | None = None) -> None:
        """Split ``text`` at the delimiters; a backticked delimiter is a forced cut."""
        for index, segment in enumerate(self._delimiters.segments(text)):
            if index:
                self._cut = True
            raws = [raw for raw in self._delimiters.pieces(segment) if raw.strip()]
            for position, raw in enumerate(raws):
                # The last piece of a section ends its line, so the next section doesn't run into it.
                if position == len(raws) - 1 and not raw[-1].isspace():
                    raw += "\n"
                self._append(raw, page=page, heading=False)

    def add_piece(self, text: str, *, page: int | None = None, heading: bool = False) -> None:
        """Add ``text`` whole, without delimiter splitting (headings, table rows)."""
        if not text.strip():
            return
        if not text[-1].isspace():
            text += "\n"
        self._append(text, page=page, heading=heading)

    def take(self) -> list[Piece]:
        pieces, self._pieces = self._pieces, []
        return pieces

    def _append(self, text: str, *, page: int | None, heading: bool) -> None:
        self._pieces.append(Piece(text, count_tokens(text), page, heading, self._cut))
        self._cut = False


def fit_prefix(path: Sequence[str], limit: int) -> str:
    """A title-path prefix (one heading per line) that uses at most half of the chunk budget.

    Outer headings are dropped first; a single heading that is still too long is truncated.
    """
    lines = [line.strip() for line in path if line.strip()]
    allowance = limit // 2
    text = "\n".join(lines)
    while lines and count_tokens(text) > allowance:
        if len(lines) == 1:
            return truncate(lines[0], allowance).strip()
        lines = lines[1:]
        text = "\n".join(lines)
    return text


def pack(
    pieces: Iterable[Piece],
    limit: int,
    *,
    prefix: str = "",
    opening: str = "",
    closing: str = "",
    meta: Mapping[str, Any] | None = None,
) -> list[ChunkDraft]:
    """Merge consecutive pieces into chunks of at most ``limit`` tokens (``count_tokens`` of the content).

    The content is ``prefix`` (own line), ``opening``, the pieces, ``closing``. A piece larger than the room
    left for pieces is split by tokens first. A chunk never ends with a heading when something follows it.
    """
    head = prefix.strip() + "\n" if prefix.strip() else ""
    budget = limit - count_tokens(head + opening + closing)
    if head and budget < 1:
        head, budget = "", limit - count_tokens(opening + closing)
    budget = max(budget, 1)
    queue = deque(_fit(pieces, budget))
    chunks: list[ChunkDraft] = []
    current: list[Piece] = []
    used = 0

    def emit(group: list[Piece]) -> None:
        while group:
            content = head + opening + "".join(p.text for p in group).strip() + closing
            if count_tokens(content) <= limit:
                chunks.append(_draft(content, group, meta))
                return
            if len(group) == 1:
                # Token counts are not additive to the token: cut the assembled text itself as a last resort.
                for part in split_by_tokens(content, limit):
                    chunks.append(_draft(part.strip(), group, meta))
                return
            queue.appendleft(group.pop())

    while queue:
        piece = queue.popleft()
        if current and (piece.cut_before or used + piece.tokens > budget):
            # Close the chunk; the piece (and whatever the chunk gives back) starts the next one.
            queue.appendleft(piece)
            carried = [] if piece.cut_before else _trailing_headings(current)
            if carried:
                del current[-len(carried) :]
                queue.extendleft(reversed(carried))
            emit(current)
            current, used = [], 0
            continue
        current.append(piece)
        used += piece.tokens
    emit(current)
    return [chunk for chunk in chunks if chunk.content.strip()]


def _trailing_headings(current: list[Piece]) -> list[Piece]:
    count = 0
    for piece in reversed(current):
        if not piece.heading:
            break
        count += 1
    if count == len(current):
        return []  # nothing but headings: they have to go out as they are
    return current[len(current) - count :] if count else []


def _fit(pieces: Iterable[Piece], budget: int) -> Iterable[Piece]:
    for piece in pieces:
        if piece.tokens <= budget:
            yield piece
            continue
        for index, part in enumerate(split_by_tokens(piece.text, budget)):
            yield Piece(part, count_tokens(part), piece.page, False, piece.cut_before and index == 0)


def _draft(content: str, group: Sequence[Piece], meta: Mapping[str, Any] | None) -> ChunkDraft:
    pages = sorted({p.page for p in group if p.page is not None})
    return ChunkDraft(content=content, page_numbers=pages, meta=dict(meta or {}))


def split_by_tokens(text: str, limit: int) -> list[str]:
    """``text`` cut into consecutive parts of at most ``limit`` tokens each, preferably at sentence ends.

    The cut positions are estimated from the text's characters-per-token ratio and checked by counting
    each part, so a long text costs a few tokenizations of its length, not one per word.
    """
    total = count_tokens(text)
    if total <= limit:
        return [text] if text.strip() else []
    chars_per_token = len(text) / total
    parts: list[str] = []
    start, length = 0, len(text)
    while start < length:
        size = max(1, int(limit * chars_per_token * 0.9))
        best = 0
        for _ in range(8):
            end = min(length, start + size)
            if end < length:
                end = _cut_point(text, start, end)
            tokens = count_tokens(text[start:end])
            if tokens <= limit:
                best = max(best, end - start)
                # Close enough, or nothing left to add: keep it.
                if end == length or tokens >= limit * 0.85:
                    break
                size = max(size + 1, int((end - start) * limit / max(tokens, 1) * 0.95))
            else:
                size = max(1, min(end - start - 1, int((end - start) * limit / tokens * 0.95)))
        end = start + max(best, 1)
        part = text[start:end]
        if part.strip():
            parts.append(part)
        start = end
    return parts


def _cut_point(text: str, start: int, end: int) -> int:
    """A position in ``text[start:end]``'s second half to cut at: after a sentence end, else whitespace."""
    window_start = start + (end - start) // 2
    window = text[window_start:end]
    last = None
    for match in _SENTENCE_END.finditer(window):
        last = match
    if last is not None:
        return window_start + last.end()
    for offset in range(len(window) - 1, -1, -1):
        if window[offset].isspace():
            return window_start + offset + 1
    return end
