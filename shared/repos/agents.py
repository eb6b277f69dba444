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

from typing import Any

from shared.ports.metadata import (
    ITEM_NOT_EXISTS,
    Delete,
    Put,
)
from shared.repos.keys import STORAGE_ATTRS, OrderBy, ordered, time_sort_key
from shared.repos.named import TenantNamedRecords
from shared.repos.names import NameGuard, NameTaken
from shared.repos.sessions import ParentSessions
from shared.repos.writes import transact_in_batches

Record = dict[str, Any]
#: DSL versions kept per agent (RAGFlow keeps the last 20).
KEPT_VERSIONS = 20
_AGENT = "AGENT"
_VERSION = "VERSION"
_TITLES = NameGuard("AGENTTITLE", "agent_id", name_attr="title")

__all__ = [
    "KEPT_VERSIONS",
    "STORAGE_ATTRS",
    "AgentRepository",
    "AgentSessionNotFound",
    "AgentSessionRepository",
    "DuplicateAgentTitle",
    "OrderBy",
    "Record",
    "agent_pk",
]


class DuplicateAgentTitle(NameTaken):
    """Another agent of the tenant already has this title (compared case-insensitively)."""


class AgentSessionNotFound(LookupError):
    """The session is gone (deleted with its agent, or by id) while a turn was being saved."""


def agent_pk(agent_id: str) -> str:
    """Partition holding an agent's versions and sessions."""
    return f"{_AGENT}#{agent_id}"


class AgentRepository(TenantNamedRecords):
    kind = _AGENT
    names = _TITLES
    taken = DuplicateAgentTitle
    tenant_attr = "user_id"

    def get_by_title(self, tenant_id: str, title: str) -> Record | None:
        return self.get_by_name(tenant_id, title)

    def create(self, record: Record, version: Record) -> None:
        """Insert an agent, its title guard and its first DSL version at once; DuplicateAgentTitle when the
        title is taken."""
        self._insert(record, Put(self._version_item(record["id"], version), ITEM_NOT_EXISTS))

    def update(self, current: Record, changes: Record, version: Record | None = None) -> Record:
        """Apply ``changes`` (with ``update_time``) and, when the DSL changed, save it as a version — together.

        A retitle moves the title guard in the same transaction and only applies to the title it was decided
        on (ConditionFailed if the agent was retitled meanwhile). Versions beyond the latest
        :data:`KEPT_VERSIONS` are then removed.
        """
        if version is None:
            self._apply(current, changes)
        else:
            self._apply(current, changes, Put(self._version_item(current["id"], version), ITEM_NOT_EXISTS))
            self._prune_versions(current["id"])
        return self._reread(current)

    def delete(self, record: Record) -> None:
        """Remove an agent with its title guard (conditioned on the title read, so a concurrent retitle can't
        strand a guard), then its versions and sessions."""
        self._remove(record)
        leftovers = self._store.query(agent_pk(record["id"]))
        transact_in_batches(self._store, [Delete(item["pk"], item["sk"]) for item in leftovers])

    def page(self, tenant_id: str, *, orderby: OrderBy, desc: bool, offset: int, limit: int) -> list[Record]:
        """One page of the tenant's agents in creation or update order."""
        return self._ordered(tenant_id, orderby=orderby, desc=desc, offset=offset, limit=limit)

    def versions(self, agent_id: str) -> list[Record]:
        """The agent's saved DSL versions, newest first."""
        return ordered(self._store, agent_pk(agent_id), _VERSION)

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
        transact_in_batches(self._store, [Delete(v["pk"], v["sk"]) for v in stale])


class AgentSessionRepository(ParentSessions):
    parent_kind = _AGENT
    parent_attr = "agent_id"
    missing = AgentSessionNotFound

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
        return self._append(
            session,
            lambda current: {
                **extra,
                "message": [*current.get("message", []), *messages],
                "reference": [*current.get("reference", []), reference],
                "dsl": dsl,
            },
            "the turn was not saved",
        )

    def all_of_agent(self, agent_id: str, *, orderby: OrderBy = "update_time", desc: bool = True) -> list[Record]:
        return self._all(agent_id, orderby=orderby, desc=desc)
