"""Begin: where every run starts. Its ``inputs`` declare the variables a run may be given (``begin@name``);
its ``prologue`` is the assistant's first message of a session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.agent.components.base import Component, ComponentParams
from shared.agent.errors import InputError

DEFAULT_PROLOGUE = "Hi! I'm your assistant. What can I do for you?"
InputType = Literal["line", "paragraph", "options", "integer", "float", "number", "boolean", "file"]


class BeginInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = ""
    type: InputType = "line"
    optional: bool = False
    options: list[Any] = Field(default_factory=list)
    value: Any = None


class BeginParams(ComponentParams):
    mode: str = "conversational"
    prologue: str = DEFAULT_PROLOGUE
    enablePrologue: bool = True
    inputs: dict[str, BeginInput] = Field(default_factory=dict)


def _given(value: Any) -> Any:
    """RAGFlow sends inputs as ``{"type": ..., "value": ...}``; a bare value is taken as the value."""
    if isinstance(value, Mapping) and "value" in value:
        return value["value"]
    return value


def coerce_input(key: str, spec: BeginInput, value: Any) -> Any:
    """A given input value checked against its declaration; InputError names the input and the problem."""
    if value is None or value == "":
        return value
    if spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InputError(f"The input `{key}` should be an integer.")
        try:
            return int(value)
        except ValueError:
            raise InputError(f"The input `{key}` should be an integer.") from None
    if spec.type in ("float", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InputError(f"The input `{key}` should be a number.")
        try:
            return float(value)
        except ValueError:
            raise InputError(f"The input `{key}` should be a number.") from None
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InputError(f"The input `{key}` should be a boolean.")
    if spec.type == "options" and spec.options and value not in spec.options:
        raise InputError(f"The input `{key}` should be one of: {', '.join(map(str, spec.options))}.")
    if spec.type == "file":
        raise InputError(f"The input `{key}` is a file; file inputs are not supported by this API.")
    if spec.type in ("line", "paragraph", "options") and not isinstance(value, str | int | float):
        raise InputError(f"The input `{key}` should be a string.")
    return value


class Begin(Component):
    component_name = "Begin"
    Params = BeginParams
    params: BeginParams

    @property
    def prologue(self) -> str:
        return self.params.prologue if self.params.enablePrologue else ""

    def merge_inputs(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The values of this run: the session's (kept in the declarations' ``value`` from earlier turns or
        the session's creation) with the ones given now laid over.

        Declared inputs are checked, and a required one that has no value is refused. Undeclared ones pass as
        RAGFlow lets them (``begin@<name>`` then reads them).
        """
        values = {key: spec.value for key, spec in self.params.inputs.items() if spec.value is not None}
        for key, raw in (given or {}).items():
            value = _given(raw)
            spec = self.params.inputs.get(key)
            values[key] = coerce_input(key, spec, value) if spec is not None else value
        for key, spec in self.params.inputs.items():
            if not spec.optional and values.get(key) in (None, ""):
                raise InputError(f"The input `{key}` of the Begin component is required.")
        return values

    def run(self) -> None:
        for key, value in self.canvas.begin_values.items():
            self.inputs[key] = value
            self.set_output(key, value)
