"""What the deletes by ids share: each id looked up once, in the order given, the unknown ones reported."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Record = dict[str, Any]


def found_by_ids(
    ids: Sequence[str], get: Callable[[str], Record | None], missing: Callable[[str], str]
) -> tuple[list[Record], list[str]]:
    """The records ``get`` finds for ``ids`` (each id once, in order), and ``missing(id)`` for each it doesn't."""
    found: list[Record] = []
    errors: list[str] = []
    for record_id in dict.fromkeys(ids):
        record = get(record_id)
        if record is None:
            errors.append(missing(record_id))
        else:
            found.append(record)
    return found, errors
