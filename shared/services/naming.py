"""RAGFlow's naming of a record whose name is taken: ``a.txt``, ``a(1).txt``, ``a(2).txt`` …"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

_COUNTER = re.compile(r"^(.*?)\((\d+)\)$")


def duplicate_name(name: str, taken: Callable[[str], bool]) -> str:
    """``name`` if it is free, else the first free ``stem(n)ext``; a name that already ends in ``(n)`` counts
    on from ``n`` (``a(1).txt`` → ``a(2).txt``), as RAGFlow's ``duplicate_name`` does. The extension is what
    follows the last dot, for dataset names as for file names."""
    while taken(name):
        stem, ext = os.path.splitext(name)
        match = _COUNTER.match(stem)
        base, counter = (match.group(1).rstrip(), int(match.group(2))) if match else (stem, 0)
        name = f"{base}({counter + 1 if counter else 1}){ext}"
    return name
