"""Message: the text the user sees. Its template's variables are filled in; a variable holding a model's
answer still being produced is streamed piece by piece, so the user sees tokens as they come."""

from __future__ import annotations

import random
from collections.abc import Iterator

from pydantic import Field, field_validator

from shared.agent.components.base import Component, ComponentParams
from shared.agent.stream import TextStream
from shared.agent.variables import render, split_template


class MessageParams(ComponentParams):
    content: list[str] = Field(default_factory=list)
    stream: bool = True

    @field_validator("content", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Message(Component):
    component_name = "Message"
    Params = MessageParams
    params: MessageParams

    def run(self) -> None:
        # RAGFlow picks one of the templates at random (variety in canned answers).
        template = random.choice(self.params.content) if self.params.content else ""
        pieces = list(split_template(template))
        values = {piece: self.canvas.value(piece) for piece, is_ref in pieces if is_ref}
        self.inputs.update({k: v for k, v in values.items() if not isinstance(v, TextStream)})
        if self.params.stream and any(isinstance(v, TextStream) for v in values.values()):

            def produce() -> Iterator[str]:
                for piece, is_ref in pieces:
                    if not is_ref:
                        yield piece
                        continue
                    value = values[piece]
                    if isinstance(value, TextStream):
                        yield from value
                        self.inputs[piece] = value.text()
                    else:
                        yield render(value)

            self.set_output("content", TextStream(self.id, produce, lambda text: self.set_output("content", text)))
            return
        resolved = {key: value.text() if isinstance(value, TextStream) else value for key, value in values.items()}
        self.inputs.update(resolved)
        self.set_output("content", "".join(render(resolved[piece]) if is_ref else piece for piece, is_ref in pieces))
