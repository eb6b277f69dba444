"""Knowledge graphs and RAPTOR in retrieval and chats, on every backend: ``use_kg`` puts the graph's
pseudo-chunk ("Related content in Knowledge Graph") first, in /retrieval and in a chat's knowledge; RAPTOR
summaries are retrieved like any chunk; graph records never answer a plain retrieval."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.test_knowledge_api import ADA, CURIE, dataset_with, kg_api, llm, run, wait_task
from tests.support.api import eventually
from tests.support.fake_openai import FakeOpenAI

__all__ = ["kg_api", "llm"]  # fixtures shared with test_knowledge_api

KG_NAME = "Related content in Knowledge Graph"


def whole(content: str) -> bool:
    """The graph's answer once the index has caught up with every record the build wrote (entities,
    relations; OpenSearch makes writes searchable after a delay)."""
    return "---- Entities ----" in content and "ADA LOVELACE,CHARLES BABBAGE" in content


def retrieve(api: httpx.Client, **payload: Any) -> dict[str, Any]:
    res: dict[str, Any] = api.post("/api/v1/retrieval", json={"similarity_threshold": 0, **payload}).json()
    assert res["code"] == 0, res
    data: dict[str, Any] = res["data"]
    return data


@pytest.fixture
def graph_dataset(kg_api: httpx.Client) -> str:
    dataset_id, _ = dataset_with(
        kg_api,
        ("ada.txt", ADA),
        ("curie.txt", CURIE),
        parser_config={"graphrag": {"use_graphrag": True, "community": True}},
    )
    run(kg_api, dataset_id, "graphrag")
    assert wait_task(kg_api, dataset_id, "graphrag")["progress"] == 1.0
    return dataset_id


def test_use_kg_puts_the_graphs_answer_first(kg_api: httpx.Client, graph_dataset: str, llm: FakeOpenAI) -> None:
    question = {"question": "Who worked with Charles Babbage?", "dataset_ids": [graph_dataset]}
    with_kg = eventually(
        lambda: retrieve(kg_api, **question, use_kg=True),
        lambda data: bool(data["chunks"]) and whole(data["chunks"][0]["content"]),
    )
    plain = retrieve(kg_api, **question)
    assert all(c["document_keyword"] != KG_NAME for c in plain["chunks"])  # graph records never answer alone
    related, *chunks = with_kg["chunks"]
    assert [c["id"] for c in chunks] == [c["id"] for c in plain["chunks"]]
    assert with_kg["total"] == plain["total"] and with_kg["doc_aggs"] == plain["doc_aggs"]
    assert related["document_keyword"] == KG_NAME and related["document_id"] == ""
    assert related["dataset_id"] == [graph_dataset] and related["similarity"] == 1.0
    assert related["vector_similarity"] == 1.0 and related["term_similarity"] == 0
    content = related["content"]
    assert content.startswith("\n---- Entities ----\n,Entity,Score,Description\n0,CHARLES BABBAGE,")
    assert "\n---- Relations ----\n,From Entity,To Entity,Score,Description\n" in content
    assert "ADA LOVELACE,CHARLES BABBAGE," in content
    assert "\n---- Community Report ----\n# 1. Community of " in content and "## Evidences" in content
    rewrites = [r for r in llm.chat_requests if r.body["messages"][-1]["content"].startswith("You prepare a question")]
    assert rewrites and "Question: Who worked with Charles Babbage?" in rewrites[-1].body["messages"][-1]["content"]
    assert "PERSON (e.g. " in rewrites[-1].body["messages"][-1]["content"]  # the graph's types, with samples


def test_use_kg_on_a_dataset_without_a_graph_adds_nothing(kg_api: httpx.Client, api: httpx.Client) -> None:
    dataset_id, _ = dataset_with(kg_api, ("ada.txt", ADA))
    question = {"question": "Who worked with Charles Babbage?", "dataset_ids": [dataset_id]}
    data = eventually(lambda: retrieve(kg_api, **question, use_kg=True), lambda d: d["total"] == 1)
    assert [c["document_keyword"] for c in data["chunks"]] == ["ada.txt"]
    no_model, _ = dataset_with(api, ("ada.txt", ADA))
    refused = api.post("/api/v1/retrieval", json={**question, "dataset_ids": [no_model], "use_kg": True}).json()
    assert refused == {"code": 102, "message": "`use_kg` needs a chat model; none is configured for this tenant."}


def test_a_chat_with_use_kg_reads_the_graph_first(kg_api: httpx.Client, graph_dataset: str, llm: FakeOpenAI) -> None:
    res = kg_api.post(
        "/api/v1/chats", json={"name": "historian", "dataset_ids": [graph_dataset], "prompt": {"use_kg": True}}
    ).json()
    assert res["code"] == 0, res
    chat = res["data"]
    assert chat["prompt"]["use_kg"] is True
    plain = kg_api.post("/api/v1/chats", json={"name": "plain", "dataset_ids": [graph_dataset]}).json()["data"]
    assert "use_kg" not in plain["prompt"]  # kept only when given, as RAGFlow keeps its prompt_config

    def ask() -> dict[str, Any]:
        answer = kg_api.post(
            f"/api/v1/chats/{chat['id']}/completions", json={"question": "Who is Charles Babbage?", "stream": False}
        ).json()
        assert answer["code"] == 0, answer
        data: dict[str, Any] = answer["data"]
        return data

    answer = eventually(ask, lambda a: bool(a["reference"]["chunks"]) and whole(a["reference"]["chunks"][0]["content"]))
    first = answer["reference"]["chunks"][0]
    assert first["document_name"] == KG_NAME and first["document_id"] == ""
    assert all(agg["doc_name"] != KG_NAME for agg in answer["reference"]["doc_aggs"])
    system = llm.last_chat_messages()[0]["content"]
    assert f"ID: 0\nTitle: {KG_NAME}\nContent: \n---- Entities ----" in system


def test_raptor_summaries_are_retrieved_like_chunks(kg_api: httpx.Client) -> None:
    text = "\n\n".join(f"Paragraph {i} tells how bees make honey from nectar number {i}." for i in range(6)).encode()
    dataset_id, (doc,) = dataset_with(kg_api, ("bees.txt", text), parser_config={"chunk_token_num": 16})
    run(kg_api, dataset_id, "raptor")
    assert wait_task(kg_api, dataset_id, "raptor")["progress"] == 1.0
    data = eventually(
        lambda: retrieve(kg_api, question="summary of paragraphs about bees", dataset_ids=[dataset_id]),
        lambda d: any(c["content"].startswith("Summary: ") for c in d["chunks"]),
    )
    summary = next(c for c in data["chunks"] if c["content"].startswith("Summary: "))
    assert summary["document_id"] == doc and summary["document_keyword"] == "bees.txt"
    assert data["doc_aggs"] == [{"doc_name": "bees.txt", "doc_id": doc, "count": data["total"]}]
