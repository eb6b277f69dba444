"""Extraction of every supported format into typed sections, and the typed errors users see."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.rag.parsers import (
    SUPPORTED_EXTENSIONS,
    CorruptDocument,
    EmptyDocument,
    NoTextLayer,
    ParseError,
    UnsupportedFormat,
    count_pdf_pages,
    extract,
    extract_pdf_pages,
    is_supported,
)
from shared.rag.parsers.txt import decode_text
from shared.rag.types import ExtractedDocument, Section
from tests.support import docs

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]


def kinds(document: ExtractedDocument) -> list[str]:
    return [section.kind for section in document.sections]


def headings(document: ExtractedDocument) -> list[tuple[int, str]]:
    return [(section.level, section.text) for section in document.sections if section.kind == "heading"]


def tables(document: ExtractedDocument) -> list[Section]:
    return [section for section in document.sections if section.kind == "table"]


# ------------------------------------------------------------------------------------------ dispatching


def test_supported_extensions_are_lower_case_and_dispatch_case_insensitively() -> None:
    assert all(ext == ext.lower() and ext.startswith(".") for ext in SUPPORTED_EXTENSIONS)
    for name in ("a.PDF", "b.Docx", "c.md", "d.py", "e.YAML", "f.eml", "g.xls", "h.jsonl", "i.tsv"):
        assert is_supported(name), name
    for name in ("a.exe", "b.zip", "noextension", "c.doc", "d.ppt", ""):
        assert not is_supported(name), name
    assert extract("README.TXT", b"hello").text == "hello"


@pytest.mark.parametrize("filename", ["archive.zip", "photo.jpg", "Makefile", "old.doc"])
def test_unknown_extension_is_unsupported(filename: str) -> None:
    with pytest.raises(UnsupportedFormat) as error:
        extract(filename, b"some bytes")
    assert filename in error.value.message
    assert "not supported" in error.value.message


ONE_FILE_PER_FORMAT = [
    f"sample.{ext}" for ext in ["txt", "md", "pdf", "docx", "xlsx", "xls", "csv", "pptx", "html", "json", "eml"]
]


@pytest.mark.parametrize("filename", ONE_FILE_PER_FORMAT)
@pytest.mark.parametrize("data", [b"", b" \n\t \r\n"])
def test_empty_file_is_empty_document(filename: str, data: bytes) -> None:
    with pytest.raises(EmptyDocument, match="empty"):
        extract(filename, data)


def _blank_xlsx() -> bytes:
    import openpyxl

    out = io.BytesIO()
    openpyxl.Workbook().save(out)
    return out.getvalue()


def _blank_docx() -> bytes:
    import docx

    out = io.BytesIO()
    docx.Document().save(out)
    return out.getvalue()


def _blank_pptx() -> bytes:
    import pptx

    out = io.BytesIO()
    pptx.Presentation().save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("filename", "make"),
    [
        ("blank.md", lambda: b"#\n\n   \n"),
        ("blank.html", lambda: b"<html><head><script>x()</script></head><body> <p> </p></body></html>"),
        ("blank.json", lambda: b"[]"),
        ("blank.csv", lambda: b",,\n,,\n"),
        ("blank.xlsx", _blank_xlsx),
        ("blank.pptx", _blank_pptx),
        ("blank.docx", _blank_docx),
    ],
)
def test_files_without_text_are_empty_documents(filename: str, make: Callable[[], bytes]) -> None:
    with pytest.raises(EmptyDocument, match="no text found"):
        extract(filename, make())


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("broken.pdf", docs.make_corrupt_pdf()),
        ("not-a-pdf.pdf", b"just some text pretending to be a PDF"),
        ("broken.docx", docs.make_corrupt_zip()),
        ("broken.xlsx", docs.make_corrupt_zip()),
        ("broken.pptx", docs.make_corrupt_zip()),
        ("text.docx", b"plain text in a .docx"),
        ("broken.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8),
        ("garbage.xls", b"this is not a spreadsheet at all"),
        ("binary.txt", bytes(range(32)) * 64),
        ("broken.json", b'{"a": 1,, }'),
    ],
)
def test_damaged_files_are_corrupt_documents(filename: str, data: bytes) -> None:
    with pytest.raises(CorruptDocument) as error:
        extract(filename, data)
    message = error.value.message
    assert message.startswith(filename)
    assert "Traceback" not in message and "\n" not in message
    assert str(error.value) == message


def test_zip_with_broken_xml_part_is_corrupt() -> None:
    source = zipfile.ZipFile(io.BytesIO(docs.make_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            payload = b"<w:document><unclosed" if item.filename == "word/document.xml" else source.read(item)
            target.writestr(item, payload)
    with pytest.raises(CorruptDocument, match="Word"):
        extract("broken-xml.docx", out.getvalue())


def test_legacy_office_files_under_new_extensions_say_so() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024
    with pytest.raises(CorruptDocument, match=r"legacy Word \.doc"):
        extract("old.docx", ole)
    with pytest.raises(CorruptDocument, match=r"legacy PowerPoint \.ppt"):
        extract("old.pptx", ole)


def test_errors_share_a_base() -> None:
    for error in (UnsupportedFormat, EmptyDocument, CorruptDocument, NoTextLayer):
        assert issubclass(error, ParseError)


def test_importing_the_package_does_not_load_format_libraries() -> None:
    code = "import sys, shared.rag.parsers; print(sorted(m for m in ('pypdf', 'pypdfium2', 'docx', 'openpyxl', 'pptx', 'xlrd') if m in sys.modules))"  # noqa: E501
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------- text


def test_txt_paragraphs() -> None:
    document = extract("notes.txt", docs.make_txt())
    assert [s.text for s in document.sections] == ["First paragraph.\nStill the first.", "Second paragraph."]
    assert kinds(document) == ["text", "text"]
    assert document.pages is None


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Grüße aus Köln \u2013 café", "utf-8"),
        ("Grüße aus Köln \u2013 café", "utf-8-sig"),
        ("Grüße aus Köln \u2013 café", "utf-16"),  # with BOM
        ("Plain ASCII mostly, in UTF-16 without a BOM.", "utf-16-le"),
        ("Müller straße café déjà vu, naïve résumé. Le garçon a mangé à côté de l'hôpital.", "cp1252"),
        ("中文文本测试\uff0c这是一个简单的例子。我们需要检测编码。", "gbk"),
        ("Съешь же ещё этих мягких французских булок, да выпей чаю.", "cp1251"),
    ],
)
def test_txt_encodings(text: str, encoding: str) -> None:
    assert decode_text(text.encode(encoding)) == text
    assert extract("t.txt", text.encode(encoding)).text == text


def test_txt_newlines_are_normalized_and_code_is_text() -> None:
    document = extract("script.py", b"def f():\r\n    return 1\r\n")
    assert document.sections == [Section(text="def f():\n    return 1")]


def test_markdown_structure() -> None:
    document = extract("readme.md", docs.make_md())
    assert headings(document) == [(1, "Title"), (2, "Setext heading"), (2, "Code")]
    code = [s for s in document.sections if s.meta.get("code")]
    assert len(code) == 1
    assert code[0].text == "```python\n# not a heading\ndef f() -> int:\n    return 1\n```"
    assert code[0].meta["language"] == "python"
    [table] = tables(document)
    assert table.has_header
    assert table.rows == [["name", "qty"], ["apple", "3"], ["pear | nashi", "5"]]
    assert document.sections[0].meta == {"front_matter": True}
    assert document.sections[-1].text == "Closing words."


def test_markdown_edge_cases() -> None:
    source = "Title\n=====\n\n- a list item\n---\n\n### Closed ATX ###\n\n```\nunclosed fence\n# still code"
    document = extract("x.markdown", source.encode())
    assert headings(document) == [(1, "Title"), (3, "Closed ATX")]
    assert document.sections[-1].text == "```\nunclosed fence\n# still code"


def test_csv_table_with_sniffed_delimiter() -> None:
    document = extract("people.csv", docs.make_csv())
    [table] = document.sections
    assert table.kind == "table" and table.has_header
    assert table.rows == [["name", "city", "age"], ["Ann", "Paris", "31"], ["Bob", "Oslo, Norway", "42"]]
    semicolons = extract("eu.csv", docs.make_csv([["a", "b"], ["1,5", "2,5"]], delimiter=";"))
    assert semicolons.sections[0].rows == [["a", "b"], ["1,5", "2,5"]]
    tabs = extract("data.tsv", b"k\tv\nx\t1\n")
    assert tabs.sections[0].rows == [["k", "v"], ["x", "1"]]


def test_html_structure() -> None:
    document = extract("page.html", docs.make_html())
    assert document.meta["title"] == "Sample page"
    assert headings(document) == [(1, "Main title"), (2, "Section two")]
    assert "do not index" not in document.text and "color: red" not in document.text
    assert "First paragraph with bold & entities." in document.text
    [table] = tables(document)
    assert table.has_header and table.rows == [["Key", "Value"], ["alpha", "1"], ["beta", "2"]]
    texts = [s.text for s in document.sections if s.kind == "text"]
    assert "item one" in texts and "item two" in texts
    assert "keep\n    spacing" in texts
    assert "Trailing div text\nafter a break" in texts


def test_html_nested_table_and_declared_charset() -> None:
    html = (
        '<html><head><meta charset="windows-1252"></head><body><p>Caf\xe9</p>'
        "<table><tr><td>outer</td><td><table><tr><td>in1</td><td>in2</td></tr></table></td></tr></table>"
        "</body></html>"
    ).encode("cp1252")
    document = extract("legacy.htm", html)
    assert document.sections[0].text == "Café"
    [table] = tables(document)
    assert table.rows == [["outer", "in1 | in2"]]


def test_json_records_and_values() -> None:
    records = extract("faq.json", docs.make_json())
    assert len(records.sections) == 2
    assert '"question": "What is RAG?"' in records.sections[0].text
    assert records.sections[1].meta == {"index": 1}
    wrapped = extract("w.json", docs.make_json({"items": [{"a": 1}, {"a": 2}, {"a": 3}]}))
    assert len(wrapped.sections) == 3 and wrapped.sections[0].meta == {"index": 0, "key": "items"}
    single = extract("config.json", docs.make_json({"name": "flowless", "tags": ["rag", "aws"]}))
    assert len(single.sections) == 1 and '"name": "flowless"' in single.text
    lines = extract("events.jsonl", b'{"e": 1}\n{"e": 2}\n')
    assert len(lines.sections) == 2


def test_email_headers_body_and_attachments() -> None:
    document = extract("mail.eml", docs.make_eml())
    header = document.sections[0]
    assert header.kind == "email_header"
    assert header.meta["from"] == "Alice Example <alice@example.com>"
    assert header.meta["to"] == "bob@example.com, carol@example.com"
    assert header.meta["subject"] == "Quarterly report"
    assert header.meta["date"] == "Tue, 02 Jan 2024 10:00:00 +0000"
    assert header.meta["attachments"] == ["numbers.csv"]
    assert "Subject: Quarterly report" in header.text
    assert [s.text for s in document.sections[1:]] == ["Hello Bob,", "The report is attached.", "Alice"]
    assert "a,b" not in document.text  # attachments are listed, not parsed
    assert document.meta["attachments"] == [{"filename": "numbers.csv", "content_type": "text/csv", "size": 8}]


def test_email_with_html_only_body() -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "a@example.com"
    message["Subject"] = "HTML only"
    message.set_content("<html><body><h1>News</h1><p>Hello <b>there</b></p><script>x()</script></body></html>", "html")
    document = extract("html.eml", message.as_bytes())
    assert kinds(document) == ["email_header", "text", "text"]
    assert [s.text for s in document.sections[1:]] == ["News", "Hello there"]


# -------------------------------------------------------------------------------------------------- PDF


def test_pdf_pages() -> None:
    document = extract("two.pdf", docs.make_pdf(("Alpha page text.", "Beta page text.", "Gamma (3) text.")))
    assert document.pages == 3
    assert [(s.kind, s.page, s.text) for s in document.sections] == [
        ("text", 1, "Alpha page text."),
        ("text", 2, "Beta page text."),
        ("text", 3, "Gamma (3) text."),
    ]
    assert document.meta["pages_without_text"] == []


def test_pdf_long_text_comes_back() -> None:
    data = docs.make_long_pdf(3, words_per_page=300)
    document = extract("long.pdf", data)
    assert [s.page for s in document.sections] == [1, 2, 3]
    assert document.sections[1].text.startswith("2. Section 2")
    assert 280 <= len(document.sections[0].text.split()) <= 400


def test_pdf_page_ranges() -> None:
    data = docs.make_pdf([f"Text of page {n}." for n in range(1, 8)])
    assert count_pdf_pages(data) == 7
    part = extract_pdf_pages(data, 2, 5)
    assert [s.page for s in part.sections] == [3, 4, 5]
    assert part.sections[0].text == "Text of page 3."
    assert part.pages == 7 and part.meta["page_range"] == [2, 5]
    assert [s.page for s in extract("r.pdf", data, page_range=(5, 100)).sections] == [6, 7]
    assert extract_pdf_pages(data, 10, 12).sections == []
    with pytest.raises(ValueError):
        extract_pdf_pages(data, 3, 1)


def test_scanned_pdf_has_no_text_layer() -> None:
    with pytest.raises(NoTextLayer) as error:
        extract("scan.pdf", docs.make_scanned_pdf())
    assert error.value.message == "scan.pdf: this PDF has no text layer (scanned images?); OCR is not available"


def test_scanned_pages_inside_a_text_pdf() -> None:
    data = docs.build_pdf([["Typed first page."], None, ["Typed third page."]])
    document = extract("mixed.pdf", data)
    assert [s.page for s in document.sections] == [1, 3]
    assert document.meta["pages_without_text"] == [2]
    only_scan = extract_pdf_pages(data, 1, 2)  # a fan-out part may be all scan: no error, the caller decides
    assert only_scan.sections == [] and only_scan.meta["pages_without_text"] == [2]


def test_encrypted_pdfs() -> None:
    assert extract("open.pdf", docs.make_encrypted_pdf(user_password="")).text == "Secret text."
    aes = docs.make_encrypted_pdf(user_password="", algorithm="AES-256")  # the common "no editing" PDF
    assert extract("aes.pdf", aes).text == "Secret text."
    with pytest.raises(CorruptDocument, match="password"):
        extract("locked.pdf", docs.make_encrypted_pdf(user_password="s3cret"))


def test_corrupt_pdf_page_count() -> None:
    with pytest.raises(CorruptDocument):
        count_pdf_pages(docs.make_corrupt_pdf(), "bad.pdf")


# ------------------------------------------------------------------------------------------ Office files


def test_docx_structure_in_body_order() -> None:
    document = extract("report.docx", docs.make_docx())
    assert [(s.kind, s.level, s.text) for s in document.sections] == [
        ("heading", 1, "Report title"),
        ("text", 0, "Opening paragraph."),
        ("heading", 2, "Details"),
        ("text", 0, "Before the table."),
        ("table", 0, "Name | Score\nAnn | 9\nBob | 7"),
        ("text", 0, "After the table."),
        ("heading", 3, "Deep heading"),
        ("text", 0, "Last words."),
    ]
    [table] = tables(document)
    assert table.has_header and table.rows == [["Name", "Score"], ["Ann", "9"], ["Bob", "7"]]
    assert document.meta["title"] == "Sample docx"


def test_xlsx_one_table_per_sheet() -> None:
    document = extract("book.xlsx", docs.make_xlsx())
    assert document.pages == 3
    assert kinds(document) == ["table", "table"]
    people, numbers = document.sections
    assert (people.page, people.meta) == (1, {"sheet": "People"})
    assert people.has_header
    assert people.rows == [["Name", "Joined", "Score"], ["Ann", "2024-01-02", "9.5"], ["Bob", "2023-05-06", "7"]]
    assert (numbers.page, numbers.meta, numbers.has_header) == (3, {"sheet": "Numbers"}, False)
    assert document.meta["sheets"] == ["People", "Empty", "Numbers"]


def test_xls_one_table_per_sheet() -> None:
    document = extract("legacy.xls", docs.make_xls())
    assert document.pages == 2
    inventory, notes = document.sections
    assert (inventory.kind, inventory.page, inventory.meta) == ("table", 1, {"sheet": "Inventory"})
    assert inventory.rows == [["Item", "Count"], ["bolts", "120"], ["nuts", "80.5"]]
    assert inventory.has_header
    assert (notes.page, notes.text) == (2, "remember the milk")


def test_spreadsheets_with_the_other_extension_still_parse() -> None:
    assert extract("really-xlsx.xls", docs.make_xlsx()).sections[0].meta == {"sheet": "People"}
    assert extract("really-xls.xlsx", docs.make_xls()).sections[0].meta == {"sheet": "Inventory"}


def test_pptx_one_section_per_slide() -> None:
    document = extract("deck.pptx", docs.make_pptx())
    assert document.pages == 3
    assert [(s.kind, s.page) for s in document.sections] == [("slide", 1), ("slide", 2)]  # slide 3 is blank
    first, second = document.sections
    assert first.text == "Deck title\nSubtitle text"
    assert first.meta["title"] == "Deck title"
    assert second.text == "Numbers\nQuarter | Revenue\nQ1 | 100\nNotes: Speaker notes here"
    assert second.meta["tables"] == [[["Quarter", "Revenue"], ["Q1", "100"]]]
    assert second.meta["notes"] == "Speaker notes here"


def test_truncated_files_are_corrupt() -> None:
    pdf = docs.make_long_pdf(3)
    with pytest.raises(CorruptDocument):
        extract("cut.pdf", pdf[: len(pdf) // 2])
    document = docs.make_docx()
    with pytest.raises(CorruptDocument):
        extract("cut.docx", document[: len(document) // 2])


def test_unexpected_library_errors_become_corrupt_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.rag.parsers import txt

    def explode(filename: str, data: bytes) -> ExtractedDocument:
        raise ZeroDivisionError("deep inside a library")

    monkeypatch.setattr(txt, "parse", explode)
    with pytest.raises(CorruptDocument) as error:
        extract("odd.txt", b"text")
    assert error.value.message == "odd.txt: the file is damaged or not a valid txt file"
    assert isinstance(error.value.__cause__, ZeroDivisionError)
