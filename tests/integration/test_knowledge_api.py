"""Knowledge graphs and RAPTOR through the API of the local server: build, trace, read and delete a graph;
RAPTOR summaries as retrievable chunks; a local OpenAI-compatible server as the chat model, answering each
build prompt (tests/support/knowledge_model.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.rag.graphrag import prompts
from shared.services.tenants import ModelSetting
from tests.support import knowledge_model
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.server import RunningServer

MODEL = "fake-chat@OpenAI-API-Compatible"
ADA = (
    b"Ada Lovelace worked with Charles Babbage on the Analytical Engine.\n\n"
    b"Charles Babbage designed the Difference Engine in London.\n"
)
CURIE = b"Marie Curie studied radium in Paris with Pierre Curie.\n"
TASK_FIELDS = {
    "id",
    "doc_id",
    "from_page",
    "to_page",
    "task_type",
    "priority",
    "begin_at",
    "process_duration",
    "progress",
    "progress_msg",
    "retry_count",
    "digest",
    "chunk_ids",
    "create_time",
    "create_date",
    "update_time",
    "update_date",
}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test") as fake:
        yield fake


@pytest.fixture
def kg_api(server: RunningServer, llm: FakeOpenAI) -> Iterator[httpx.Client]:
    """A tenant whose chat model is the fake server, answering as the knowledge model does."""
    llm.reset()
    llm.respond_with(knowledge_model.answer)
    _, key = server.container.tenant_service.create(
        "grapher", [ModelSetting(MODEL, "chat", api_base=llm.base_url, api_key="sk-test")]
    )
    with server.client(key) as client:
        yield client


def dataset_with(api: httpx.Client, *docs: tuple[str, bytes], **fields: Any) -> tuple[str, list[str]]:
    ds = create_dataset(api, **fields)
    ids = []
    for name, data in docs:
        doc = upload_one(api, ds["id"], name, data)
        assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
        ids.append(doc["id"])
    return ds["id"], ids


def wait_task(api: httpx.Client, dataset_id: str, kind: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        res = api.get(f"/api/v1/datasets/{dataset_id}/trace_{kind}").json()
        assert res["code"] == 0, res
        task: dict[str, Any] = res["data"]
        if task and task["progress"] in (1.0, -1.0):
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


def run(api: httpx.Client, dataset_id: str, kind: str) -> dict[str, Any]:
    res: dict[str, Any] = api.post(f"/api/v1/datasets/{dataset_id}/run_{kind}").json()
    return res


def graph_of(api: httpx.Client, dataset_id: str) -> dict[str, Any]:
    res = api.get(f"/api/v1/datasets/{dataset_id}/knowledge_graph").json()
    assert res["code"] == 0, res
    data: dict[str, Any] = res["data"]
    return data


def extraction_requests(llm: FakeOpenAI) -> list[str]:
    return [
        r.body["messages"][-1]["content"]
        for r in llm.chat_requests
        if r.body["messages"][-1]["content"].startswith("Task: extract the entities")
    ]


# -- the graph ---------------------------------------------------------------------------------------------
def test_a_graph_is_built_traced_read_and_deleted(kg_api: httpx.Client, llm: FakeOpenAI) -> None:
    dataset_id, (ada, curie) = dataset_with(kg_api, ("ada.txt", ADA), ("curie.txt", CURIE))
    assert graph_of(kg_api, dataset_id) == {"graph": {}, "mind_map": {}}
    assert kg_api.get(f"/api/v1/datasets/{dataset_id}/trace_graphrag").json() == {"code": 0, "data": {}}

    started = run(kg_api, dataset_id, "graphrag")
    assert started["code"] == 0, started
    task_id = started["data"]["graphrag_task_id"]
    task = wait_task(kg_api, dataset_id, "graphrag")

    assert set(task) == TASK_FIELDS
    assert task["id"] == task_id and task["task_type"] == "graphrag" and task["progress"] == 1.0, task
    assert task["from_page"] == task["to_page"] == 100_000_000 and task["doc_id"] in (ada, curie)
    lines = task["progress_msg"].splitlines()
    assert lines[0].endswith("created task graphrag") and lines[1].endswith("Task has been received.")
    assert any(f"build_subgraph doc:{ada} start" in line for line in lines)
    assert lines[-1].split(" ", 1)[1].startswith("Knowledge Graph done (")
    assert task["retry_count"] == 1 and task["process_duration"] > 0 and task["begin_at"].endswith("GMT")
    # an extraction request per document, each gleaned once, then asked no more
    assert len(extraction_requests(llm)) == 2
    assert sum(r.body["messages"][-1]["content"] == prompts.LOOP_PROMPT for r in llm.chat_requests) == 2

    graph = graph_of(kg_api, dataset_id)["graph"]
    assert graph["directed"] is False and graph["multigraph"] is False
    assert set(graph["graph"]["source_id"]) == {ada, curie}
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert set(nodes) == {
        "ADA LOVELACE",
        "CHARLES BABBAGE",
        "ANALYTICAL ENGINE",
        "DIFFERENCE ENGINE",
        "LONDON",
        "MARIE CURIE",
        "PARIS",
        "PIERRE CURIE",
    }
    babbage = nodes["CHARLES BABBAGE"]
    assert babbage["entity_name"] == "CHARLES BABBAGE" and babbage["entity_type"] == "PERSON"
    assert babbage["source_id"] == [ada] and babbage["rank"] == 4
    assert "<SEP>" in babbage["description"]  # described by two sentences
    assert graph["nodes"][0]["id"] == "CHARLES BABBAGE"  # best PageRank first
    assert abs(sum(n["pagerank"] for n in graph["nodes"]) - 1.0) < 1e-6
    edge = next(e for e in graph["edges"] if {e["source"], e["target"]} == {"ADA LOVELACE", "CHARLES BABBAGE"})
    assert edge["weight"] == 5.0 and edge["keywords"] == ["mentioned together"] and edge["source_id"] == [ada]
    assert edge["description"] == "Ada Lovelace worked with Charles Babbage on the Analytical Engine"

    deleted = kg_api.delete(f"/api/v1/datasets/{dataset_id}/knowledge_graph").json()
    assert deleted == {"code": 0, "data": True}
    assert graph_of(kg_api, dataset_id) == {"graph": {}, "mind_map": {}}


def test_a_re_run_processes_only_documents_not_yet_in_the_graph(kg_api: httpx.Client, llm: FakeOpenAI) -> None:
    dataset_id, (ada,) = dataset_with(kg_api, ("ada.txt", ADA))
    run(kg_api, dataset_id, "graphrag")
    assert wait_task(kg_api, dataset_id, "graphrag")["progress"] == 1.0
    assert len(extraction_requests(llm)) == 1

    again = run(kg_api, dataset_id, "graphrag")
    assert again["code"] == 0
    task = wait_task(kg_api, dataset_id, "graphrag")
    assert task["id"] == again["data"]["graphrag_task_id"] and task["progress"] == 1.0
    assert f"Graph already contains {ada}" in task["progress_msg"]
    assert "no subgraphs generated successfully, end." in task["progress_msg"]
    assert len(extraction_requests(llm)) == 1  # nothing extracted again

    doc = upload_one(kg_api, dataset_id, "curie.txt", CURIE)
    assert parse_and_wait(kg_api, dataset_id, doc["id"])["run"] == "DONE"
    run(kg_api, dataset_id, "graphrag")
    assert wait_task(kg_api, dataset_id, "graphrag")["progress"] == 1.0
    assert len(extraction_requests(llm)) == 2 and "Marie Curie" in extraction_requests(llm)[-1]
    names = {n["id"] for n in graph_of(kg_api, dataset_id)["graph"]["nodes"]}
    assert {"ADA LOVELACE", "MARIE CURIE"} <= names


def test_deleting_a_document_removes_its_contribution(kg_api: httpx.Client) -> None:
    shared_name = b"Charles Babbage met Marie Curie in Paris.\n"
    dataset_id, (ada, curie) = dataset_with(kg_api, ("ada.txt", ADA), ("curie.txt", CURIE + shared_name))
    run(kg_api, dataset_id, "graphrag")
    assert wait_task(kg_api, dataset_id, "graphrag")["progress"] == 1.0

    res = kg_api.request("DELETE", f"/api/v1/datasets/{dataset_id}/documents", json={"ids": [curie]}).json()
    assert res["code"] == 0, res

    graph = graph_of(kg_api, dataset_id)["graph"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert graph["graph"]["source_id"] == [ada]
    assert "MARIE CURIE" not in nodes and "PARIS" not in nodes
    assert nodes["CHARLES BABBAGE"]["source_id"] == [ada]  # was in both documents
    assert all(e["source_id"] == [ada] for e in graph["edges"])
    assert all({e["source"], e["target"]} <= set(nodes) for e in graph["edges"])

    kg_api.request("DELETE", f"/api/v1/datasets/{dataset_id}/documents", json={"ids": [ada]})
    assert graph_of(kg_api, dataset_id) == {"graph": {}, "mind_map": {}}


def test_a_failing_model_fails_the_task_and_leaves_no_graph(kg_api: httpx.Client, llm: FakeOpenAI) -> None:
    dataset_id, _ = dataset_with(kg_api, ("ada.txt", ADA), ("curie.txt", CURIE))

    def refuse(request: Any) -> Reply:
        if "Marie Curie" in str(request.body):
            return Reply.error(400, "The model refuses this text.", type="invalid_request_error")
        return llm.handle_chat(request)

    llm.route("POST", "/v1/chat/completions", refuse)
    try:
        run(kg_api, dataset_id, "graphrag")
        task = wait_task(kg_api, dataset_id, "graphrag")
    finally:
        llm.route("POST", "/v1/chat/completions", llm.handle_chat)
    assert task["progress"] == -1.0
    last = task["progress_msg"].splitlines()[-1]
    assert "[ERROR]" in last and "The model refuses this text." in last, last
    assert graph_of(kg_api, dataset_id) == {"graph": {}, "mind_map": {}}  # the other document isn't half-merged


def test_a_second_run_is_refused_while_one_runs(kg_api: httpx.Client, llm: FakeOpenAI) -> None:
    dataset_id, _ = dataset_with(kg_api, ("ada.txt", ADA))
    release = threading.Event()

    def held(messages: list[dict[str, Any]]) -> str | None:
        release.wait(30)
        return knowledge_model.answer(messages)

    llm.respond_with(held)
    try:
        first = run(kg_api, dataset_id, "graphrag")
        assert first["code"] == 0, first
        task_id = first["data"]["graphrag_task_id"]
        refused = run(kg_api, dataset_id, "graphrag")
        assert refused["code"] == 102
        assert refused["message"].startswith(f"Task {task_id} in progress with status ")
        assert refused["message"].endswith(". A Graph Task is already running.")
        # RAPTOR is another task: it may run beside the graph
        assert run(kg_api, dataset_id, "raptor")["code"] == 0
        assert run(kg_api, dataset_id, "raptor")["message"].endswith(". A RAPTOR Task is already running.")
    finally:
        release.set()
    assert wait_task(kg_api, dataset_id, "graphrag")["progress"] == 1.0
    assert wait_task(kg_api, dataset_id, "raptor")["progress"] == 1.0


def test_communities_get_reports(kg_api: httpx.Client, server: RunningServer) -> None:
    dataset_id, _ = dataset_with(
        kg_api,
        ("ada.txt", ADA),
        ("curie.txt", CURIE),
        parser_config={"graphrag": {"use_graphrag": True, "community": True, "resolution": True}},
    )
    run(kg_api, dataset_id, "graphrag")
    task = wait_task(kg_api, dataset_id, "graphrag")
    assert task["progress"] == 1.0, task["progress_msg"]
    assert "entity resolution done" in task["progress_msg"] and "communities" in task["progress_msg"]
    reports = server.container.graph_store.records.records(dataset_id, "community_report")
    assert reports and all(r["title"].startswith("Community of ") for r in reports)
    members = {n for r in reports for n in r["entities"]}
    assert {"MARIE CURIE", "PIERRE CURIE"} <= members


# -- errors and access ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["graphrag", "raptor"])
def test_another_tenants_dataset_is_answered_like_a_missing_one(
    kg_api: httpx.Client, other_api: httpx.Client, kind: str
) -> None:
    dataset_id, _ = dataset_with(kg_api, ("ada.txt", ADA))
    for api, ds in ((other_api, dataset_id), (kg_api, "0" * 32)):
        assert api.post(f"/api/v1/datasets/{ds}/run_{kind}").json() == {"code": 102, "message": "Invalid Dataset ID"}
        assert api.get(f"/api/v1/datasets/{ds}/trace_{kind}").json() == {"code": 102, "message": "Invalid Dataset ID"}
        missing = {"code": 102, "message": "The dataset doesn't exist"}
        assert api.get(f"/api/v1/datasets/{ds}/knowledge_graph").json() == missing
        assert api.delete(f"/api/v1/datasets/{ds}/knowledge_graph").json() == missing


@pytest.mark.parametrize("kind", ["graphrag", "raptor"])
def test_a_dataset_without_documents_is_refused(kg_api: httpx.Client, kind: str) -> None:
    ds = create_dataset(kg_api)
    assert run(kg_api, ds["id"], kind) == {"code": 102, "message": f"No documents in Dataset {ds['id']}"}
    assert kg_api.get(f"/api/v1/datasets/{ds['id']}/trace_{kind}").json() == {"code": 0, "data": {}}


def test_a_tenant_without_chat_model_gets_a_failed_task(api: httpx.Client) -> None:
    dataset_id, _ = dataset_with(api, ("ada.txt", ADA))
    assert run(api, dataset_id, "graphrag")["code"] == 0
    task = wait_task(api, dataset_id, "graphrag")
    assert task["progress"] == -1.0 and "[ERROR] No chat model is configured" in task["progress_msg"]


# -- RAPTOR ----------------------------------------------------------------------------------------------
def test_raptor_summaries_become_chunks_of_their_document(kg_api: httpx.Client, llm: FakeOpenAI) -> None:
    text = "\n\n".join(f"Paragraph {i} tells how bees make honey from nectar number {i}." for i in range(6)).encode()
    dataset_id, (doc,) = dataset_with(kg_api, ("bees.txt", text), parser_config={"chunk_token_num": 16})
    before = kg_api.get(f"/api/v1/datasets/{dataset_id}/documents/{doc}/chunks").json()["data"]
    leaves = before["total"]
    assert leaves >= 3

    started = run(kg_api, dataset_id, "raptor")
    assert started["code"] == 0 and set(started["data"]) == {"raptor_task_id"}
    task = wait_task(kg_api, dataset_id, "raptor")
    assert task["progress"] == 1.0, task["progress_msg"]
    assert task["task_type"] == "raptor" and "Cluster one layer" in task["progress_msg"]
    assert task["progress_msg"].splitlines()[-1].split(" ", 1)[1].startswith("Task done (")

    after = kg_api.get(f"/api/v1/datasets/{dataset_id}/documents/{doc}/chunks").json()["data"]
    summaries = [c for c in after["chunks"] if c["content"].startswith("Summary: ")]
    assert summaries and after["total"] == leaves + len(summaries)
    assert after["doc"]["chunk_count"] == leaves + len(summaries)
    summarize_requests = [
        r for r in llm.chat_requests if r.body["messages"][-1]["content"].startswith("Please summarize")
    ]
    assert len(summarize_requests) == len(summaries)

    # a re-run changes nothing: the chunks did not change
    run(kg_api, dataset_id, "raptor")
    again = wait_task(kg_api, dataset_id, "raptor")
    assert "already has its summaries, skip" in again["progress_msg"]
    assert kg_api.get(f"/api/v1/datasets/{dataset_id}/documents/{doc}/chunks").json()["data"]["total"] == after["total"]


def test_raptor_skips_tabular_files(kg_api: httpx.Client) -> None:
    dataset_id, (doc,) = dataset_with(kg_api, ("rows.csv", b"name,age\nada,36\ncharles,79\nmarie,66\n"))
    run(kg_api, dataset_id, "raptor")
    task = wait_task(kg_api, dataset_id, "raptor")
    assert task["progress"] == 1.0 and f"[RAPTOR] doc:{doc} holds tabular data, skip." in task["progress_msg"]
