"""Agent runs: a turn of a conversation with an agent, in RAGFlow's event stream and OpenAI's shape.

Everything that can be refused (the agent, the session, the question, the Begin inputs, the DSL) is
checked before the first event; a new session is saved then, as RAGFlow does. The turn itself — the
question and what the agent said, even when a component failed midway or the client went away — is saved
to the session when the run ends, with the DSL carrying the conversation's state.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Generator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from shared.agent.canvas import Canvas, Event
from shared.agent.dsl import session_dsl
from shared.agent.errors import ComponentError, DslError, InputError
from shared.agent.runtime import ChatModels, RetrievalSettings, RetrievedChunks, Runtime
from shared.errors import DataError, FlowlessError
from shared.ids import new_id, now_ms, record_times
from shared.ports.chat_model import ChatModel, ChatModelConfigError
from shared.ports.metadata import ConditionFailed
from shared.rag.tokens import count_tokens
from shared.repos.agents import AgentRepository, AgentSessionNotFound, AgentSessionRepository, Record
from shared.repos.datasets import DatasetRepository
from shared.repos.tenants import Tenant, TenantRepository
from shared.schemas.agents import AgentCompletionRequest, AgentOpenAIRequest
from shared.schemas.retrieval import MAX_PAGE_SIZE, MAX_TOP_K, RetrievalRequest
from shared.services.agents import begin_params
from shared.services.completions import ChatModelFactory
from shared.services.retrieval import RetrievalService

logger = logging.getLogger(__name__)

#: Events of a run that RAGFlow's stream passes on to the client.
STREAMED_EVENTS = frozenset({"message", "message_end", "node_finished"})
NO_QUESTION = "`question` is required."
NO_VALID_MESSAGES = "No valid messages found (user or assistant)."


class TenantKnowledge:
    """The tenant's datasets for a canvas: retrieval goes through the RetrievalService, as /retrieval does."""

    def __init__(self, tenant_id: str, datasets: DatasetRepository, retrieval: RetrievalService) -> None:
        self._tenant_id = tenant_id
        self._datasets = datasets
        self._retrieval = retrieval

    def dataset_id(self, name_or_id: str) -> str | None:
        record = self._datasets.get(self._tenant_id, name_or_id) or self._datasets.get_by_name(
            self._tenant_id, name_or_id
        )
        return None if record is None else str(record["id"])

    def retrieve(self, question: str, settings: RetrievalSettings) -> RetrievedChunks:
        # The component's settings were checked with its DSL; clamped again to the retrieval request's bounds.
        request = RetrievalRequest(
            question=question,
            dataset_ids=list(settings.dataset_ids),
            page=1,
            page_size=min(max(settings.top_n, 1), MAX_PAGE_SIZE),
            similarity_threshold=min(max(settings.similarity_threshold, 0.0), 1.0),
            vector_similarity_weight=min(max(1 - settings.keywords_similarity_weight, 0.0), 1.0),
            top_k=min(max(settings.top_k, 1), MAX_TOP_K),
            rerank_id=settings.rerank_id,
        )
        try:
            found = self._retrieval.retrieve(self._tenant_id, request)
        except FlowlessError as exc:
            raise ComponentError(exc.message) from exc
        return RetrievedChunks(chunks=list(found["chunks"]), doc_aggs=list(found["doc_aggs"]))


@dataclass
class AgentTurn:
    """A prepared turn: the session, its canvas with the inputs checked, and how to answer."""

    agent_id: str
    session: Record
    canvas: Canvas
    question: str
    user_id: str | None
    return_trace: bool = False
    content: str = ""
    reference: dict[str, Any] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    saved: bool = False

    @property
    def session_id(self) -> str:
        return str(self.session["id"])


class AgentCompletionService:
    def __init__(
        self,
        *,
        agents: AgentRepository,
        sessions: AgentSessionRepository,
        datasets: DatasetRepository,
        tenants: TenantRepository,
        retrieval: RetrievalService,
        chat_model_for: ChatModelFactory,
    ) -> None:
        self._agents = agents
        self._sessions = sessions
        self._datasets = datasets
        self._tenants = tenants
        self._retrieval = retrieval
        self._chat_model_for = chat_model_for

    # == preparation ===============================================================================
    def _runtime(self, tenant: Tenant) -> Runtime:
        def chat_model(llm_id: str | None) -> ChatModel:
            model_id = llm_id or tenant.llm_id
            if not model_id:
                raise ChatModelConfigError(
                    "No chat model is configured for this agent or tenant; set `llm_id` on the component."
                )
            return self._chat_model_for(tenant, model_id)

        models: ChatModels = chat_model
        return Runtime(chat_model=models, knowledge=TenantKnowledge(tenant.id, self._datasets, self._retrieval))

    def _agent(self, tenant_id: str, agent_id: str) -> tuple[Tenant, Record]:
        tenant = self._tenants.get(tenant_id)
        agent = self._agents.get(tenant_id, agent_id)
        if tenant is None or agent is None:
            raise DataError(f"You don't own the agent {agent_id}")
        return tenant, agent

    def _turn(
        self,
        tenant: Tenant,
        agent: Record,
        *,
        session_id: str | None,
        question: str | None,
        inputs: Mapping[str, Any] | None,
        user_id: str | None,
        history: list[list[str]] | None = None,
    ) -> AgentTurn:
        agent_id = str(agent["id"])
        if session_id:
            session = self._sessions.get(agent_id, session_id)
            if session is None:
                raise DataError("Session not found!")
            dsl = session["dsl"]
        else:
            session = None
            dsl = session_dsl(agent["dsl"], agent_id)
            if history:
                dsl["history"] = history
        try:
            canvas = Canvas(dsl, self._runtime(tenant), agent_id)
            if not (question or "").strip() and begin_params(dsl).mode != "task":
                raise DataError(NO_QUESTION)
            canvas.prepare_inputs(inputs)
        except DslError as exc:
            raise DataError(exc.message) from None
        except InputError as exc:
            raise DataError(exc.message) from None
        if session is None:
            session = self._new_session(tenant.id, agent_id, user_id or "", dsl, canvas.prologue)
        return AgentTurn(agent_id, session, canvas, question or "", user_id)

    def _new_session(self, tenant_id: str, agent_id: str, user_id: str, dsl: dict[str, Any], prologue: str) -> Record:
        now = now_ms()
        record: Record = {
            "id": new_id(),
            "agent_id": agent_id,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "message": [{"role": "assistant", "content": prologue}] if prologue else [],
            "reference": [],
            "source": "agent",
            "dsl": dsl,
            **record_times(now),
        }
        try:
            self._sessions.create(record)
        except ConditionFailed:  # the agent was deleted meanwhile
            raise DataError(f"You don't own the agent {agent_id}") from None
        return {**record, "version": 0}

    def prepare(self, tenant_id: str, agent_id: str, request: AgentCompletionRequest) -> AgentTurn:
        """Check a RAGFlow-style request and open (or start) the session."""
        tenant, agent = self._agent(tenant_id, agent_id)
        turn = self._turn(
            tenant,
            agent,
            session_id=request.session_id,
            question=request.question,
            inputs=request.inputs,
            user_id=request.user_id,
        )
        turn.return_trace = request.return_trace
        return turn

    def prepare_openai(self, tenant_id: str, agent_id: str, request: AgentOpenAIRequest) -> AgentTurn | None:
        """Check an OpenAI-style request; the question is the last user message. A request without a new
        session gets the earlier messages as the conversation's history. None when no message is usable."""
        tenant, agent = self._agent(tenant_id, agent_id)
        turns = [[m["role"], _text(m.get("content"))] for m in request.messages if _is_turn(m)]
        if not turns:
            return None
        users = [i for i, (role, _) in enumerate(turns) if role == "user"]
        question = turns[users[-1]][1] if users else ""
        earlier = turns[: users[-1]] if users else turns
        return self._turn(
            tenant,
            agent,
            session_id=request.session(),
            question=question,
            inputs=request.inputs,
            user_id=request.user_id,
            history=earlier,
        )

    # == running ===================================================================================
    def events(self, turn: AgentTurn) -> Generator[Event, None, None]:
        """Every event of the run, with ``session_id``; the turn is saved when the run ends or is abandoned."""
        run = turn.canvas.run(turn.question, turn.user_id)
        try:
            for event in run:
                event["session_id"] = turn.session_id
                data = event["data"]
                if event["event"] == "message":
                    turn.content += str(data.get("content") or "")
                if isinstance(data, Mapping) and data.get("reference"):
                    turn.reference.update(data["reference"])
                if event["event"] == "node_finished" and turn.return_trace:
                    turn.trace.append({"component_id": data.get("component_id"), "trace": [copy.deepcopy(data)]})
                    data = {**data, "trace": list(turn.trace)}
                    event = {**event, "data": data}
                yield event
        finally:
            run.close()  # first, so the canvas has written down what was said
            self._save(turn)

    def stream(self, turn: AgentTurn) -> Generator[Event, None, None]:
        """The events RAGFlow streams: the messages, their ends and the finished components."""
        with closing(self.events(turn)) as events:
            for event in events:
                if event["event"] in STREAMED_EVENTS:
                    yield event

    def answer(self, turn: AgentTurn) -> dict[str, Any]:
        """The whole run at once (``stream: false``): the last event, with the content, reference and trace."""
        final: Event = {}
        for event in self.events(turn):
            final = event
        final = copy.deepcopy(final)
        data = final.setdefault("data", {})
        data["content"] = turn.content
        data["reference"] = turn.reference
        if turn.return_trace:
            data["trace"] = turn.trace
        if turn.canvas.error is not None:
            data["error"] = turn.canvas.error
        return final

    def _save(self, turn: AgentTurn) -> None:
        if turn.saved:
            return
        turn.saved = True
        canvas = turn.canvas
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": turn.question, "id": canvas.message_id},
            {"role": "assistant", "content": canvas.answer, "created_at": time.time(), "id": canvas.message_id},
        ]
        state = canvas.state()
        try:
            self._sessions.save_turn(
                turn.session, messages, canvas.reference.as_dict(), state, errors=canvas.error or ""
            )
        except AgentSessionNotFound:
            logger.info("agent session %s was deleted while answering", turn.session_id)

    # == OpenAI's shape ============================================================================
    @staticmethod
    def usage(question: str, content: str) -> dict[str, Any]:
        """Token counts as RAGFlow reports them for agents: the question and the answer, with tiktoken."""
        prompt, completion = count_tokens(question), count_tokens(content)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def _is_turn(message: Any) -> bool:
    return isinstance(message, Mapping) and message.get("role") in ("user", "assistant")


def _text(content: Any) -> str:
    """A message's text: its string, or the text parts of OpenAI's multi-part content."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return "" if content is None else str(content)
