"""The canvas DSL: what an agent is made of, checked when it is created or updated so a DSL that cannot run
is refused then, never accepted and failed later.

    {"components": {"<id>": {"obj": {"component_name": "...", "params": {...}},
                             "downstream": [...], "upstream": [...], "parent_id": "<iteration id>"?}},
     "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": []},
     "history": [], "path": [], "retrieval": [], "graph": {...UI layout...}, ...}

A session runs on its own copy of the DSL, where the conversation's state (history, globals, path, the
Begin inputs' values) is kept between turns, as RAGFlow does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from shared.agent.components import COMPONENTS
from shared.agent.errors import DslError

BEGIN_ID = "begin"
SUPPORTED_COMPONENTS = tuple(COMPONENTS)


def default_globals() -> dict[str, Any]:
    return {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": []}


def _ids(value: Any, cid: str, key: str, components: Mapping[str, Any]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DslError(f"Component '{cid}': `{key}` should be a list of component ids.")
    missing = [item for item in value if item not in components]
    if missing:
        raise DslError(f"Component '{cid}': `{key}` names unknown components: {', '.join(missing)}")
    return value


def validate_dsl(dsl: Any) -> dict[str, Any]:
    """The DSL, checked: every component supported and well-formed, edges between existing components, a
    Begin component with the id ``begin``. Raises DslError with a message fit for the API's user."""
    if not isinstance(dsl, Mapping):
        raise DslError("`dsl` should be an object.")
    components = dsl.get("components")
    if not isinstance(components, Mapping) or not components:
        raise DslError("The DSL has no `components`.")
    names: dict[str, str] = {}
    for cid, entry in components.items():
        obj = entry.get("obj") if isinstance(entry, Mapping) else None
        name = obj.get("component_name") if isinstance(obj, Mapping) else None
        if not isinstance(name, str) or not name:
            raise DslError(f"Component '{cid}' has no `obj.component_name`.")
        if name not in COMPONENTS:
            raise DslError(f"Component '{name}' is not supported")
        names[cid] = name
    if names.get(BEGIN_ID) != "Begin":
        raise DslError("The DSL needs a Begin component with the id `begin`.")
    parsed = {}
    for cid, name in names.items():
        entry = components[cid]
        params = entry["obj"].get("params")
        parsed[cid] = COMPONENTS[name].parse(cid, {} if params is None else params)
        _ids(entry.get("downstream"), cid, "downstream", components)
        _ids(entry.get("upstream"), cid, "upstream", components)
        parent = entry.get("parent_id")
        if parent not in (None, "") and parent not in components:
            raise DslError(f"Component '{cid}': `parent_id` names an unknown component: {parent}")
    for cid, name in names.items():
        COMPONENTS[name].check(cid, parsed[cid], components)
    for key, kind in (("globals", Mapping), ("history", list), ("path", list), ("retrieval", list)):
        if key in dsl and dsl[key] is not None and not isinstance(dsl[key], kind):
            raise DslError(f"`dsl.{key}` should be {'an object' if kind is Mapping else 'a list'}.")
    return dict(dsl)


def session_dsl(dsl: Mapping[str, Any], task_id: str, begin_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A fresh copy of an agent's DSL for a new session: no history, globals reset, the Begin inputs given
    at the session's creation kept as their values."""
    state = copy.deepcopy(dict(dsl))
    state["globals"] = {**_reset_globals(state.get("globals")), **default_globals()}
    state.update(history=[], path=[], retrieval=[], messages=[], memory=[], task_id=task_id)
    inputs = begin_inputs(state)
    for key, value in (begin_values or {}).items():
        if key in inputs and isinstance(inputs[key], dict):
            inputs[key]["value"] = value
    return state


def begin_inputs(dsl: Mapping[str, Any]) -> dict[str, Any]:
    """The Begin component's declared inputs (``{key: {name, type, optional, options, value}}``)."""
    params: dict[str, Any] = dsl["components"][BEGIN_ID]["obj"].setdefault("params", {})
    inputs = params.get("inputs")
    if not isinstance(inputs, dict):
        inputs = params["inputs"] = {}
    return inputs


def _reset_globals(current: Any) -> dict[str, Any]:
    """Conversation variables keep their names with empty values of their kind (RAGFlow's reset)."""
    reset: dict[str, Any] = {}
    for key, value in (current or {}).items():
        if isinstance(value, bool):
            reset[key] = False
        elif isinstance(value, int | float):
            reset[key] = 0
        elif isinstance(value, str):
            reset[key] = ""
        elif isinstance(value, list):
            reset[key] = []
        elif isinstance(value, dict):
            reset[key] = {}
        else:
            reset[key] = None
    return reset
