"""Plain text and source code: encoding detection, then one text section per paragraph."""

from __future__ import annotations

import codecs

import charset_normalizer
from charset_normalizer.utils import is_multi_byte_encoding

from shared.rag.types import ExtractedDocument

from ._common import finish, normalize_newlines, paragraphs
from .errors import CorruptDocument

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v\x1b")
_SAMPLE = 1 << 16


def decode_text(data: bytes, filename: str = "file") -> str:
    """Bytes of a text file as str, newlines normalized to ``\\n``.

    Order: a BOM; UTF-16 without BOM (NUL-byte pattern); strict UTF-8 (by far the most common);
    charset-normalizer's guess (GBK, Shift-JIS, Big5, cp1251, ...), except that a single-byte guess becomes
    cp1252 when the detector also lists cp1252 as plausible (it often ranks cp1257 or mac_latin2 first on
    Western European text, which garbles accented letters); cp1252, then latin-1, as the last resort.
    Binary content raises CorruptDocument.
    """
    text = _decode(data)
    sample = text[:_SAMPLE]
    controls = sum(1 for ch in sample if ch < " " and ch not in _ALLOWED_CONTROLS)
    if sample and controls / len(sample) > 0.05:
        raise CorruptDocument(f"{filename}: the file does not look like text (binary content)")
    return normalize_newlines(text)


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    utf16 = _utf16_without_bom(data)  # before UTF-8: NUL bytes are valid UTF-8
    if utf16:
        return data.decode(utf16, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data[: _SAMPLE * 4])
    best = matches.best()
    if best is not None:
        western = not is_multi_byte_encoding(best.encoding) and any(m.encoding == "cp1252" for m in matches)
        if not western:
            return data.decode(best.encoding, errors="replace")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when most odd/even bytes are NUL (mostly-ASCII text in UTF-16), else None."""
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    half = len(sample) // 2
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None


def parse(filename: str, data: bytes) -> ExtractedDocument:
    return finish(filename, paragraphs(decode_text(data, filename)))
