"""Agents (RAGFlow's canvases) and their sessions: create, list, update and delete, with RAGFlow's rules and
messages. A DSL is checked by the canvas executor before anything is written, so an agent that could not
run (an unsupported component, a broken graph) is refused with 102 naming the problem."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.agent.components.begin import Begin, BeginParams, coerce_input
from shared.agent.dsl import BEGIN_ID, session_dsl, validate_dsl
from shared.agent.errors import DslError, InputError
from shared.errors import DataError, OperatingError
from shared.ids import http_date, new_id, now_ms, record_times
from shared.ports.metadata import ConditionFailed
from shared.repos.agents import STORAGE_ATTRS, AgentRepository, AgentSessionRepository, DuplicateAgentTitle, Record
from shared.repos.keys import without
from shared.schemas.agents import (
    AgentSessionQuery,
    CreateAgentRequest,
    CreateAgentSessionRequest,
    DeleteAgentSessionsRequest,
    ListAgentSessionsQuery,
    ListAgentsQuery,
    UpdateAgentRequest,
)
from shared.services.deletes import delete_targets

AGENT_NOT_FOUND = "The agent doesn't exist."
NOT_OWNER = "Only owner of canvas authorized for this operation."
TITLE_EMPTY = "`title` cannot be empty."
CANVAS_CATEGORY = "agent_canvas"
_HIDDEN_SESSION_ATTRS = STORAGE_ATTRS | {"tenant_id", "version", "reference", "message"}


def agent_view(record: Record) -> dict[str, Any]:
    """A stored agent as the API lists it."""
    return without(record, STORAGE_ATTRS)


def dsl_error(exc: DslError) -> DataError:
    return DataError(exc.message)


def begin_params(dsl: Mapping[str, Any]) -> BeginParams:
    """The Begin component's parameters of a (checked) DSL."""
    params = Begin.parse(BEGIN_ID, dsl["components"][BEGIN_ID]["obj"].get("params") or {})
    assert isinstance(params, BeginParams)
    return params


def _chunk_view(chunk: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": chunk.get("id"),
        "content": chunk.get("content"),
        "document_id": chunk.get("document_id"),
        "document_name": chunk.get("document_name"),
        "dataset_id": chunk.get("dataset_id"),
        "image_id": chunk.get("image_id"),
        "positions": chunk.get("positions"),
    }


def session_view(record: Record, *, with_dsl: bool = True) -> dict[str, Any]:
    """A stored session as listings show it: ``messages`` (each answer with the chunks it drew on)."""
    view = without(record, _HIDDEN_SESSION_ATTRS)
    if not with_dsl:
        view.pop("dsl", None)
    references = iter(record.get("reference") or [])
    messages = []
    for position, message in enumerate(record.get("message") or []):
        item = {key: value for key, value in message.items() if key != "prompt"}
        if position > 0 and message.get("role") != "user":
            reference = next(references, None)
            chunks = reference.get("chunks") if isinstance(reference, Mapping) else None
            values = chunks.values() if isinstance(chunks, Mapping) else chunks or []
            item["reference"] = [_chunk_view(c) for c in values if isinstance(c, Mapping)]
        messages.append(item)
    view["messages"] = messages
    return view


@dataclass(frozen=True)
class PartialResult:
    """A delete that did part of the work: RAGFlow answers code 0 with this message and data."""

    message: str
    data: dict[str, Any]


def _version(title: str, dsl: Mapping[str, Any], now: int) -> Record:
    return {
        "id": new_id(),
        "title": f"{title}_{time.strftime('%Y_%m_%d_%H_%M_%S')}",
        "dsl": dict(dsl),
        "create_time": now,
        "create_date": http_date(now),
    }


class AgentService:
    def __init__(self, agents: AgentRepository, sessions: AgentSessionRepository) -> None:
        self._agents = agents
        self._sessions = sessions

    # -- agents ------------------------------------------------------------------------------------
    def list_agents(self, tenant_id: str, query: ListAgentsQuery) -> list[dict[str, Any]]:
        """One page of the tenant's agents; with ``id``/``title`` the one matching both (else 102)."""
        offset = (query.page - 1) * query.page_size
        if query.id is None and query.title is None:
            if not query.page_size:
                return []
            items = self._agents.page(
                tenant_id, orderby=query.orderby, desc=query.desc, offset=offset, limit=query.page_size
            )
            return [agent_view(item) for item in items]
        match = (
            self._agents.get(tenant_id, query.id)
            if query.id is not None
            else self._agents.get_by_title(tenant_id, str(query.title))
        )
        if match is not None and query.title is not None and match["title"] != query.title:
            match = None
        if match is None:
            raise DataError(AGENT_NOT_FOUND)
        return [agent_view(item) for item in [match][offset : offset + query.page_size]]

    def create_agent(self, tenant_id: str, request: CreateAgentRequest) -> bool:
        """Create an agent from its title and DSL (checked first); its first DSL version is kept too."""
        if not request.title:
            raise DataError(TITLE_EMPTY)
        try:
            dsl = validate_dsl(request.dsl)
        except DslError as exc:
            raise dsl_error(exc) from None
        now = now_ms()
        record: Record = {
            "id": new_id(),
            "user_id": tenant_id,
            "title": request.title,
            "description": request.description,
            "avatar": request.avatar,
            "canvas_type": None,
            "canvas_category": CANVAS_CATEGORY,
            "permission": "me",
            "dsl": dsl,
            **record_times(now),
        }
        try:
            self._agents.create(record, _version(request.title, dsl, now))
        except DuplicateAgentTitle:
            raise DataError(f"Agent with title {request.title} already exists.") from None
        return True

    def update_agent(self, tenant_id: str, agent_id: str, request: UpdateAgentRequest) -> bool:
        """Change what is given; a new DSL is checked first and saved as a version with the change."""
        current = self._agents.get(tenant_id, agent_id)
        if current is None:
            raise OperatingError(NOT_OWNER)
        now = now_ms()
        changes: Record = {"update_time": now, "update_date": http_date(now)}
        if request.title is not None:
            if not request.title:
                raise DataError(TITLE_EMPTY)
            changes["title"] = request.title
        if request.description is not None:
            changes["description"] = request.description
        if request.avatar is not None:
            changes["avatar"] = request.avatar
        version = None
        if request.dsl is not None:
            try:
                changes["dsl"] = validate_dsl(request.dsl)
            except DslError as exc:
                raise dsl_error(exc) from None
            # A DSL without a title is versioned under the agent's title (RAGFlow needs the title in the
            # request and fails after writing the DSL when it is missing).
            version = _version(str(changes.get("title") or current["title"]), changes["dsl"], now)
        try:
            self._agents.update(current, changes, version)
        except DuplicateAgentTitle:
            raise DataError(f"Agent with title {request.title} already exists.") from None
        except ConditionFailed:  # deleted or retitled meanwhile
            raise OperatingError(NOT_OWNER) from None
        return True

    def delete_agent(self, tenant_id: str, agent_id: str) -> bool:
        """Delete an agent with its versions and sessions."""
        current = self._agents.get(tenant_id, agent_id)
        if current is None:
            raise OperatingError(NOT_OWNER)
        self._agents.delete(current)
        return True

    # -- sessions ----------------------------------------------------------------------------------
    def create_session(
        self, tenant_id: str, agent_id: str, request: CreateAgentSessionRequest, query: AgentSessionQuery
    ) -> dict[str, Any]:
        """A session on a copy of the agent's DSL, opened by the Begin prologue; values given for the Begin
        inputs are kept for the session's runs."""
        agent = self._agents.get(tenant_id, agent_id)
        if agent is None:
            raise DataError("You cannot access the agent.")
        try:
            begin = begin_params(agent["dsl"])
        except DslError as exc:
            raise dsl_error(exc) from None
        values = {}
        for key, value in request.begin_values().items():
            spec = begin.inputs.get(key)
            if spec is None:
                continue  # not an input of this agent: RAGFlow ignores it too
            raw = value.get("value") if isinstance(value, Mapping) and "value" in value else value
            try:
                values[key] = coerce_input(key, spec, raw)
            except InputError as exc:
                raise DataError(exc.message) from None
        now = now_ms()
        prologue = begin.prologue if begin.enablePrologue else ""
        record: Record = {
            "id": new_id(),
            "agent_id": agent_id,
            "tenant_id": tenant_id,
            "user_id": request.user_id or query.user_id or tenant_id,
            "message": [{"role": "assistant", "content": prologue}],
            "reference": [],
            "source": "agent",
            "dsl": session_dsl(agent["dsl"], agent_id, values),
            **record_times(now),
        }
        try:
            self._sessions.create(record)
        except ConditionFailed:  # the agent was deleted meanwhile
            raise DataError("You cannot access the agent.") from None
        return {key: record[key] for key in ("id", "agent_id", "user_id", "message", "source", "dsl")}

    def list_sessions(self, tenant_id: str, agent_id: str, query: ListAgentSessionsQuery) -> list[dict[str, Any]]:
        """One page of the agent's sessions, narrowed by ``id`` and ``user_id``."""
        if self._agents.get(tenant_id, agent_id) is None:
            raise DataError(f"You don't own the agent {agent_id}.")
        offset = (query.page - 1) * query.page_size
        if query.page_size == 0:
            return []
        if query.id is None and query.user_id is None:
            items = self._sessions.page(
                agent_id, orderby=query.orderby, desc=query.desc, offset=offset, limit=query.page_size
            )
        else:
            if query.id is not None:
                one = self._sessions.get(agent_id, query.id)
                candidates = [] if one is None else [one]
            else:
                candidates = self._sessions.all_of_agent(agent_id, orderby=query.orderby, desc=query.desc)
            matches = [s for s in candidates if query.user_id is None or s.get("user_id") == query.user_id]
            items = matches[offset : offset + query.page_size]
        return [session_view(item, with_dsl=query.dsl) for item in items]

    def delete_sessions(
        self, tenant_id: str, agent_id: str, request: DeleteAgentSessionsRequest
    ) -> PartialResult | None:
        """Delete the listed sessions (every one when ``ids`` is missing, null or empty, unless the body speaks
        RAGFlow v0.25+'s rule and ``delete_all`` is not true).

        Unknown ids and repeated ids are reported; when some were deleted the answer is a partial success,
        when none was the errors are the answer (102).
        """
        if self._agents.get(tenant_id, agent_id) is None:
            raise DataError(f"You don't own the agent {agent_id}")
        found, errors, duplicates = delete_targets(
            request,
            "session",
            lambda: self._sessions.all_of_agent(agent_id),
            lambda item: self._sessions.get(agent_id, item),
            lambda item: f"The agent doesn't own the session {item}",
        )
        self._sessions.delete(found)
        return _outcome(len(found), errors, duplicates)


def _outcome(deleted: int, errors: Sequence[str], duplicates: Sequence[str]) -> PartialResult | None:
    """RAGFlow's answer to a delete by ids: errors first, then duplicates."""
    for problems, separator in ((errors, "; "), (duplicates, ";")):
        if problems:
            if not deleted:
                raise DataError(separator.join(problems))
            return PartialResult(
                f"Partially deleted {deleted} sessions with {len(problems)} errors",
                {"success_count": deleted, "errors": list(problems)},
            )
    return None
