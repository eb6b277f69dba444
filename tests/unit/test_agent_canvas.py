"""The canvas executor's semantics: batches along the path, branches, merges, loops, failures, and the
conversation state a session keeps between turns."""

from __future__ import annotations

from typing import Any

import pytest

from shared.agent.canvas import ERROR_PREFIX, MAX_STEPS, Canvas
from shared.agent.dsl import session_dsl, validate_dsl
from shared.agent.errors import DslError
from shared.agent.runtime import Runtime
from tests.support.agents import Breaks, ScriptedModel, StaticKnowledge, canvas, dsl, finished, node, run, said


def merge(script: str, **links: Any) -> dict[str, Any]:
    return node("StringTransform", {"method": "merge", "script": script}, **links)


def test_a_merge_waits_for_the_longer_branch_and_runs_once() -> None:
    spec = dsl(
        begin=node("Begin", downstream=["ST:Short", "ST:Long1"]),
        ST__Short=merge("s", upstream=["begin"], downstream=["Message:Join"]),
        ST__Long1=merge("l1", upstream=["begin"], downstream=["ST:Long2"]),
        ST__Long2=merge("{ST:Long1@result}-l2", upstream=["ST:Long1"], downstream=["Message:Join"]),
        Message__Join=node(
            "Message", {"content": ["{ST:Short@result}+{ST:Long2@result}"]}, upstream=["ST:Short", "ST:Long2"]
        ),
    )
    events = run(canvas(validate_dsl(spec)))
    assert finished(events) == ["begin", "ST:Short", "ST:Long1", "ST:Long2", "Message:Join"]
    assert said(events) == "s+l1-l2"
    started = [e["data"]["component_id"] for e in events if e["event"] == "node_started"]
    assert started.count("Message:Join") == 1


def test_only_the_chosen_branch_runs() -> None:
    spec = dsl(
        begin=node("Begin", downstream=["Switch:S"]),
        Switch__S=node(
            "Switch",
            {
                "conditions": [
                    {"items": [{"cpn_id": "sys.query", "operator": "contains", "value": "tea"}], "to": ["Message:Tea"]}
                ],
                "end_cpn_ids": ["Message:Other"],
            },
            upstream=["begin"],
            downstream=["Message:Tea", "Message:Other"],
        ),
        Message__Tea=node("Message", {"content": ["Tea it is."]}, upstream=["Switch:S"]),
        Message__Other=node("Message", {"content": ["Something else."]}, upstream=["Switch:S"]),
    )
    board = canvas(validate_dsl(spec))
    assert said(run(board, "green tea")) == "Tea it is."
    events = run(board, "coffee")
    assert said(events) == "Something else." and "Message:Tea" not in finished(events)


def test_iteration_runs_its_body_per_item_and_collects_outputs() -> None:
    spec = dsl(
        begin=node("Begin", downstream=["ST:Split"]),
        ST__Split=node(
            "StringTransform",
            {"method": "split", "split_ref": "sys.query", "delimiters": [","]},
            upstream=["begin"],
            downstream=["Iteration:I"],
        ),
        Iteration__I=node(
            "Iteration",
            {"items_ref": "ST:Split@result", "outputs": {"wrapped": {"ref": "ST:Wrap@result"}}},
            upstream=["ST:Split"],
            downstream=["Message:M"],
        ),
        IterationItem__II=node("IterationItem", downstream=["ST:Wrap"], parent_id="Iteration:I"),
        ST__Wrap=merge(
            "<{IterationItem:II@item}#{IterationItem:II@index}>", upstream=["IterationItem:II"], parent_id="Iteration:I"
        ),
        Message__M=node("Message", {"content": ["{Iteration:I@wrapped}"]}, upstream=["Iteration:I"]),
    )
    events = run(canvas(validate_dsl(spec)), "a,b,c")
    assert said(events) == "<a#0>\n<b#1>\n<c#2>"
    order = finished(events)
    assert order.count("ST:Wrap") == 3 and order.count("IterationItem:II") == 4
    assert order.index("Iteration:I") > max(i for i, c in enumerate(order) if c == "ST:Wrap")
    iteration = next(
        e["data"] for e in events if e["event"] == "node_finished" and e["data"]["component_id"] == "Iteration:I"
    )
    assert iteration["outputs"]["wrapped"] == ["<a#0>", "<b#1>", "<c#2>"]


def test_iteration_needs_a_list_and_an_item() -> None:
    with pytest.raises(DslError, match="needs exactly one IterationItem"):
        validate_dsl(dsl(begin=node("Begin"), Iteration__I=node("Iteration", {"items_ref": "sys.query"})))
    with pytest.raises(DslError, match="must be inside an Iteration"):
        validate_dsl(dsl(begin=node("Begin"), IterationItem__II=node("IterationItem")))
    spec = dsl(
        begin=node("Begin", downstream=["Iteration:I"]),
        Iteration__I=node("Iteration", {"items_ref": "sys.query"}, upstream=["begin"]),
        IterationItem__II=node("IterationItem", parent_id="Iteration:I"),
    )
    events = run(canvas(validate_dsl(spec)), "not a list")
    assert events[-2]["data"]["content"] == ERROR_PREFIX + "sys.query must be an array, but its type is str."


def _failing_llm(**handling: Any) -> dict[str, Any]:
    return dsl(
        begin=node("Begin", downstream=["LLM:A"]),
        LLM__A=node("LLM", handling, upstream=["begin"], downstream=["Message:Next"]),
        Message__Next=node("Message", {"content": ["next: {LLM:A@content}"]}, upstream=["LLM:A"]),
        Message__Fallback=node("Message", {"content": ["Sorry, try again later."]}),
    )


def test_a_failure_can_go_elsewhere() -> None:
    spec = _failing_llm(
        exception_method="goto", exception_goto=["Message:Fallback"], max_retries=1, delay_after_error=0
    )
    model = ScriptedModel(Breaks((), "first"), Breaks((), "second"))
    events = run(canvas(validate_dsl(spec), model))
    assert said(events) == "Sorry, try again later." and len(model.seen) == 2  # retried once
    llm = next(e["data"] for e in events if e["event"] == "node_finished" and e["data"]["component_id"] == "LLM:A")
    assert llm["error"] == "second" and "Message:Next" not in finished(events)
    assert events[-1]["event"] == "workflow_finished"


def test_a_failure_can_answer_a_default() -> None:
    spec = _failing_llm(exception_method="comment", exception_default_value="(no answer)")
    events = run(canvas(validate_dsl(spec), ScriptedModel(Breaks((), "down"))))
    assert said(events) == "(no answer)next: (no answer)"


def test_a_failure_ends_the_run() -> None:
    spec = _failing_llm()
    spec["components"]["LLM:A"]["downstream"] = ["Message:Fallback"]  # nobody streams it: it runs whole
    spec["components"]["Message:Next"]["upstream"] = []
    board = canvas(validate_dsl(spec), ScriptedModel(Breaks((), "quota exceeded")))
    events = run(board)
    assert [e["event"] for e in events[-3:]] == ["node_finished", "message", "message_end"]
    assert events[-2]["data"]["content"] == ERROR_PREFIX + "quota exceeded"
    assert board.error == "quota exceeded" and board.answer == ""


def test_a_stream_breaking_off_keeps_what_was_said() -> None:
    spec = _failing_llm()
    board = canvas(validate_dsl(spec), ScriptedModel(Breaks(("Half ", "an "), "connection reset")))
    events = run(board)
    assert [e["data"]["content"] for e in events if e["event"] == "message"] == [
        "next: ",
        "Half ",
        "an ",
        ERROR_PREFIX + "connection reset",
    ]
    errors = {e["data"]["component_id"]: e["data"]["error"] for e in events if e["event"] == "node_finished"}
    assert errors["LLM:A"] == errors["Message:Next"] == "connection reset"
    assert board.answer == "next: Half an " and board.history[-1] == ["assistant", "next: Half an "]


def test_a_run_left_midway_keeps_what_was_said() -> None:
    board = canvas(validate_dsl(_failing_llm()), ScriptedModel(["one ", "two ", "three"]))
    board.prepare_inputs({})
    events = board.run("q")
    for event in events:
        if event["event"] == "message" and event["data"]["content"] == "one ":
            break
    events.close()  # the client went away
    assert board.answer == "next: one " and board.history[-1] == ["assistant", "next: one "]


def test_a_loop_is_stopped() -> None:
    spec = dsl(
        begin=node("Begin", downstream=["ST:A"]),
        ST__A=merge("a", upstream=["begin", "ST:B"], downstream=["ST:B"]),
        ST__B=merge("b", upstream=["ST:A"], downstream=["ST:A"]),
    )
    board = canvas(validate_dsl(spec))
    events = run(board)
    assert board.error is not None and str(MAX_STEPS) in board.error
    assert events[-2]["data"]["content"].startswith(ERROR_PREFIX)


def test_an_unknown_variable_fails_its_component() -> None:
    spec = dsl(
        begin=node("Begin", downstream=["Message:M"]),
        Message__M=node("Message", {"content": ["{Nobody:X@content} {sys.nothing}"]}, upstream=["begin"]),
    )
    board = canvas(validate_dsl(spec))
    run(board)
    assert board.error == "Can't find variable: 'Nobody:X@content'"


def test_conversation_state_carries_over_turns() -> None:
    spec = dsl(
        begin=node("Begin", {"inputs": {"name": {"type": "line"}}}, downstream=["LLM:A"]),
        LLM__A=node("LLM", {"message_history_window_size": 4}, upstream=["begin"], downstream=["Message:M"]),
        Message__M=node("Message", {"content": ["{begin@name}: {LLM:A@content}"]}, upstream=["LLM:A"]),
    )
    state = session_dsl(validate_dsl(spec), "agent-1", {"name": "Ada"})
    assert state["history"] == [] and state["globals"]["sys.conversation_turns"] == 0
    model = ScriptedModel("first answer", "second answer")
    first = Canvas(state, Runtime(lambda _: model, StaticKnowledge()), "agent-1")
    assert said(run(first, "one")) == "Ada: first answer"
    saved = first.state()
    assert saved["globals"]["sys.conversation_turns"] == 1 and saved["path"][0] == "begin"
    assert saved["components"]["begin"]["obj"]["params"]["inputs"]["name"]["value"] == "Ada"

    second = Canvas(saved, Runtime(lambda _: model, StaticKnowledge()), "agent-1")
    assert said(run(second, "two")) == "Ada: second answer"
    assert [(m.role, m.content) for m in model.seen[1].messages] == [
        ("user", "one"),
        ("assistant", "Ada: first answer"),
        ("user", "two"),
    ]
    later = second.state()
    assert later["globals"]["sys.conversation_turns"] == 2 and later["globals"]["sys.query"] == "two"
    assert [turn[0] for turn in later["history"]] == ["user", "assistant", "user", "assistant"]
    assert later["path"].count("begin") == 2


def test_events_carry_ragflows_fields() -> None:
    spec = dsl(
        begin=node("Begin", downstream=["Message:M"]),
        Message__M=node("Message", {"content": ["hi"]}, upstream=["begin"]),
    )
    spec["graph"] = {"nodes": [{"id": "Message:M", "data": {"name": "Greeting"}}]}
    events = run(canvas(validate_dsl(spec)))
    assert [e["event"] for e in events] == [
        "workflow_started",
        "node_started",
        "node_finished",
        "node_started",
        "message",
        "message_end",
        "node_finished",
        "workflow_finished",
    ]
    assert all(set(e) == {"event", "message_id", "created_at", "task_id", "data"} for e in events)
    greeting = events[-2]["data"]
    assert greeting["component_name"] == "Greeting" and greeting["component_type"] == "Message"
    assert events[-1]["data"]["outputs"]["content"] == "hi"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("not a dsl", "`dsl` should be an object."),
        ({"components": {}}, "The DSL has no `components`."),
        ({"components": {"begin": {"obj": {"component_name": "Answer"}}}}, "Component 'Answer' is not supported"),
        (
            {"components": {"start": {"obj": {"component_name": "Begin"}}}},
            "needs a Begin component with the id `begin`",
        ),
        ({"components": {"begin": "x"}}, "Component 'begin' has no `obj.component_name`."),
        (
            {"components": {"begin": {"obj": {"component_name": "Begin", "params": []}}}},
            "`params` should be an object.",
        ),
        (
            {"components": {"begin": {"obj": {"component_name": "Begin"}, "upstream": "x"}}},
            "`upstream` should be a list",
        ),
        (
            {"components": {"begin": {"obj": {"component_name": "Begin"}, "parent_id": "x"}}},
            "`parent_id` names an unknown",
        ),
        (
            {"components": {"begin": {"obj": {"component_name": "Begin"}}}, "history": {}},
            "`dsl.history` should be a list.",
        ),
    ],
)
def test_dsl_checks(spec: Any, message: str) -> None:
    with pytest.raises(DslError, match=message.replace("(", r"\(")):
        validate_dsl(spec)
