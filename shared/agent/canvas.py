"""The canvas executor: runs an agent's DSL for one turn of a conversation, as RAGFlow's canvas does.

A run walks a ``path`` of component ids, in batches: every component of a batch runs (in parallel when
there are several), then each adds its next components to the path — its downstream, or the branch a
Categorize or Switch chose, or the loop of an Iteration. A component already waiting on the path is not
added twice, and a component whose upstream may still run (a merge of branches of unequal length) waits
for it. The run yields RAGFlow's events (``workflow_started``, ``node_started``, ``message``,
``message_end``, ``node_finished``, ``workflow_finished``); a Message showing a model's answer yields its
tokens as they arrive. A failing component ends the run with its error (unless its parameters send the
run elsewhere or answer a default), after what was already said.

Conversation state — ``history``, ``globals`` (``sys.query``, ``sys.conversation_turns`` ...), the path,
the last turn's reference and the Begin inputs' values — lives in the DSL a session keeps (:meth:`state`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.agent.components import COMPONENTS, Component
from shared.agent.components.begin import Begin
from shared.agent.components.categorize import Categorize
from shared.agent.components.iteration import Iteration, IterationItem
from shared.agent.components.message import Message
from shared.agent.components.switch import Switch
from shared.agent.dsl import BEGIN_ID, begin_inputs, default_globals
from shared.agent.errors import ComponentError, DslError, StreamFailure
from shared.agent.reference import Reference, cites
from shared.agent.runtime import Runtime
from shared.agent.stream import TextStream
from shared.agent.variables import dig
from shared.ids import new_id
from shared.ports.chat_model import ChatMessage

#: Component visits one run may make; a DSL looping for ever is stopped with an error.
MAX_STEPS = 500
#: Components run at once in one batch.
MAX_PARALLEL = 5
#: Path entries kept in a session's state (the path only grows; older turns' entries are of no use).
MAX_KEPT_PATH = 1000
ERROR_PREFIX = "**ERROR**: "

Event = dict[str, Any]


def _jsonable(value: Any) -> Any:
    """Event data as JSON can carry it (a text still streaming shows what arrived)."""
    if isinstance(value, TextStream):
        return value.so_far()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class Canvas:
    """One agent DSL loaded for running. Not thread-safe: one run at a time (a session's turn)."""

    def __init__(self, dsl: Mapping[str, Any], runtime: Runtime, task_id: str) -> None:
        self.dsl = copy.deepcopy(dict(dsl))
        self.runtime = runtime
        self.task_id = task_id
        raw = self.dsl.get("components")
        if not isinstance(raw, Mapping) or BEGIN_ID not in raw:
            raise DslError("The DSL needs a Begin component with the id `begin`.")
        self._entries: dict[str, dict[str, Any]] = dict(raw)
        self._components: dict[str, Component] = {}
        for cid, entry in self._entries.items():
            name = entry["obj"]["component_name"]
            cls = COMPONENTS.get(name)
            if cls is None:
                raise DslError(f"Component '{name}' is not supported")
            self._components[cid] = cls(self, cid, cls.parse(cid, entry["obj"].get("params") or {}))
        self._names = {
            str(node.get("id")): str((node.get("data") or {}).get("name") or node.get("id"))
            for node in (self.dsl.get("graph") or {}).get("nodes") or []
            if isinstance(node, Mapping)
        }
        self._downstream = {cid: list(entry.get("downstream") or []) for cid, entry in self._entries.items()}
        upstream: dict[str, set[str]] = {cid: set(entry.get("upstream") or []) for cid, entry in self._entries.items()}
        for cid, targets in self._downstream.items():
            for target in targets:
                upstream.setdefault(target, set()).add(cid)
        self._upstream = upstream
        self._reach = self._reachability()
        self.globals: dict[str, Any] = {**default_globals(), **dict(self.dsl.get("globals") or {})}
        self.history: list[list[str]] = [list(turn) for turn in self.dsl.get("history") or []]
        self.path: list[str] = list(self.dsl.get("path") or [])
        self.reference = Reference()
        self.begin_values: dict[str, Any] = {}
        self.error: str | None = None
        self._said: list[str] = []
        self.message_id = ""
        self._cursor = 0

    # -- the graph ---------------------------------------------------------------------------------
    def component(self, cid: str) -> Component:
        component = self._components.get(cid)
        if component is None:
            raise ComponentError(f"Can't find component: '{cid}'")
        return component

    def begin(self) -> Begin:
        begin = self._components[BEGIN_ID]
        assert isinstance(begin, Begin)
        return begin

    @property
    def prologue(self) -> str:
        return self.begin().prologue

    def name_of(self, cid: str) -> str:
        """The name the canvas shows for a component (its node's name in the graph)."""
        return self._names.get(cid, cid)

    def downstream_of(self, cid: str) -> list[str]:
        return self._downstream.get(cid, [])

    def parent_of(self, cid: str) -> str | None:
        parent = self._entries.get(cid, {}).get("parent_id")
        return str(parent) if parent else None

    def iteration_start(self, iteration_id: str) -> str:
        for cid, component in self._components.items():
            if isinstance(component, IterationItem) and self.parent_of(cid) == iteration_id:
                return cid
        raise ComponentError(f"The Iteration {iteration_id} has no IterationItem.")

    def _branch_targets(self, cid: str) -> list[str]:
        component = self._components[cid]
        targets = list(self._downstream.get(cid, []))
        if isinstance(component, Categorize):
            targets += [t for category in component.params.category_description.values() for t in category.to]
        elif isinstance(component, Switch):
            targets += [t for c in component.params.conditions for t in c.to] + component.params.end_cpn_ids
        elif isinstance(component, Iteration):
            targets += [self.iteration_start(cid)]
        goto = component.params.exception_goto or []
        return targets + list(goto)

    def _reachability(self) -> dict[str, set[str]]:
        """For each component, the components a run may reach from it (to know what a merge waits for)."""
        edges = {cid: self._branch_targets(cid) for cid in self._components}
        reach: dict[str, set[str]] = {}
        for start in self._components:
            seen: set[str] = set()
            stack = list(edges[start])
            while stack:
                cid = stack.pop()
                if cid in seen or cid not in edges:
                    continue
                seen.add(cid)
                stack.extend(edges[cid])
            reach[start] = seen
        return reach

    # -- variables ---------------------------------------------------------------------------------
    def value(self, reference: str) -> Any:
        """The value of ``sys.x`` / ``env.x`` or ``component@output[.path]``; a streaming text is drained."""
        if "@" not in reference:
            if reference not in self.globals:
                raise ComponentError(f"Can't find variable: '{reference}'")
            return self.globals[reference]
        cid, _, name = reference.partition("@")
        if cid not in self._components:
            raise ComponentError(f"Can't find variable: '{reference}'")
        root, _, path = name.partition(".")
        value = self._components[cid].output(root)
        if isinstance(value, TextStream) and not path:
            return value  # the consumer decides: a Message streams it, anything else reads its text
        if isinstance(value, TextStream):
            value = value.text()
        return dig(value, path) if path else value

    def history_messages(self, window: int) -> list[ChatMessage]:
        """The last ``window`` exchanges before the current question, as chat messages."""
        if window <= 0:
            return []
        earlier = self.history[:-1] if self.history and self.history[-1][0] == "user" else self.history
        turns = earlier[-2 * window :]
        return [ChatMessage("assistant" if role == "assistant" else "user", str(text)) for role, text in turns]

    # -- a run -------------------------------------------------------------------------------------
    def prepare_inputs(self, given: Mapping[str, Any] | None) -> None:
        """Check and keep the Begin inputs of the next run (InputError before anything runs)."""
        self.begin_values = self.begin().merge_inputs(given)

    def run(self, question: str, user_id: str | None = None) -> Generator[Event, None, None]:
        """Run one turn; yields RAGFlow's events (without ``session_id``, which the caller adds)."""
        started = time.perf_counter()
        self.message_id = message_id = new_id()
        created_at = int(time.time())

        def event(name: str, data: Mapping[str, Any]) -> Event:
            return {
                "event": name,
                "message_id": message_id,
                "created_at": created_at,
                "task_id": self.task_id,
                "data": data,
            }

        self.history.append(["user", question])
        self.globals["sys.query"] = question
        if user_id:
            self.globals["sys.user_id"] = user_id
        self.globals["sys.conversation_turns"] = int(self.globals.get("sys.conversation_turns") or 0) + 1
        for component in self._components.values():
            component.reset()
        self.reference = Reference()
        self.error = None
        self._said = []
        try:
            yield from self._walk(event, started)
        finally:  # also when the client went away: the history keeps what was said
            self.history.append(["assistant", self.answer])

    @property
    def answer(self) -> str:
        """What the run's Messages said so far."""
        return "".join(self._said)

    def _walk(self, event: Callable[[str, Mapping[str, Any]], Event], started: float) -> Iterator[Event]:
        said = self._said
        streaming: list[Component] = []
        yield event("workflow_started", {"inputs": _jsonable(self.begin_values)})

        self.path.append(BEGIN_ID)
        cursor = len(self.path) - 1
        steps = 0
        while cursor < len(self.path) and self.error is None:
            batch = self._ready(cursor)
            self._cursor = cursor + len(batch)
            for cid in batch:
                yield event(
                    "node_started",
                    {
                        "inputs": None,
                        "created_at": int(time.time()),
                        "component_id": cid,
                        "component_name": self.name_of(cid),
                        "component_type": self._components[cid].component_name,
                    },
                )
            self._invoke(batch)
            for cid in batch:
                for name, data in self._after(cid, streaming, said):
                    yield event(name, data)
                if self.error is not None:
                    break
            cursor = self._cursor
            steps += len(batch)
            if steps > MAX_STEPS and self.error is None:
                self.error = f"The agent ran more than {MAX_STEPS} steps; its components may loop for ever."
        for component in streaming:  # answers no Message showed: let them finish, then report them
            stream = component.output("content")
            if isinstance(stream, TextStream) and not stream.done and self.error is None:
                try:
                    stream.text()
                except StreamFailure as failure:
                    component.error = self.error = failure.message
            yield event("node_finished", self._finished(component))

        if self.error is not None:
            yield event("message", {"content": ERROR_PREFIX + self.error})
            yield event("message_end", {"reference": None})
        else:
            last = self._components[self.path[-1]] if self.path else self.begin()
            yield event(
                "workflow_finished",
                {
                    "inputs": _jsonable(self.begin_values),
                    "outputs": _jsonable(last.outputs_view()),
                    "elapsed_time": time.perf_counter() - started,
                    "created_at": started,
                },
            )

    def _ready(self, cursor: int) -> list[str]:
        """The components of the path from ``cursor`` that may run now; those waiting for an upstream that
        another pending component may still lead to are moved behind them."""
        pending = self.path[cursor:]
        ready, waiting = [], []
        for cid in pending:
            others = [other for other in pending if other != cid]
            upstream = self._upstream.get(cid, set())
            if any(up == other or up in self._reach.get(other, ()) for other in others for up in upstream):
                waiting.append(cid)
            else:
                ready.append(cid)
        if not ready:  # a cycle: nobody would ever go first
            return pending
        self.path[cursor:] = ready + waiting
        return ready

    def _invoke(self, batch: list[str]) -> None:
        if len(batch) == 1:
            self._components[batch[0]].invoke()
            return
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(batch))) as pool:
            for future in [pool.submit(self._components[cid].invoke) for cid in batch]:
                future.result()

    def _schedule(self, ids: list[str]) -> None:
        for cid in ids:
            if cid in self._components and cid not in self.path[self._cursor :]:
                self.path.append(cid)

    def _finished(self, component: Component) -> dict[str, Any]:
        created = component.created
        return {
            "inputs": _jsonable(component.inputs),
            "outputs": _jsonable(component.outputs_view()),
            "component_id": component.id,
            "component_name": self.name_of(component.id),
            "component_type": component.component_name,
            "error": component.error,
            "elapsed_time": time.perf_counter() - created if created else 0.0,
            "created_at": created,
        }

    def _after(self, cid: str, streaming: list[Component], said: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """What follows a component's run: its message (streamed), its events, the next components."""
        component = self._components[cid]
        if isinstance(component, Message) and component.error is None:
            yield from self._show(component, streaming, said)
        if self.error is not None:  # the answer it showed broke off
            yield "node_finished", self._finished(component)
            return
        other_way = False
        if component.error is not None:
            method, goto = component.params.exception_method, component.params.exception_goto or []
            default = component.params.exception_default_value
            if method == "goto" and goto:
                self._schedule(list(goto))
                other_way = True
            elif method == "comment" and default:
                component.set_output("content", default)
                said.append(default)
                yield "message", {"content": default}
                yield "message_end", {"reference": None}
            else:
                self.error = component.error
        content = component.output("content")
        if isinstance(content, TextStream) and not content.done and component.error is None:
            streaming.append(component)  # finished once a Message has shown it
        elif not isinstance(component, Iteration) or component.error is not None:
            yield "node_finished", self._finished(component)
        if self.error is not None or other_way:
            return
        if isinstance(component, IterationItem):
            if component.finished:
                parent = component.parent()
                yield "node_finished", self._finished(parent)
                self._schedule(self.downstream_of(parent.id))
            else:
                self._schedule(self.downstream_of(cid))
            return
        chosen = component.next_ids()
        if chosen is not None:
            self._schedule(chosen)
        elif isinstance(component, Iteration):
            self._schedule([component.start()])
        elif not self.downstream_of(cid) and self.parent_of(cid):
            self._schedule([self.iteration_start(str(self.parent_of(cid)))])
        else:
            self._schedule(self.downstream_of(cid))

    def _show(
        self, message: Message, streaming: list[Component], said: list[str]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """A Message's text as ``message`` events (token by token when it streams), then ``message_end``."""
        content = message.output("content")
        shown = ""
        if isinstance(content, TextStream):
            try:
                for piece in content:
                    shown += piece
                    said.append(piece)  # kept piece by piece: a client may leave at any yield
                    yield "message", {"content": piece}
            except StreamFailure as failure:
                failed = self._components.get(failure.producer, message)
                failed.error = failure.message
                if failed is not message:
                    message.error = failure.message
                    message.set_output("content", shown)
                self.error = failure.message
                for component in [c for c in streaming if c is failed]:
                    streaming.remove(component)
                    yield "node_finished", self._finished(component)
                return
        else:
            shown = str(content or "")
            if shown:
                said.append(shown)
                yield "message", {"content": shown}
        yield "message_end", {"reference": self.reference.as_dict() if cites(shown) else None}
        for component in list(streaming):
            stream = component.output("content")
            if not isinstance(stream, TextStream) or stream.done:
                streaming.remove(component)
                yield "node_finished", self._finished(component)

    # -- state kept by the session -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The DSL with the conversation's state after the run, for the session to keep."""
        state = copy.deepcopy(self.dsl)
        state["globals"] = _jsonable(self.globals)
        state["history"] = self.history
        state["path"] = self.path[-MAX_KEPT_PATH:]
        state["retrieval"] = [self.reference.as_dict()]
        state["task_id"] = self.task_id
        inputs = begin_inputs(state)
        for key, value in self.begin_values.items():
            if key in inputs and isinstance(inputs[key], dict):
                inputs[key]["value"] = _jsonable(value)
        return state
