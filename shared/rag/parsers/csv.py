"""CSV/TSV (stdlib csv with a sniffed dialect): one table section."""

from __future__ import annotations

import csv
import io

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, table_section
from .errors import CorruptDocument
from .txt import decode_text

_SNIFF_BYTES = 8192
_DELIMITERS = ",;\t|"


def _dialect(text: str, filename: str) -> type[csv.Dialect] | csv.Dialect:
    if filename.lower().endswith(".tsv"):
        return csv.excel_tab
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only: a cut line confuses the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:  # one column, or too irregular to tell: the comma default is the safe reading
        return csv.excel


def parse(filename: str, data: bytes) -> ExtractedDocument:
    text = decode_text(data, filename)
    try:
        rows = list(csv.reader(io.StringIO(text), _dialect(text, filename)))
    except csv.Error as exc:
        raise CorruptDocument(f"{filename}: the file is not valid CSV ({exc})") from exc
    section = table_section(rows)
    sections: list[Section] = [section] if section is not None else []
    return finish(filename, sections)
