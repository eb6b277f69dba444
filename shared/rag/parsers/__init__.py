"""Turn an uploaded file into an ExtractedDocument (typed sections in reading order), by file extension.

Each format has its own module; they are imported on first use so that importing this package (the pipeline
step, the upload validator) doesn't load pypdfium2, pypdf, python-docx, openpyxl and friends at cold start.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from types import MappingProxyType

from shared.rag.types import ExtractedDocument

from .errors import CorruptDocument, EmptyDocument, NoTextLayer, ParseError, UnsupportedFormat

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "CorruptDocument",
    "EmptyDocument",
    "NoTextLayer",
    "ParseError",
    "UnsupportedFormat",
    "count_pdf_pages",
    "extract",
    "extract_pdf_pages",
    "file_format",
    "is_supported",
]

logger = logging.getLogger(__name__)

_TEXT_LIKE = (  # noqa: SIM905 - one word per extension reads better than 70 quoted strings
    # plain text, logs, markup read as text
    ".txt .text .log .rst .tex .xml"
    # configuration
    " .ini .cfg .conf .toml .yaml .yml .properties"
    # source code
    " .py .pyi .js .mjs .cjs .jsx .ts .tsx .java .kt .kts .scala .groovy .c .h .cc .cpp .cxx .hpp .hh .cs .go"
    " .rs .rb .php .swift .m .mm .r .lua .pl .pm .sh .bash .zsh .ps1 .bat .sql .css .scss .less .vue .svelte"
    " .dart .ex .exs .erl .hs .clj .jl .proto .graphql .tf .gradle .cmake"
).split()

SUPPORTED_EXTENSIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        **dict.fromkeys(_TEXT_LIKE, "txt"),
        ".md": "md",
        ".markdown": "md",
        ".mdx": "md",
        ".pdf": "pdf",
        ".docx": "docx",
        ".xlsx": "xlsx",
        ".xlsm": "xlsx",
        ".xls": "xls",
        ".csv": "csv",
        ".tsv": "csv",
        ".pptx": "pptx",
        ".html": "html",
        ".htm": "html",
        ".xhtml": "html",
        ".json": "json",
        ".jsonl": "json",
        ".ldjson": "json",
        ".eml": "eml",
    }
)
"""Lower-case extension → format (the parser module that reads it)."""
# Formats read by a module's ``parse(filename, data)``; PDF has page ranges and its own entry point.
_FORMAT_MODULES = frozenset(SUPPORTED_EXTENSIONS.values()) - {"pdf"}


def file_format(filename: str) -> str | None:
    """The format a file is parsed as, or None when its extension isn't supported."""
    return SUPPORTED_EXTENSIONS.get(os.path.splitext(filename.strip().lower())[1])


def is_supported(filename: str) -> bool:
    return file_format(filename) is not None


def _parser(fmt: str) -> Callable[[str, bytes], ExtractedDocument]:
    """The ``parse`` function of the format's module, imported now (each format module is named after it)."""
    if fmt not in _FORMAT_MODULES:
        raise AssertionError(f"no parser for format {fmt!r}")  # SUPPORTED_EXTENSIONS and this table disagree
    parse: Callable[[str, bytes], ExtractedDocument] = importlib.import_module(f"{__name__}.{fmt}").parse
    return parse


def extract(filename: str, data: bytes, *, page_range: tuple[int, int] | None = None) -> ExtractedDocument:
    """Extract the text of ``data`` as typed sections, choosing the parser by ``filename``'s extension.

    ``page_range`` (0-based, end exclusive, like RAGFlow's task ``from_page``/``to_page``) extracts part of
    a PDF for the pipeline's page-range fan-out; other formats ignore it. Raises a ``ParseError`` subclass
    whose message can be shown to the user: UnsupportedFormat, EmptyDocument, CorruptDocument, NoTextLayer.
    """
    fmt = file_format(filename)
    if fmt is None:
        extension = os.path.splitext(filename.strip())[1] or "(no extension)"
        raise UnsupportedFormat(f"{filename}: files of type {extension} are not supported")
    if not data.strip():
        raise EmptyDocument(f"{filename}: the file is empty")
    try:
        if fmt == "pdf":
            from . import pdf

            return pdf.parse(filename, data, page_range)
        return _parser(fmt)(filename, data)
    except ParseError:
        raise
    except RecursionError as exc:
        raise CorruptDocument(f"{filename}: the file is nested too deeply to be read") from exc
    except Exception as exc:
        # Parsing libraries signal malformed input with whatever exception their code trips over; none of
        # them is a bug of ours to surface, and the user needs a readable reason, not a traceback.
        logger.warning("unexpected error while parsing %s as %s", filename, fmt, exc_info=True)
        raise CorruptDocument(f"{filename}: the file is damaged or not a valid {fmt} file") from exc


def count_pdf_pages(data: bytes, filename: str = "document.pdf") -> int:
    """Number of pages of a PDF (to size the page-range fan-out); CorruptDocument if it can't be opened."""
    from . import pdf

    return pdf.count_pdf_pages(data, filename)


def extract_pdf_pages(data: bytes, start: int, end: int, filename: str = "document.pdf") -> ExtractedDocument:
    """Pages ``[start, end)`` of a PDF (0-based); see ``pdf.extract_pdf_pages``."""
    from . import pdf

    return pdf.extract_pdf_pages(data, start, end, filename)
