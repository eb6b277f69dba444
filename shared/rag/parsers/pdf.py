"""PDF text layer, page by page. No OCR: a PDF of scanned images raises NoTextLayer.

Two readers, on purpose:

* **PDFium** (pypdfium2: Chrome's PDF engine, in C++) is the fast path. On the real-world PDFs found here
  (TeX and DocBook/FOP output: subset fonts, ToUnicode maps, short kerned runs) it extracts ~10x faster than
  pure-Python pypdf: ~980 against ~110 pages per CPU second (``benchmarks/bench_pdf_extract.py``, which
  also prints the wall-clock rates). Its text is also better where they differ: punctuation isn't spaced
  off ("length," not "length ,", "P(x)" not "P (x)"), a line's words are in their visual order, ligatures come
  out as letters. It decrypts RC4/AES PDFs without the ``cryptography`` package.
* **pypdf** is the fallback: for a file PDFium refuses to open (pypdf's lenient reader still reads some damaged
  files) and for a page PDFium fails on. It is imported only then (~110 ms of cold start otherwise).

Both give what the chunkers read: one text section per page that has text, the page's lines on lines (a table
row stays one line, its cells space-separated), control characters dropped, ligatures spelled out ("fi", not
"ﬁ"), hyphenated line ends kept as ``-`` + line break. PDFium marks such a hyphen (U+FFFE) and drops the line
break after it; both are put back rather than joining the halves, since "non-" + "overlapping" would become a
non-word as often as "de-" + "scribed" a word. PDFium also breaks lines at raised or lowered characters
(superscripts, subscripts): those breaks are taken out again (``_rejoin_raised_lines``).

Thread safety: PDFium is not thread-safe and the local worker parses in a thread pool, so every PDFium call
(open, pages, close) runs under one process-wide lock, and every PDFium object is closed inside it: no
finalizer may run PDFium code later from whichever thread the garbage collector happens to be on. Page ranges
of PDFs thus extract one at a time per process (a 12-page range takes 15-40 ms); Lambda runs one step per
process.

Big PDFs are parsed in parallel page ranges by the pipeline (RAGFlow's ``task_page_size``):
``count_pdf_pages`` sizes the fan-out and ``extract_pdf_pages`` extracts one range, loading only that range's
pages. Ranges follow RAGFlow's task ``from_page``/``to_page``: 0-based, end exclusive; ``Section.page`` stays
the 1-based page number in the whole document.
"""

from __future__ import annotations

import ctypes
import io
import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from shared.rag.types import ExtractedDocument, Section

from ._common import tidy_text
from .errors import CorruptDocument, EmptyDocument, NoTextLayer

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

_PDFIUM_LOCK = threading.Lock()

#: Document information entries kept in ``meta``, by their PDF key (without pypdf's leading slash).
_META_FIELDS = {"Title": "title", "Author": "author", "Subject": "subject", "CreationDate": "created"}

_PDFIUM_HYPHEN = "\ufffe"  # PDFium's stand-in for a hyphen that ends a line (the line break is dropped)
# Glyphs of fonts without a Unicode mapping come out as control characters (TeX's math extension font, for
# one): noise in a chunk, never text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}  # pypdf keeps them
_LIGATURE = re.compile("[ﬀ-ﬆ]")

_PASSWORD = "the PDF is protected by a password and cannot be read"
_DAMAGED = "the PDF is damaged or incomplete and cannot be read"


def _clean(text: str) -> str:
    """A page's text as sections carry it: line breaks as ``\\n``, no control characters, ligatures spelled."""
    text = text.replace("\r\n", "\n").replace(_PDFIUM_HYPHEN, "-\n")
    return tidy_text(_LIGATURE.sub(lambda match: _LIGATURES[match.group()], _CONTROL.sub("", text)))


@dataclass
class _Pages:
    """What a reader got from a range: the page count, the metadata, and each page's text (None: it failed)."""

    total: int
    meta: dict[str, Any]
    texts: dict[int, str | None]  # 0-based page index -> cleaned text


def _clamp(start: int, end: int, total: int) -> range:
    end = min(end, total)
    return range(min(start, end), end)


# -- PDFium (fast path) --------------------------------------------------------------------------------------
def _pdfium_open(data: bytes, filename: str) -> Any:
    """The PDFium document (call under the lock), or None when PDFium can't read the file."""
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise CorruptDocument(f"{filename}: {_PASSWORD}") from exc
        logger.info("%s: PDFium cannot open the PDF (%s); reading it with pypdf", filename, exc)
        return None


def _pdfium_page_text(document: Any, index: int) -> str:
    page = document.get_page(index)
    try:
        textpage = page.get_textpage()
        try:
            return _clean(_rejoin_raised_lines(textpage, _pdfium_raw_text(textpage)))
        finally:
            textpage.close()
    finally:
        page.close()


def _pdfium_raw_text(textpage: Any) -> str:
    """The whole page in one FPDFText_GetText call (pypdfium2's ``get_text_range`` recurses once per character
    PDFium leaves out of the text at either end: a page of unmapped glyphs could exceed the recursion limit).
    CountChars counts UTF-16 units, as GetText writes them."""
    count = pdfium_c.FPDFText_CountChars(textpage)
    if count <= 0:
        return ""
    buffer = (ctypes.c_ushort * (count + 1))()
    written = pdfium_c.FPDFText_GetText(textpage, 0, count, buffer)
    return bytes(memoryview(buffer)[: max(0, min(written, count + 1) - 1)]).decode("utf-16-le", errors="ignore")


def _rejoin_raised_lines(textpage: Any, text: str) -> str:
    """PDFium starts a new line wherever the baseline moves, so superscripts and subscripts (x², CO₂, footnote
    and citation marks) land on lines of their own. A break between two characters whose boxes (the fonts'
    full height, whatever the glyphs' ink) share at least half their height, the second to the right of the
    first, is inside one visual line: it is taken out (a space put in when the characters stand apart, as
    cells of a table row on different baselines do)."""
    if "\r\n" not in text:
        return text
    raw = textpage.raw
    char_index = pdfium_c.FPDFText_GetCharIndexFromTextIndex
    loose_box = pdfium_c.FPDFText_GetLooseCharBox
    first, second = pdfium_c.FS_RECTF(), pdfium_c.FS_RECTF()

    def join(before: int, after: int) -> str:
        a, b = char_index(raw, before), char_index(raw, after)
        if a < 0 or b < 0 or not loose_box(raw, a, first) or not loose_box(raw, b, second):
            return "\n"
        if second.left < first.left:
            return "\n"  # the usual case: the next line starts further left
        height = min(first.top - first.bottom, second.top - second.bottom)
        overlap = min(first.top, second.top) - max(first.bottom, second.bottom)
        if height <= 0 or overlap < height / 2:
            return "\n"
        return " " if second.left - first.right > height / 5 else ""

    parts: list[str] = []
    start, last = 0, len(text) - 2
    while (brk := text.find("\r\n", start)) >= 0:
        parts.append(text[start:brk])
        parts.append(join(brk - 1, brk + 2) if 0 < brk < last else "\n")
        start = brk + 2
    parts.append(text[start:])
    return "".join(parts)


def _pdfium_metadata(document: Any) -> dict[str, Any]:
    try:
        info = document.get_metadata_dict(skip_empty=True)
    except pdfium.PdfiumError:
        return {}
    return {key: str(info[field]) for field, key in _META_FIELDS.items() if info.get(field)}


def _pdfium_count(data: bytes, filename: str) -> int | None:
    with _PDFIUM_LOCK:
        document = _pdfium_open(data, filename)
        if document is None:
            return None
        try:
            return len(document)
        finally:
            document.close()


def _pdfium_pages(data: bytes, filename: str, start: int, end: int) -> _Pages | None:
    """Pages ``[start, end)`` read by PDFium, or None when it can't open the file."""
    with _PDFIUM_LOCK:
        document = _pdfium_open(data, filename)
        if document is None:
            return None
        try:
            total = len(document)
            texts: dict[int, str | None] = {}
            for index in _clamp(start, end, total):
                try:
                    texts[index] = _pdfium_page_text(document, index)
                except pdfium.PdfiumError:
                    logger.warning("%s: PDFium failed on page %d; trying pypdf", filename, index + 1, exc_info=True)
                    texts[index] = None
            return _Pages(total, _pdfium_metadata(document), texts)
        finally:
            document.close()


# -- pypdf (fallback) ----------------------------------------------------------------------------------------
def _pypdf_open(data: bytes, filename: str) -> PdfReader:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise CorruptDocument(f"{filename}: {_PASSWORD}")
        len(reader.pages)  # walks the page tree: a broken one fails here rather than halfway through
    except DependencyError as exc:
        raise CorruptDocument(f"{filename}: the PDF uses an encryption this server cannot decrypt") from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # pypdf reports damaged files with its own errors and, for some malformations, with plain ones.
        raise CorruptDocument(f"{filename}: {_DAMAGED}") from exc
    return reader


def _pypdf_text(reader: PdfReader, index: int, filename: str) -> str | None:
    try:
        return _clean(reader.pages[index].extract_text(extraction_mode="plain"))
    except Exception:  # one malformed page must not lose the rest of the document
        logger.warning("%s: text extraction failed on page %d", filename, index + 1, exc_info=True)
        return None


def _pypdf_metadata(reader: PdfReader) -> dict[str, Any]:
    from pypdf.errors import PyPdfError

    try:
        info = reader.metadata
        if info is None:
            return {}
        return {key: str(info[f"/{field}"]) for field, key in _META_FIELDS.items() if info.get(f"/{field}")}
    except (PyPdfError, ValueError, KeyError, TypeError):
        return {}


def _pypdf_pages(data: bytes, filename: str, start: int, end: int) -> _Pages:
    reader = _pypdf_open(data, filename)
    total = len(reader.pages)
    texts = {index: _pypdf_text(reader, index, filename) for index in _clamp(start, end, total)}
    return _Pages(total, _pypdf_metadata(reader), texts)


def _retry_with_pypdf(data: bytes, filename: str, pages: _Pages) -> list[int]:
    """Fills in the pages PDFium failed on with pypdf's text where it can; returns their 1-based numbers."""
    failed = [index for index, text in pages.texts.items() if text is None]
    if not failed:
        return []
    try:
        reader = _pypdf_open(data, filename)
    except CorruptDocument:
        return []
    retried = []
    for index in failed:
        text = _pypdf_text(reader, index, filename) if index < len(reader.pages) else None
        if text is not None:
            pages.texts[index] = text
            retried.append(index + 1)
    return retried


# -- the parser ----------------------------------------------------------------------------------------------
def _check_header(data: bytes, filename: str) -> None:
    if b"%PDF" not in data[:1024]:
        raise CorruptDocument(f"{filename}: the file is not a PDF (no PDF header)")


def count_pdf_pages(data: bytes, filename: str = "document.pdf") -> int:
    """Number of pages; CorruptDocument when the file can't be opened."""
    _check_header(data, filename)
    count = _pdfium_count(data, filename)
    if count is None:
        count = len(_pypdf_open(data, filename).pages)
    return count


def extract_pdf_pages(
    data: bytes, start: int, end: int, filename: str = "document.pdf", *, fast_path: bool = True
) -> ExtractedDocument:
    """Text of pages ``[start, end)`` (0-based, clamped to the page count), one section per page.

    A range whose pages carry no text is returned with no sections rather than raising: it may be a scanned
    appendix of an otherwise textual PDF. The pages are listed in ``meta["pages_without_text"]``; the caller
    decides once all ranges are in (``parse`` without a range raises NoTextLayer itself). ``meta["reader"]``
    says which library opened the file (``pdfium``, or ``pypdf`` when PDFium could not); pages PDFium failed
    on and pypdf read are in ``meta["pages_read_by_pypdf"]``, pages neither could read in ``pages_failed``.
    ``fast_path=False`` reads with pypdf alone: the fallback, for tests and benchmarks to compare.
    """
    if start < 0 or end < start:
        raise ValueError(f"invalid page range [{start}, {end})")
    _check_header(data, filename)
    pages = _pdfium_pages(data, filename, start, end) if fast_path else None
    reader = "pdfium"
    retried: list[int] = []
    if pages is None:
        pages, reader = _pypdf_pages(data, filename, start, end), "pypdf"
    else:
        retried = _retry_with_pypdf(data, filename, pages)

    sections: list[Section] = []
    without_text: list[int] = []
    failed: list[int] = []
    for index, text in sorted(pages.texts.items()):
        if text is None:
            failed.append(index + 1)
        elif text:
            sections.append(Section(text=text, page=index + 1))
        else:
            without_text.append(index + 1)
    if failed and not sections and not without_text:
        raise CorruptDocument(f"{filename}: the pages of the PDF are damaged and their text cannot be read")
    page_range = _clamp(start, end, pages.total)
    meta = pages.meta | {
        "page_range": [page_range.start, page_range.stop],
        "pages_without_text": without_text,
        "pages_failed": failed,
        "reader": reader,
    }
    if retried:
        meta["pages_read_by_pypdf"] = retried
    return ExtractedDocument(filename=filename, sections=sections, pages=pages.total, meta=meta)


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
