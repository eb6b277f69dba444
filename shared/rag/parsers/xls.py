"""Excel 97-2003 .xls (xlrd): one table section per non-empty worksheet."""

from __future__ import annotations

import struct
from typing import Any

import xlrd
from xlrd.compdoc import CompDocError

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, table_section
from .errors import CorruptDocument

_ZIP_MAGIC = b"PK\x03\x04"


def _value(cell: Any, datemode: int) -> Any:
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate_as_datetime(cell.value, datemode)
        except (xlrd.xldate.XLDateError, OverflowError, ValueError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return None
    return cell.value


def parse(filename: str, data: bytes) -> ExtractedDocument:
    if data.startswith(_ZIP_MAGIC):  # an .xlsx renamed .xls
        from . import xlsx

        return xlsx.parse(filename, data)
    sections: list[Section] = []
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True, logfile=_Discard())
        try:
            names = book.sheet_names()
            for index in range(book.nsheets):
                sheet = book.sheet_by_index(index)
                rows = ([_value(cell, book.datemode) for cell in sheet.row(r)] for r in range(sheet.nrows))
                section = table_section(rows, page=index + 1, meta={"sheet": sheet.name})
                if section is not None:
                    sections.append(section)
                book.unload_sheet(index)
        finally:
            book.release_resources()
    except (xlrd.XLRDError, CompDocError, struct.error, IndexError, KeyError, ValueError, AssertionError) as exc:
        raise CorruptDocument(f"{filename}: the file is damaged or is not an Excel .xls workbook") from exc
    return finish(filename, sections, pages=len(names), meta={"sheets": names})


class _Discard:
    """xlrd writes warnings about odd-but-readable files to a log file; they are not for users."""

    def write(self, text: str) -> int:
        return len(text)
