"""Iteration and IterationItem: run the components inside an Iteration once per item of a list.

The IterationItem is the loop's entry: each visit hands out the next item (``item``, ``index``) and
collects what the previous pass produced into the Iteration's outputs (``outputs: {name: {ref}}``); when
the list is exhausted the Iteration finishes and its downstream runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.agent.components.base import Component, ComponentParams
from shared.agent.errors import ComponentError, DslError
from shared.agent.variables import bare_reference

#: Longest list an Iteration walks; a longer one is refused rather than run for minutes.
MAX_ITEMS = 200


class IterationOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ref: str = ""
    type: str = "Array<string>"


class IterationParams(ComponentParams):
    items_ref: str = ""
    outputs: dict[str, IterationOutput] = Field(default_factory=dict)


class Iteration(Component):
    component_name = "Iteration"
    Params = IterationParams
    params: IterationParams

    @classmethod
    def check(cls, cid: str, params: ComponentParams, components: Mapping[str, Mapping[str, Any]]) -> None:
        super().check(cid, params, components)
        assert isinstance(params, IterationParams)
        if bare_reference(params.items_ref) is None:
            raise DslError(f"Component '{cid}' (Iteration): `items_ref` should name the list to iterate over.")
        starts = [
            k
            for k, c in components.items()
            if c.get("parent_id") == cid and (c.get("obj") or {}).get("component_name") == "IterationItem"
        ]
        if len(starts) != 1:
            raise DslError(f"Component '{cid}' (Iteration): it needs exactly one IterationItem inside it.")

    def start(self) -> str:
        """The IterationItem that begins each pass."""
        return self.canvas.iteration_start(self.id)

    def items(self) -> list[Any]:
        reference = bare_reference(self.params.items_ref) or self.params.items_ref
        items = self.value(reference)
        if not isinstance(items, list):
            raise ComponentError(f"{reference} must be an array, but its type is {type(items).__name__}.")
        if len(items) > MAX_ITEMS:
            raise ComponentError(f"{reference} has {len(items)} items; an Iteration takes at most {MAX_ITEMS}.")
        return items

    def run(self) -> None:
        self.items()
        for name in self.params.outputs:
            self.set_output(name, [])

    def collect(self) -> None:
        """Append what the last pass produced to the outputs that name a component inside."""
        for name, spec in self.params.outputs.items():
            reference = bare_reference(spec.ref)
            if reference is None or "@" not in reference:
                continue
            cid = reference.partition("@")[0]
            if self.canvas.parent_of(cid) != self.id:
                continue
            collected = list(self.output(name) or [])
            collected.append(self.canvas.value(reference))
            self.set_output(name, collected)


class IterationItem(Component):
    component_name = "IterationItem"
    Params = ComponentParams
    position = 0
    finished = False

    @classmethod
    def check(cls, cid: str, params: ComponentParams, components: Mapping[str, Mapping[str, Any]]) -> None:
        super().check(cid, params, components)
        parent = components.get(str(components[cid].get("parent_id") or ""))
        if parent is None or (parent.get("obj") or {}).get("component_name") != "Iteration":
            raise DslError(f"Component '{cid}' (IterationItem): it must be inside an Iteration (`parent_id`).")

    def reset(self) -> None:
        super().reset()
        self.position = 0
        self.finished = False

    def parent(self) -> Iteration:
        parent = self.canvas.component(self.canvas.parent_of(self.id) or "")
        if not isinstance(parent, Iteration):
            raise ComponentError(f"The IterationItem {self.id} is not inside an Iteration.")
        return parent

    def run(self) -> None:
        parent = self.parent()
        items = parent.items()
        if self.position > 0:
            parent.collect()
        if self.position >= len(items):
            self.finished = True
            self.position = 0
            return
        self.finished = False
        self.set_output("item", items[self.position])
        self.set_output("index", self.position)
        self.position += 1
