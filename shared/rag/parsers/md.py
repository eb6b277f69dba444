"""Markdown: ATX and setext headings, fenced code blocks kept whole, pipe tables, paragraphs.

A small line scanner rather than a full CommonMark parser: it only has to find the structure the chunkers
use (headings for the title hierarchy, tables, code blocks that must not be split or read as headings);
everything else stays as the author wrote it.
"""

from __future__ import annotations

import re

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, table_section
from .txt import decode_text

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_TABLE_DELIMITER = re.compile(r"^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_FRONT_MATTER_END = ("---", "...")


def _split_row(line: str) -> list[str]:
    """Cells of a pipe-table row; ``\\|`` is a literal pipe."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells = re.split(r"(?<!\\)\|", line)
    return [cell.strip().replace("\\|", "|") for cell in cells]


class _Scanner:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.sections: list[Section] = []
        self.paragraph: list[str] = []

    def flush(self) -> None:
        text = "\n".join(self.paragraph).strip()
        if text:
            self.sections.append(Section(text=text))
        self.paragraph = []

    def run(self) -> list[Section]:
        lines = self.lines
        i = self._front_matter()
        while i < len(lines):
            line = lines[i]
            fence = _FENCE.match(line)
            if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
                i = self._code_block(i, fence.group(1), fence.group(2).strip())
                continue
            heading = _ATX.match(line)
            if heading:
                self.flush()
                title = (heading.group(2) or "").strip()
                if title:
                    self.sections.append(Section(text=title, kind="heading", level=len(heading.group(1))))
                i += 1
                continue
            if self.paragraph and _SETEXT.match(line) and not self._in_list():
                title = " ".join(part.strip() for part in self.paragraph)
                self.paragraph = []
                self.sections.append(Section(text=title, kind="heading", level=1 if "=" in line else 2))
                i += 1
                continue
            if "|" in line and i + 1 < len(lines) and _TABLE_DELIMITER.match(lines[i + 1]) and "|" in lines[i + 1]:
                i = self._table(i)
                continue
            if not line.strip():
                self.flush()
            else:
                self.paragraph.append(line.rstrip())
            i += 1
        self.flush()
        return self.sections

    def _in_list(self) -> bool:
        # "- item" followed by "---" is a list item and a rule, not a setext heading.
        return bool(re.match(r"^ {0,3}([-*+]|\d+[.)])[ \t]", self.paragraph[-1]))

    def _front_matter(self) -> int:
        lines = self.lines
        if not lines or lines[0].strip() != "---":
            return 0
        for end in range(1, len(lines)):
            if lines[end].strip() in _FRONT_MATTER_END:
                text = "\n".join(lines[1:end]).strip()
                if text:
                    self.sections.append(Section(text=text, meta={"front_matter": True}))
                return end + 1
        return 0

    def _code_block(self, start: int, fence: str, info: str) -> int:
        self.flush()
        lines = self.lines
        end = start + 1
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        block = "\n".join(lines[start : end + 1]).rstrip()  # an unclosed fence runs to the end of the file
        language = info.split()[0] if info else ""
        self.sections.append(Section(text=block, meta={"code": True, "language": language}))
        return end + 1

    def _table(self, start: int) -> int:
        self.flush()
        lines = self.lines
        rows = [_split_row(lines[start])]
        end = start + 2
        while end < len(lines) and lines[end].strip() and "|" in lines[end]:
            rows.append(_split_row(lines[end]))
            end += 1
        section = table_section(rows, has_header=True)
        if section is not None:
            self.sections.append(section)
        return end


def parse(filename: str, data: bytes) -> ExtractedDocument:
    lines = decode_text(data, filename).split("\n")
    return finish(filename, _Scanner(lines).run())
