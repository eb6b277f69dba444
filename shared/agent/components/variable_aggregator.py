"""VariableAggregator: after branches meet, each group's output is the first of its variables that has a
value (the branch that ran)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.agent.components.base import Component, ComponentParams
from shared.agent.variables import bare_reference


class AggregatedVariable(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: str


class VariableGroup(BaseModel):
    model_config = ConfigDict(extra="ignore")

    group_name: str
    variables: list[AggregatedVariable] = Field(default_factory=list)


class VariableAggregatorParams(ComponentParams):
    groups: list[VariableGroup] = Field(default_factory=list)


class VariableAggregator(Component):
    component_name = "VariableAggregator"
    Params = VariableAggregatorParams
    params: VariableAggregatorParams

    def run(self) -> None:
        for group in self.params.groups:
            found = None
            for variable in group.variables:
                value = self.value(bare_reference(variable.value) or variable.value)
                if value not in (None, "", [], {}):
                    found = value
                    break
            self.set_output(group.group_name, found)
