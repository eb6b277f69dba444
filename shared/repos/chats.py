"""Chat assistants under their tenant's partition, and their sessions under the chat's partition.

Layout (single table):
* chat       pk=``TENANT#<tenant>`` sk=``CHAT#<id>`` (+ by_create/by_update sort keys ``CHAT#<ms>#<id>``);
* name guard pk=``TENANT#<tenant>`` sk=``CHATNAME#<lower name>`` → ``chat_id`` (case-insensitive uniqueness);
* session    pk=``CHAT#<chat>`` sk=``SESSION#<id>`` (+ by_create/by_update sort keys ``SESSION#<ms>#<id>``).

A chat is stored in the shape the API shows it (``llm``, ``prompt``, ``dataset_ids`` …). A session holds
``messages`` (the opener first), ``reference`` (one entry per assistant answer after the opener, in order)
and a ``version`` that every append bumps, so concurrent appends never lose a message.
"""

from __future__ import annotations

from typing import Any

from shared.ports.metadata import (
    ITEM_EXISTS,
)
from shared.repos.keys import STORAGE_ATTRS, OrderBy, time_sort_key
from shared.repos.named import TenantNamedRecords
from shared.repos.names import NameGuard, NameTaken
from shared.repos.sessions import ParentSessions, session_sk

Record = dict[str, Any]
_CHAT = "CHAT"
_SESSION = "SESSION"
_NAMES = NameGuard("CHATNAME", "chat_id")


__all__ = ["STORAGE_ATTRS", "ChatRepository", "DuplicateChatName", "Record", "SessionNotFound", "SessionRepository"]


class DuplicateChatName(NameTaken):
    """Another chat of the tenant already has this name (compared case-insensitively)."""


class SessionNotFound(LookupError):
    """The session is gone (deleted with its chat, or by id) while it was being written."""


def chat_pk(chat_id: str) -> str:
    """Partition holding a chat's sessions."""
    return f"{_CHAT}#{chat_id}"


class ChatRepository(TenantNamedRecords):
    kind = _CHAT
    names = _NAMES
    taken = DuplicateChatName

    def create(self, record: Record) -> None:
        """Insert a chat and its name guard atomically; DuplicateChatName when the name is taken."""
        self._insert(record)

    def update(self, current: Record, changes: Record) -> Record:
        """Apply ``changes`` (must include ``update_time``); a rename moves the name guard atomically.

        A rename only applies to the name it was decided on: if the chat was renamed meanwhile, the
        write fails (ConditionFailed) rather than leaving a guard behind for a name nobody holds.
        """
        self._apply(current, changes)
        return self._reread(current)

    def delete(self, record: Record) -> None:
        """Remove a chat and its name guard together (sessions are the caller's next step).

        The delete is conditioned on the name it read, so a concurrent rename can't strand a guard.
        """
        self._remove(record)

    def page(self, tenant_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        """One page of the tenant's chats in creation or update order."""
        return self._ordered(tenant_id, orderby=orderby, desc=desc, offset=offset, limit=limit)


class SessionRepository(ParentSessions):
    parent_kind = _CHAT
    parent_attr = "chat_id"
    missing = SessionNotFound

    def update(self, current: Record, changes: Record) -> Record:
        """Set plain attributes (name, user_id); ``changes`` must include ``update_time``."""
        fields = {**changes, "ut_sk": time_sort_key(_SESSION, changes["update_time"], current["id"])}
        return self._store.update(
            chat_pk(current["chat_id"]), session_sk(current["id"]), set=fields, condition=ITEM_EXISTS
        )

    def append_messages(
        self, session: Record, messages: list[dict[str, Any]], reference: dict[str, Any] | None = None
    ) -> Record:
        """Append ``messages`` (and, for an assistant answer, its ``reference``) and return the session.

        A read-modify-write guarded by ``version``: when another writer got in first, the session is read
        again and the append retried, so no message is lost. SessionNotFound when the session is gone.
        """

        def appended(current: Record) -> Record:
            fields: Record = {"messages": [*current.get("messages", []), *messages]}
            if reference is not None:
                fields["reference"] = [*current.get("reference", []), reference]
            return fields

        return self._append(session, appended, "append abandoned")

    def all_of_chat(self, chat_id: str, *, orderby: OrderBy = "create_time", desc: bool = True) -> list[Record]:
        return self._all(chat_id, orderby=orderby, desc=desc)

    def delete_all_of_chat(self, chat_id: str) -> int:
        """Remove every session of a chat; returns how many there were."""
        records = self._store.query(chat_pk(chat_id), sk_prefix=f"{_SESSION}#")
        self.delete(records)
        return len(records)
