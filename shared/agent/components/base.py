"""The component interface: one small class per component of RAGFlow's canvas DSL.

A component is built from its DSL entry (``obj.params``, read by its pydantic ``Params`` model, which
ignores the many UI-only keys RAGFlow stores there). The canvas invokes it once per visit; it reads
variables through the canvas, records what it read as its ``inputs`` and writes its ``outputs``. Branching
components say which components come next (:meth:`Component.next_ids`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from shared.agent.errors import ComponentError, DslError
from shared.agent.stream import TextStream
from shared.agent.variables import bare_reference, render, substitute
from shared.ports.chat_model import ChatModelError

if TYPE_CHECKING:
    from shared.agent.canvas import Canvas

#: Retries of a failing component are bounded whatever the DSL asks, and so is the wait between them.
MAX_RETRIES = 3
MAX_RETRY_DELAY_S = 5.0


def _null_is_empty(value: Any) -> Any:
    return "" if value is None else value


#: A text parameter a DSL may hold as null, read as empty (RAGFlow's components treat both alike).
NullIsEmpty = Annotated[str, BeforeValidator(_null_is_empty)]


class ComponentParams(BaseModel):
    """Parameters every component has: RAGFlow's error handling (retry, go elsewhere, or answer a default)."""

    model_config = ConfigDict(extra="ignore")

    max_retries: int = Field(0, ge=0)
    delay_after_error: float = Field(2.0, ge=0)
    exception_method: str | None = None
    exception_default_value: str | None = None
    exception_goto: list[str] | None = None


class Component(ABC):
    """One node of the canvas."""

    #: The DSL's ``component_name``.
    component_name: ClassVar[str]
    #: The model reading ``obj.params``.
    Params: ClassVar[type[ComponentParams]] = ComponentParams

    def __init__(self, canvas: Canvas, cid: str, params: ComponentParams) -> None:
        self.canvas = canvas
        self.id = cid
        self.params = params
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.error: str | None = None
        self.created = 0.0

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def parse(cls, cid: str, raw: Any) -> ComponentParams:
        """The component's parameters, or a DslError naming the component and the problem."""
        if not isinstance(raw, Mapping):
            raise DslError(f"Component '{cid}' ({cls.component_name}): `params` should be an object.")
        try:
            return cls.Params.model_validate(dict(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "params"
            raise DslError(f"Component '{cid}' ({cls.component_name}): `{field}` - {first['msg']}") from None

    @classmethod
    def check(cls, cid: str, params: ComponentParams, components: Mapping[str, Mapping[str, Any]]) -> None:
        """Checks across components (branch targets exist ...); DslError when one fails."""
        goto = params.exception_goto or []
        if params.exception_method == "goto":
            missing = [target for target in goto if target not in components]
            if missing:
                raise DslError(f"Component '{cid}': `exception_goto` names unknown components: {', '.join(missing)}")

    # -- running ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.inputs = {}
        self.outputs = {}
        self.error = None

    def invoke(self) -> None:
        """Run once, retrying as the parameters allow; a failure is kept in :attr:`error`, not raised."""
        self.created = time.perf_counter()
        self.error = None
        attempts = 1 + min(self.params.max_retries, MAX_RETRIES)
        for attempt in range(attempts):
            try:
                self.run()
                self.error = None
                break
            except ChatModelError as exc:
                self.error = exc.message
            except ComponentError as exc:
                self.error = exc.message
            if attempt + 1 < attempts:
                time.sleep(min(self.params.delay_after_error, MAX_RETRY_DELAY_S))
        self.outputs["_created_time"] = self.created
        self.outputs["_elapsed_time"] = time.perf_counter() - self.created
        if self.error is not None:
            self.outputs["_ERROR"] = self.error

    @abstractmethod
    def run(self) -> None:
        """Do the component's work. Raise ComponentError (or ChatModelError) on failure."""

    def next_ids(self) -> list[str] | None:
        """The components to run next, for branching components; None means "my downstream"."""
        return None

    # -- outputs and variables ---------------------------------------------------------------------
    def output(self, name: str) -> Any:
        return self.outputs.get(name)

    def set_output(self, name: str, value: Any) -> None:
        self.outputs[name] = value

    def outputs_view(self) -> dict[str, Any]:
        """Outputs as events show them: a text still streaming shows what has arrived."""
        return {
            name: value.so_far() if isinstance(value, TextStream) else value
            for name, value in self.outputs.items()
            if name != "_ERROR"
        }

    def value(self, reference: str) -> Any:
        """The value of a variable, recorded among this component's inputs."""
        value = self.canvas.value(reference)
        self.inputs[reference] = value
        return value

    def fill(self, template: str) -> str:
        """``template`` with its variables replaced by their values as text."""
        return substitute(template, lambda reference: render(self.value(reference)))

    def resolve(self, parameter: Any) -> Any:
        """A parameter that may hold a single reference (``"sys.query"``) or a template, as a value."""
        reference = bare_reference(parameter)
        if reference is not None:
            return self.value(reference)
        if isinstance(parameter, str):
            return self.fill(parameter)
        return parameter
