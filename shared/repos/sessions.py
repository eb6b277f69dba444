"""Conversation sessions under their parent's partition: a chat's sessions and an agent's are kept alike.

Layout: pk=``<PARENT>#<parent id>`` sk=``SESSION#<id>`` (+ by_create/by_update sort keys ``SESSION#<ms>#<id>``).
The parent itself is ``<PARENT>#<parent id>`` in its tenant's partition. A session's ``version`` is bumped by
every append, so two appends at once never lose a message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from shared.ports.metadata import ITEM_EXISTS, ITEM_NOT_EXISTS, Check, Delete, MetadataStore, Put
from shared.repos.keys import OrderBy, ordered, tenant_pk, time_sorted_item
from shared.repos.writes import transact_in_batches, update_versioned

Record = dict[str, Any]
_SESSION = "SESSION"


def session_sk(session_id: str) -> str:
    return f"{_SESSION}#{session_id}"


class ParentSessions:
    """The sessions of one kind of parent; subclasses name it and add their own writes."""

    #: The parent's kind, the prefix of its sort key in its tenant's partition and of its own partition.
    parent_kind: ClassVar[str]
    #: The session attribute holding its parent's id.
    parent_attr: ClassVar[str]
    #: Raised with the session id when an append finds the session gone.
    missing: ClassVar[type[LookupError]]

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def parent_pk(self, parent_id: str) -> str:
        """Partition holding the parent's sessions (the parent's own key, in its tenant's partition, alike)."""
        return f"{self.parent_kind}#{parent_id}"

    def get(self, parent_id: str, session_id: str) -> Record | None:
        """The session ``session_id`` of the parent ``parent_id``, or None."""
        return self._store.get(self.parent_pk(parent_id), session_sk(session_id))

    def create(self, record: Record) -> None:
        """Insert a session (``version`` 0) while its parent exists; ConditionFailed when the parent is gone."""
        parent_id = record[self.parent_attr]
        item = time_sorted_item(
            {**record, "version": 0}, pk=self.parent_pk(parent_id), sk=session_sk(record["id"]), kind=_SESSION
        )
        parent = Check(tenant_pk(record["tenant_id"]), self.parent_pk(parent_id), ITEM_EXISTS)
        self._store.transact([parent, Put(item, ITEM_NOT_EXISTS)])

    def _append(self, session: Record, changes: Callable[[Record], Record], gave_up: str) -> Record:
        """Write ``changes(current)`` under the version guard (see ``update_versioned``) and return the session."""
        parent_id, session_id = session[self.parent_attr], session["id"]
        return update_versioned(
            self._store,
            session,
            pk=self.parent_pk(parent_id),
            sk=session_sk(session_id),
            kind=_SESSION,
            changes=changes,
            reread=lambda: self.get(parent_id, session_id),
            missing=self.missing,
            gave_up=f"session {session_id} kept changing; {gave_up}",
        )

    def page(self, parent_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        """One page of the parent's sessions in creation or update order."""
        pk = self.parent_pk(parent_id)
        return ordered(self._store, pk, _SESSION, orderby=orderby, desc=desc, offset=offset, limit=limit)

    def _all(self, parent_id: str, *, orderby: OrderBy, desc: bool) -> list[Record]:
        return ordered(self._store, self.parent_pk(parent_id), _SESSION, orderby=orderby, desc=desc)

    def delete(self, records: Sequence[Record]) -> None:
        """Remove sessions (already-gone ones are no error)."""
        ops = [Delete(self.parent_pk(r[self.parent_attr]), session_sk(r["id"])) for r in records]
        transact_in_batches(self._store, ops)
