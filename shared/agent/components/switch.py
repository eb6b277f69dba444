"""Switch: conditions on variables choose the branch; the first condition that holds wins, otherwise the
``end_cpn_ids`` (the "else" branch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.agent.components.base import Component, ComponentParams
from shared.agent.errors import DslError
from shared.agent.variables import bare_reference

Operator = Literal[
    "contains", "not contains", "start with", "end with", "empty", "not empty", "=", "≠", ">", "<", "≥", "≤"
]


class SwitchItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cpn_id: str
    operator: Operator
    value: Any = ""


class SwitchCondition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    logical_operator: Literal["and", "or"] = "and"
    items: list[SwitchItem] = Field(default_factory=list)
    to: list[str] = Field(default_factory=list)


class SwitchParams(ComponentParams):
    conditions: list[SwitchCondition] = Field(default_factory=list)
    end_cpn_ids: list[str] = Field(default_factory=list)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def holds(left: Any, operator: str, right: Any) -> bool:
    """RAGFlow's comparison of a variable's value with a condition's value (text compared case-insensitively,
    numbers as numbers when both sides read as numbers)."""
    if operator == "empty":
        return not left
    if operator == "not empty":
        return bool(left)
    if operator in ("contains", "not contains"):
        if isinstance(left, list):
            found = any(str(item).lower() == str(right).lower() for item in left)
        else:
            found = str(right).lower() in str(left if left is not None else "").lower()
        return found if operator == "contains" else not found
    text = str(left if left is not None else "").lower()
    if operator == "start with":
        return text.startswith(str(right).lower())
    if operator == "end with":
        return text.endswith(str(right).lower())
    a, b = _number(left), _number(right)
    if operator in ("=", "≠"):
        same = a == b if a is not None and b is not None else text == str(right).lower()
        return same if operator == "=" else not same
    if a is None or b is None:
        return False  # an order between non-numbers is not defined
    return {">": a > b, "<": a < b, "≥": a >= b, "≤": a <= b}[operator]


class Switch(Component):
    component_name = "Switch"
    Params = SwitchParams
    params: SwitchParams

    @classmethod
    def check(cls, cid: str, params: ComponentParams, components: Mapping[str, Mapping[str, Any]]) -> None:
        super().check(cid, params, components)
        assert isinstance(params, SwitchParams)
        targets = [t for c in params.conditions for t in c.to] + params.end_cpn_ids
        missing = [t for t in targets if t not in components]
        if missing:
            raise DslError(f"Component '{cid}' (Switch): branches lead to unknown components: {', '.join(missing)}")
        for condition in params.conditions:
            for item in condition.items:
                if bare_reference(item.cpn_id) is None:
                    raise DslError(f"Component '{cid}' (Switch): `{item.cpn_id}` is not a variable reference.")

    def run(self) -> None:
        chosen = self.params.end_cpn_ids
        for condition in self.params.conditions:
            results = []
            for item in condition.items:
                reference = bare_reference(item.cpn_id) or item.cpn_id
                results.append(holds(self.value(reference), item.operator, item.value))
            if results and (all(results) if condition.logical_operator == "and" else any(results)):
                chosen = condition.to
                break
        self.set_output("_next", list(chosen))
        self.set_output("next", [self.canvas.name_of(target) for target in chosen])

    def next_ids(self) -> list[str]:
        return list(self.output("_next") or [])
