"""Real PDFs (tests/data/pdfs, see its README) through the PDF parser and the chunkers, on both readers.

Every expectation holds for the fast path (PDFium) and for the fallback (pypdf): text in reading order, table
rows kept on one line each, hyphenated line ends kept as they are printed, ligatures spelled as letters, page
numbers right. Most tests read page ranges, as the pipeline's ``task_page_size`` fan-out does (and pypdf
is slow on whole documents).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pypdfium2
import pytest

from shared.rag.chunkers import chunk_document
from shared.rag.parsers import count_pdf_pages, extract, pdf
from shared.rag.types import ChunkDraft, ExtractedDocument

CORPUS = Path(__file__).resolve().parents[1] / "data" / "pdfs"
PAPER, MANUAL, FONTCONFIG = "crc-doc.1.0.pdf", "bzip2-manual.pdf", "fontconfig-user.pdf"
CONFIG = {"chunk_token_num": 512, "delimiter": "\\n"}  # RAGFlow's defaults for a new dataset


@functools.cache
def _data(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@functools.cache
def _pages(name: str, start: int, end: int, reader: str) -> ExtractedDocument:
    return pdf.extract_pdf_pages(_data(name), start, end, name, fast_path=reader == "pdfium")


@pytest.fixture(params=["pdfium", "pypdf"])
def reader(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _text(document: ExtractedDocument, page: int) -> str:
    (section,) = [s for s in document.sections if s.page == page]
    return section.text


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


def _assert_in_order(text: str, *snippets: str) -> None:
    position = 0
    for snippet in snippets:
        found = text.find(snippet, position)
        assert found >= 0, f"{snippet!r} missing after position {position} in:\n{text}"
        position = found + len(snippet)


def _chunk_with(chunks: list[ChunkDraft], snippet: str) -> ChunkDraft:
    return next(chunk for chunk in chunks if snippet in chunk.content)


# -- the documents ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "pages"), [(PAPER, 29), (MANUAL, 38), (FONTCONFIG, 15)])
def test_every_page_comes_back_with_its_number(name: str, pages: int) -> None:
    document = extract(name, _data(name))
    assert count_pdf_pages(_data(name), name) == document.pages == pages
    assert [s.page for s in document.sections] == list(range(1, pages + 1))
    assert all(s.kind == "text" and s.text.strip() for s in document.sections)
    assert document.meta["reader"] == "pdfium"
    assert document.meta["pages_without_text"] == document.meta["pages_failed"] == []


def test_the_fallback_reads_a_whole_document_the_same_way() -> None:
    fast, fallback = (_pages(FONTCONFIG, 0, 1 << 31, reader) for reader in ("pdfium", "pypdf"))
    assert fallback.meta["reader"] == "pypdf"
    assert fast.pages == fallback.pages == 15
    assert [s.page for s in fast.sections] == [s.page for s in fallback.sections] == list(range(1, 16))
    assert fast.meta["created"] == fallback.meta["created"] == "D:20221021163447+09'00'"
    for mine, theirs in zip(fast.sections, fallback.sections, strict=True):
        assert _lines(mine.text)[:3] == _lines(theirs.text)[:3]


def test_a_paper_reads_in_order_with_its_hyphenation(reader: str) -> None:
    first = _text(_pages(PAPER, 0, 1, reader), 1)
    assert _lines(first)[:2] == ["Everything we know about CRC but afraid to", "forget"]
    _assert_in_order(
        first,
        "Andrew Kadatch1 and Bob Jenkins2",
        "Abstract\nThis paper describes a novel interleaved, parallelizeable word-by-word\n",
        # A word hyphenated at the end of a line stays as printed (hyphen, line break), on both readers.
        "in 1.2 CPU cycles per byte, improv-\ning state of the art over word-by-word 32-bit",
        "(6-7 CPU cy-\ncles/byte).",
        "handy on many occassions.\nContents\n1 Definition of CRC 2\n2 Related work 3\n",
        "3.4 In-place modification of CRC-ed message",  # the "fi" ligature spelled out
        "4.3 Multiplication of unnormalized polynomial",
    )


def test_superscripts_stay_on_their_line(reader: str) -> None:
    # PDFium breaks the line where the baseline rises; the parser joins what is one visual line again.
    lines = _lines(_text(_pages(PAPER, 1, 2, reader), 2))
    assert "Addition: (x3 + x2 + x + 1) + (x2 + x + 1) = x3 + 2x2 + 2x + 2 = x3," in lines
    assert "Multiplication: (x + 1)(x + 1) = x2 + 2x + 1 = x2 + 1." in lines
    assert "SOURCE_DATE_EPOCH1." in _lines(_text(_pages(FONTCONFIG, 12, 13, reader), 13))  # a footnote mark


def test_table_rows_stay_on_their_lines(reader: str) -> None:
    page = _text(_pages(PAPER, 24, 25, reader), 25)
    lines = _lines(page)
    _assert_in_order(
        "\n".join(lines),
        "Table 1: CRC performance, AMD64 platform\nMethod Slicing1 Multiword2 Improvement\n"
        "CRC-32 2.083 1.164,5 1.79\nCRC-64 2.093 1.164,5 1.79\nCRC-128 2.914 1.684,6 1.73\n",
        "Table 2: CRC performance, X86 platform\nMethod Slicing1 Multiword2 Improvement\nCRC-32 2.523 1.293,7 1.96\n",
        "CRC-128 4.174 2.104,8 1.98\n",
        "Table 3: Interleaved multiword CRC: choosing the number of stripes N\n"
        "CRC Platform N=2 N=3 N=4 N=5 N=6 N=7 N=8\nCRC-649 AMD64 1.42 1.23 1.17 1.46 2.08 2.59 2.73\n",
        "CRC-12810 X86 2.56 2.10 2.46 2.61 2.52 2.62 2.57\n",
    )


def test_a_text_table_keeps_one_row_per_line_across_pages(reader: str) -> None:
    document = _pages(FONTCONFIG, 0, 2, reader)
    first, second = _text(document, 1), _text(document, 2)
    _assert_in_order(
        first,
        "Description\nFontconfig is a library designed to provide system-wide font configuration, cus-\ntomization",
        "Font Properties\n",
    )
    table = _lines(first)[_lines(first).index("Property Type Description") :]
    assert table[2:4] == ["family String Font family names", "familylang String Languages corresponding to each family"]
    assert _lines(second)[:4] == [
        "fonts-conf",
        "style String Font style. Overrides weight and slant",
        "stylelang String Languages corresponding to each style",
        "fullname String Font full names (often includes style)",
    ]
    assert "weight Int Light, medium, demibold, bold or black" in _lines(second)


def test_a_manual_reads_in_order(reader: str) -> None:
    document = _pages(MANUAL, 1, 6, reader)
    assert [s.page for s in document.sections] == [2, 3, 4, 5, 6]
    assert document.meta["page_range"] == [1, 6] and document.pages == 38
    _assert_in_order(
        _text(document, 2),
        "bzip2 and libbzip2, version 1.0.8: A program and library for data\ncompression\nby Julian Seward\n",
        "WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT",
        "PATENTS: To the best of my knowledge",
    )
    _assert_in_order(
        _text(document, 5),
        "2. How to use bzip2\nTable of Contents\n2.1. NAME",
        "This chapter contains a copy of the bzip2 man page, and nothing else.\n2.1. NAME\n"
        "• bzip2, bunzip2 - a block-sorting file compressor, v1.0.8\n",
        "2.2. SYNOPSIS\n• bzip2 [ -cdfkqstvzVL123456789 ] [ filenames ... ]\n",
    )


# -- chunks ------------------------------------------------------------------------------------------------------
def test_paper_chunks(reader: str) -> None:
    chunks = chunk_document(_pages(PAPER, 0, 4, reader), "paper", CONFIG)
    front = chunks[0]
    assert front.meta == {"section": "front matter"} and front.page_numbers == [1]
    assert front.content.startswith("Everything we know about CRC but afraid to\nforget\nAndrew Kadatch1")
    abstract = _chunk_with(chunks, "This paper describes a novel interleaved")
    assert abstract.meta == {"section": "abstract"} and abstract.keywords == ["abstract", "summary"]
    _assert_in_order(abstract.content, "Abstract\n", "improv-\ning state of the art", "handy on many occassions.")
    related = _chunk_with(chunks, "Cyclic Redundancy Checks (CRCs) were proposed by Peterson and Brown\n")
    assert related.meta == {"section": "2 Related work"} and related.page_numbers == [3, 4]
    assert related.content.startswith("2 Related work\nCyclic Redundancy Checks")


def test_table_rows_stay_whole_in_chunks(reader: str) -> None:
    chunks = chunk_document(_pages(PAPER, 24, 29, reader), "naive", CONFIG)
    chunk = _chunk_with(chunks, "Table 1: CRC performance, AMD64 platform")
    assert 25 in chunk.page_numbers
    assert "\nCRC-32 2.083 1.164,5 1.79\nCRC-64 2.093 1.164,5 1.79\n" in chunk.content
    rows = _chunk_with(chunks, "Table 9: CRC-128 performance: Multiword CRC")
    assert rows.page_numbers[-1] == 29
    assert "\nGCC/SSE2/6 2.90 1.93 1.85 1.72 1.65 1.63 1.63 1.63\n" in rows.content


def test_manual_chunks_open_with_their_section_path(reader: str) -> None:
    chunks = chunk_document(_pages(MANUAL, 3, 8, reader), "manual", CONFIG)
    description = _chunk_with(chunks, "bzip2 compresses files using the Burrows-Wheeler block sorting")
    assert description.content.startswith("2. How to use bzip2\n2.3. DESCRIPTION\n")
    assert description.page_numbers == [6]
    options = _chunk_with(chunks, "-c --stdout\nCompress or decompress to standard output.")
    assert options.content.startswith("2. How to use bzip2\n2.4. OPTIONS\n")


def test_one_chunk_per_page_for_presentation(reader: str) -> None:
    chunks = chunk_document(_pages(FONTCONFIG, 0, 3, reader), "presentation", CONFIG)
    assert [chunk.page_numbers for chunk in chunks] == [[1], [2], [3]]
    assert chunks[1].content.startswith("fonts-conf\nstyle String Font style. Overrides weight and slant\n")


# -- the fallback and the fast path's guarantees ---------------------------------------------------------------
def test_a_file_pdfium_refuses_is_read_by_pypdf(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes, *args: Any, **kwargs: Any) -> Any:
        raise pypdfium2.PdfiumError("Failed to load document (PDFium: Data format error).", err_code=3)

    monkeypatch.setattr(pypdfium2, "PdfDocument", refuse)
    document = extract(PAPER, _data(PAPER), page_range=(24, 25))
    assert document.meta["reader"] == "pypdf"
    assert _text(document, 25) == _text(_pages(PAPER, 24, 25, "pypdf"), 25)
    assert count_pdf_pages(_data(PAPER)) == 29


def test_a_page_pdfium_fails_on_is_read_by_pypdf(monkeypatch: pytest.MonkeyPatch) -> None:
    page_text = pdf._pdfium_page_text

    def fail_on_the_second(document: Any, index: int) -> str:
        if index == 1:
            raise pypdfium2.PdfiumError("Failed to load page.")
        return page_text(document, index)

    monkeypatch.setattr(pdf, "_pdfium_page_text", fail_on_the_second)
    document = extract(FONTCONFIG, _data(FONTCONFIG), page_range=(0, 3))
    assert document.meta["reader"] == "pdfium"
    assert document.meta["pages_read_by_pypdf"] == [2]
    assert document.meta["pages_failed"] == []
    assert [s.page for s in document.sections] == [1, 2, 3]
    assert _text(document, 2) == _text(_pages(FONTCONFIG, 1, 2, "pypdf"), 2)


def test_a_range_loads_only_its_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[int] = []
    page_text = pdf._pdfium_page_text

    def spy(document: Any, index: int) -> str:
        loaded.append(index)
        return page_text(document, index)

    monkeypatch.setattr(pdf, "_pdfium_page_text", spy)
    document = extract(MANUAL, _data(MANUAL), page_range=(12, 24))
    assert loaded == list(range(12, 24))
    assert [s.page for s in document.sections] == list(range(13, 25))


def test_threads_extracting_at_once_get_what_one_thread_gets() -> None:
    # PDFium is not thread-safe; the parser serializes it (the local worker parses in a thread pool).
    jobs = [(name, start, start + 3) for name in (PAPER, MANUAL, FONTCONFIG) for start in range(0, 9, 3)] * 2

    def run(job: tuple[str, int, int]) -> list[tuple[int | None, str]]:
        name, start, end = job
        return [(s.page, s.text) for s in extract(name, _data(name), page_range=(start, end)).sections]

    expected = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results: Iterator[list[tuple[int | None, str]]] = pool.map(run, jobs)
        assert list(results) == expected
