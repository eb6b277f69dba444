"""Agents (RAGFlow's canvases) under their tenant's partition; their DSL versions and sessions under the
agent's partition.

Layout (single table):
* agent       pk=``TENANT#<tenant>`` sk=``AGENT#<id>`` (+ by_create/by_update sort keys ``AGENT#<ms>#<id>``);
* title guard pk=``TENANT#<tenant>`` sk=``AGENTTITLE#<lower title>`` → ``agent_id`` (titles are unique per tenant);
* version     pk=``AGENT#<agent>`` sk=``VERSION#<id>`` (+ by_create ``VERSION#<ms>#<id>``): a DSL as it was saved,
  the latest :data:`KEPT_VERSIONS` kept;
* session     pk=``AGENT#<agent>`` sk=``SESSION#<id>`` (+ by_create/by_update ``SESSION#<ms>#<id>``): the messages,
  one reference per answer, and the session's own copy of the DSL carrying the conversation's state.

A session's ``version`` is bumped by every turn saved, so two turns saved at once never lose a message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, Literal

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
    WriteOp,
)
from shared.repos.keys import tenant_pk, time_sort_key

Record = dict[str, Any]
OrderBy = Literal["create_time", "update_time"]
#: DSL versions kept per agent (RAGFlow keeps the last 20).
KEPT_VERSIONS = 20
_AGENT = "AGENT"
_SESSION = "SESSION"
_VERSION = "VERSION"
#: Attributes a repository owns; never copied into responses.
STORAGE_ATTRS = frozenset({"pk", "sk", "ct_sk", "ut_sk", "gsi1pk", "gsi1sk"})
_BATCH = 25
_SAVE_ATTEMPTS = 16
_SAVE_BACKOFF_CAP_S = 0.1


class DuplicateAgentTitle(Exception):
    """Another agent of the tenant already has this title (compared case-insensitively)."""


class AgentSessionNotFound(LookupError):
    """The session is gone (deleted with its agent, or by id) while a turn was being saved."""


def _agent_sk(agent_id: str) -> str:
    return f"{_AGENT}#{agent_id}"


def _title_sk(title: str) -> str:
    return f"AGENTTITLE#{title.lower()}"


def agent_pk(agent_id: str) -> str:
    """Partition holding an agent's versions and sessions."""
    return f"{_AGENT}#{agent_id}"


def _index(orderby: OrderBy) -> Literal["by_create", "by_update"]:
    return "by_create" if orderby == "create_time" else "by_update"


class AgentRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, tenant_id: str, agent_id: str) -> Record | None:
        return self._store.get(tenant_pk(tenant_id), _agent_sk(agent_id))

    def get_by_title(self, tenant_id: str, title: str) -> Record | None:
        guard = self._store.get(tenant_pk(tenant_id), _title_sk(title))
        return None if guard is None else self.get(tenant_id, guard["agent_id"])

    def create(self, record: Record, version: Record) -> None:
        """Insert an agent, its title guard and its first DSL version at once; DuplicateAgentTitle when the
        title is taken."""
        pk = tenant_pk(record["user_id"])
        item = {
            **record,
            "pk": pk,
            "sk": _agent_sk(record["id"]),
            "ct_sk": time_sort_key(_AGENT, record["create_time"], record["id"]),
            "ut_sk": time_sort_key(_AGENT, record["update_time"], record["id"]),
        }
        try:
            self._store.transact(
                [
                    Put({"pk": pk, "sk": _title_sk(record["title"]), "agent_id": record["id"]}, ITEM_NOT_EXISTS),
                    Put(item, ITEM_NOT_EXISTS),
                    Put(self._version_item(record["id"], version), ITEM_NOT_EXISTS),
                ]
            )
        except ConditionFailed as exc:
            if exc.index == 0:
                raise DuplicateAgentTitle(record["title"]) from exc
            raise

    def update(self, current: Record, changes: Record, version: Record | None = None) -> Record:
        """Apply ``changes`` (with ``update_time``) and, when the DSL changed, save it as a version — together.

        A retitle moves the title guard in the same transaction and only applies to the title it was decided
        on (ConditionFailed if the agent was retitled meanwhile). Versions beyond the latest
        :data:`KEPT_VERSIONS` are then removed.
        """
        pk = tenant_pk(current["user_id"])
        agent_id = current["id"]
        fields = {**changes, "ut_sk": time_sort_key(_AGENT, changes["update_time"], agent_id)}
        ops: list[WriteOp] = []
        condition: Condition = ITEM_EXISTS
        new_title = fields.get("title")
        retitled = isinstance(new_title, str) and new_title.lower() != current["title"].lower()
        if isinstance(new_title, str) and retitled:
            ops.append(Put({"pk": pk, "sk": _title_sk(new_title), "agent_id": agent_id}, ITEM_NOT_EXISTS))
            ops.append(Delete(pk, _title_sk(current["title"])))
            condition = Condition("equals", "title", current["title"])
        ops.append(Update(pk, _agent_sk(agent_id), set=fields, condition=condition))
        if version is not None:
            ops.append(Put(self._version_item(agent_id, version), ITEM_NOT_EXISTS))
        try:
            self._store.transact(ops)
        except ConditionFailed as exc:
            if retitled and exc.index == 0:
                raise DuplicateAgentTitle(str(new_title)) from exc
            raise
        if version is not None:
            self._prune_versions(agent_id)
        updated = self.get(current["user_id"], agent_id)
        assert updated is not None
        return updated

    def delete(self, record: Record) -> None:
        """Remove an agent with its title guard (conditioned on the title read, so a concurrent retitle can't
        strand a guard), then its versions and sessions."""
        current: Record | None = record
        while current is not None:
            pk = tenant_pk(current["user_id"])
            try:
                self._store.transact(
                    [
                        Delete(pk, _agent_sk(current["id"]), Condition("equals", "title", current["title"])),
                        Delete(pk, _title_sk(current["title"])),
                    ]
                )
                break
            except ConditionFailed:
                current = self.get(current["user_id"], current["id"])
        leftovers = self._store.query(agent_pk(record["id"]))
        for start in range(0, len(leftovers), _BATCH):
            self._store.transact([Delete(item["pk"], item["sk"]) for item in leftovers[start : start + _BATCH]])

    def page(self, tenant_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        """One page of the tenant's agents in creation or update order."""
        return self._store.query(
            tenant_pk(tenant_id),
            index=_index(orderby),
            sk_prefix=f"{_AGENT}#",
            ascending=not desc,
            limit=limit,
            offset=offset,
        )

    def versions(self, agent_id: str) -> list[Record]:
        """The agent's saved DSL versions, newest first."""
        return self._store.query(agent_pk(agent_id), index="by_create", sk_prefix=f"{_VERSION}#", ascending=False)

    def _version_item(self, agent_id: str, version: Record) -> Record:
        return {
            **version,
            "user_canvas_id": agent_id,
            "pk": agent_pk(agent_id),
            "sk": f"{_VERSION}#{version['id']}",
            "ct_sk": time_sort_key(_VERSION, version["create_time"], version["id"]),
        }

    def _prune_versions(self, agent_id: str) -> None:
        stale = self.versions(agent_id)[KEPT_VERSIONS:]
        for start in range(0, len(stale), _BATCH):
            self._store.transact([Delete(v["pk"], v["sk"]) for v in stale[start : start + _BATCH]])


class AgentSessionRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self, agent_id: str, session_id: str) -> Record | None:
        return self._store.get(agent_pk(agent_id), f"{_SESSION}#{session_id}")

    def create(self, record: Record) -> None:
        """Insert a session (``version`` 0) while its agent exists; ConditionFailed when the agent is gone."""
        item = {
            **record,
            "version": 0,
            "pk": agent_pk(record["agent_id"]),
            "sk": f"{_SESSION}#{record['id']}",
            "ct_sk": time_sort_key(_SESSION, record["create_time"], record["id"]),
            "ut_sk": time_sort_key(_SESSION, record["update_time"], record["id"]),
        }
        self._store.transact(
            [
                Check(tenant_pk(record["tenant_id"]), _agent_sk(record["agent_id"]), ITEM_EXISTS),
                Put(item, ITEM_NOT_EXISTS),
            ]
        )

    def save_turn(
        self,
        session: Record,
        messages: list[dict[str, Any]],
        reference: dict[str, Any],
        dsl: dict[str, Any],
        **extra: Any,
    ) -> Record:
        """Append a turn's ``messages`` and the answer's ``reference``, and keep the DSL the turn left.

        A read-modify-write guarded by ``version``: when another turn was saved first, the session is read
        again and the messages appended after it (the DSL of the later save wins). AgentSessionNotFound when
        the session is gone.
        """
        current = session
        for attempt in range(_SAVE_ATTEMPTS):
            now = now_ms()
            fields: Record = {
                **extra,
                "message": [*current.get("message", []), *messages],
                "reference": [*current.get("reference", []), reference],
                "dsl": dsl,
                "version": int(current.get("version", 0)) + 1,
                "update_time": now,
                "update_date": http_date(now),
                "ut_sk": time_sort_key(_SESSION, now, current["id"]),
            }
            try:
                return self._store.update(
                    agent_pk(current["agent_id"]),
                    f"{_SESSION}#{current['id']}",
                    set=fields,
                    condition=Condition("equals", "version", current.get("version", 0)),
                )
            except ConditionFailed:
                fresh = self.get(current["agent_id"], current["id"])
                if fresh is None:
                    raise AgentSessionNotFound(current["id"]) from None
                current = fresh
                # Exponential backoff with full jitter spreads out writers that keep colliding.
                time.sleep(random.uniform(0, min(_SAVE_BACKOFF_CAP_S, 0.002 * 2**attempt)))
        raise ConditionFailed(f"session {current['id']} kept changing; the turn was not saved")

    def page(self, agent_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        """One page of the agent's sessions in creation or update order."""
        return self._store.query(
            agent_pk(agent_id),
            index=_index(orderby),
            sk_prefix=f"{_SESSION}#",
            ascending=not desc,
            limit=limit,
            offset=offset,
        )

    def all_of_agent(self, agent_id: str, *, orderby: OrderBy = "update_time", desc: bool = True) -> list[Record]:
        return self._store.query(
            agent_pk(agent_id), index=_index(orderby), sk_prefix=f"{_SESSION}#", ascending=not desc
        )

    def delete(self, records: Sequence[Record]) -> None:
        """Remove sessions (already-gone ones are no error)."""
        for start in range(0, len(records), _BATCH):
            batch = records[start : start + _BATCH]
            self._store.transact([Delete(agent_pk(r["agent_id"]), f"{_SESSION}#{r['id']}") for r in batch])
