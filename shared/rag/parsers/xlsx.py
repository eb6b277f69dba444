"""Excel .xlsx (openpyxl, read-only streaming): one table section per non-empty worksheet.

``data_only`` gives the values Excel cached for formulas; a workbook written by a tool that never computed
them (not Excel) has no cached values and those cells come back empty.
"""

from __future__ import annotations

import io
import zipfile
from xml.etree.ElementTree import ParseError as XMLParseError

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, table_section
from .errors import CorruptDocument

_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def parse(filename: str, data: bytes) -> ExtractedDocument:
    if data.startswith(_OLE_MAGIC):  # an Excel 97-2003 workbook renamed .xlsx
        from . import xls

        return xls.parse(filename, data)
    sections: list[Section] = []
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheets = workbook.worksheets
            for number, sheet in enumerate(sheets, start=1):
                section = table_section(sheet.iter_rows(values_only=True), page=number, meta={"sheet": sheet.title})
                if section is not None:
                    sections.append(section)
        finally:
            workbook.close()
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, XMLParseError) as exc:
        raise CorruptDocument(f"{filename}: the file is damaged or is not an Excel .xlsx workbook") from exc
    return finish(filename, sections, pages=len(sheets), meta={"sheets": [sheet.title for sheet in sheets]})
