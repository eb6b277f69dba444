"""POST /api/v1/retrieval over real HTTP with the builtin embedder, on every backend.

A search may miss a write made a moment before (OpenSearch makes writes searchable after a delay): a test
that searches right after a write asks again until the index has caught up (``eventually``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import create_dataset, eventually, parse_and_wait, upload_one

FACTS = {
    "cats.txt": "Cats are small domestic felines that purr and chase mice around the house.",
    "rockets.txt": "Rockets burn liquid oxygen and kerosene to reach orbit around the Earth.",
    "bread.txt": "Bread dough rises because yeast ferments sugar and releases carbon dioxide.",
}


@pytest.fixture
def parsed(api: httpx.Client) -> dict[str, Any]:
    """A dataset with one parsed document per fact."""
    ds = create_dataset(api, chunk_method="one")
    docs = {}
    for name, text in FACTS.items():
        doc = upload_one(api, ds["id"], name, text.encode())
        assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
        docs[name] = doc["id"]
    return {"ds": ds, "docs": docs}


@pytest.fixture
def corpus(api: httpx.Client, parsed: dict[str, Any]) -> dict[str, Any]:
    """The parsed dataset once the index has caught up with it (every chunk is a vector candidate of any
    question)."""
    everything = {"question": "the", "dataset_ids": [parsed["ds"]["id"]], "similarity_threshold": 0}
    eventually(lambda: retrieve(api, **everything)["data"]["total"], lambda total: total == len(FACTS))
    return parsed


def retrieve(api: httpx.Client, **payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.post("/api/v1/retrieval", json=payload).json()
    return result


def test_best_match_first_with_scores_and_doc_aggs(api: httpx.Client, corpus: dict[str, Any]) -> None:
    res = retrieve(
        api, question="why does yeast make dough rise?", dataset_ids=[corpus["ds"]["id"]], similarity_threshold=0
    )
    assert res["code"] == 0, res
    data = res["data"]
    top = data["chunks"][0]
    assert top["document_id"] == corpus["docs"]["bread.txt"] and top["document_keyword"] == "bread.txt"
    assert top["similarity"] == pytest.approx(0.7 * top["term_similarity"] + 0.3 * top["vector_similarity"])
    assert 0 < top["term_similarity"] <= 1 and 0 < top["vector_similarity"] <= 1
    for field in (
        "id",
        "content",
        "content_ltks",
        "dataset_id",
        "kb_id",
        "image_id",
        "important_keywords",
        "positions",
        "questions",
    ):
        assert field in top
    assert "highlight" not in top
    assert data["total"] == len(data["chunks"])
    assert data["doc_aggs"][0] == {"doc_name": "bread.txt", "doc_id": corpus["docs"]["bread.txt"], "count": 1}
    sims = [c["similarity"] for c in data["chunks"]]
    assert sims == sorted(sims, reverse=True)


def test_a_renamed_document_is_named_anew_in_the_next_answer(api: httpx.Client, corpus: dict[str, Any]) -> None:
    """Retrieval keeps the document names it read; a rename (and a delete) must show in the very next answer."""
    ds = corpus["ds"]["id"]
    ask = {"question": "why does yeast make dough rise?", "dataset_ids": [ds], "similarity_threshold": 0}
    assert retrieve(api, **ask)["data"]["chunks"][0]["document_keyword"] == "bread.txt"
    doc = corpus["docs"]["bread.txt"]
    res = api.put(f"/api/v1/datasets/{ds}/documents/{doc}", json={"name": "loaves.txt"}).json()
    assert res["code"] == 0, res
    data = retrieve(api, **ask)["data"]
    assert data["chunks"][0]["document_keyword"] == "loaves.txt"
    assert {"doc_name": "loaves.txt", "doc_id": doc, "count": 1} in data["doc_aggs"]
    shown = api.get("/api/v1/datasets", params={"id": ds}).json()["data"][0]
    assert "names_version" not in shown  # the bookkeeping stays inside


def test_weights_threshold_paging_and_highlight(api: httpx.Client, corpus: dict[str, Any]) -> None:
    ds = [corpus["ds"]["id"]]
    text_only = retrieve(api, question="kerosene orbit", dataset_ids=ds, vector_similarity_weight=0)["data"]
    assert [c["document_keyword"] for c in text_only["chunks"]] == ["rockets.txt"]  # no other text match
    assert text_only["chunks"][0]["similarity"] == pytest.approx(text_only["chunks"][0]["term_similarity"])
    vector_only = retrieve(api, question="kitten", dataset_ids=ds, vector_similarity_weight=1, similarity_threshold=0)[
        "data"
    ]
    assert vector_only["chunks"][0]["document_keyword"] == "cats.txt"
    assert vector_only["chunks"][0]["similarity"] == pytest.approx(vector_only["chunks"][0]["vector_similarity"])
    strict = retrieve(api, question="kitten", dataset_ids=ds, similarity_threshold=0.99)["data"]
    assert strict == {"chunks": [], "doc_aggs": [], "total": 0}
    page2 = retrieve(api, question="the", dataset_ids=ds, similarity_threshold=0, page=2, page_size=1)["data"]
    assert len(page2["chunks"]) == 1 and page2["total"] == 3
    lit = retrieve(api, question="cats that purr", dataset_ids=ds, highlight=True)["data"]["chunks"][0]
    assert lit["highlight"].startswith("<em>Cats</em> are small") and "<em>purr</em>" in lit["highlight"]


def test_document_and_metadata_filters(api: httpx.Client, corpus: dict[str, Any]) -> None:
    ds_id = corpus["ds"]["id"]
    only = retrieve(
        api, question="cats", dataset_ids=[ds_id], document_ids=[corpus["docs"]["rockets.txt"]], similarity_threshold=0
    )["data"]
    assert {c["document_keyword"] for c in only["chunks"]} == {"rockets.txt"}
    api.put(
        f"/api/v1/datasets/{ds_id}/documents/{corpus['docs']['cats.txt']}", json={"meta_fields": {"topic": "animals"}}
    )
    condition = {"conditions": [{"name": "topic", "comparison_operator": "is", "value": "animals"}]}
    filtered = retrieve(
        api, question="anything", dataset_ids=[ds_id], metadata_condition=condition, similarity_threshold=0
    )["data"]
    assert {c["document_keyword"] for c in filtered["chunks"]} == {"cats.txt"}
    none = {"conditions": [{"name": "topic", "comparison_operator": "is", "value": "plants"}]}
    assert retrieve(api, question="x", dataset_ids=[ds_id], metadata_condition=none)["data"]["total"] == 0


def test_disabled_documents_and_unavailable_chunks_never_come_back(api: httpx.Client, corpus: dict[str, Any]) -> None:
    ds_id = corpus["ds"]["id"]
    cats = corpus["docs"]["cats.txt"]
    api.put(f"/api/v1/datasets/{ds_id}/documents/{cats}", json={"enabled": 0})

    def names() -> set[str]:
        res = retrieve(api, question="cats purr", dataset_ids=[ds_id], similarity_threshold=0)
        return {c["document_keyword"] for c in res["data"]["chunks"]}

    assert "cats.txt" not in eventually(names, lambda found: "cats.txt" not in found)
    api.put(f"/api/v1/datasets/{ds_id}/documents/{cats}", json={"enabled": 1})
    assert "cats.txt" in eventually(names, lambda found: "cats.txt" in found)
    url = f"/api/v1/datasets/{ds_id}/documents/{cats}/chunks"
    chunk_id = api.get(url).json()["data"]["chunks"][0]["id"]
    api.put(f"{url}/{chunk_id}", json={"available": False})
    assert "cats.txt" not in eventually(names, lambda found: "cats.txt" not in found)
    assert {"bread.txt", "rockets.txt"} <= names()  # the others were never touched


def test_a_chunk_added_by_hand_is_retrievable(api: httpx.Client, corpus: dict[str, Any]) -> None:
    ds_id = corpus["ds"]["id"]
    url = f"/api/v1/datasets/{ds_id}/documents/{corpus['docs']['bread.txt']}/chunks"
    added = api.post(url, json={"content": "Sourdough starters keep wild yeast alive for years."}).json()
    chunk_id = added["data"]["chunk"]["id"]
    res = eventually(
        lambda: retrieve(api, question="sourdough starter", dataset_ids=[ds_id], vector_similarity_weight=0)["data"],
        lambda data: chunk_id in [c["id"] for c in data["chunks"]],
    )
    assert res["chunks"][0]["id"] == chunk_id


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"question": "q"}, "`dataset_ids` is required."),
        ({"question": "q", "dataset_ids": []}, "`dataset_ids` is required."),
        ({"question": "q", "dataset_ids": "x"}, "`dataset_ids` should be a list"),
        ({"dataset_ids": ["DS"]}, "`question` is required."),
        ({"question": "  ", "dataset_ids": ["DS"]}, "`question` is required."),
        ({"question": "q", "dataset_ids": ["DS"], "page_size": 0}, "`page_size` should be between 1 and 1024"),
        ({"question": "q", "dataset_ids": ["DS"], "page_size": 10**6}, "`page_size` should be between 1 and 1024"),
        ({"question": "q", "dataset_ids": ["DS"], "top_k": 0}, "`top_k` should be between 1 and 2048"),
        ({"question": "q", "dataset_ids": ["DS"], "vector_similarity_weight": -0.5}, "between 0 and 1"),
        ({"question": "q", "dataset_ids": ["DS"], "similarity_threshold": -0.1}, "between 0 and 1"),
        ({"question": "q", "dataset_ids": ["DS"], "metadata_condition": "x"}, "metadata_condition must be an object."),
        (
            {"question": "q", "dataset_ids": ["DS"], "document_ids": ["nope"]},
            "The datasets don't own the document nope",
        ),
    ],
)
def test_bad_requests(api: httpx.Client, parsed: dict[str, Any], payload: dict[str, Any], message: str) -> None:
    if payload.get("dataset_ids") == ["DS"]:
        payload = {**payload, "dataset_ids": [parsed["ds"]["id"]]}
    res = retrieve(api, **payload)
    assert res["code"] == 102 and message in res["message"], res


def test_foreign_datasets_and_mixed_models(api: httpx.Client, other_api: httpx.Client, server: Any) -> None:
    theirs = create_dataset(other_api)["id"]
    res = retrieve(api, question="q", dataset_ids=[theirs])
    assert res == {"code": 102, "message": f"You don't own the dataset {theirs}."}
    from shared.services.tenants import ModelSetting

    _, key = server.container.tenant_service.create(
        "two-models", [ModelSetting("text-embedding-3-small@OpenAI", "embedding")]
    )
    with server.client(key) as client:
        a = create_dataset(client, name="a", embedding_model="all-MiniLM-L6-v2@Builtin")["id"]
        b = create_dataset(client, name="b")["id"]
        mixed = retrieve(client, question="q", dataset_ids=[a, b])
        assert mixed == {"code": 102, "message": "Datasets use different embedding models."}


def test_a_bge_small_dataset_parses_and_retrieves(api: httpx.Client) -> None:
    """RAGFlow's builtin default model, chosen per dataset, beside a builtin MiniLM dataset of the same tenant."""
    ds = create_dataset(api, name="bge", chunk_method="one", embedding_model="BAAI/bge-small-en-v1.5@Builtin")
    assert ds["embedding_model"] == "BAAI/bge-small-en-v1.5@Builtin"
    docs = {}
    for name, text in FACTS.items():
        doc = upload_one(api, ds["id"], name, text.encode())
        assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
        docs[name] = doc["id"]

    chunks = api.get(f"/api/v1/datasets/{ds['id']}/documents/{docs['bread.txt']}/chunks").json()["data"]["chunks"]
    assert [c["content"] for c in chunks] == [FACTS["bread.txt"]]
    everything = {"question": "the", "dataset_ids": [ds["id"]], "similarity_threshold": 0}
    eventually(lambda: retrieve(api, **everything)["data"]["total"], lambda total: total == len(FACTS))
    res = retrieve(api, question="why does yeast make dough rise?", dataset_ids=[ds["id"]], vector_similarity_weight=1)
    assert res["code"] == 0, res
    ranked = [c["document_keyword"] for c in res["data"]["chunks"]]
    assert ranked[0] == "bread.txt" and set(ranked) <= set(FACTS)
    top = res["data"]["chunks"][0]
    assert top["similarity"] == pytest.approx(top["vector_similarity"]) and 0.5 < top["vector_similarity"] <= 1
    kitten = retrieve(api, question="kitten", dataset_ids=[ds["id"]], vector_similarity_weight=1)["data"]
    assert kitten["chunks"][0]["document_keyword"] == "cats.txt"

    minilm = create_dataset(api, name="minilm", embedding_model="all-MiniLM-L6-v2@Builtin")["id"]
    mixed = retrieve(api, question="q", dataset_ids=[ds["id"], minilm])
    assert mixed == {"code": 102, "message": "Datasets use different embedding models."}
