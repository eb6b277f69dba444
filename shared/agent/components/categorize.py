"""Categorize: a chat model sorts the query into one of the described categories, and the canvas goes on
with that category's components. The category the answer names most often wins; an answer naming none
falls to the last category (by convention the catch-all)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.agent.components.base import ComponentParams
from shared.agent.components.llm import LLM, LLMParams
from shared.agent.errors import DslError
from shared.agent.variables import render
from shared.ports.chat_model import ChatMessage


class Category(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str = ""
    examples: list[str] = Field(default_factory=list)
    to: list[str] = Field(default_factory=list)

    @field_validator("examples", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [line for line in value.splitlines() if line.strip()]
        # The UI stores examples as [{"value": "..."}].
        return [item.get("value", "") if isinstance(item, Mapping) else item for item in value]

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value


class CategorizeParams(LLMParams):
    query: str = "sys.query"
    category_description: dict[str, Category] = Field(default_factory=dict)
    message_history_window_size: int = Field(1, ge=0)
    temperature: float | None = Field(0.1, ge=0, le=2)


class Categorize(LLM):
    component_name = "Categorize"
    Params = CategorizeParams
    params: CategorizeParams

    @classmethod
    def check(cls, cid: str, params: ComponentParams, components: Mapping[str, Mapping[str, Any]]) -> None:
        super().check(cid, params, components)
        assert isinstance(params, CategorizeParams)
        if not params.category_description:
            raise DslError(f"Component '{cid}' (Categorize): `category_description` needs at least one category.")
        missing = [t for c in params.category_description.values() for t in c.to if t not in components]
        if missing:
            raise DslError(
                f"Component '{cid}' (Categorize): categories lead to unknown components: {', '.join(missing)}"
            )

    def classification_prompt(self) -> str:
        lines = [
            "You are a classifier. Read the user's message and decide which one of the categories below it belongs to.",
            "",
            "Categories:",
        ]
        for name, category in self.params.category_description.items():
            lines.append(f"- {name}: {category.description}".rstrip(": "))
            lines.extend(f"  Example: {example}" for example in category.examples if example.strip())
        lines += ["", "Answer with the name of one category and nothing else."]
        extra = self.fill(self.params.sys_prompt)
        if extra.strip():
            lines += ["", extra]
        return "\n".join(lines)

    def run(self) -> None:
        query = render(self.resolve(self.params.query or "sys.query"))
        messages = [ChatMessage("system", self.classification_prompt())]
        messages += self.canvas.history_messages(self.params.message_history_window_size)
        messages.append(ChatMessage("user", query))
        answer = self.model().complete(messages, self.options()).text.lower()
        names = list(self.params.category_description)
        counts = {name: answer.count(name.lower()) for name in names}
        chosen = max(names, key=lambda name: counts[name]) if any(counts.values()) else names[-1]
        self.set_output("category_name", chosen)
        self.set_output("_next", list(self.params.category_description[chosen].to))

    def next_ids(self) -> list[str]:
        return list(self.output("_next") or [])

    def streams_to_message(self) -> bool:
        return False
