"""Answers: a chat assistant's completions (RAGFlow's shape and the OpenAI-compatible one) and related
questions. Everything that can be refused is checked before the first byte is streamed; the answer is
then produced delta by delta and the session keeps what was said, even when the model fails midway."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.catalog import get_catalog
from shared.errors import DataError
from shared.ids import new_id, now_ms, record_times
from shared.ports.chat_model import ChatMessage, ChatModel, ChatModelError, ChatOptions, ChatUsage
from shared.rag.metadata import MetadataCondition
from shared.rag.prompting import fit_history, format_knowledge, insert_citations, system_prompt
from shared.rag.tokens import count_tokens
from shared.repos.chats import ChatRepository, Record, SessionNotFound, SessionRepository
from shared.repos.datasets import DatasetRepository
from shared.repos.tenants import Tenant, TenantRepository
from shared.schemas.completions import CompletionRequest, OpenAICompletionRequest, RelatedQuestionsRequest
from shared.schemas.retrieval import MAX_PAGE_SIZE, MAX_TOP_K, RetrievalRequest
from shared.services.retrieval import RetrievalService

logger = logging.getLogger(__name__)

ChatModelFactory = Callable[[Tenant, str | None], ChatModel]
DEFAULT_CONTEXT = 8192
NO_CHAT_MODEL = "No chat model is configured for this assistant or tenant; set one with `llm.model_name`."


@dataclass
class Conversation:
    """A prepared turn: everything needed to call the model, decided before streaming starts."""

    chat: Record
    session: Record | None
    model: ChatModel
    messages: list[ChatMessage]
    options: ChatOptions
    question: str
    reference: dict[str, Any]
    chunks: list[dict[str, Any]]
    prompt: str
    message_id: str
    empty_response: str | None = None
    cite: bool = True
    usage: ChatUsage | None = field(default=None)


def _reference_chunk(chunk: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": chunk["id"],
        "content": chunk["content"],
        "document_id": chunk["document_id"],
        "document_name": chunk.get("document_keyword", ""),
        "dataset_id": chunk["dataset_id"],
        "image_id": chunk.get("image_id", ""),
        "url": None,
        "similarity": chunk["similarity"],
        "vector_similarity": chunk["vector_similarity"],
        "term_similarity": chunk["term_similarity"],
        "doc_type": [],
        "positions": chunk.get("positions", []),
    }


class CompletionService:
    def __init__(
        self,
        *,
        chats: ChatRepository,
        sessions: SessionRepository,
        datasets: DatasetRepository,
        tenants: TenantRepository,
        retrieval: RetrievalService,
        chat_model_for: ChatModelFactory,
    ) -> None:
        self._chats = chats
        self._sessions = sessions
        self._datasets = datasets
        self._tenants = tenants
        self._retrieval = retrieval
        self._chat_model_for = chat_model_for

    # == preparation =================================================================================
    def _chat(self, tenant_id: str, chat_id: str) -> tuple[Tenant, Record]:
        tenant = self._tenants.get(tenant_id)
        chat = self._chats.get(tenant_id, chat_id)
        if tenant is None or chat is None:
            raise DataError(f"You don't own the chat {chat_id}")
        return tenant, chat

    def _model(self, tenant: Tenant, chat: Record) -> ChatModel:
        model_id = (chat.get("llm") or {}).get("model_name") or tenant.llm_id
        if not model_id:
            raise DataError(NO_CHAT_MODEL)
        try:
            return self._chat_model_for(tenant, model_id)
        except ChatModelError as exc:
            raise DataError(exc.message) from exc

    def _retrieve(
        self, tenant_id: str, chat: Record, question: str, condition: MetadataCondition | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The chunks the chat's datasets hold for ``question``, with the chat's retrieval settings."""
        dataset_ids = list(chat.get("dataset_ids") or [])
        prompt = chat.get("prompt") or {}
        # top_n 0 (accepted, as RAGFlow does) asks for no chunks: the answer then has no knowledge to use.
        if not dataset_ids or int(prompt.get("top_n", 6)) == 0:
            return [], {}
        alive = [d for d in dataset_ids if self._datasets.get(tenant_id, d) is not None]
        if not alive:
            raise DataError("The datasets of this chat assistant no longer exist; update its `dataset_ids`.")
        request = RetrievalRequest(
            question=question,
            dataset_ids=alive,
            page=1,
            # The chat's settings are bounded more loosely than a retrieval request's: clamp, don't refuse.
            page_size=min(max(int(prompt.get("top_n", 6)), 1), MAX_PAGE_SIZE),
            similarity_threshold=float(prompt.get("similarity_threshold", 0.2)),
            vector_similarity_weight=1 - float(prompt.get("keywords_similarity_weight", 0.7)),
            top_k=min(max(int(chat.get("top_k") or prompt.get("top_k") or 1024), 1), MAX_TOP_K),
            metadata_condition=condition,
            rerank_id=prompt.get("rerank_model") or None,
            use_kg=bool(prompt.get("use_kg")),
        )
        chunks = self._retrieval.retrieve(tenant_id, request)["chunks"]
        reference = {
            "total": len(chunks),
            "chunks": [_reference_chunk(c) for c in chunks],
            "doc_aggs": _doc_aggs(chunks),
        }
        return chunks, reference

    def _options(self, chat: Record) -> ChatOptions:
        llm = chat.get("llm") or {}
        return ChatOptions(
            temperature=llm.get("temperature"),
            top_p=llm.get("top_p"),
            presence_penalty=llm.get("presence_penalty"),
            frequency_penalty=llm.get("frequency_penalty"),
            max_tokens=llm.get("max_tokens"),
        )

    def _assemble(
        self,
        chat: Record,
        model: ChatModel,
        retrieved: tuple[list[dict[str, Any]], dict[str, Any]],
        history: Sequence[ChatMessage],
        question: str,
        variables: Mapping[str, Any],
        session: Record | None,
    ) -> Conversation:
        chunks, reference = retrieved
        prompt_settings = chat.get("prompt") or {}
        cite = bool(prompt_settings.get("show_quote", True))
        system = system_prompt(
            str(prompt_settings.get("prompt", "")),
            format_knowledge(chunks),
            prompt_settings.get("variables") or [],
            variables,
            cite=cite,
        )
        info = get_catalog().find(model.model_id, "chat")
        budget = int((info.max_tokens if info and info.max_tokens else DEFAULT_CONTEXT) * 0.9)
        turns = fit_history(system, [*history, ChatMessage("user", question)], budget)
        empty = None
        if chat.get("dataset_ids") and not chunks and prompt_settings.get("empty_response"):
            empty = str(prompt_settings["empty_response"])
        return Conversation(
            chat=chat,
            session=session,
            model=model,
            messages=[ChatMessage("system", system), *turns],
            options=self._options(chat),
            question=question,
            reference=reference,
            chunks=chunks,
            prompt=system,
            message_id=str(uuid.uuid4()),
            empty_response=empty,
            cite=cite,
        )

    def prepare(self, tenant_id: str, chat_id: str, request: CompletionRequest) -> Conversation:
        """Open or start the session, retrieve and build the prompt.

        Everything that can be refused (the chat, the session, the model, retrieval) is checked before a
        new session is stored: a refused request leaves no session behind.
        """
        tenant, chat = self._chat(tenant_id, chat_id)
        session = None
        if request.session_id is not None:
            session = self._sessions.get(chat_id, request.session_id)
            if session is None:
                raise DataError("Session does not exist")
        model = self._model(tenant, chat)
        retrieved = self._retrieve(tenant_id, chat, request.question, request.metadata_condition)
        if session is None:
            session = self._new_session(tenant_id, chat, request.user_id or "")
        history = [
            ChatMessage(m["role"], str(m.get("content") or ""))
            for m in session.get("messages", [])
            if m.get("role") in ("user", "assistant")
        ]
        while history and history[0].role == "assistant":  # the opener is not part of the dialogue
            history.pop(0)
        return self._assemble(chat, model, retrieved, history, request.question, request.prompt_values(), session)

    def _new_session(self, tenant_id: str, chat: Record, user_id: str) -> Record:
        now = now_ms()
        record: Record = {
            "id": new_id(),
            "chat_id": chat["id"],
            "tenant_id": tenant_id,
            "name": "New session",
            "user_id": user_id,
            "messages": [{"role": "assistant", "content": (chat.get("prompt") or {}).get("opener")}],
            "reference": [],
            **record_times(now),
        }
        self._sessions.create(record)
        return record

    def prepare_openai(self, tenant_id: str, chat_id: str, request: OpenAICompletionRequest) -> Conversation:
        """The OpenAI-compatible request: the conversation comes in ``messages``; nothing is stored."""
        tenant, chat = self._chat(tenant_id, chat_id)
        turns = [ChatMessage(turn.role, turn.text()) for turn in request.messages]
        history = [t for t in turns[:-1] if t.role != "system"]
        while history and history[0].role == "assistant":
            history.pop(0)
        question = turns[-1].content
        model = self._model(tenant, chat)
        retrieved = self._retrieve(tenant_id, chat, question, request.extra_body.metadata_condition)
        return self._assemble(chat, model, retrieved, history, question, {}, None)

    # == answering ===================================================================================
    def stream(self, conv: Conversation) -> Iterator[str]:
        """The answer's text deltas as the model produces them; ``finish`` must be called afterwards.

        Raises ChatModelError from the iterator after the deltas already produced.
        """
        if conv.empty_response is not None:
            yield conv.empty_response
            return
        stream = conv.model.stream(conv.messages, conv.options)
        try:
            for delta in stream:
                if delta.usage is not None:
                    conv.usage = delta.usage
                if delta.text:
                    yield delta.text
        finally:
            stream.close()  # the client went away, or we are done: stop the upstream request

    def finish(self, conv: Conversation, answer: str, *, failed: bool = False) -> dict[str, Any]:
        """Insert citations, store the turn in the session (if any) and return RAGFlow's final data."""
        reference = conv.reference
        if conv.cite and conv.chunks and not failed:
            answer, _ = insert_citations(answer, conv.chunks)
        created = time.time()
        if conv.usage is None:
            prompt_tokens = sum(count_tokens(m.content) for m in conv.messages)
            conv.usage = ChatUsage.of(prompt_tokens, count_tokens(answer))
        if conv.session is not None:
            try:
                conv.session = self._sessions.append_messages(
                    conv.session,
                    [
                        {"role": "user", "content": conv.question, "id": conv.message_id},
                        {"role": "assistant", "content": answer, "id": conv.message_id, "created_at": created},
                    ],
                    reference,
                )
            except SessionNotFound:
                logger.info("session %s was deleted while answering", conv.session["id"])
        return {
            "answer": answer,
            "reference": reference,
            "audio_binary": None,
            "id": conv.message_id,
            "session_id": conv.session["id"] if conv.session else None,
            "prompt": conv.prompt,
            "created_at": created,
        }

    def answer(self, conv: Conversation) -> dict[str, Any]:
        """The whole answer at once (``stream: false``)."""
        text = "".join(self.stream(conv))
        return self.finish(conv, text)

    def related_questions(self, tenant_id: str, request: RelatedQuestionsRequest) -> list[str]:
        """5 to 10 rephrasings of the question from the tenant's chat model."""
        question, industry = request.question, request.industry or ""
        tenant = self._tenants.get(tenant_id)
        if tenant is None or not tenant.llm_id:
            raise DataError("No chat model is configured for this tenant.")
        try:
            model = self._chat_model_for(tenant, tenant.llm_id)
            result = model.complete(
                [
                    ChatMessage(
                        "system",
                        "You help users search a knowledge base. Given their question, write between 5 and 10 "
                        "alternative questions that ask for the same information in different words"
                        + (f", using the vocabulary of the {industry} industry" if industry else "")
                        + ". Answer with one question per line and nothing else.",
                    ),
                    ChatMessage("user", question),
                ],
                ChatOptions(temperature=0.9),
            )
        except ChatModelError as exc:
            raise DataError(exc.message) from exc
        lines = [line.strip().lstrip("-*0123456789.) ").strip() for line in result.text.splitlines()]
        return [line for line in lines if line][:10]


def _doc_aggs(chunks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for chunk in chunks:
        if not chunk["document_id"]:
            continue  # the knowledge graph's pseudo-chunk (use_kg) belongs to no document
        entry = counts.setdefault(
            chunk["document_id"],
            {"doc_name": chunk.get("document_keyword", ""), "doc_id": chunk["document_id"], "count": 0},
        )
        entry["count"] += 1
    return sorted(counts.values(), key=lambda e: -int(e["count"]))
