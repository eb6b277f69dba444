"""PDF text layer, page by page (pypdf). No OCR: a PDF of scanned images raises NoTextLayer.

Big PDFs are parsed in parallel page ranges by the pipeline (RAGFlow's ``task_page_size``):
``count_pdf_pages`` sizes the fan-out and ``extract_pdf_pages`` extracts one range. Ranges follow RAGFlow's
task ``from_page``/``to_page``: 0-based, end exclusive; ``Section.page`` stays the 1-based page number in
the whole document.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

from shared.rag.types import ExtractedDocument, Section

from ._common import tidy_text
from .errors import CorruptDocument, EmptyDocument, NoTextLayer

logger = logging.getLogger(__name__)

_META_FIELDS = {"/Title": "title", "/Author": "author", "/Subject": "subject", "/CreationDate": "created"}


def _open(data: bytes, filename: str) -> PdfReader:
    if b"%PDF" not in data[:1024]:
        raise CorruptDocument(f"{filename}: the file is not a PDF (no PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise CorruptDocument(f"{filename}: the PDF is protected by a password and cannot be read")
        len(reader.pages)  # walks the page tree: a broken one fails here rather than halfway through
    except DependencyError as exc:
        raise CorruptDocument(f"{filename}: the PDF uses an encryption this server cannot decrypt") from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # pypdf reports damaged files with its own errors and, for some malformations, with plain ones.
        raise CorruptDocument(f"{filename}: the PDF is damaged or incomplete and cannot be read") from exc
    return reader


def count_pdf_pages(data: bytes, filename: str = "document.pdf") -> int:
    """Number of pages; CorruptDocument when the file can't be opened."""
    return len(_open(data, filename).pages)


def _metadata(reader: PdfReader) -> dict[str, Any]:
    try:
        info = reader.metadata
        if info is None:
            return {}
        return {key: str(info[field]) for field, key in _META_FIELDS.items() if info.get(field)}
    except (PyPdfError, ValueError, KeyError, TypeError):
        return {}


def _extract(reader: PdfReader, filename: str, start: int, end: int) -> tuple[list[Section], list[int], list[int]]:
    """Sections of pages [start, end), the 1-based pages without text, and the ones that failed."""
    sections: list[Section] = []
    without_text: list[int] = []
    failed: list[int] = []
    for index in range(start, end):
        number = index + 1
        try:
            text = tidy_text(reader.pages[index].extract_text(extraction_mode="plain"))
        except Exception:  # one malformed page must not lose the rest of the document
            logger.warning("%s: text extraction failed on page %d", filename, number, exc_info=True)
            failed.append(number)
            continue
        if text:
            sections.append(Section(text=text, page=number))
        else:
            without_text.append(number)
    return sections, without_text, failed


def extract_pdf_pages(data: bytes, start: int, end: int, filename: str = "document.pdf") -> ExtractedDocument:
    """Text of pages ``[start, end)`` (0-based, clamped to the page count), one section per page.

    A range whose pages carry no text is returned with no sections rather than raising: it may be a scanned
    appendix of an otherwise textual PDF. The pages are listed in ``meta["pages_without_text"]``; the caller
    decides once all ranges are in (``parse`` without a range raises NoTextLayer itself).
    """
    if start < 0 or end < start:
        raise ValueError(f"invalid page range [{start}, {end})")
    reader = _open(data, filename)
    total = len(reader.pages)
    end = min(end, total)
    start = min(start, end)
    sections, without_text, failed = _extract(reader, filename, start, end)
    if failed and not sections and not without_text:
        raise CorruptDocument(f"{filename}: the pages of the PDF are damaged and their text cannot be read")
    meta = _metadata(reader) | {
        "page_range": [start, end],
        "pages_without_text": without_text,
        "pages_failed": failed,
    }
    return ExtractedDocument(filename=filename, sections=sections, pages=total, meta=meta)


def parse(filename: str, data: bytes, page_range: tuple[int, int] | None = None) -> ExtractedDocument:
    """The whole PDF, or one page range (see ``extract_pdf_pages``)."""
    if page_range is not None:
        return extract_pdf_pages(data, page_range[0], page_range[1], filename)
    document = extract_pdf_pages(data, 0, 1 << 31, filename)
    if not document.sections:
        if not document.pages:
            raise EmptyDocument(f"{filename}: the PDF has no pages")
        raise NoTextLayer(filename)
    return document
