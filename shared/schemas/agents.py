"""Request models of the agent endpoints: agents (canvases), their sessions, and their completions.

RAGFlow reads these bodies key by key (lenient: unknown keys ignored) and answers its own messages for the
rules it checks (``No DSL data in request.``, ``required argument are missing: model; ``); types are strict,
so a wrong type is code 101 with pydantic's text. The DSL itself is checked by the canvas executor
(``shared.agent.dsl``) in the service, with 102 messages naming the component.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.errors import ArgumentError, RetCode
from shared.schemas.common import PAGING_LIMIT, LenientBody, QueryArgs, RequestModel, delete_scope, refuse
from shared.schemas.fields import EmptyIsNone
from shared.schemas.reading import load_json

AGENT_TITLE_LIMIT = 255
NO_DSL = "No DSL data in request."
NO_TITLE = "No title in request."
NO_MESSAGES = "You must provide at least one message."

Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=AGENT_TITLE_LIMIT)]
Page = Annotated[int, Field(ge=1, le=PAGING_LIMIT)]
PageSize = Annotated[int, Field(ge=0, le=PAGING_LIMIT)]


def _dsl_object(value: Any) -> Any:
    """RAGFlow takes the DSL as an object or as its JSON text."""
    if isinstance(value, str):
        try:
            value = load_json(value)
        except ArgumentError as exc:
            raise refuse(RetCode.ARGUMENT_ERROR, f"`dsl` is not valid JSON: {exc.message}") from None
    if not isinstance(value, dict):
        raise refuse(RetCode.ARGUMENT_ERROR, "`dsl` should be a JSON object.")
    return value


class CreateAgentRequest(LenientBody):
    title: Title
    dsl: dict[str, Any]
    description: str | None = None
    avatar: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        # RAGFlow checks the DSL first, then the title; null counts as missing.
        if isinstance(data, Mapping):
            if data.get("dsl") is None:
                raise refuse(RetCode.ARGUMENT_ERROR, NO_DSL)
            if data.get("title") is None:
                raise refuse(RetCode.ARGUMENT_ERROR, NO_TITLE)
        return data

    @field_validator("dsl", mode="before")
    @classmethod
    def _dsl(cls, value: Any) -> Any:
        return _dsl_object(value)


class UpdateAgentRequest(LenientBody):
    """Only what is given (and not null) changes."""

    title: Title | None = None
    dsl: dict[str, Any] | None = None
    description: str | None = None
    avatar: str | None = None

    @field_validator("dsl", mode="before")
    @classmethod
    def _dsl(cls, value: Any) -> Any:
        return None if value is None else _dsl_object(value)


class _ListQuery(QueryArgs):
    # RAGFlow reads only the parameters it knows and ignores the rest; an empty filter is no filter.
    model_config = ConfigDict(extra="ignore")

    id: EmptyIsNone = None
    page: Page = 1
    page_size: PageSize = 30
    orderby: Literal["create_time", "update_time"] = "update_time"
    desc: bool = True


class ListAgentsQuery(_ListQuery):
    title: EmptyIsNone = None


class ListAgentSessionsQuery(_ListQuery):
    user_id: EmptyIsNone = None
    #: Whether each session's DSL is shown (RAGFlow: yes unless ``dsl=false``).
    dsl: bool = True


class AgentSessionQuery(QueryArgs):
    model_config = ConfigDict(extra="ignore")

    user_id: str | None = None


class CreateAgentSessionRequest(RequestModel):
    """``user_id`` and the values of the Begin component's inputs (any other key), all optional."""

    model_config = ConfigDict(extra="allow", strict=True)
    body_optional: ClassVar[bool] = True

    user_id: str | None = None

    def begin_values(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DeleteAgentSessionsRequest(LenientBody):
    """``ids`` missing, null or empty means every session of the agent — unless the body carries
    ``delete_all`` (RAGFlow v0.25+): then nothing without ids unless it is true."""

    body_optional: ClassVar[bool] = True

    ids: list[str] | None = None
    delete_all: bool | None = None

    def targets_everything(self) -> bool:
        """No ids given, and the request means "all of them" under the rule it speaks."""
        newer_rules = "delete_all" in self.model_fields_set
        return delete_scope(self.ids, self.delete_all, newer_rules=newer_rules, empty_means_all=True) == "all"


class AgentCompletionRequest(LenientBody):
    question: str | None = None
    stream: bool = True
    session_id: EmptyIsNone = None
    inputs: dict[str, Any] | None = None
    user_id: EmptyIsNone = None
    return_trace: bool = False


class AgentOpenAIRequest(LenientBody):
    """OpenAI's chat request; the agent's session comes from ``session_id``, ``id`` or ``metadata.id``."""

    model: Any = None
    messages: list[Any]
    stream: bool = False
    session_id: str | None = None
    id: str | None = None
    metadata: dict[str, Any] | None = None
    user_id: str | None = None
    inputs: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            missing = [name for name in ("model", "messages") if name not in data]
            if missing:
                raise refuse(RetCode.ARGUMENT_ERROR, f"required argument are missing: {','.join(missing)}; ")
        return data

    @field_validator("messages", mode="before")
    @classmethod
    def _some_messages(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise refuse(RetCode.DATA_ERROR, NO_MESSAGES)
        return value

    def session(self) -> str | None:
        meta_id = (self.metadata or {}).get("id")
        return self.session_id or self.id or (meta_id if isinstance(meta_id, str) and meta_id else None)
