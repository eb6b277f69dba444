"""JSON and JSON Lines: pretty-printed text; a list of objects gives one section per object."""

from __future__ import annotations

import json
from typing import Any

from shared.rag.types import ExtractedDocument, Section

from ._common import finish
from .errors import CorruptDocument
from .txt import decode_text


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _load(text: str, filename: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.split("\n") if line.strip()]
        if len(lines) > 1:  # JSON Lines: one value per line
            try:
                return [json.loads(line) for line in lines]
            except json.JSONDecodeError:
                pass
        raise CorruptDocument(
            f"{filename}: the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc


def parse(filename: str, data: bytes) -> ExtractedDocument:
    value = _load(decode_text(data, filename), filename)
    records = value
    key = None
    if isinstance(value, dict) and len(value) == 1:  # {"items": [{...}, ...]} is a list of records too
        key, records = next(iter(value.items()))
    if isinstance(records, list) and records and all(isinstance(item, (dict, list)) for item in records):
        meta = {"key": key} if key is not None else {}
        sections = [Section(text=_pretty(item), meta={"index": i, **meta}) for i, item in enumerate(records) if item]
    else:
        sections = [Section(text=_pretty(value))] if value not in (None, "", [], {}) else []
    return finish(filename, sections)
