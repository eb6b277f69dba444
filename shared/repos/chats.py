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

import random
import time
from collections.abc import Sequence
from typing import Any

from shared.ids import http_date, now_ms
from shared.ports.metadata import (
    ITEM_EXISTS,
    ITEM_NOT_EXISTS,
    Check,
    Condition,
    ConditionFailed,
    Delete,
    MetadataStore,
    Put,
    Update,
)
from shared.repos.keys import STORAGE_ATTRS, OrderBy, ordered, tenant_pk, time_sort_key, time_sorted_item
from shared.repos.names import NameGuard, NameTaken

Record = dict[str, Any]
_CHAT = "CHAT"
_SESSION = "SESSION"
_NAMES = NameGuard("CHATNAME", "chat_id")
# DynamoDB transactions hold at most 100 items; deletions go in batches well below that.
_BATCH = 25
_APPEND_ATTEMPTS = 16
_APPEND_BACKOFF_CAP_S = 0.1


__all__ = ["STORAGE_ATTRS", "ChatRepository", "DuplicateChatName", "Record", "SessionNotFound", "SessionRepository"]


class DuplicateChatName(NameTaken):
    """Another chat of the tenant already has this name (compared case-insensitively)."""


class SessionNotFound(LookupError):
    """The session is gone (deleted with its chat, or by id) while it was being written."""


def _chat_sk(chat_id: str) -> str:
    return f"{_CHAT}#{chat_id}"


def chat_pk(chat_id: str) -> str:
    """Partition holding a chat's sessions."""
    return f"{_CHAT}#{chat_id}"


def _session_sk(session_id: str) -> str:
    return f"{_SESSION}#{session_id}"


class ChatRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, tenant_id: str, chat_id: str) -> Record | None:
        return self._store.get(tenant_pk(tenant_id), _chat_sk(chat_id))

    def get_by_name(self, tenant_id: str, name: str) -> Record | None:
        owner = _NAMES.owner(self._store, tenant_pk(tenant_id), name)
        return None if owner is None else self.get(tenant_id, owner)

    def create(self, record: Record) -> None:
        """Insert a chat and its name guard atomically; DuplicateChatName when the name is taken."""
        pk = tenant_pk(record["tenant_id"])
        item = time_sorted_item(record, pk=pk, sk=_chat_sk(record["id"]), kind=_CHAT)
        claim = _NAMES.claim(pk, record["name"], record["id"])
        _NAMES.write(self._store, [claim, Put(item, ITEM_NOT_EXISTS)], record["name"], DuplicateChatName)

    def update(self, current: Record, changes: Record) -> Record:
        """Apply ``changes`` (must include ``update_time``); a rename moves the name guard atomically.

        A rename only applies to the name it was decided on: if the chat was renamed meanwhile, the
        write fails (ConditionFailed) rather than leaving a guard behind for a name nobody holds.
        """
        pk = tenant_pk(current["tenant_id"])
        chat_id = current["id"]
        fields = {**changes, "ut_sk": time_sort_key(_CHAT, changes["update_time"], chat_id)}
        renaming = _NAMES.renaming(pk, current, fields)
        condition = Condition("equals", "name", current["name"]) if renaming else ITEM_EXISTS
        ops = [*renaming, Update(pk, _chat_sk(chat_id), set=fields, condition=condition)]
        _NAMES.write(self._store, ops, str(fields.get("name")), DuplicateChatName)
        updated = self.get(current["tenant_id"], chat_id)
        assert updated is not None
        return updated

    def delete(self, record: Record) -> None:
        """Remove a chat and its name guard together (sessions are the caller's next step).

        The delete is conditioned on the name it read, so a concurrent rename can't strand a guard.
        """
        current: Record | None = record
        while current is not None:
            pk = tenant_pk(current["tenant_id"])
            try:
                self._store.transact(
                    [
                        Delete(pk, _chat_sk(current["id"]), Condition("equals", "name", current["name"])),
                        _NAMES.release(pk, current["name"]),
                    ]
                )
                return
            except ConditionFailed:
                current = self.get(current["tenant_id"], current["id"])

    def page(self, tenant_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        """One page of the tenant's chats in creation or update order."""
        return ordered(self._store, tenant_pk(tenant_id), _CHAT, orderby=orderby, desc=desc, offset=offset, limit=limit)

    def all_of_tenant(self, tenant_id: str) -> list[Record]:
        return self._store.query(tenant_pk(tenant_id), sk_prefix=f"{_CHAT}#")


class SessionRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, chat_id: str, session_id: str) -> Record | None:
        """The session ``session_id`` of chat ``chat_id``, or None."""
        return self._store.get(chat_pk(chat_id), _session_sk(session_id))

    def create(self, record: Record) -> None:
        """Insert a session (``version`` 0) while its chat exists; ConditionFailed when the chat is gone."""
        item = time_sorted_item(
            {**record, "version": 0}, pk=chat_pk(record["chat_id"]), sk=_session_sk(record["id"]), kind=_SESSION
        )
        self._store.transact(
            [
                Check(tenant_pk(record["tenant_id"]), _chat_sk(record["chat_id"]), ITEM_EXISTS),
                Put(item, ITEM_NOT_EXISTS),
            ]
        )

    def update(self, current: Record, changes: Record) -> Record:
        """Set plain attributes (name, user_id); ``changes`` must include ``update_time``."""
        fields = {**changes, "ut_sk": time_sort_key(_SESSION, changes["update_time"], current["id"])}
        return self._store.update(
            chat_pk(current["chat_id"]), _session_sk(current["id"]), set=fields, condition=ITEM_EXISTS
        )

    def append_messages(
        self, session: Record, messages: list[dict[str, Any]], reference: dict[str, Any] | None = None
    ) -> Record:
        """Append ``messages`` (and, for an assistant answer, its ``reference``) and return the session.

        A read-modify-write guarded by ``version``: when another writer got in first, the session is read
        again and the append retried, so no message is lost. SessionNotFound when the session is gone.
        """
        current = session
        for attempt in range(_APPEND_ATTEMPTS):
            now = now_ms()
            fields: Record = {
                "messages": [*current.get("messages", []), *messages],
                "version": int(current.get("version", 0)) + 1,
                "update_time": now,
                "update_date": http_date(now),
                "ut_sk": time_sort_key(_SESSION, now, current["id"]),
            }
            if reference is not None:
                fields["reference"] = [*current.get("reference", []), reference]
            try:
                return self._store.update(
                    chat_pk(current["chat_id"]),
                    _session_sk(current["id"]),
                    set=fields,
                    condition=Condition("equals", "version", current.get("version", 0)),
                )
            except ConditionFailed:
                fresh = self.get(current["chat_id"], current["id"])
                if fresh is None:
                    raise SessionNotFound(current["id"]) from None
                current = fresh
                # Exponential backoff with full jitter spreads out writers that keep colliding.
                time.sleep(random.uniform(0, min(_APPEND_BACKOFF_CAP_S, 0.002 * 2**attempt)))
        raise ConditionFailed(f"session {current['id']} kept changing; append abandoned")

    def page(self, chat_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        """One page of the chat's sessions in creation or update order."""
        return ordered(self._store, chat_pk(chat_id), _SESSION, orderby=orderby, desc=desc, offset=offset, limit=limit)

    def all_of_chat(self, chat_id: str, *, orderby: OrderBy = "create_time", desc: bool = True) -> list[Record]:
        return ordered(self._store, chat_pk(chat_id), _SESSION, orderby=orderby, desc=desc)

    def delete(self, records: Sequence[Record]) -> None:
        """Remove sessions (already-gone ones are no error)."""
        for start in range(0, len(records), _BATCH):
            batch = records[start : start + _BATCH]
            self._store.transact([Delete(chat_pk(r["chat_id"]), _session_sk(r["id"])) for r in batch])

    def delete_all_of_chat(self, chat_id: str) -> int:
        """Remove every session of a chat; returns how many there were."""
        records = self._store.query(chat_pk(chat_id), sk_prefix=f"{_SESSION}#")
        self.delete(records)
        return len(records)
