"""StringTransform: ``split`` a text variable on delimiters into a list, or ``merge`` variables into a text
through a template (lists joined with the first delimiter)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from shared.agent.components.base import Component, ComponentParams
from shared.agent.errors import ComponentError
from shared.agent.variables import bare_reference, render, substitute


class StringTransformParams(ComponentParams):
    method: Literal["split", "merge"] = "split"
    split_ref: str = ""
    script: str = ""
    delimiters: list[str] = Field(default_factory=lambda: [","])


class StringTransform(Component):
    component_name = "StringTransform"
    Params = StringTransformParams
    params: StringTransformParams

    def run(self) -> None:
        delimiters = [d for d in self.params.delimiters if d] or [","]
        if self.params.method == "split":
            reference = bare_reference(self.params.split_ref)
            if reference is None:
                raise ComponentError("StringTransform needs `split_ref`, the variable to split.")
            text = self.value(reference)
            if text is None:
                text = ""
            if not isinstance(text, str):
                raise ComponentError(f"The variable {reference} is not a text: {type(text).__name__}.")
            pattern = "|".join(re.escape(d) for d in delimiters)
            self.set_output("result", [part for part in re.split(pattern, text) if part.strip()])
            return

        def joined(reference: str) -> str:
            value = self.value(reference)
            if isinstance(value, list):
                return delimiters[0].join(render(item) for item in value)
            return render(value)

        self.set_output("result", substitute(self.params.script, joined))
