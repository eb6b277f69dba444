"""What the deletes by ids share: each id looked up once, in the order given; unknown and repeated ids reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.schemas.common import unique_with_duplicates

Record = dict[str, Any]


def found_by_ids(
    ids: list[str], kind: str, get: Callable[[str], Record | None], missing: Callable[[str], str]
) -> tuple[list[Record], list[str], list[str]]:
    """The records ``get`` finds for ``ids`` (each id once, in order), ``missing(id)`` for each it doesn't, and
    RAGFlow's ``Duplicate <kind> ids: <id>`` for each id given more than once."""
    found: list[Record] = []
    errors: list[str] = []
    for record_id in dict.fromkeys(ids):
        record = get(record_id)
        if record is None:
            errors.append(missing(record_id))
        else:
            found.append(record)
    return found, errors, unique_with_duplicates(ids, kind)[1]
