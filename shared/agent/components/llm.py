"""LLM: a system prompt, the conversation's recent turns and the prompts (all with variables filled in)
sent to a chat model with the component's generation settings. When a Message downstream shows the answer,
it is streamed to it token by token; otherwise the whole answer is the ``content`` output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.agent.components.base import Component, ComponentParams, NullIsEmpty
from shared.agent.components.message import Message
from shared.agent.errors import ComponentError
from shared.agent.reference import CITATION_GUIDE
from shared.agent.stream import TextStream
from shared.agent.variables import references
from shared.ports.chat_model import ChatMessage, ChatModel, ChatModelError, ChatOptions


class Prompt(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"] = "user"
    content: str = ""


def _default_prompts() -> list[Prompt]:
    return [Prompt(role="user", content="{sys.query}")]


class LLMParams(ComponentParams):
    llm_id: NullIsEmpty = ""
    sys_prompt: str = ""
    prompts: list[Prompt] = Field(default_factory=_default_prompts)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    max_tokens: int | None = Field(None, ge=0)
    message_history_window_size: int = Field(12, ge=0)
    cite: bool = True

    @field_validator("prompts", mode="before")
    @classmethod
    def _text_prompt(cls, value: Any) -> Any:
        # Older DSLs hold the user prompt as one string.
        return [{"role": "user", "content": value}] if isinstance(value, str) else value


class LLM(Component):
    component_name = "LLM"
    Params = LLMParams
    params: LLMParams

    # -- what every model-calling component shares -------------------------------------------------
    def model(self) -> ChatModel:
        try:
            return self.canvas.runtime.chat_model(self.params.llm_id or None)
        except ChatModelError as exc:
            raise ComponentError(exc.message) from exc

    def options(self) -> ChatOptions:
        p = self.params
        return ChatOptions(
            temperature=p.temperature,
            top_p=p.top_p,
            presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty,
            max_tokens=p.max_tokens or None,
        )

    def system_prompt(self) -> str:
        text = self.fill(self.params.sys_prompt)
        if self.params.cite and self.cites_knowledge():
            text += CITATION_GUIDE
        return text

    def cites_knowledge(self) -> bool:
        """Whether the model is asked to cite: chunks were retrieved in this turn."""
        return bool(self.canvas.reference)

    def conversation(self, system: str) -> list[ChatMessage]:
        """The system prompt, the recent turns, then the prompts."""
        messages = [ChatMessage("system", system)] if system.strip() else []
        messages += self.canvas.history_messages(self.params.message_history_window_size)
        prompts = [ChatMessage(p.role, self.fill(p.content)) for p in self.params.prompts]
        if not any(m.role == "user" for m in prompts):
            prompts.append(ChatMessage("user", str(self.canvas.globals.get("sys.query") or "")))
        return messages + prompts

    def streams_to_message(self) -> bool:
        """True when a Message right downstream shows this component's ``content``: the answer then streams."""
        handling = self.params.exception_method
        if handling == "goto" or (handling == "comment" and self.params.exception_default_value):
            return False  # a failure must be known while the canvas can still go elsewhere or answer the default
        wanted = f"{self.id}@content"
        for cid in self.canvas.downstream_of(self.id):
            component = self.canvas.component(cid)
            if isinstance(component, Message) and any(
                wanted in references(template) for template in component.params.content
            ):
                return True
        return False

    def deliver(self, pieces: Iterator[str] | None, whole: str | None = None) -> None:
        """Set ``content``: a stream a Message will show, or the whole text."""
        if pieces is not None:
            source = pieces
            self.set_output(
                "content", TextStream(self.id, lambda: source, lambda text: self.set_output("content", text))
            )
        else:
            self.set_output("content", whole or "")

    # -- the component -----------------------------------------------------------------------------
    def run(self) -> None:
        model = self.model()
        messages = self.conversation(self.system_prompt())
        options = self.options()
        if self.streams_to_message():
            self.deliver(model_text(model, messages, options))
        else:
            self.deliver(None, model.complete(messages, options).text)


def model_text(model: ChatModel, messages: list[ChatMessage], options: ChatOptions) -> Iterator[str]:
    """The model's answer as text pieces (nothing is sent before the first piece is asked for)."""
    stream = model.stream(messages, options)
    try:
        for delta in stream:
            if delta.text:
                yield delta.text
    finally:
        stream.close()
