"""What the deletes by ids share: each id looked up once, in the order given; unknown and repeated ids reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shared.schemas.common import unique_with_duplicates

Record = dict[str, Any]


class DeleteByIds(Protocol):
    """A delete request naming ``ids``; without them, ``targets_everything`` says whether it means all."""

    @property
    def ids(self) -> list[str] | None: ...

    def targets_everything(self) -> bool: ...


def delete_targets(
    request: DeleteByIds,
    kind: str,
    everything: Callable[[], list[Record]],
    get: Callable[[str], Record | None],
    missing: Callable[[str], str],
) -> tuple[list[Record], list[str], list[str]]:
    """What a delete by ids acts on: the records found for the ids (see :func:`found_by_ids`, with its
    errors and duplicates); without ids, ``everything()`` or nothing, as the request's rule says."""
    if not request.ids:
        return (everything() if request.targets_everything() else []), [], []
    return found_by_ids(request.ids, kind, get, missing)


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
