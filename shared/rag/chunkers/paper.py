"""``paper``: academic papers.

Front matter (title, authors) comes first, the abstract is a chunk of its own (tagged with the keywords
RAGFlow gives it), each section is chunked with its title path as prefix, and the references are grouped
entry by entry into chunks.
"""

# ruff: noqa: RUF001  # CJK and typographic punctuation in patterns are intended

from __future__ import annotations

import re

from shared.rag.types import ChunkDraft, ExtractedDocument, Section

from .general import chunk_naive, flow_chunks
from .options import ChunkOptions
from .outline import (
    ROMAN,
    Block,
    HeadingMatch,
    Matcher,
    OutlineRules,
    build_outline,
    has_heading_sections,
    is_title_like,
    numbered,
)
from .packing import PieceStream, fit_prefix, pack

ABSTRACT_KEYWORDS = ("abstract", "summary")

# "Abstract", "Abstract: ...", "Abstract - ...", "ABSTRACT We ...", Chinese "摘要" (not "Abstract algebra is").
_ABSTRACT_LABEL = re.compile(r"^(?:(?i:abstract|摘\s*要)\s*(?:[:：.—–-]\s*|$)|ABSTRACT\s+)")
_KNOWN_SECTIONS = (
    r"introduction|related\s+work|background|preliminaries|methods?|methodology|approach|"
    r"materials\s+and\s+methods|experiments?|experimental\s+(?:setup|results)|evaluation|"
    r"results?(?:\s+and\s+discussion)?|discussion|conclusions?(?:\s+and\s+future\s+work)?|future\s+work|"
    r"limitations|acknowledge?ments?|references|bibliography|appendix(?:\s+[a-z])?|"
    r"引言|绪论|相关工作|方法|实验|结果|讨论|结论|参考文献|致谢"
)
_KNOWN_HEADING = re.compile(
    rf"^(?:(?P<number>\d{{1,2}}(?:\.\d{{1,2}})*|[IVX]{{1,5}})\.?\s+)?(?:{_KNOWN_SECTIONS})\s*[:：]?$",
    re.IGNORECASE,
)
_NUMBERING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*|[IVX]{1,5})\.?\s+")
_REFERENCES = re.compile(r"^(?:references|bibliography|参考文献)$", re.IGNORECASE)
_ABSTRACT = re.compile(r"^(?:abstract|摘\s*要)$", re.IGNORECASE)
_REFERENCE_START = re.compile(r"^\s*(?:\[\d+\]|\d{1,3}\.\s|\(\d+\)\s)")


def _abstract_label(line: str) -> HeadingMatch | None:
    found = _ABSTRACT_LABEL.match(line)
    if found is None:
        return None
    return HeadingMatch(10, "Abstract" if line[:1].isascii() else "摘要", line[found.end() :].strip())


def _known_heading(line: str) -> HeadingMatch | None:
    found = _KNOWN_HEADING.match(line)
    if found is None:
        return None
    number = found.group("number") or ""
    depth = number.count(".") + 1 if number[:1].isdigit() else 1
    return HeadingMatch(10 * depth, line.rstrip(":："))


def _roman_heading(line: str) -> HeadingMatch | None:
    if ROMAN.match(line) and is_title_like(line):
        return HeadingMatch(10, line)
    return None


def chunk_paper(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Paper: front matter, abstract (own chunk), sections with title prefix, grouped references."""
    matchers: tuple[Matcher, ...] = (_abstract_label, _known_heading)
    if not has_heading_sections(doc):
        matchers = (*matchers, numbered(4, base=0), _roman_heading)
    blocks = build_outline(doc, OutlineRules(matchers=matchers))
    chunks: list[ChunkDraft] = []
    for block in blocks:
        if block.has_content:
            chunks.extend(_block_chunks(doc, block, options))
    return chunks or chunk_naive(doc, options)


def _block_chunks(doc: ExtractedDocument, block: Block, options: ChunkOptions) -> list[ChunkDraft]:
    limit = options.chunk_token_num
    if not block.path:
        return flow_chunks(block.sections, options, filename=doc.filename, meta={"section": "front matter"})
    title = _NUMBERING.sub("", block.path[-1]).strip().rstrip(":：").strip()
    prefix = fit_prefix(block.path, limit)
    if _ABSTRACT.match(title):
        chunks = flow_chunks(
            block.sections, options, filename=doc.filename, prefix=prefix, meta={"section": "abstract"}
        )
        for chunk in chunks:
            chunk.keywords = list(ABSTRACT_KEYWORDS)
        return chunks
    if _REFERENCES.match(title):
        stream = PieceStream(options.delimiters)
        for entry, page in _reference_entries(block.sections):
            stream.add_piece(entry, page=page)
        return pack(stream.take(), limit, prefix=prefix, meta={"section": "references"})
    return flow_chunks(block.sections, options, filename=doc.filename, prefix=prefix, meta={"section": block.path[-1]})


def _reference_entries(sections: list[Section]) -> list[tuple[str, int | None]]:
    """One entry per "[n] ..." / "n. ..." start; lines without a marker continue the previous entry."""
    entries: list[tuple[str, int | None]] = []
    lines = [(line.strip(), s.page) for s in sections for line in s.text.split("\n") if line.strip()]
    marked = any(_REFERENCE_START.match(line) for line, _ in lines)
    for line, page in lines:
        if entries and marked and not _REFERENCE_START.match(line):
            text, first_page = entries[-1]
            entries[-1] = (f"{text} {line}", first_page)
        else:
            entries.append((line, page))
    return entries
