"""A document's heading tree, from heading sections or from numbered-heading patterns in plain text.

Every heading gets a *rank* (smaller = higher in the tree); a heading closes every open heading of the same
or a deeper rank. Heading sections rank by level (10 * level); pattern headings rank Part 10, Chapter 20,
Section/§ 30, "1 Title" 30, "1.2 Title" 40, ... and Article 90, so an article sits under any numbered
heading and chapter it follows.
"""

# ruff: noqa: RUF001  # CJK and typographic punctuation in patterns are intended

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.rag.types import ExtractedDocument, Section

_CN_NUMBER = r"[零〇一二三四五六七八九十百千两0-9０-９]+"
_NUMBER_WORD = (
    r"(?i:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty)"
)
_TITLE_MAX_CHARS = 80
_NOT_A_TITLE_END = tuple(".。;；,，:：")

PART = re.compile(rf"^(?:(?:PART|Part)\s+(?:[IVXLC]+|\d+|{_NUMBER_WORD})\b|第{_CN_NUMBER}(?:编|部分))")
CHAPTER = re.compile(rf"^(?:(?:CHAPTER|Chapter)\s+(?:[IVXLC]+|\d+|{_NUMBER_WORD})\b|第{_CN_NUMBER}章)")
SECTION = re.compile(rf"^(?:(?:SECTION|Section)\s+(?:\d+(?:\.\d+)*|[IVXLC]+)\b|§+\s*\d+[a-z]?|第{_CN_NUMBER}节)")
ARTICLE = re.compile(rf"^(?:(?:ARTICLE|Article)\s+\d+[a-z]?\b|Art\.\s*\d+[a-z]?\b|第{_CN_NUMBER}条)")
NUMBERED = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){0,5})\.?\s+([^\W\d_].*)$")
CN_ITEM = re.compile(r"^[一二三四五六七八九十]+、\s*\S")
CN_SUBITEM = re.compile(r"^[（(][一二三四五六七八九十]+[)）]\s*\S")
ROMAN = re.compile(r"^([IVX]{1,5})\.\s+([A-Z].*)$")

RANK_PART, RANK_CHAPTER, RANK_SECTION, RANK_ARTICLE = 10, 20, 30, 90


@dataclass(frozen=True)
class HeadingMatch:
    """A heading found in a text line: its rank, its title, and body text that followed it on the line."""

    rank: int
    title: str
    remainder: str = ""


Matcher = Callable[[str], HeadingMatch | None]


def is_title_like(line: str) -> bool:
    """Short and not ending like a sentence or a lead-in."""
    return len(line) <= _TITLE_MAX_CHARS and not line.endswith(_NOT_A_TITLE_END)


def labelled(pattern: re.Pattern[str], rank: int) -> Matcher:
    """A matcher for "Chapter 3 ...", "Article 5 ...", "第五条 ...": the whole line when it reads as a title,
    else the label as title and the rest of the line as body text."""

    def match(line: str) -> HeadingMatch | None:
        found = pattern.match(line)
        if found is None:
            return None
        if is_title_like(line):
            return HeadingMatch(rank, line)
        rest = line[found.end() :].lstrip(" \t:：.、-—–")
        return HeadingMatch(rank, found.group(0).strip(), rest)

    return match


def numbered(max_depth: int, *, base: int = 20) -> Matcher:
    """ "1 Title", "2.3 Title", "4.1.2. Title" up to ``max_depth`` parts, ranked ``base + 10 * depth``."""

    def match(line: str) -> HeadingMatch | None:
        found = NUMBERED.match(line)
        if found is None or not is_title_like(line):
            return None
        depth = found.group(1).count(".") + 1
        if depth > max_depth:
            return None
        return HeadingMatch(base + 10 * depth, line)

    return match


def chinese_items(line: str) -> HeadingMatch | None:
    """Chinese list headings ("一、" then the parenthesised form) as first- and second-level headings."""
    if not is_title_like(line):
        return None
    if CN_ITEM.match(line):
        return HeadingMatch(30, line)
    if CN_SUBITEM.match(line):
        return HeadingMatch(40, line)
    return None


@dataclass
class Block:
    """The body under one heading (up to the next heading), with the titles from the root to it."""

    path: tuple[str, ...]
    sections: list[Section] = field(default_factory=list)

    @property
    def has_content(self) -> bool:
        return any(s.text.strip() or s.rows for s in self.sections)


@dataclass(frozen=True)
class OutlineRules:
    """How a method finds headings.

    ``use_heading_sections``: heading sections are cut points (up to ``max_level``; deeper ones stay in the
    body as headings). ``matchers`` are tried on each line of text sections, first match wins.
    """

    use_heading_sections: bool = True
    max_level: int = 6
    matchers: tuple[Matcher, ...] = ()


def build_outline(doc: ExtractedDocument, rules: OutlineRules) -> list[Block]:
    """Blocks in reading order; the first one (path ``()``) holds what comes before any heading."""
    blocks = [Block(path=())]
    stack: list[tuple[int, str]] = []

    def open_heading(rank: int, title: str) -> None:
        while stack and stack[-1][0] >= rank:
            stack.pop()
        stack.append((rank, title))
        blocks.append(Block(path=tuple(t for _, t in stack)))

    for section in doc.sections:
        if section.kind == "heading" and rules.use_heading_sections:
            level = max(section.level, 1)
            title = " ".join(section.text.split())
            if level <= rules.max_level and title:
                open_heading(10 * level, title)
            else:
                blocks[-1].sections.append(section)
            continue
        if section.kind not in ("text", "heading") or not rules.matchers:
            blocks[-1].sections.append(section)
            continue
        for found, text in _split_at_headings(section.text, rules.matchers):
            if found is not None:
                open_heading(found.rank, found.title)
            if text:
                blocks[-1].sections.append(Section(text=text, page=section.page, meta=dict(section.meta)))
    return blocks


def _split_at_headings(text: str, matchers: tuple[Matcher, ...]) -> list[tuple[HeadingMatch | None, str]]:
    """``text`` as (heading or None for the text before the first one, body text after it) pairs."""
    parts: list[tuple[HeadingMatch | None, list[str]]] = [(None, [])]
    for raw in text.split("\n"):
        line = raw.strip()
        found = _first_match(line, matchers) if line else None
        if found is None:
            parts[-1][1].append(raw)
        else:
            parts.append((found, [found.remainder] if found.remainder else []))
    return [(found, "\n".join(lines).strip()) for found, lines in parts if found is not None or lines]


def _first_match(line: str, matchers: tuple[Matcher, ...]) -> HeadingMatch | None:
    for matcher in matchers:
        found = matcher(line)
        if found is not None:
            return found
    return None


def has_heading_sections(doc: ExtractedDocument) -> bool:
    return any(s.kind == "heading" and s.text.strip() for s in doc.sections)
