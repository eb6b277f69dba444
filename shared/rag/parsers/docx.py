"""Word .docx (python-docx): paragraphs, headings from Heading/Title styles, tables, in body order."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import docx
from docx.document import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, table_section
from .errors import CorruptDocument

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])\b", re.IGNORECASE)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def _heading_level(paragraph: Paragraph) -> int:
    """1-9 for a heading paragraph (by style name, or an explicit outline level), else 0."""
    try:
        name = paragraph.style.name if paragraph.style is not None else ""
    except (KeyError, ValueError):  # a style id missing from styles.xml
        name = ""
    match = _HEADING_STYLE.match(name or "")
    if match:
        return int(match.group(1))
    if name == "Title":
        return 1
    ppr = paragraph._p.pPr
    outline = ppr.find(qn("w:outlineLvl")) if ppr is not None else None
    if outline is not None:
        value = outline.get(qn("w:val"), "")
        if value.isdigit() and int(value) < 9:  # 9 means "body text"
            return int(value) + 1
    return 0


def _blocks(document: Document) -> Iterator[Paragraph | Table]:
    """Paragraphs and tables in body order, including those inside content controls (w:sdt)."""

    def walk(element: Any) -> Iterator[Paragraph | Table]:
        for child in element.iterchildren():
            if child.tag == qn("w:p"):
                yield Paragraph(child, document._body)
            elif child.tag == qn("w:tbl"):
                yield Table(child, document._body)
            elif child.tag == qn("w:sdt"):
                content = child.find(qn("w:sdtContent"))
                if content is not None:
                    yield from walk(content)

    yield from walk(document.element.body)


def parse(filename: str, data: bytes) -> ExtractedDocument:
    if data.startswith(_OLE_MAGIC):
        raise CorruptDocument(f"{filename}: this is a legacy Word .doc file, not .docx; save it as .docx")
    try:
        document = docx.Document(io.BytesIO(data))
        sections: list[Section] = []
        for block in _blocks(document):
            if isinstance(block, Paragraph):
                text = block.text.strip()
                if not text:
                    continue
                level = _heading_level(block)
                sections.append(Section(text=text, kind="heading", level=level) if level else Section(text=text))
            else:
                rows = [[cell.text for cell in row.cells] for row in block.rows]
                section = table_section(rows)
                if section is not None:
                    sections.append(section)
        properties = document.core_properties
        meta = {key: value for key, value in (("title", properties.title), ("author", properties.author)) if value}
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise CorruptDocument(f"{filename}: the file is damaged or is not a Word .docx document") from exc
    return finish(filename, sections, meta=meta)
