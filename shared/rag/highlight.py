"""Highlights: ``<em>`` around the words of a text that match the question's terms (same analyzer as search)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.rag.text_analysis import analyze

_WORD = re.compile(r"\w+(?:['.]\w+)*", re.UNICODE)


def highlight(text: str, terms: Iterable[str]) -> str:
    """``text`` with every word whose index term is in ``terms`` wrapped in ``<em>…</em>``."""
    wanted = set(terms)
    if not wanted:
        return text
    out: list[str] = []
    last = 0
    for match in _WORD.finditer(text):
        analyzed = analyze(match.group(0))
        if analyzed and analyzed[0] in wanted:
            out.append(text[last : match.start()])
            out.append(f"<em>{match.group(0)}</em>")
            last = match.end()
    out.append(text[last:])
    return "".join(out)
