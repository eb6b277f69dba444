"""A small interpreter of the Amazon States Language, enough to run the synthesized parse state machine
in-process against the real step handlers (Step Functions has no local engine here, and moto's only
records executions).

It implements what the definition uses, as the service documents it: Task (``lambda:invoke`` with
``Parameters``, ``OutputPath``, ``Catch`` with ``ResultPath``), Map (``ItemsPath``, ``ItemSelector``
with the ``$$.Map.Item.Value`` context path, an inline ``ItemProcessor``, ``ResultPath``), Succeed and
Fail (``ErrorPath``/``CausePath``). Any other field makes it refuse the state rather than guess. Retries
are not replayed (a transient error is not simulated); errors are named like Lambda names a Python
exception (its class name) with the cause ``{"errorMessage", "errorType"}``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Invoke = Callable[[str, dict[str, Any]], Any]
"""Calls the function named by a Task's FunctionName with the payload; returns its result or raises."""

_KNOWN = {
    "Task": {"Type", "Resource", "Parameters", "OutputPath", "Retry", "Catch", "Next", "End", "Comment"},
    "Map": {
        "Type",
        "ItemsPath",
        "ItemSelector",
        "ItemProcessor",
        "MaxConcurrency",
        "ResultPath",
        "Catch",
        "Next",
        "End",
        "Comment",
    },
    "Succeed": {"Type", "Comment"},
    "Fail": {"Type", "ErrorPath", "CausePath", "Error", "Cause", "Comment"},
}


class StatesError(Exception):
    """An error raised inside the state machine, by name (``States.*`` or a Lambda errorType)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass
class Execution:
    status: str  # SUCCEEDED or FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    #: Names of the states entered, in order (iterations' states included).
    visited: list[str] = field(default_factory=list)


def _path(document: Any, path: str, context: Mapping[str, Any]) -> Any:
    if path.startswith("$$"):
        document, path = context, path[1:]
    if path == "$":
        return document
    if not path.startswith("$."):
        raise ValueError(f"unsupported path {path!r}")
    for part in path[2:].split("."):
        document = document[part]
    return document


def _with_result(state_input: Any, result: Any, result_path: str | None) -> Any:
    if result_path is None:  # ResultPath: null keeps the input as it was
        return state_input
    if result_path == "$":
        return result
    if not result_path.startswith("$.") or "." in result_path[2:]:
        raise ValueError(f"unsupported ResultPath {result_path!r}")
    return {**state_input, result_path[2:]: result}


def _template(template: Mapping[str, Any], state_input: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters / ItemSelector: keys ending in '.$' take the value at their path."""
    return {
        (key[:-2] if key.endswith(".$") else key): (_path(state_input, value, context) if key.endswith(".$") else value)
        for key, value in template.items()
    }


class StateMachine:
    def __init__(self, definition: Mapping[str, Any], invoke: Invoke) -> None:
        self._definition = definition
        self._invoke = invoke

    def run(self, execution_input: Any) -> Execution:
        execution = Execution(status="RUNNING")
        try:
            execution.output = self._run(self._definition, copy.deepcopy(execution_input), execution, {})
            execution.status = "SUCCEEDED"
        except StatesError as exc:
            execution.status, execution.error, execution.cause = "FAILED", exc.error, exc.cause
        return execution

    def _run(self, machine: Mapping[str, Any], data: Any, execution: Execution, context: Mapping[str, Any]) -> Any:
        name = machine["StartAt"]
        while True:
            state = machine["States"][name]
            unknown = set(state) - _KNOWN[state["Type"]]
            if unknown:
                raise NotImplementedError(f"state {name}: {sorted(unknown)}")
            execution.visited.append(name)
            if state["Type"] == "Succeed":
                return data
            if state["Type"] == "Fail":
                error = _path(data, state["ErrorPath"], context) if "ErrorPath" in state else state.get("Error")
                cause = _path(data, state["CausePath"], context) if "CausePath" in state else state.get("Cause")
                raise StatesError(str(error), str(cause))
            try:
                data = (
                    self._task(state, data, context) if state["Type"] == "Task" else self._map(state, data, execution)
                )
            except StatesError as exc:
                catcher = next(
                    (
                        c
                        for c in state.get("Catch", [])
                        if exc.error in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"]
                    ),
                    None,
                )
                if catcher is None:
                    raise
                failure = {"Error": exc.error, "Cause": exc.cause}
                data, name = _with_result(data, failure, catcher.get("ResultPath", "$")), catcher["Next"]
                continue
            if state.get("End"):
                return data
            name = state["Next"]

    def _task(self, state: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> Any:
        if not state["Resource"].endswith(":states:::lambda:invoke"):
            raise NotImplementedError(state["Resource"])
        parameters = _template(state["Parameters"], data, context)
        payload = json.loads(json.dumps(parameters["Payload"]))  # Lambda gets JSON
        try:
            returned = self._invoke(parameters["FunctionName"], payload)
        except Exception as exc:  # a function error, named as Lambda names it
            name = type(exc).__name__
            raise StatesError(name, json.dumps({"errorMessage": str(exc), "errorType": name})) from exc
        result = {"Payload": json.loads(json.dumps(returned)), "StatusCode": 200}
        return _path(result, state.get("OutputPath", "$"), context)

    def _map(self, state: Mapping[str, Any], data: Any, execution: Execution) -> Any:
        processor = state["ItemProcessor"]
        if processor.get("ProcessorConfig", {}).get("Mode", "INLINE") != "INLINE":
            raise NotImplementedError("only inline Map states")
        results = []
        for index, item in enumerate(_path(data, state.get("ItemsPath", "$"), {})):
            context = {"Map": {"Item": {"Index": index, "Value": item}}}
            selector = state.get("ItemSelector")
            item_input = _template(selector, data, context) if selector else item
            results.append(self._run(processor, item_input, execution, context))
        return _with_result(data, results, state.get("ResultPath", "$"))


def definition_in_template(template: Mapping[str, Any], logical_id: str | None = None) -> dict[str, Any]:
    """A state machine's definition in a synthesized template (the one there is, or ``logical_id``'s), each
    intrinsic (``Fn::GetAtt`` of a function's ARN, ``Ref`` of the partition) replaced by the logical id or
    pseudo parameter it names."""
    (machine,) = [
        r
        for key, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and logical_id in (None, key)
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]

    def resolve(token: Mapping[str, Any]) -> str:
        return str(token["Fn::GetAtt"][0] if "Fn::GetAtt" in token else token["Ref"])

    definition: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else resolve(p) for p in parts))
    return definition
