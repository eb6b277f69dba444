"""The components a canvas may hold, by their DSL ``component_name``."""

from __future__ import annotations

from shared.agent.components.agent import Agent
from shared.agent.components.base import Component
from shared.agent.components.begin import Begin
from shared.agent.components.categorize import Categorize
from shared.agent.components.iteration import Iteration, IterationItem
from shared.agent.components.llm import LLM
from shared.agent.components.message import Message
from shared.agent.components.retrieval import Retrieval
from shared.agent.components.string_transform import StringTransform
from shared.agent.components.switch import Switch
from shared.agent.components.variable_aggregator import VariableAggregator

COMPONENTS: dict[str, type[Component]] = {
    cls.component_name: cls
    for cls in (
        Begin,
        Message,
        LLM,
        Agent,
        Retrieval,
        Categorize,
        Switch,
        VariableAggregator,
        StringTransform,
        Iteration,
        IterationItem,
    )
}

__all__ = ["COMPONENTS", "Component"]
