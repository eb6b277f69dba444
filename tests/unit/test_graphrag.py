"""The knowledge graph's pure parts: parsing extraction answers, gleaning, merging, PageRank, removal of a
document, resolution and communities — with a scripted in-process chat model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from shared.ports.chat_model import ChatMessage, ChatModel, ChatOptions, ChatResult, ChatStream, ChatUsage
from shared.rag.graphrag import prompts
from shared.rag.graphrag.communities import community_weights, detect_communities, parse_report, render_report
from shared.rag.graphrag.extraction import (
    ExtractionSettings,
    GraphExtractor,
    parse_answer,
    split_records,
    text_blocks,
)
from shared.rag.graphrag.graph import KnowledgeGraph, edge_key, pagerank, shown
from shared.rag.graphrag.resolution import edit_distance, look_alike, resolve_entities

T = prompts.TUPLE_DELIMITER


class ScriptedModel(ChatModel):
    """Answers with ``reply(messages)``; remembers every conversation it was sent."""

    model_id = "scripted@Test"

    def __init__(self, reply: Callable[[Sequence[ChatMessage]], str]) -> None:
        self.reply = reply
        self.calls: list[list[ChatMessage]] = []

    def complete(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatResult:
        self.calls.append(list(messages))
        return ChatResult(self.reply(messages), ChatUsage.of(1, 1))

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatStream:
        raise AssertionError("graph extraction asks for whole answers, never a stream")
        yield  # pragma: no cover


def entity(name: str, kind: str, description: str) -> str:
    return f'("entity"{T}{name}{T}{kind}{T}{description})'


def relation(a: str, b: str, description: str, keywords: str, strength: str) -> str:
    return f'("relationship"{T}{a}{T}{b}{T}{description}{T}{keywords}{T}{strength})'


# -- parsing ------------------------------------------------------------------------------------------------
def test_records_are_split_on_both_delimiters_and_read_between_parentheses() -> None:
    answer = f'{entity("A", "PERSON", "x")}##\n{entity("B", "PERSON", "y")}<|COMPLETE|>noise ("broken'
    assert split_records(answer) == [['"entity"', "A", "PERSON", "x"], ['"entity"', "B", "PERSON", "y"]]


def test_answers_are_cleaned_filtered_by_type_and_upper_cased() -> None:
    answer = "##".join(
        [
            entity('"ada lovelace"', '"person"', "A &amp; B wrote\x07 code"),
            entity("Paris", "GEO", "a city"),  # not a wanted type
            relation("ada lovelace", "analytical engine", "programmed it", "code, history", "8"),
            relation("x", "x", "a loop", "", "3"),  # a relation to itself is nothing
            f'("relationship"{T}A{T}B{T}general form{T}not-a-number)',  # general: no keywords, bad strength
        ]
    )
    entities, relations = parse_answer(answer, ["person", "organization"])
    assert entities == [{"entity_name": "ADA LOVELACE", "entity_type": "PERSON", "description": "A & B wrote code"}]
    assert relations == [
        {
            "src_id": "ADA LOVELACE",
            "tgt_id": "ANALYTICAL ENGINE",
            "description": "programmed it",
            "keywords": ["code", "history"],
            "weight": 8.0,
        },
        {"src_id": "A", "tgt_id": "B", "description": "general form", "keywords": [], "weight": 1.0},
    ]


def test_text_is_packed_into_blocks_under_the_token_budget() -> None:
    blocks = text_blocks(["one two three", "", "four five", "six"], max_tokens=6)
    assert blocks == ["one two three\nfour five", "six"]
    assert text_blocks(["a very long chunk " * 10], max_tokens=4) == ["a very long chunk " * 10]


# -- extraction with gleaning ---------------------------------------------------------------------------------
def test_gleaning_asks_for_more_while_the_model_says_yes() -> None:
    replies = iter(
        [
            entity("ADA", "PERSON", "first") + "##<|COMPLETE|>",
            entity("BABBAGE", "PERSON", "gleaned") + "##" + relation("ADA", "BABBAGE", "friends", "", "2"),
            "YES",
            entity("ADA", "PERSON", "again"),
        ]
    )
    model = ScriptedModel(lambda messages: next(replies))
    extractor = GraphExtractor(model, ExtractionSettings(entity_types=("person",), max_gleanings=2))
    graph, ignored = extractor.document_subgraph("doc1", ["Ada met Babbage."])
    assert ignored == 0 and len(model.calls) == 4
    assert model.calls[1][-1].content == prompts.CONTINUE_PROMPT and model.calls[2][-1].content == prompts.LOOP_PROMPT
    assert model.calls[3][-2:] == [ChatMessage("assistant", "yes"), ChatMessage("user", prompts.CONTINUE_PROMPT)]
    assert graph.nodes["ADA"]["description"] == "again<SEP>first"  # distinct descriptions, joined
    assert graph.nodes["ADA"]["source_id"] == ["doc1"] and graph.source_id == ["doc1"]
    assert graph.edges[("ADA", "BABBAGE")]["weight"] == 2.0


def test_a_no_stops_gleaning_and_relations_to_unknown_entities_are_dropped() -> None:
    replies = iter([relation("ADA", "GHOST", "haunts", "", "1") + "##" + entity("ADA", "PERSON", "x"), "", "NO"])
    model = ScriptedModel(lambda messages: next(replies))
    graph, ignored = GraphExtractor(model, ExtractionSettings(entity_types=("person",))).document_subgraph(
        "d", ["text"]
    )
    assert len(model.calls) == 3 and ignored == 1 and set(graph.nodes) == {"ADA"} and not graph.edges


def test_many_descriptions_are_summarized_by_the_model() -> None:
    answer = "##".join(entity("ADA", "PERSON", f"fact {i}") for i in range(13))
    replies = iter([answer, "", "NO", "One summary."])
    model = ScriptedModel(lambda messages: next(replies))
    graph, _ = GraphExtractor(model, ExtractionSettings(entity_types=("person",))).document_subgraph("d", ["t"])
    assert graph.nodes["ADA"]["description"] == "One summary."
    assert "fact 12" in model.calls[-1][-1].content and model.calls[-1][-1].content.startswith("Write one coherent")


# -- the graph ----------------------------------------------------------------------------------------------
def _graph(doc: str, nodes: Sequence[str], edges: Sequence[tuple[str, str, float]]) -> KnowledgeGraph:
    graph = KnowledgeGraph(source_id=[doc])
    for name in nodes:
        graph.add_node(name, {"entity_type": "PERSON", "description": f"{name} in {doc}", "source_id": [doc]})
    for a, b, w in edges:
        graph.add_edge(a, b, {"description": f"{a}-{b} in {doc}", "keywords": [doc], "weight": w, "source_id": [doc]})
    return graph


def test_merging_joins_descriptions_adds_weights_and_gathers_sources() -> None:
    graph = _graph("d1", ["A", "B"], [("A", "B", 2.0)])
    change = graph.merge(_graph("d2", ["B", "C"], [("B", "A", 3.0), ("B", "C", 1.0)]))
    assert change.nodes == {"B", "C"} and change.edges == {("A", "B"), ("B", "C")}
    assert graph.nodes["B"]["description"] == "B in d1<SEP>B in d2" and graph.nodes["B"]["source_id"] == ["d1", "d2"]
    edge = graph.edges[edge_key("B", "A")]
    assert edge["weight"] == 5.0 and edge["keywords"] == ["d1", "d2"] and edge["source_id"] == ["d1", "d2"]
    assert graph.source_id == ["d1", "d2"]
    graph.update_ranks()
    assert graph.nodes["B"]["rank"] == 2 and graph.nodes["A"]["rank"] == 1
    assert graph.nodes["B"]["pagerank"] > graph.nodes["C"]["pagerank"]


def test_pagerank_agrees_with_networkx() -> None:
    import networkx as nx
    from networkx.algorithms.link_analysis.pagerank_alg import _pagerank_python

    edges = [("a", "b", 1.0), ("b", "c", 3.0), ("c", "a", 2.0), ("c", "d", 1.0)]
    g = nx.Graph()
    g.add_nodes_from(["a", "b", "c", "d", "lonely"])
    g.add_weighted_edges_from(edges)
    expected = _pagerank_python(g)
    assert pagerank(["a", "b", "c", "d", "lonely"], edges) == pytest.approx(expected, abs=1e-6)


def test_removing_a_document_keeps_what_others_also_said() -> None:
    graph = _graph("d1", ["A", "B"], [("A", "B", 2.0)])
    graph.merge(_graph("d2", ["B", "C"], [("B", "C", 1.0), ("A", "B", 1.0)]))
    change = graph.remove_source("d2")
    assert set(graph.nodes) == {"A", "B"} and set(graph.edges) == {("A", "B")}
    assert change.removed_nodes == {"C"} and change.removed_edges == {("B", "C")}
    assert graph.nodes["B"]["source_id"] == ["d1"] and graph.edges[("A", "B")]["source_id"] == ["d1"]
    assert graph.source_id == ["d1"]
    assert graph.remove_source("never-there").nodes == set()


def test_node_link_round_trip_and_the_shown_cut() -> None:
    graph = _graph("d", [f"N{i}" for i in range(300)], [(f"N{i}", f"N{i + 1}", float(i)) for i in range(299)])
    graph.update_ranks()
    data = graph.to_node_link()
    assert KnowledgeGraph.from_node_link(data) == graph
    cut = shown(data)
    assert len(cut["nodes"]) == 256 and len(cut["edges"]) == 128
    names = {n["id"] for n in cut["nodes"]}
    assert all(e["source"] in names and e["target"] in names for e in cut["edges"])
    weights = [e["weight"] for e in cut["edges"]]
    assert weights == sorted(weights, reverse=True)


# -- resolution ---------------------------------------------------------------------------------------------
def test_look_alike_names() -> None:
    assert edit_distance("kitten", "sitting", 10) == 3 and edit_distance("abc", "abcdefgh", 2) == 3
    assert look_alike("ADA LOVELACE", "ADA LOVELACES") and not look_alike("ADA", "BOB")
    assert not look_alike("PART 1", "PART 2")  # differing digits
    assert look_alike("北京大学", "北京大學") is False and look_alike("北京大学", "北京大学院")


def test_confirmed_pairs_are_merged_into_the_first_name() -> None:
    graph = _graph("d", ["ADA LOVELACE", "ADA LOVELACES", "BOB"], [("ADA LOVELACES", "BOB", 1.0)])
    model = ScriptedModel(lambda messages: "Question 1: YES")
    change = resolve_entities(graph, {"ADA LOVELACES"}, model)
    assert set(graph.nodes) == {"ADA LOVELACE", "BOB"} and set(graph.edges) == {("ADA LOVELACE", "BOB")}
    assert change.removed_nodes == {"ADA LOVELACES"} and ("ADA LOVELACES", "BOB") in change.removed_edges
    assert '"ADA LOVELACE" and "ADA LOVELACES"' in model.calls[0][-1].content


# -- communities ----------------------------------------------------------------------------------------------
def test_communities_are_found_and_weighted_by_rank() -> None:
    graph = _graph(
        "d",
        ["A", "B", "C", "X", "Y", "Z"],
        [("A", "B", 5.0), ("B", "C", 5.0), ("A", "C", 5.0), ("X", "Y", 5.0), ("Y", "Z", 5.0), ("X", "Z", 5.0)],
    )
    graph.add_edge("C", "X", {"description": "bridge", "keywords": [], "weight": 0.1, "source_id": ["d"]})
    graph.update_ranks()
    communities = detect_communities(graph)
    assert sorted(communities) == [["A", "B", "C"], ["X", "Y", "Z"]]
    assert max(community_weights(graph, communities)) == 1.0


def test_report_answers_are_read_leniently() -> None:
    data = parse_report(
        '```json\n{"title": "T", "summary": "S", "findings": [{"summary": "f", "explanation": "e"}]}\n```'
    )
    assert data is not None and render_report(data) == ("# T\n\nS\n\n## f\n\ne", "e")
    assert parse_report("no json here") is None and parse_report('{"summary": "untitled"}') is None
