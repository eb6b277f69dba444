"""POST /api/v1/retrieval with ``rerank_id``: a rerank model (the fake server's ``/v1/rerank``, reached as an
OpenAI-API-Compatible model) replaces vector similarity in the hybrid score."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.fake_openai import RERANK_PATH, FakeOpenAI, Reply
from tests.support.server import RunningServer

RERANKER = "my-reranker@OpenAI-API-Compatible"
KEY = "sk-rerank"
FACTS = {
    "cats.txt": "Cats are small domestic felines that purr and chase mice around the house.",
    "rockets.txt": "Rockets burn liquid oxygen and kerosene to reach orbit around the Earth.",
    "bread.txt": "Bread dough rises because yeast ferments sugar and releases carbon dioxide.",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as running:
        yield running


@pytest.fixture
def rerank_api(server: RunningServer, fake: FakeOpenAI) -> Iterator[httpx.Client]:
    """A tenant with the fake reranker and a rerank model of a factory this deployment has no provider for."""
    from shared.services.tenants import ModelSetting

    fake.reset()
    _, key = server.container.tenant_service.create(
        "rerank",
        [
            ModelSetting("gte-rerank@Tongyi-Qianwen", "rerank"),
            ModelSetting(RERANKER, "rerank", api_base=fake.base_url, api_key=KEY),
        ],
    )
    with server.client(key) as client:
        yield client


@pytest.fixture
def corpus(rerank_api: httpx.Client) -> dict[str, Any]:
    ds = create_dataset(rerank_api, chunk_method="one")
    docs = {}
    for name, text in FACTS.items():
        doc = upload_one(rerank_api, ds["id"], name, text.encode())
        assert parse_and_wait(rerank_api, ds["id"], doc["id"])["run"] == "DONE"
        docs[doc["id"]] = name
    return {"ds": ds["id"], "docs": docs}


def retrieve(api: httpx.Client, **payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.post("/api/v1/retrieval", json=payload).json()
    return result


def test_rerank_score_replaces_vector_similarity(
    rerank_api: httpx.Client, corpus: dict[str, Any], fake: FakeOpenAI
) -> None:
    question = "what do the cats and rockets burn around the house"
    res = retrieve(
        rerank_api, question=question, dataset_ids=[corpus["ds"]], rerank_id=RERANKER, similarity_threshold=0
    )
    assert res["code"] == 0, res
    chunks = res["data"]["chunks"]
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk["vector_similarity"] == pytest.approx(FakeOpenAI.relevance(question, chunk["content"]))
        assert chunk["similarity"] == pytest.approx(0.7 * chunk["term_similarity"] + 0.3 * chunk["vector_similarity"])
    requests = fake.requests_to(RERANK_PATH)
    assert len(requests) == 1
    body = requests[0].body
    assert body["model"] == "my-reranker" and body["query"] == question and body["top_n"] == 3
    assert sorted(body["documents"]) == sorted(FACTS.values())
    assert requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_ordering_follows_the_reranker(rerank_api: httpx.Client, corpus: dict[str, Any]) -> None:
    question = "dough yeast sugar orbit"  # bread has 3 of 4 words, rockets 1, cats none
    res = retrieve(
        rerank_api,
        question=question,
        dataset_ids=[corpus["ds"]],
        rerank_id=RERANKER,
        vector_similarity_weight=1,
        similarity_threshold=0,
    )
    assert res["code"] == 0, res
    chunks = res["data"]["chunks"]
    assert [corpus["docs"][c["document_id"]] for c in chunks][:2] == ["bread.txt", "rockets.txt"]
    assert [c["similarity"] for c in chunks][:2] == pytest.approx([0.75, 0.25])
    assert all(c["similarity"] == pytest.approx(c["vector_similarity"]) for c in chunks)
    # The threshold applies to the reranked score.
    strict = retrieve(
        rerank_api,
        question=question,
        dataset_ids=[corpus["ds"]],
        rerank_id=RERANKER,
        vector_similarity_weight=1,
        similarity_threshold=0.5,
    )["data"]
    assert [corpus["docs"][c["document_id"]] for c in strict["chunks"]] == ["bread.txt"] and strict["total"] == 1


def test_model_errors(rerank_api: httpx.Client, corpus: dict[str, Any], fake: FakeOpenAI) -> None:
    ask = {"question": "cats", "dataset_ids": [corpus["ds"]]}
    res = retrieve(rerank_api, **ask, rerank_id="nope@Cohere")
    assert res["code"] == 101 and "Unsupported model: <nope@Cohere>" in res["message"]
    res = retrieve(rerank_api, **ask, rerank_id="rerank-english-v3.0@Cohere")
    assert res["code"] == 101 and "Unauthorized model: <rerank-english-v3.0@Cohere>" in res["message"]
    res = retrieve(rerank_api, **ask, rerank_id="gte-rerank@Tongyi-Qianwen")
    assert res == {"code": 102, "message": "No provider for Tongyi-Qianwen in this deployment"}
    fake.script(RERANK_PATH, Reply.error(500, "reranker exploded"))
    res = retrieve(rerank_api, **ask, rerank_id=RERANKER)
    assert res["code"] == 102 and res["message"] == (
        f"The rerank model {RERANKER} failed (HTTP 500): reranker exploded."
    )
    assert KEY not in res["message"]
