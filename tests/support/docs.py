"""Sample files of every supported format, generated in memory for tests and benchmarks.

PDF and legacy .xls are written by small hand-rolled writers below (the libraries that would write them are
heavy or unmaintained); docx/xlsx/pptx use the same libraries the parsers read them with. The only binary
fixtures are a few real-world PDFs in tests/data/pdfs (see its README), for what no generator imitates.
"""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from collections.abc import Sequence
from email.message import EmailMessage

# --------------------------------------------------------------------------------------------------- text


def make_txt(text: str = "First paragraph.\nStill the first.\n\nSecond paragraph.\n", encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


SAMPLE_MD = """\
---
title: Sample
---
# Title

Intro paragraph with *emphasis*.

Setext heading
--------------

## Code

```python
# not a heading
def f() -> int:
    return 1
```

| name | qty |
|------|----:|
| apple | 3 |
| pear \\| nashi | 5 |

Closing words.
"""


def make_md(text: str = SAMPLE_MD) -> bytes:
    return text.encode("utf-8")


def make_csv(rows: Sequence[Sequence[object]] | None = None, delimiter: str = ",") -> bytes:
    import csv

    rows = rows or [["name", "city", "age"], ["Ann", "Paris", 31], ["Bob", "Oslo, Norway", 42]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


SAMPLE_HTML = """\
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sample page</title>
<style>body { color: red; }</style>
<script>var hidden = "do not index";</script></head>
<body>
<h1>Main title</h1>
<p>First paragraph with <b>bold</b> &amp; entities.</p>
<h2>Section two</h2>
<ul><li>item one</li><li>item two</li></ul>
<table>
  <tr><th>Key</th><th>Value</th></tr>
  <tr><td>alpha</td><td>1</td></tr>
  <tr><td>beta</td><td>2</td></tr>
</table>
<pre>  keep
    spacing</pre>
<div>Trailing div text<br>after a break</div>
</body></html>
"""


def make_html(text: str = SAMPLE_HTML) -> bytes:
    return text.encode("utf-8")


def make_json(value: object | None = None) -> bytes:
    if value is None:
        value = [{"id": 1, "question": "What is RAG?"}, {"id": 2, "question": "Why chunk?"}]
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def make_eml(*, html: bool = False, attachment: bool = True) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "bob@example.com, carol@example.com"
    message["Subject"] = "Quarterly report"
    message["Date"] = "Tue, 02 Jan 2024 10:00:00 +0000"
    message.set_content("Hello Bob,\n\nThe report is attached.\n\nAlice\n")
    if html:
        message.add_alternative("<html><body><p>Hello <b>Bob</b>,</p><p>The HTML report.</p></body></html>", "html")
    if attachment:
        message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="numbers.csv")
    return message.as_bytes()


# ---------------------------------------------------------------------------------------------------- PDF

_WORDS = (  # noqa: SIM905 - a word list
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so no will more other its about into them "
    "only some could time these two may then do first any my now such like our over man me even most made after "
    "also did many before must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here between both life "
    "being under never day same another know while last might us great old year off come since against go came "
    "right used take three retrieval augmented generation document chunk index embedding vector query answer "
    "dataset knowledge model token search ranking relevance context prompt citation"
).split()


def lorem_paragraphs(words: int, seed: int = 0) -> list[str]:
    """Deterministic English-like paragraphs totalling about ``words`` words."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    remaining = words
    while remaining > 0:
        sentences = []
        for _ in range(rng.randint(3, 6)):
            n = rng.randint(8, 18)
            sentence = " ".join(rng.choice(_WORDS) for _ in range(n))
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        remaining -= len(paragraph.split())
    return paragraphs


def _wrap(paragraph: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in paragraph.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _page_content(lines: Sequence[str], font_size: float, kerned: bool) -> bytes:
    """Text operators for one page. ``kerned`` writes lines the way word processors do (absolute ``Tm``
    positioning and ``TJ`` arrays with kerning adjustments every few characters), which is slower to extract
    than the simple ``Tj``/``T*`` form."""
    leading = font_size * 1.25
    ops = [b"BT", b"/F1 %.1f Tf" % font_size]
    if not kerned:
        ops += [b"%.1f TL" % leading, b"56 790 Td"]
        ops += [_pdf_string(line) + b" Tj T*" for line in lines]
    else:
        y = 790.0
        for line in lines:
            pieces = [line[i : i + 7] for i in range(0, len(line), 7)]
            kerns = [b"-12", b"8", b"-4"]
            array = b" ".join(_pdf_string(piece) + b" " + kerns[i % 3] for i, piece in enumerate(pieces))
            ops.append(b"1 0 0 1 56 %.2f Tm [%s] TJ" % (y, array))
            y -= leading
    ops.append(b"ET")
    return b"\n".join(ops)


def _image_content() -> bytes:
    return b"q 480 0 0 680 56 80 cm /Im1 Do Q"


def build_pdf(
    pages: Sequence[Sequence[str] | None], *, compress: bool = True, font_size: float = 9.0, kerned: bool = False
) -> bytes:
    """A valid PDF with one page per entry: a list of text lines (Helvetica, WinAnsi), or None for a page
    that only paints an image (what a scan looks like: no text layer)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in once the page tree exists
    pages_id = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pixels = bytes(random.Random(1).getrandbits(8) for _ in range(64 * 64))
    image = add(
        b"<< /Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Length %d >>\nstream\n" % len(pixels) + pixels + b"\nendstream"
    )
    kids: list[int] = []
    for lines in pages:
        content = _image_content() if lines is None else _page_content(lines, font_size, kerned)
        if compress:
            content = zlib.compress(content)
            stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream"
        else:
            stream = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
        content_id = add(stream)
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> /XObject << /Im1 %d 0 R >> >> >>"
                % (pages_id, content_id, font, image)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref))
    return out.getvalue()


def make_pdf(page_texts: Sequence[str] = ("Page one text.", "Page two text.")) -> bytes:
    """A text PDF, one page per string (the string is wrapped at ~95 characters)."""
    return build_pdf([[line for para in text.split("\n") for line in _wrap(para, 95)] for text in page_texts])


def make_long_pdf(pages: int, words_per_page: int = 400, seed: int = 0, kerned: bool = True) -> bytes:
    """A realistic text PDF: ``pages`` pages of ~``words_per_page`` words in paragraphs, each page opening
    with a numbered heading line."""
    page_lines: list[list[str]] = []
    for number in range(pages):
        lines: list[str] = [f"{number + 1}. Section {number + 1}", ""]
        for paragraph in lorem_paragraphs(words_per_page, seed=seed * 100_000 + number):
            lines.extend(_wrap(paragraph, 110))
            lines.append("")
        page_lines.append(lines)
    return build_pdf(page_lines, font_size=8.0, kerned=kerned)


def make_scanned_pdf(pages: int = 2) -> bytes:
    """Pages that only paint an image: no text layer."""
    return build_pdf([None] * pages)


def make_encrypted_pdf(user_password: str = "", owner_password: str = "owner", algorithm: str = "RC4-128") -> bytes:
    """An encrypted PDF; with an empty user password it opens without one (only editing is restricted).
    AES algorithms need the ``cryptography`` package, to write and to read."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(("Secret text.",)))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_corrupt_pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\n" + bytes(range(256)) * 4


# ---------------------------------------------------------------------------------------------- Office XML


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Sample docx"
    document.add_heading("Report title", level=1)
    document.add_paragraph("Opening paragraph.")
    document.add_heading("Details", level=2)
    document.add_paragraph("Before the table.")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([("Name", "Score"), ("Ann", "9"), ("Bob", "7")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("After the table.")
    document.add_heading("Deep heading", level=3)
    document.add_paragraph("Last words.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_xlsx() -> bytes:
    import datetime as dt

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "People"
    sheet.append(["Name", "Joined", "Score"])
    sheet.append(["Ann", dt.date(2024, 1, 2), 9.5])
    sheet.append(["Bob", dt.date(2023, 5, 6), 7])
    sheet["E1"] = "=1+1"
    empty = workbook.create_sheet("Empty")
    del empty
    numbers = workbook.create_sheet("Numbers")
    numbers.append([1, 2, 3])
    numbers.append([4, 5, 6])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_pptx() -> bytes:
    import pptx
    from pptx.util import Inches

    presentation = pptx.Presentation()
    first = presentation.slides.add_slide(presentation.slide_layouts[0])  # title slide
    first.shapes.title.text = "Deck title"
    first.placeholders[1].text = "Subtitle text"
    second = presentation.slides.add_slide(presentation.slide_layouts[5])  # title only
    second.shapes.title.text = "Numbers"
    shape = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1))
    table = shape.table
    table.cell(0, 0).text = "Quarter"
    table.cell(0, 1).text = "Revenue"
    table.cell(1, 0).text = "Q1"
    table.cell(1, 1).text = "100"
    second.notes_slide.notes_text_frame.text = "Speaker notes here"
    presentation.slides.add_slide(presentation.slide_layouts[6])  # blank: no text at all
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def make_corrupt_zip() -> bytes:
    """A file that starts like a zip (an Office XML document) but is garbage after the signature."""
    return b"PK\x03\x04" + bytes(random.Random(7).getrandbits(8) for _ in range(2048))


# ------------------------------------------------------------------------------------------------ .xls (BIFF8)


def _biff(record: int, payload: bytes) -> bytes:
    return struct.pack("<HH", record, len(payload)) + payload


def _biff_string(text: str, length_bytes: int) -> bytes:
    """BIFF8 unicode string, stored uncompressed as UTF-16LE (flag 0x01)."""
    encoded = text.encode("utf-16-le")
    length = struct.pack("<B" if length_bytes == 1 else "<H", len(text))
    return length + b"\x01" + encoded


def _biff_sheet(rows: Sequence[Sequence[object]]) -> bytes:
    records = [_biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0x0DBB, 0x07CC, 0, 0x06))]  # BOF worksheet
    width = max((len(row) for row in rows), default=0)
    records.append(_biff(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, width, 0)))  # DIMENSIONS
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                records.append(_biff(0x0203, struct.pack("<HHHd", r, c, 0, float(value))))  # NUMBER
            elif value is not None:
                records.append(_biff(0x0204, struct.pack("<HHH", r, c, 0) + _biff_string(str(value), 2)))  # LABEL
    records.append(_biff(0x000A, b""))  # EOF
    return b"".join(records)


def _compound_file(stream_name: str, stream: bytes) -> bytes:
    """An OLE2 compound file holding one stream (512-byte sectors, one FAT sector, one directory sector)."""
    sector = 512
    stream = stream.ljust(max(4096, -(-len(stream) // sector) * sector), b"\x00")  # ≥ 4096: no mini stream
    stream_sectors = len(stream) // sector
    if stream_sectors + 2 > sector // 4:
        raise ValueError("sample .xls too large for the one-FAT-sector writer")
    end, free, fat_sector = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    fat = [fat_sector, end] + [3 + i for i in range(stream_sectors - 1)] + [end]
    fat += [free] * (sector // 4 - len(fat))

    def entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        return (
            encoded.ljust(64, b"\x00")
            + struct.pack("<HBB", len(encoded), kind, 1)
            + struct.pack("<III", free, free, child)
            + b"\x00" * 16  # CLSID
            + struct.pack("<I", 0)  # state bits
            + b"\x00" * 16  # times
            + struct.pack("<IIII", start, size, 0, 0)[:8]
        ).ljust(128, b"\x00")

    directory = entry("Root Entry", 5, 1, end, 0) + entry(stream_name, 2, free, 2, len(stream))
    directory += (b"\x00" * 64 + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", free, free, free)).ljust(
        128, b"\x00"
    ) * 2
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 16
        + struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6)
        + b"\x00" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<I", 0)
        + struct.pack("<I", free) * 108
    )
    assert len(header) == sector
    return header + struct.pack(f"<{sector // 4}I", *fat) + directory + stream


def make_xls(sheets: dict[str, Sequence[Sequence[object]]] | None = None) -> bytes:
    """A legacy Excel 97-2003 workbook (BIFF8) with text and number cells, one worksheet per entry."""
    sheets = sheets or {
        "Inventory": [["Item", "Count"], ["bolts", 120], ["nuts", 80.5]],
        "Notes": [["remember the milk"]],
    }
    bof = _biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0x06))  # BOF globals
    codepage = _biff(0x0042, struct.pack("<H", 1200))
    eof = _biff(0x000A, b"")
    bodies = [_biff_sheet(rows) for rows in sheets.values()]

    def boundsheets(offsets: Sequence[int]) -> bytes:
        return b"".join(
            _biff(0x0085, struct.pack("<IBB", offset, 0, 0) + _biff_string(name, 1))
            for offset, name in zip(offsets, sheets, strict=True)
        )

    globals_size = len(bof) + len(codepage) + len(boundsheets([0] * len(sheets))) + len(eof)
    offsets = []
    position = globals_size
    for body in bodies:
        offsets.append(position)
        position += len(body)
    workbook = bof + codepage + boundsheets(offsets) + eof + b"".join(bodies)
    return _compound_file("Workbook", workbook)
