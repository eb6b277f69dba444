"""Each canvas component on its own: what it reads, what it writes, how it fails, what the DSL check refuses."""

from __future__ import annotations

from typing import Any

import pytest

from shared.agent.components.agent import Agent, AgentParams, check_tools
from shared.agent.components.begin import Begin
from shared.agent.components.categorize import Categorize
from shared.agent.components.llm import LLM
from shared.agent.components.message import Message
from shared.agent.components.retrieval import Retrieval
from shared.agent.components.string_transform import StringTransform
from shared.agent.components.switch import Switch, holds
from shared.agent.components.variable_aggregator import VariableAggregator
from shared.agent.dsl import validate_dsl
from shared.agent.errors import DslError, InputError
from shared.agent.reference import CITATION_GUIDE, reference_number
from shared.agent.stream import TextStream
from shared.ports.chat_model import ChatMessage
from tests.support.agents import (
    Breaks,
    Calls,
    ScriptedModel,
    StaticKnowledge,
    canvas,
    chunk,
    dsl,
    node,
    run,
    said,
)

BEGIN = node("Begin", {"prologue": "hi"})


def _prepared(spec: dict[str, Any], question: str = "hello", **kwargs: Any) -> Any:
    """A canvas whose globals hold ``question`` (as at the start of a run), components reset."""
    board = canvas(spec, **kwargs)
    board.globals["sys.query"] = question
    board.history.append(["user", question])
    for cid in spec["components"]:
        board.component(cid).reset()
    return board


# -- Begin --------------------------------------------------------------------------------------------------
BEGIN_INPUTS = {
    "name": {"name": "Name", "type": "line", "optional": False},
    "age": {"name": "Age", "type": "integer", "optional": True},
    "ratio": {"name": "Ratio", "type": "number", "optional": True},
    "ok": {"name": "OK", "type": "boolean", "optional": True},
    "size": {"name": "Size", "type": "options", "optional": True, "options": ["S", "M"]},
    "city": {"name": "City", "type": "line", "optional": True, "value": "Lyon"},
}


def _begin() -> Begin:
    board = canvas(dsl(begin=node("Begin", {"inputs": BEGIN_INPUTS})))
    begin = board.begin()
    return begin


def test_begin_checks_and_converts_inputs() -> None:
    values = _begin().merge_inputs(
        {"name": {"type": "line", "value": "Ada"}, "age": "36", "ratio": 0.5, "ok": "true", "size": "M", "extra": [1]}
    )
    assert values == {"name": "Ada", "age": 36, "ratio": 0.5, "ok": True, "size": "M", "city": "Lyon", "extra": [1]}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "The input `name` of the Begin component is required."),
        ({"name": ""}, "The input `name` of the Begin component is required."),
        ({"name": "a", "age": "x"}, "The input `age` should be an integer."),
        ({"name": "a", "age": True}, "The input `age` should be an integer."),
        ({"name": "a", "ratio": "many"}, "The input `ratio` should be a number."),
        ({"name": "a", "ok": "maybe"}, "The input `ok` should be a boolean."),
        ({"name": "a", "size": "XL"}, "The input `size` should be one of: S, M."),
        ({"name": {"value": {"a": 1}}}, "The input `name` should be a string."),
    ],
)
def test_begin_refuses_bad_inputs(given: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _begin().merge_inputs(given)


def test_begin_outputs_its_values_and_prologue() -> None:
    board = canvas(dsl(begin=node("Begin", {"inputs": BEGIN_INPUTS, "prologue": "Welcome"})))
    events = run(board, inputs={"name": "Ada"})
    begin = next(e["data"] for e in events if e["event"] == "node_finished")
    assert begin["outputs"]["name"] == "Ada" and begin["outputs"]["city"] == "Lyon"
    assert board.prologue == "Welcome"
    assert canvas(dsl(begin=node("Begin", {"prologue": "x", "enablePrologue": False}))).prologue == ""


# -- Message ------------------------------------------------------------------------------------------------
def test_message_fills_its_template() -> None:
    spec = dsl(
        begin=BEGIN,
        Message__M=node("Message", {"content": "Q: {sys.query} / parts: {StringTransform:S@result}"}),
        StringTransform__S=node("StringTransform", {"method": "split", "split_ref": "sys.query", "delimiters": [" "]}),
    )
    board = _prepared(spec, "a b")
    board.component("StringTransform:S").invoke()
    message = board.component("Message:M")
    message.invoke()
    assert message.output("content") == "Q: a b / parts: a\nb"
    assert message.inputs == {"sys.query": "a b", "StringTransform:S@result": ["a", "b"]}


def test_message_streams_a_models_answer_and_reads_dict_paths() -> None:
    spec = dsl(
        begin=BEGIN,
        LLM__A=node("LLM"),
        Message__M=node("Message", {"content": ["<{LLM:A@content}> {begin@meta.city}"]}),
    )
    board = _prepared(spec)
    board.component("begin").set_output("meta", {"city": "Oslo"})
    llm = board.component("LLM:A")
    llm.set_output(
        "content", TextStream("LLM:A", lambda: iter(["one ", "two"]), lambda t: llm.set_output("content", t))
    )
    message = board.component("Message:M")
    message.invoke()
    content = message.output("content")
    assert isinstance(content, TextStream)
    assert list(content) == ["<", "one ", "two", "> ", "Oslo"]
    assert message.output("content") == "<one two> Oslo" and llm.output("content") == "one two"
    assert message.inputs == {"begin@meta.city": "Oslo", "LLM:A@content": "one two"}


def test_message_without_streaming_shows_the_whole_text() -> None:
    spec = dsl(
        begin=BEGIN,
        LLM__A=node("LLM", {}, downstream=["Message:M"]),
        Message__M=node("Message", {"content": ["{LLM:A@content}!"], "stream": False}, upstream=["LLM:A"]),
    )
    spec["components"]["begin"]["downstream"] = ["LLM:A"]
    model = ScriptedModel(["Hel", "lo"])
    events = run(canvas(spec, model), "q")
    assert [e["data"]["content"] for e in events if e["event"] == "message"] == ["Hello!"]


# -- LLM ----------------------------------------------------------------------------------------------------
def _llm_canvas(params: dict[str, Any], model: ScriptedModel, message: bool = False) -> Any:
    spec = dsl(begin=BEGIN, LLM__A=node("LLM", params, downstream=["Message:M"] if message else []))
    if message:
        spec["components"]["Message:M"] = node("Message", {"content": ["{LLM:A@content}"]}, upstream=["LLM:A"])
    return _prepared(spec, "What is rye?", model=model)


def test_llm_builds_the_conversation_and_passes_settings() -> None:
    model = ScriptedModel("Rye is a grain.")
    board = _llm_canvas(
        {
            "sys_prompt": "You are a baker. Turn {sys.conversation_turns}.",
            "prompts": [{"role": "user", "content": "Question: {sys.query}"}],
            "temperature": 0.3,
            "top_p": 0.5,
            "max_tokens": 64,
            "message_history_window_size": 1,
        },
        model,
    )
    board.globals["sys.conversation_turns"] = 3
    board.history[:0] = [["user", "old"], ["assistant", "older answer"], ["user", "q1"], ["assistant", "a1"]]
    llm = board.component("LLM:A")
    llm.invoke()
    assert llm.error is None and llm.output("content") == "Rye is a grain."
    seen = model.seen[0]
    assert seen.messages == [
        ChatMessage("system", "You are a baker. Turn 3."),
        ChatMessage("user", "q1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "Question: What is rye?"),
    ]
    assert seen.options is not None and (seen.options.temperature, seen.options.top_p, seen.options.max_tokens) == (
        0.3,
        0.5,
        64,
    )


def test_llm_asks_for_citations_only_when_chunks_were_retrieved() -> None:
    model = ScriptedModel("a", "b")
    board = _llm_canvas({"sys_prompt": "S"}, model)
    board.component("LLM:A").invoke()
    assert CITATION_GUIDE not in model.seen[0].messages[0].content
    board.reference.add([chunk("c1", "rye bread")], [])
    board.component("LLM:A").invoke()
    assert model.seen[1].messages[0].content == "S" + CITATION_GUIDE


def test_llm_streams_when_a_message_shows_it_and_reports_a_missing_model() -> None:
    model = ScriptedModel(["Ry", "e."])
    board = _llm_canvas({}, model, message=True)
    llm = board.component("LLM:A")
    llm.invoke()
    stream = llm.output("content")
    assert isinstance(stream, TextStream) and model.seen == []  # nothing asked before the Message reads it
    assert list(stream) == ["Ry", "e."] and llm.output("content") == "Rye."

    def no_model(_: str | None) -> Any:
        from shared.ports.chat_model import ChatModelConfigError

        raise ChatModelConfigError("No chat model is configured")

    board.runtime = type(board.runtime)(no_model, board.runtime.knowledge)
    llm.invoke()
    assert llm.error == "No chat model is configured"


def test_llm_failure_is_its_error() -> None:
    board = _llm_canvas({}, ScriptedModel(Breaks(("x",), "quota exceeded")))
    llm = board.component("LLM:A")
    llm.invoke()
    assert llm.error == "quota exceeded" and llm.outputs["_ERROR"] == "quota exceeded"


# -- Retrieval ----------------------------------------------------------------------------------------------
KNOWLEDGE = StaticKnowledge(
    datasets={"ds1": "bakery", "ds2": "dairy"},
    chunks={
        "ds1": [chunk("c1", "rye bread is dense"), chunk("c2", "wheat bread is light")],
        "ds2": [chunk("c3", "butter", dataset_id="ds2")],
    },
)


def _retrieval(params: dict[str, Any], question: str = "rye bread") -> Any:
    knowledge = StaticKnowledge(KNOWLEDGE.datasets, KNOWLEDGE.chunks)
    spec = dsl(
        begin=node("Begin", {"inputs": {"kb": {"type": "line", "optional": True}}}),
        Retrieval__R=node("Retrieval", params),
    )
    board = _prepared(spec, question, knowledge=knowledge)
    return board, board.component("Retrieval:R"), knowledge


def test_retrieval_adds_chunks_to_the_reference_and_formats_them() -> None:
    board, retrieval, knowledge = _retrieval(
        {"kb_ids": ["ds1"], "top_n": 1, "similarity_threshold": 0.3, "keywords_similarity_weight": 0.6}
    )
    retrieval.invoke()
    number = reference_number("c1")
    assert (
        retrieval.output("formalized_content")
        == f"ID: {number}\n├── Title: notes.txt\n└── Content:\nrye bread is dense"
    )
    assert [c["id"] for c in retrieval.output("json")] == ["c1"]
    assert board.reference.as_dict()["chunks"][str(number)]["content"] == "rye bread is dense"
    question, settings = knowledge.searches[0]
    assert question == "rye bread" and settings.dataset_ids == ("ds1",) and settings.top_n == 1
    assert (settings.similarity_threshold, settings.keywords_similarity_weight) == (0.3, 0.6)


def test_retrieval_takes_datasets_from_a_variable_by_name_or_id() -> None:
    board, retrieval, knowledge = _retrieval({"kb_ids": ["begin@kb", "ds1"]})
    board.component("begin").set_output("kb", ["dairy", "ds1"])
    retrieval.invoke()
    assert knowledge.searches[0][1].dataset_ids == ("ds2", "ds1")
    board.component("begin").set_output("kb", "pastry")
    retrieval.invoke()
    assert retrieval.error == "Dataset(pastry) does not exist."


def test_retrieval_empty_cases() -> None:
    _, retrieval, _ = _retrieval({"kb_ids": ["ds1"], "empty_response": "Nothing."}, question="cheese")
    retrieval.invoke()
    assert retrieval.output("formalized_content") == "Nothing." and retrieval.output("json") == []
    _, retrieval, _ = _retrieval({"kb_ids": [], "empty_response": "Nothing."})
    retrieval.invoke()
    assert retrieval.error == "No dataset is selected."
    _, retrieval, knowledge = _retrieval({"kb_ids": ["ds1"], "query": "{begin@kb}", "empty_response": "-"})
    retrieval.invoke()
    assert retrieval.output("formalized_content") == "-" and knowledge.searches == []  # an empty query


def test_retrieval_passes_the_services_refusal_on() -> None:
    _, retrieval, _ = _retrieval({"kb_ids": ["not-mine"]})
    retrieval.invoke()
    assert retrieval.error == "You don't own the dataset not-mine."


# -- Categorize ---------------------------------------------------------------------------------------------
CATEGORIES = {
    "refund": {"description": "Money back", "examples": [{"value": "I want a refund"}], "to": ["Message:R"]},
    "other": {"description": "Anything else", "examples": "hello\nhow are you", "to": "Message:O"},
}


@pytest.mark.parametrize(
    ("answer", "chosen"), [("Refund.", "refund"), ("REFUND or other? refund", "refund"), ("no idea", "other")]
)
def test_categorize_picks_the_category_named(answer: str, chosen: str) -> None:
    spec = dsl(
        begin=BEGIN,
        Categorize__C=node("Categorize", {"category_description": CATEGORIES}),
        Message__R=node("Message", {"content": ["r"]}),
        Message__O=node("Message", {"content": ["o"]}),
    )
    model = ScriptedModel(answer)
    board = _prepared(spec, "give my money back", model=model)
    categorize = board.component("Categorize:C")
    categorize.invoke()
    assert categorize.output("category_name") == chosen
    assert (
        categorize.next_ids() == CATEGORIES[chosen]["to"]
        if isinstance(CATEGORIES[chosen]["to"], list)
        else [CATEGORIES[chosen]["to"]]
    )
    prompt = model.seen[0].messages
    assert "- refund: Money back" in prompt[0].content and "Example: I want a refund" in prompt[0].content
    assert "Example: how are you" in prompt[0].content and prompt[-1] == ChatMessage("user", "give my money back")


def test_categorize_check() -> None:
    with pytest.raises(DslError, match="needs at least one category"):
        validate_dsl(dsl(begin=BEGIN, Categorize__C=node("Categorize", {})))
    with pytest.raises(DslError, match="categories lead to unknown components: Message:R"):
        validate_dsl(
            dsl(
                begin=BEGIN,
                Categorize__C=node("Categorize", {"category_description": CATEGORIES}),
                Message__O=node("Message"),
            )
        )


# -- Switch -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("left", "operator", "right", "expected"),
    [
        ("Hello World", "contains", "world", True),
        (["a", "b"], "contains", "B", True),
        ("Hello", "not contains", "x", True),
        ("Hello", "start with", "he", True),
        ("Hello", "end with", "LO", True),
        ("", "empty", "", True),
        ([], "not empty", "", False),
        ("3", "=", 3, True),
        ("abc", "=", "ABC", True),
        ("abc", "≠", "abd", True),
        (5, ">", "4.5", True),
        ("10", "<", 9, False),
        (2, "≥", 2, True),
        (2, "≤", 1, False),
        ("abc", ">", 1, False),
        (None, "contains", "x", False),
    ],
)
def test_switch_operators(left: Any, operator: str, right: Any, expected: bool) -> None:
    assert holds(left, operator, right) is expected


def _switch(conditions: list[dict[str, Any]], question: str) -> Any:
    spec = dsl(
        begin=BEGIN,
        Switch__S=node("Switch", {"conditions": conditions, "end_cpn_ids": ["Message:Else"]}),
        Message__A=node("Message"),
        Message__B=node("Message"),
        Message__Else=node("Message"),
    )
    board = _prepared(spec, question)
    switch = board.component("Switch:S")
    switch.invoke()
    return switch


def test_switch_takes_the_first_condition_that_holds() -> None:
    conditions = [
        {
            "logical_operator": "and",
            "items": [
                {"cpn_id": "sys.query", "operator": "contains", "value": "tea"},
                {"cpn_id": "sys.query", "operator": "contains", "value": "hot"},
            ],
            "to": ["Message:A"],
        },
        {
            "logical_operator": "or",
            "items": [
                {"cpn_id": "{sys.query}", "operator": "contains", "value": "tea"},
                {"cpn_id": "sys.query", "operator": "=", "value": "coffee"},
            ],
            "to": ["Message:B"],
        },
    ]
    assert _switch(conditions, "hot tea").next_ids() == ["Message:A"]
    assert _switch(conditions, "iced tea").next_ids() == ["Message:B"]
    switch = _switch(conditions, "water")
    assert switch.next_ids() == ["Message:Else"] and switch.inputs == {"sys.query": "water"}


def test_switch_check() -> None:
    bad_operator = [{"items": [{"cpn_id": "sys.query", "operator": "like", "value": "x"}], "to": []}]
    with pytest.raises(DslError, match="Switch"):
        validate_dsl(dsl(begin=BEGIN, Switch__S=node("Switch", {"conditions": bad_operator})))
    unknown = [{"items": [], "to": ["Message:Z"]}]
    with pytest.raises(DslError, match="branches lead to unknown components: Message:Z"):
        validate_dsl(dsl(begin=BEGIN, Switch__S=node("Switch", {"conditions": unknown})))
    not_a_variable = [{"items": [{"cpn_id": "query", "operator": "empty"}], "to": []}]
    with pytest.raises(DslError, match="`query` is not a variable reference"):
        validate_dsl(dsl(begin=BEGIN, Switch__S=node("Switch", {"conditions": not_a_variable})))


# -- VariableAggregator and StringTransform -----------------------------------------------------------------
def test_variable_aggregator_takes_the_first_value_present() -> None:
    spec = dsl(
        begin=BEGIN,
        Agg__V=node(
            "VariableAggregator",
            {
                "groups": [
                    {
                        "group_name": "answer",
                        "variables": [{"value": "Message:A@content"}, {"value": "Message:B@content"}],
                    },
                    {"group_name": "none", "variables": [{"value": "Message:A@content"}]},
                ]
            },
        ),
        Message__A=node("Message"),
        Message__B=node("Message"),
    )
    board = _prepared(spec)
    board.component("Message:B").set_output("content", "from B")
    aggregator = board.component("Agg:V")
    aggregator.invoke()
    assert aggregator.output("answer") == "from B" and aggregator.output("none") is None


def test_string_transform_split_and_merge() -> None:
    spec = dsl(
        begin=BEGIN,
        ST__Split=node("StringTransform", {"method": "split", "split_ref": "sys.query", "delimiters": [",", ";"]}),
        ST__Merge=node(
            "StringTransform",
            {"method": "merge", "script": "[{ST:Split@result}] for {sys.user_id}", "delimiters": [" | "]},
        ),
        ST__Bad=node("StringTransform", {"method": "split", "split_ref": "begin@obj"}),
    )
    board = _prepared(spec, "a, b;c")
    board.globals["sys.user_id"] = "u1"
    board.component("ST:Split").invoke()
    assert board.component("ST:Split").output("result") == ["a", " b", "c"]
    board.component("ST:Merge").invoke()
    assert board.component("ST:Merge").output("result") == "[a |  b | c] for u1"
    board.component("begin").set_output("obj", {"a": 1})
    board.component("ST:Bad").invoke()
    assert board.component("ST:Bad").error == "The variable begin@obj is not a text: dict."


# -- Agent --------------------------------------------------------------------------------------------------
def _agent(tools: list[dict[str, Any]], model: ScriptedModel, **params: Any) -> Any:
    spec = dsl(begin=BEGIN, Agent__A=node("Agent", {"sys_prompt": "You help.", "tools": tools, **params}))
    knowledge = StaticKnowledge(KNOWLEDGE.datasets, KNOWLEDGE.chunks)
    board = _prepared(spec, "tell me about rye", model=model, knowledge=knowledge)
    return board, board.component("Agent:A")


SEARCH = {
    "component_name": "Retrieval",
    "name": "search docs!",
    "params": {"kb_ids": ["ds1"], "description": "Find passages."},
}


def test_agent_calls_tools_natively_then_answers() -> None:
    model = ScriptedModel(
        Calls((("search_docs_", {"query": "rye"}),)), ["Rye is dense ", f"[ID:{reference_number('c1')}]."]
    )
    board, agent = _agent([SEARCH], model)
    agent.invoke()
    assert agent.error is None and agent.output("content") == f"Rye is dense [ID:{reference_number('c1')}]."
    first, second = model.seen
    assert [t.name for t in first.tools or []] == ["search_docs_"] and (first.tools or [])[
        0
    ].description == "Find passages."
    assert CITATION_GUIDE in first.messages[0].content  # a retrieval tool: citations asked for
    assert second.messages[-2].tool_calls[0].name == "search_docs_"
    assert second.messages[-1].role == "tool" and "rye bread is dense" in second.messages[-1].content
    assert agent.output("use_tools")[0]["name"] == "search_docs_" and board.reference


def test_agent_falls_back_to_json_tool_calls() -> None:
    model = ScriptedModel(
        ['```json\n{"tool_calls": [{"name": "search_docs_", ', '"arguments": {"query": "rye"}}]}\n```'],
        ["It is ", "dense."],
        native_tools=False,
    )
    _, agent = _agent([SEARCH], model)
    agent.invoke()
    assert agent.output("content") == "It is dense."
    first, second = model.seen
    assert (
        first.tools is None and "# Tools" in first.messages[0].content and "search_docs_" in first.messages[0].content
    )
    assert second.messages[-1].role == "user" and "rye bread is dense" in second.messages[-1].content
    # the model is remembered as one without native tools: no refused request the next time
    model.answers.extend(["plain answer"])
    agent.invoke()
    assert agent.output("content") == "plain answer"


def test_agent_stops_calling_tools_after_max_rounds() -> None:
    loop = Calls((("search_docs_", {"query": "rye"}),))
    model = ScriptedModel(loop, loop, "Final answer.")
    _, agent = _agent([SEARCH], model, max_rounds=2)
    agent.invoke()
    assert agent.output("content") == "Final answer." and len(agent.output("use_tools")) == 2
    assert model.seen[-1].tools is None and "do not call tools" in model.seen[-1].messages[-1].content


def test_agent_reports_bad_tool_calls_to_the_model() -> None:
    model = ScriptedModel(Calls((("nope", {}), ("search_docs_", {"query": ""}))), "Sorry.")
    _, agent = _agent([SEARCH], model)
    agent.invoke()
    results = [u["results"] for u in agent.output("use_tools")]
    assert results[0].startswith("Error: there is no tool named `nope`") and results[1].startswith(
        "Error: `query` is required"
    )
    assert agent.output("content") == "Sorry."


def test_agents_as_tools() -> None:
    helper = {
        "component_name": "Agent",
        "name": "Summarizer",
        "params": {
            "sys_prompt": "You summarize.",
            "description": "Summarizes a text.",
            "user_prompt": "What to summarize.",
        },
    }
    model = ScriptedModel(
        Calls((("Summarizer", {"user_prompt": "rye", "context": "bread"}),)), "Short: rye.", "Done: Short: rye."
    )
    _, agent = _agent([helper], model)
    agent.invoke()
    assert agent.output("content") == "Done: Short: rye."
    outer, inner, last = model.seen
    spec = (outer.tools or [])[0]
    assert spec.name == "Summarizer" and spec.description == "Summarizes a text."
    assert spec.parameters["properties"]["user_prompt"]["description"] == "What to summarize."
    assert inner.messages == [
        ChatMessage("system", "You summarize."),
        ChatMessage("user", "CONTEXT:\nbread\n\nQUERY:\nrye"),
    ]
    assert last.messages[-1].content == "Short: rye."


def test_agent_without_tools_is_an_llm() -> None:
    model = ScriptedModel("plain")
    _, agent = _agent([], model)
    agent.invoke()
    assert agent.output("content") == "plain" and model.seen[0].tools is None


@pytest.mark.parametrize(
    ("tools", "mcp", "message"),
    [
        ([{"component_name": "Google", "params": {}}], [], "Component 'Google' is not supported"),
        ([], [{"mcp_id": "x"}], "MCP servers are not supported"),
        ([{"component_name": "Retrieval", "params": {"top_n": 0}}], [], "`top_n`"),
        (
            [
                {
                    "component_name": "Agent",
                    "params": {
                        "tools": [
                            {
                                "component_name": "Agent",
                                "params": {"tools": [{"component_name": "Agent", "params": {"tools": [SEARCH]}}]},
                            }
                        ]
                    },
                }
            ],
            [],
            "nest as tools 3 levels deep at most",
        ),
    ],
)
def test_agent_tools_check(tools: list[dict[str, Any]], mcp: list[Any], message: str) -> None:
    params = Agent.parse("Agent:A", {"tools": tools, "mcp": mcp})
    assert isinstance(params, AgentParams)
    with pytest.raises(DslError, match=message):
        check_tools("Agent:A", params)


def test_whole_runs_show_what_the_components_said() -> None:
    spec = dsl(
        begin=node("Begin", downstream=["LLM:A"]),
        LLM__A=node("LLM", {}, downstream=["Message:M"], upstream=["begin"]),
        Message__M=node("Message", {"content": ["{LLM:A@content}"]}, upstream=["LLM:A"]),
    )
    assert said(run(canvas(spec, ScriptedModel(["a", "b"])))) == "ab"


def test_component_classes_are_the_dsl_names() -> None:
    assert [
        c.component_name
        for c in (Begin, Message, LLM, Agent, Retrieval, Categorize, Switch, VariableAggregator, StringTransform)
    ] == [
        "Begin",
        "Message",
        "LLM",
        "Agent",
        "Retrieval",
        "Categorize",
        "Switch",
        "VariableAggregator",
        "StringTransform",
    ]
