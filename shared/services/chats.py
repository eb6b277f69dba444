"""Chat assistant and session use cases, with RAGFlow's rules and answers.

Messages: the reference's (``http_api_reference``) where it gives one, otherwise RAGFlow's own
(api/apps/sdk/chat.py and session.py). RAGFlow answers these rules with code 102.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.catalog import ModelType, split_model_id
from shared.errors import ArgumentError, DataError
from shared.ids import http_date, new_id, now_ms, record_times
from shared.ports.metadata import ConditionFailed
from shared.repos.chats import STORAGE_ATTRS, ChatRepository, DuplicateChatName, Record, SessionRepository
from shared.repos.datasets import DatasetRepository
from shared.repos.keys import without
from shared.repos.tenants import Tenant, TenantRepository
from shared.schemas.chats import (
    DEFAULT_DESCRIPTION,
    DEFAULT_MAX_TOKENS,
    CreateChatRequest,
    CreateSessionRequest,
    DeleteByIdsRequest,
    ListChatsQuery,
    ListSessionsQuery,
    LlmSettings,
    PromptSettings,
    UpdateChatRequest,
    UpdateSessionRequest,
)
from shared.services.datasets import dataset_view
from shared.services.deletes import delete_targets
from shared.services.models import ModelAccess

# RAGFlow's server (its reference says "... in creating dataset." / "... in updating dataset.").
DUPLICATE_NAME_ON_CREATE = "Duplicated chat name in creating chat."
DUPLICATE_NAME_ON_UPDATE = "Duplicated chat name in updating chat."
SESSION_NAME_EMPTY = "`name` can not be empty."
# From RAGFlow's code (the reference gives none for these cases).
NAME_REQUIRED = "`name` is required."
NAME_EMPTY = "`name` cannot be empty."
CHAT_NOT_FOUND = "The chat doesn't exist"
MIXED_EMBEDDINGS = "Datasets use different embedding models."

_HIDDEN_SESSION_ATTRS = STORAGE_ATTRS | {"tenant_id", "version", "reference"}


def chat_view(record: Record) -> dict[str, Any]:
    """A stored chat as the API shows it."""
    return without(record, STORAGE_ATTRS)


def _chunk_view(chunk: Mapping[str, Any]) -> dict[str, Any]:
    """A cited chunk as session listings show it, from either RAGFlow's internal or its API field names."""
    return {
        "id": chunk.get("chunk_id", chunk.get("id")),
        "content": chunk.get("content_with_weight", chunk.get("content")),
        "document_id": chunk.get("doc_id", chunk.get("document_id")),
        "document_name": chunk.get("docnm_kwd", chunk.get("document_name")),
        "dataset_id": chunk.get("kb_id", chunk.get("dataset_id")),
        "image_id": chunk.get("image_id", chunk.get("img_id")),
        "positions": chunk.get("positions", chunk.get("position_int")),
    }


def _messages_with_references(messages: Sequence[dict[str, Any]], references: Sequence[Any]) -> list[dict[str, Any]]:
    """Each assistant answer after the opener gets the chunks it cited (references are kept in answer order)."""
    pending = iter(references)
    shown: list[dict[str, Any]] = []
    for position, message in enumerate(messages):
        item = {key: value for key, value in message.items() if key != "prompt"}
        if position > 0 and message.get("role") != "user":
            reference = next(pending, None)
            if isinstance(reference, Mapping):
                item["reference"] = [_chunk_view(c) for c in reference.get("chunks", []) if isinstance(c, Mapping)]
        shown.append(item)
    return shown


def session_view(record: Record, *, with_references: bool = False) -> dict[str, Any]:
    """A stored session as the API shows it; listings attach each answer's cited chunks."""
    view = without(record, _HIDDEN_SESSION_ATTRS)
    if with_references:
        view["messages"] = _messages_with_references(record.get("messages", []), record.get("reference", []))
    return view


def _check_variables(variables: Iterable[Mapping[str, Any]], prompt: str) -> None:
    """Every non-optional variable must appear as ``{key}`` in the system prompt."""
    for variable in variables:
        if not variable.get("optional") and f"{{{variable['key']}}}" not in prompt:
            raise DataError(f"Parameter '{variable['key']}' is not used")


@dataclass(frozen=True)
class DeleteOutcome:
    """What a delete reports, as RAGFlow does after acting on the ids it found.

    ``message``/``data`` set: a partial success (code 0, "Partially deleted N <things> with M errors", data
    ``{success_count, errors}``); unknown ids are reported before repeated ones, which are only reported
    when every id was found. Nothing set: a plain success.
    """

    message: str | None = None
    data: dict[str, Any] | None = None

    @classmethod
    def of(cls, noun: str, deleted: int, errors: list[str], duplicates: list[str]) -> DeleteOutcome:
        reported = errors or duplicates
        if not reported:
            return cls()
        if deleted == 0:
            # Nothing was found (repeated ids are found ids, so only unknown ones get here): RAGFlow's 102.
            raise DataError("; ".join(reported))
        return cls(
            message=f"Partially deleted {deleted} {noun} with {len(reported)} errors",
            data={"success_count": deleted, "errors": reported},
        )


#: Session orders the store keeps an index for (a date orders as its time does).
_INDEXED_SESSION_ORDER: dict[str, Literal["create_time", "update_time"]] = {
    "create_time": "create_time",
    "create_date": "create_time",
    "update_time": "update_time",
    "update_date": "update_time",
}
#: RAGFlow's column names for ours.
_SESSION_COLUMNS = {"dialog_id": "chat_id"}


def _ordered(sessions: list[Record], column: str, *, desc: bool) -> list[Record]:
    """Sessions ordered by any other column, in memory (a chat's sessions; newest first among equals)."""
    key = _SESSION_COLUMNS.get(column, column)
    by_time = sorted(sessions, key=lambda s: s["create_time"], reverse=True)
    return sorted(by_time, key=lambda s: str(s.get(key) or ""), reverse=desc)


class ChatService:
    def __init__(
        self,
        chats: ChatRepository,
        sessions: SessionRepository,
        datasets: DatasetRepository,
        tenants: TenantRepository,
        models: ModelAccess,
    ) -> None:
        self._chats = chats
        self._sessions = sessions
        self._datasets = datasets
        self._tenants = tenants
        self._models = models

    # -- shared checks -----------------------------------------------------------------------------
    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise DataError("Tenant not found!")
        return tenant

    def _owned_chat(self, tenant_id: str, chat_id: str, message: str) -> Record:
        chat = self._chats.get(tenant_id, chat_id)
        if chat is None:
            raise DataError(message)
        return chat

    def chat_of(self, tenant_id: str, chat_id: str) -> Record | None:
        """The tenant's chat as stored, or None (another tenant's chat is None as well)."""
        return self._chats.get(tenant_id, chat_id)

    def _usable_datasets(self, tenant_id: str, dataset_ids: Sequence[str]) -> list[str]:
        """The ids (blanks dropped, order kept), once each is owned, parsed, and all share one embedder."""
        ids = list(dict.fromkeys(item for item in dataset_ids if item))
        embedders: set[str] = set()
        for dataset_id in ids:
            dataset = self._datasets.get(tenant_id, dataset_id)
            if dataset is None:
                raise DataError(f"You don't own the dataset {dataset_id}")
            if int(dataset.get("chunk_count", 0)) <= 0:
                raise DataError(f"The dataset {dataset_id} doesn't own parsed file")
            embedders.add(split_model_id(dataset["embedding_model"])[0])  # the vendor suffix doesn't count
        if len(embedders) > 1:
            raise DataError(MIXED_EMBEDDINGS)
        return ids

    def _chat_model(self, tenant: Tenant, model_id: str, model_type: ModelType) -> str:
        """The ``name@factory`` to store; RAGFlow's "Unsupported model" / "Unauthorized model" otherwise (a
        known model the tenant has not configured is told apart from one that does not exist)."""
        return self._models.resolve(tenant, model_id, model_type)

    def _check_rerank_model(self, tenant: Tenant, model_id: str) -> None:
        if not model_id:
            return
        try:
            self._models.check(tenant, model_id, "rerank")
        except ArgumentError:
            raise DataError(f"`rerank_model` {model_id} doesn't exist") from None

    # -- chats -------------------------------------------------------------------------------------
    def create_chat(self, tenant_id: str, request: CreateChatRequest) -> dict[str, Any]:
        """Create a chat assistant; its name is unique per tenant, compared case-insensitively."""
        if not request.name:
            raise DataError(NAME_REQUIRED)
        tenant = self._tenant(tenant_id)
        dataset_ids = self._usable_datasets(tenant_id, request.dataset_ids or [])
        # Without ``llm``, RAGFlow's default settings, max_tokens included.
        llm = request.llm or LlmSettings(max_tokens=DEFAULT_MAX_TOKENS)
        llm_settings = llm.stored()
        if llm.model_name is None:
            # May be None: completions then say none is configured.
            llm_settings["model_name"] = self._models.default_chat(tenant)
        else:
            llm_settings["model_name"] = self._chat_model(tenant, llm.model_name, llm.model_type)
        prompt = request.prompt or PromptSettings()
        self._check_rerank_model(tenant, prompt.rerank_model)
        # use_kg is kept only when given, as RAGFlow keeps the prompt_config keys it was sent.
        prompt_settings = prompt.model_dump(exclude={"top_k"} | ({"use_kg"} - prompt.model_fields_set))
        _check_variables(prompt_settings["variables"], prompt.prompt)
        now = now_ms()
        record: Record = {
            "id": new_id(),
            "tenant_id": tenant_id,
            "name": request.name,
            "avatar": request.avatar or "",
            "description": DEFAULT_DESCRIPTION if request.description is None else request.description,
            "language": "English",
            "dataset_ids": dataset_ids,
            "llm": llm_settings,
            "prompt": prompt_settings,
            "prompt_type": "simple",
            "do_refer": "1",
            "status": "1",
            "top_k": prompt.top_k,
            **record_times(now),
        }
        try:
            self._chats.create(record)
        except DuplicateChatName:
            raise DataError(DUPLICATE_NAME_ON_CREATE) from None
        return chat_view(record)

    def list_chats(self, tenant_id: str, query: ListChatsQuery) -> list[dict[str, Any]]:
        """One page of the tenant's chats, or the one matching ``id`` and/or ``name``."""
        offset = (query.page - 1) * query.page_size
        if query.id is None and query.name is None:
            items = (
                self._chats.page(
                    tenant_id, orderby=query.orderby, desc=query.desc, offset=offset, limit=query.page_size
                )
                if query.page_size
                else []
            )
        else:
            match = (
                self._chats.get(tenant_id, query.id)
                if query.id is not None
                else self._chats.get_by_name(tenant_id, str(query.name))
            )
            if match is not None and query.name is not None and match["name"].lower() != query.name.lower():
                match = None
            if match is None:
                raise DataError(CHAT_NOT_FOUND)
            items = [match][offset : offset + query.page_size]
        return self._with_datasets(tenant_id, items)

    def _with_datasets(self, tenant_id: str, chats: Sequence[Record]) -> list[dict[str, Any]]:
        """Listed chats also carry their datasets as RAGFlow lists them (those still present)."""
        found: dict[str, dict[str, Any] | None] = {}
        shown = []
        for chat in chats:
            view = chat_view(chat)
            for dataset_id in chat.get("dataset_ids", []):
                if dataset_id not in found:
                    dataset = self._datasets.get(tenant_id, dataset_id)
                    found[dataset_id] = None if dataset is None else dataset_view(dataset)
            view["datasets"] = [found[i] for i in chat.get("dataset_ids", []) if found[i] is not None]
            shown.append(view)
        return shown

    def update_chat(self, tenant_id: str, chat_id: str, request: UpdateChatRequest) -> None:
        """Change a chat's settings; ``llm`` and ``prompt`` are merged field by field into the stored ones."""
        current = self._owned_chat(tenant_id, chat_id, "You do not own the chat")
        given = request.model_fields_set
        tenant = self._tenant(tenant_id)
        changes: Record = {}
        if "name" in given:
            if not request.name:
                raise DataError(NAME_EMPTY)
            changes["name"] = request.name
        if "avatar" in given:
            changes["avatar"] = request.avatar or ""
        if "description" in given:
            changes["description"] = request.description or ""
        if request.dataset_ids is not None:
            changes["dataset_ids"] = self._usable_datasets(tenant_id, request.dataset_ids)
        if request.llm is not None:
            changes["llm"] = self._merged_llm(tenant, current["llm"], request.llm)
        if request.prompt is not None:
            given_prompt = request.prompt.model_dump(include=request.prompt.model_fields_set)
            if "top_k" in given_prompt:
                changes["top_k"] = given_prompt.pop("top_k")
            if "rerank_model" in given_prompt:
                self._check_rerank_model(tenant, given_prompt["rerank_model"])
            merged = {**current["prompt"], **given_prompt}
            _check_variables(merged["variables"], merged["prompt"])
            changes["prompt"] = merged
        now = now_ms()
        changes.update(update_time=now, update_date=http_date(now))
        try:
            self._chats.update(current, changes)
        except DuplicateChatName:
            raise DataError(DUPLICATE_NAME_ON_UPDATE) from None

    def _merged_llm(self, tenant: Tenant, stored: Mapping[str, Any], update: LlmSettings) -> dict[str, Any]:
        given = update.model_fields_set
        merged = {**stored, **update.model_dump(include=given)}
        if merged.get("max_tokens") is None:
            merged.pop("max_tokens", None)
        if "model_name" in given and merged["model_name"] is None:
            merged["model_name"] = self._models.default_chat(tenant)
        elif given & {"model_name", "model_type"} and merged.get("model_name"):
            merged["model_name"] = self._chat_model(tenant, merged["model_name"], merged.get("model_type", "chat"))
        return merged

    def delete_chats(self, tenant_id: str, request: DeleteByIdsRequest) -> DeleteOutcome:
        """Delete the listed chats and their sessions; without ids, every chat (unless the body speaks the
        v0.25+ rule and ``delete_all`` is not true: then none).

        As RAGFlow: the chats found are deleted, then unknown and repeated ids are reported (see
        :class:`DeleteOutcome`); when none was found, nothing changes and the answer is an error.
        """
        targets, errors, duplicates = delete_targets(
            request,
            "assistant",
            lambda: self._chats.all_of_tenant(tenant_id),
            lambda chat_id: self._chats.get(tenant_id, chat_id),
            lambda chat_id: f"Assistant({chat_id}) not found.",
        )
        for chat in targets:
            # The chat goes first: from then on no session can be added to it (sessions check it exists).
            self._chats.delete(chat)
            self._sessions.delete_all_of_chat(chat["id"])
        return DeleteOutcome.of("chats", len(targets), errors, duplicates)

    # -- sessions ----------------------------------------------------------------------------------
    def create_session(self, tenant_id: str, chat_id: str, request: CreateSessionRequest) -> dict[str, Any]:
        """Start a session; the chat's opener is its first (assistant) message."""
        chat = self._owned_chat(tenant_id, chat_id, "You do not own the assistant.")
        if not request.name:
            raise DataError(SESSION_NAME_EMPTY)
        now = now_ms()
        record: Record = {
            "id": new_id(),
            "chat_id": chat_id,
            "tenant_id": tenant_id,
            "name": request.name,
            "user_id": request.user_id or "",
            "messages": [{"role": "assistant", "content": chat["prompt"].get("opener")}],
            "reference": [],
            **record_times(now),
        }
        try:
            self._sessions.create(record)
        except ConditionFailed:  # the chat was deleted meanwhile
            raise DataError("You do not own the assistant.") from None
        return session_view(record)

    def list_sessions(self, tenant_id: str, chat_id: str, query: ListSessionsQuery) -> list[dict[str, Any]]:
        """One page of a chat's sessions, narrowed by ``id``, ``name`` and ``user_id`` (no match: empty)."""
        self._owned_chat(tenant_id, chat_id, f"You don't own the assistant {chat_id}.")
        offset = (query.page - 1) * query.page_size
        if query.page_size == 0:
            return []
        indexed = _INDEXED_SESSION_ORDER.get(query.orderby)
        if query.id is None and query.name is None and query.user_id is None and indexed is not None:
            items = self._sessions.page(chat_id, orderby=indexed, desc=query.desc, offset=offset, limit=query.page_size)
        else:
            if query.id is not None:
                one = self._sessions.get(chat_id, query.id)
                candidates = [] if one is None else [one]
            elif indexed is not None:
                candidates = self._sessions.all_of_chat(chat_id, orderby=indexed, desc=query.desc)
            else:
                candidates = _ordered(self._sessions.all_of_chat(chat_id), query.orderby, desc=query.desc)
            matches = [
                session
                for session in candidates
                if (query.name is None or str(session["name"]).lower() == query.name.lower())
                and (query.user_id is None or session.get("user_id") == query.user_id)
            ]
            items = matches[offset : offset + query.page_size]
        return [session_view(session, with_references=True) for session in items]

    def update_session(self, tenant_id: str, chat_id: str, session_id: str, request: UpdateSessionRequest) -> None:
        """Rename a session or change its ``user_id`` (its messages and references are not editable)."""
        self._owned_chat(tenant_id, chat_id, "You do not own the session")
        session = self._sessions.get(chat_id, session_id)
        if session is None:
            raise DataError("Session does not exist")
        changes: Record = {}
        if "name" in request.model_fields_set:
            if not request.name:
                raise DataError(SESSION_NAME_EMPTY)
            changes["name"] = request.name
        if "user_id" in request.model_fields_set:
            changes["user_id"] = request.user_id or ""
        now = now_ms()
        changes.update(update_time=now, update_date=http_date(now))
        try:
            self._sessions.update(session, changes)
        except ConditionFailed:  # deleted meanwhile
            raise DataError("Session does not exist") from None

    def delete_sessions(self, tenant_id: str, chat_id: str, request: DeleteByIdsRequest) -> DeleteOutcome:
        """Delete the listed sessions; without ids, all of the chat's (unless the body speaks the v0.25+ rule
        and ``delete_all`` is not true: then none). Found ones are deleted, the rest reported, as for chats."""
        self._owned_chat(tenant_id, chat_id, "You don't own the chat")
        targets, errors, duplicates = delete_targets(
            request,
            "session",
            lambda: self._sessions.all_of_chat(chat_id),
            lambda item: self._sessions.get(chat_id, item),
            lambda item: f"The chat doesn't own the session {item}",
        )
        self._sessions.delete(targets)
        return DeleteOutcome.of("sessions", len(targets), errors, duplicates)
