"""Request models of the answer endpoints: a chat's completions (RAGFlow's and the OpenAI-compatible one)
and related questions.

RAGFlow reads these bodies key by key: unknown keys are ignored (on a chat completion they are even used,
as the values of the system prompt's variables), wrong types of the keys it knows are refused here. Its own
rules keep its messages and code 102; the rest is 101 with the ``Field: ...`` text. Everything is checked
before anything is stored: a refused completion creates no session.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from shared.errors import RetCode
from shared.schemas.common import LenientBody, refuse
from shared.schemas.fields import refuse_blank
from shared.schemas.retrieval import MetadataConditionField, Question, ragflow_flag

NO_QUESTION = "Please input your question."
NO_MESSAGES = "You have to provide messages."
BAD_MESSAGE = "Each message needs a role of system, user or assistant and a content."


def _stream_flag(value: Any) -> bool:
    # RAGFlow answers whole when ``stream`` is falsy, null included; anything but a boolean is refused.
    if value is None:
        return False
    return ragflow_flag("stream", value)


_no_question = refuse_blank(NO_QUESTION)

#: RAGFlow's ``stream``: null is false, anything but a boolean is refused.
StreamFlag = Annotated[bool, BeforeValidator(_stream_flag)]


class CompletionRequest(LenientBody):
    """POST /api/v1/chats/{chat_id}/completions. Keys besides these fill the system prompt's variables."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"required": ["question"]})

    question: Annotated[str, Field(min_length=1, validate_default=True), BeforeValidator(refuse_blank(NO_QUESTION))] = (
        ""
    )
    stream: StreamFlag = True
    session_id: str | None = Field(None, description="continue this session; a new one is started without it")
    user_id: str | None = Field(None, description="the end user the new session belongs to")
    metadata_condition: MetadataConditionField = None

    @field_validator("session_id", mode="after")
    @classmethod
    def _blank_session(cls, value: str | None) -> str | None:
        return value or None  # RAGFlow: an empty session id starts a new session

    def prompt_values(self) -> dict[str, Any]:
        """The values of the system prompt's variables: the body's other keys."""
        return dict(self.model_extra or {})


class ContentPart(LenientBody):
    """One part of an OpenAI message's content; only text parts carry text."""

    type: str = "text"
    text: str = ""


class ChatTurn(LenientBody):
    """One OpenAI chat message."""

    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ExtraBody(LenientBody):
    reference: bool = Field(False, description="include the cited chunks in the answer")
    metadata_condition: MetadataConditionField = None

    @field_validator("reference", mode="before")
    @classmethod
    def _reference(cls, value: Any) -> bool:
        return ragflow_flag("reference", value)


class OpenAICompletionRequest(LenientBody):
    """POST /api/v1/chats_openai/{chat_id}/chat/completions (OpenAI's request; other keys are ignored)."""

    model: str = Field(description="echoed in the answer; the chat's own model answers")
    messages: list[ChatTurn]
    stream: StreamFlag = True
    extra_body: ExtraBody = Field(default_factory=ExtraBody)

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        # RAGFlow's @validate_request("model", "messages"): its 101 message, listing what is missing.
        if isinstance(data, dict):
            missing = [key for key in ("model", "messages") if data.get(key) is None]
            if missing:
                raise refuse(RetCode.ARGUMENT_ERROR, f"required argument are missing: {','.join(missing)}; ")
        return data

    @field_validator("messages", mode="wrap")
    @classmethod
    def _messages(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> list[ChatTurn]:
        if not isinstance(value, list):
            return handler(value)  # type: ignore[no-any-return]  # pydantic's own "valid list" error
        if not value:
            raise refuse(RetCode.DATA_ERROR, NO_MESSAGES)
        try:
            turns: list[ChatTurn] = handler(value)
        except ValidationError:
            raise refuse(RetCode.DATA_ERROR, BAD_MESSAGE) from None
        if turns[-1].role != "user":
            raise refuse(RetCode.DATA_ERROR, "The last content of this conversation is not from user.")
        return turns

    @field_validator("extra_body", mode="before")
    @classmethod
    def _extra_body(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise refuse(RetCode.DATA_ERROR, "extra_body must be an object.")
        return value


class RelatedQuestionsRequest(LenientBody):
    """POST /api/v1/sessions/related_questions."""

    model_config = ConfigDict(json_schema_extra={"required": ["question"]})

    question: Question = ""
    industry: str | None = Field(None, description="phrase the questions in this industry's vocabulary")
