"""Request models of the chat assistant and session endpoints.

RAGFlow reads these bodies key by key (``req.get``), so unknown keys are ignored; the types of the keys it
knows are strict (a wrong type is code 101 with pydantic's text, as for datasets). The rules RAGFlow
answers with its own messages and code 102 are checked here when they need only the request (editing a
session's messages), by the service when they need stored data (names, models, datasets).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.errors import RetCode
from shared.schemas.common import PAGING_LIMIT, LenientBody, QueryArgs, StrictBody, delete_scope, refuse
from shared.schemas.fields import EmptyIsNone

CHAT_NAME_LIMIT = 255
SESSION_NAME_LIMIT = 255

DEFAULT_DESCRIPTION = "A helpful Assistant"
DEFAULT_OPENER = "Hi! I'm your assistant. What can I do for you?"
DEFAULT_EMPTY_RESPONSE = "Sorry! No relevant content was found in the knowledge base!"
DEFAULT_SESSION_NAME = "New session"
# RAGFlow's default system prompt, in our words: answer from a summary of the dataset's content, in detail,
# say so when none of it is relevant, mind the history. {knowledge} receives the retrieved chunks.
DEFAULT_SYSTEM_PROMPT = (
    "You are an intelligent assistant. Answer the question by summarizing the content of the knowledge "
    "base, listing the relevant data from it in detail. If none of the knowledge base content is relevant "
    'to the question, your answer must include the sentence "The answer you are looking for is not found '
    'in the knowledge base!" Take the chat history into account.\n'
    "Here is the knowledge base:\n"
    "{knowledge}\n"
    "The above is the knowledge base."
)
#: A chat created without ``llm`` gets RAGFlow's default settings, ``max_tokens`` included.
DEFAULT_MAX_TOKENS = 512
KNOWLEDGE_VARIABLE = "knowledge"

Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=CHAT_NAME_LIMIT)]
SessionName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=SESSION_NAME_LIMIT)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


class Variable(LenientBody):
    """A ``{key}`` placeholder of the system prompt; a non-optional one must appear in it."""

    key: Annotated[str, StringConstraints(min_length=1)]
    optional: bool = False


def _default_variables() -> list[Variable]:
    return [Variable(key=KNOWLEDGE_VARIABLE, optional=False)]


class LlmSettings(LenientBody):
    """The ``llm`` object. ``model_name`` null means the tenant's default chat model. Keys it does not know are
    kept and echoed, as RAGFlow stores the object whole (newer clients send more settings)."""

    model_config = ConfigDict(extra="allow")

    model_name: str | None = None
    # Internal to RAGFlow: "image2text" lets a multimodal model pass; anything else means "chat".
    model_type: Literal["chat", "image2text"] = "chat"
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.1
    top_p: Probability = 0.3
    presence_penalty: Penalty = 0.4
    frequency_penalty: Penalty = 0.7
    max_tokens: Annotated[int | None, Field(ge=1)] = None

    @field_validator("model_type", mode="before")
    @classmethod
    def _normalize_model_type(cls, value: Any) -> str:
        return "image2text" if value == "image2text" else "chat"

    @field_validator("model_name", mode="after")
    @classmethod
    def _blank_is_default(cls, value: str | None) -> str | None:
        return None if value is None else value.strip() or None

    def stored(self) -> dict[str, Any]:
        """The settings as kept on the chat (``max_tokens`` only when set)."""
        return self.model_dump(exclude={"max_tokens"} if self.max_tokens is None else set())


class PromptSettings(LenientBody):
    """The ``prompt`` object: retrieval settings and the system prompt with its variables."""

    similarity_threshold: Probability = 0.2
    keywords_similarity_weight: Probability = 0.7
    top_n: Annotated[int, Field(ge=0)] = 6
    top_k: Annotated[int, Field(ge=1)] = 1024
    variables: list[Variable] = Field(default_factory=_default_variables)
    rerank_model: str = ""
    empty_response: str | None = DEFAULT_EMPTY_RESPONSE
    opener: str | None = DEFAULT_OPENER
    show_quote: bool = True
    prompt: str = DEFAULT_SYSTEM_PROMPT
    tts: bool = False
    refine_multiturn: bool = True
    #: Put the knowledge graph's pseudo-chunk first in the retrieved knowledge (kept only when given).
    use_kg: bool = False

    @field_validator("rerank_model", mode="before")
    @classmethod
    def _null_rerank_is_none(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("prompt", mode="before")
    @classmethod
    def _empty_prompt_is_default(cls, value: Any) -> Any:
        # As RAGFlow: a missing or empty system prompt falls back to the default one.
        return DEFAULT_SYSTEM_PROMPT if value is None or value == "" else value

    @field_validator("rerank_model", mode="after")
    @classmethod
    def _strip_rerank(cls, value: str) -> str:
        return value.strip()


class CreateChatRequest(LenientBody):
    name: Name | None = None
    avatar: str | None = None
    description: str | None = None
    dataset_ids: list[str] | None = None
    llm: LlmSettings | None = None
    prompt: PromptSettings | None = None


class UpdateChatRequest(CreateChatRequest):
    """Every field optional; ``llm`` and ``prompt`` are merged into the stored ones."""


class DeleteByIdsRequest(StrictBody):
    """``ids`` missing, null or empty means every one (RAGFlow v0.23.1's rule for chats and sessions). The
    body may be absent altogether (a body-less DELETE).

    A body carrying ``delete_all`` follows the rule of RAGFlow v0.25+ (whose SDK sends
    ``{"ids": null, "delete_all": false}`` by default): without ids, nothing is deleted unless ``delete_all``
    is true. Strict, unlike RAGFlow (which ignores unknown keys here): under the old rule a misspelt key
    (``{"id": [...]}``) would delete every chat or session; an unknown key is refused instead.
    """

    body_optional = True

    ids: list[str] | None = None
    delete_all: bool | None = None

    def targets_everything(self) -> bool:
        """No ids given, and the request means "all of them" under the rule it speaks."""
        newer_rules = "delete_all" in self.model_fields_set
        return delete_scope(self.ids, self.delete_all, newer_rules=newer_rules, empty_means_all=True) == "all"


class _ListQuery(QueryArgs):
    # RAGFlow reads only the parameters it knows here and ignores the rest; an empty filter is no filter.
    model_config = ConfigDict(extra="ignore")

    id: EmptyIsNone = None
    name: EmptyIsNone = None
    # RAGFlow pages with peewee's paginate(), which reads page 0 as page 1.
    page: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 30
    orderby: Literal["create_time", "update_time"] = "create_time"
    desc: bool = True

    @field_validator("page", mode="after")
    @classmethod
    def _page_zero_is_one(cls, value: int) -> int:
        return max(value, 1)


class ListChatsQuery(_ListQuery):
    pass


#: Session columns a listing may be ordered by (RAGFlow orders by any column of its conversation table; its
#: JSON columns, the messages and references, are left out). ``dialog_id`` is RAGFlow's name for the chat.
SessionOrder = Literal["create_time", "update_time", "create_date", "update_date", "id", "name", "user_id", "dialog_id"]


class ListSessionsQuery(_ListQuery):
    orderby: SessionOrder = "create_time"  # type: ignore[assignment]
    user_id: EmptyIsNone = None


class CreateSessionRequest(LenientBody):
    """A body-less POST starts a session with the default name."""

    body_optional = True

    name: SessionName | None = DEFAULT_SESSION_NAME
    user_id: str | None = None


class UpdateSessionRequest(LenientBody):
    name: SessionName | None = None
    user_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _history_is_read_only(cls, data: Any) -> Any:
        # RAGFlow's own refusals, before any field is looked at.
        if isinstance(data, dict):
            if "message" in data or "messages" in data:
                raise refuse(RetCode.DATA_ERROR, "`message` can not be change")
            if "reference" in data:
                raise refuse(RetCode.DATA_ERROR, "`reference` can not be change")
        return data
