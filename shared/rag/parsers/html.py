"""HTML (stdlib html.parser, nothing to install): headings h1-h6, tables, paragraphs; scripts and styles dropped.

Block elements (p, div, li, ...) end a text section; inline elements flow into the current one; ``<br>``
is a line break inside it; ``<pre>`` keeps its whitespace. Only outermost tables become table sections:
a table nested in a cell is flattened into that cell's text.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, table_section, table_text, tidy_text
from .txt import decode_text

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "html", "li", "main", "nav",
        "ol", "p", "section", "summary", "ul",
    }
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"})
_SPACE = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)


@dataclass
class _Table:
    rows: list[list[str]] = field(default_factory=list)
    cell: list[str] | None = None
    header_row: bool = False  # the first row is made of <th> cells


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.title = ""
        self._text: list[str] = []
        self._skip = 0
        self._in_title = False
        self._pre = 0
        self._heading = 0
        self._tables: list[_Table] = []

    # -- text routing --------------------------------------------------------------------------------------
    def _sink(self) -> list[str] | None:
        if self._tables:
            return self._tables[-1].cell  # None between cells: whitespace of the table markup
        return self._text

    def _flush(self) -> None:
        raw = "".join(self._text)
        self._text = []
        text = tidy_text(raw) if self._pre else "\n".join(line.strip() for line in raw.split("\n") if line.strip())
        if not text:
            return
        if self._heading:
            self.sections.append(Section(text=" ".join(text.split()), kind="heading", level=self._heading))
        else:
            self.sections.append(Section(text=text))

    # -- parser callbacks ----------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self._skip:
            self._in_title = True
            return
        if tag in _SKIP:
            self._skip += 1
            return
        if self._skip:
            return
        if tag == "br":
            sink = self._sink()
            if sink is not None:
                sink.append("\n")
        elif tag == "table":
            self._start_table()
        elif self._tables:
            self._table_tag(tag, start=True)
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in _BLOCK:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "table":
            self._end_table()
        elif self._tables:
            self._table_tag(tag, start=False)
        elif tag in _HEADINGS and self._heading:
            self._flush()
            self._heading = 0
        elif tag == "pre" and self._pre:
            self._flush()
            self._pre -= 1
        elif tag in _BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._skip:
            return
        sink = self._sink()
        if sink is not None:
            sink.append(data if self._pre else _SPACE.sub(" ", data))

    # -- tables --------------------------------------------------------------------------------------------
    def _start_table(self) -> None:
        if not self._tables:
            self._flush()
        self._tables.append(_Table())

    def _table_tag(self, tag: str, *, start: bool) -> None:
        table = self._tables[-1]
        if tag == "tr":
            self._close_cell(table)
            if start:
                table.rows.append([])
        elif tag in ("td", "th"):
            self._close_cell(table)
            if start:
                if not table.rows:
                    table.rows.append([])
                if tag == "th" and len(table.rows) == 1:
                    table.header_row = True
                table.cell = []
        elif tag in _BLOCK and table.cell is not None:
            table.cell.append(" ")

    def _close_cell(self, table: _Table) -> None:
        if table.cell is not None:
            table.rows[-1].append(" ".join("".join(table.cell).split()))
            table.cell = None

    def _end_table(self) -> None:
        table = self._tables.pop()
        self._close_cell(table)
        if self._tables:  # nested: the inner table becomes text of the enclosing cell
            outer = self._tables[-1]
            if outer.cell is not None:
                outer.cell.append(" " + table_text(table.rows) + " ")
            return
        section = table_section(table.rows, has_header=table.header_row or None)
        if section is not None:
            self.sections.append(section)

    def close(self) -> None:
        super().close()
        while self._tables:
            self._end_table()
        self._flush()


def extract_sections(html: str) -> tuple[list[Section], str]:
    """Sections of an HTML document and its <title>."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    return parser.sections, " ".join(parser.title.split())


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML fragment or page (used for HTML e-mail bodies)."""
    sections, _ = extract_sections(html)
    return "\n\n".join(section.text for section in sections)


def decode_html(data: bytes, filename: str = "file") -> str:
    """Bytes of an HTML file as str: the declared <meta charset> when it decodes cleanly, else detection."""
    declared = _META_CHARSET.search(data[:4096])
    if declared and not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data, filename)


def parse(filename: str, data: bytes) -> ExtractedDocument:
    sections, title = extract_sections(decode_html(data, filename))
    return finish(filename, sections, meta={"title": title} if title else None)
