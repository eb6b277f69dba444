"""The OpenSearch engine without a cluster: request bodies (k-NN as OpenSearch documents it), the mapping,
the score conversion, bulk batching, hit merging, and the requests the engine makes (AOSS's limits)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from shared.adapters.aws.opensearch_index import (
    ANALYZER,
    BULK_MAX_BYTES,
    BULK_MAX_DOCS,
    OpenSearchIndex,
    SearchRequestError,
    aoss_client,
    bulk_payloads,
    chunk_document,
    chunk_index_name,
    chunk_index_pattern,
    delete_copies_query,
    delete_query,
    index_body,
    knn_query_body,
    knn_score_to_cosine,
    merge_hits,
    scope_filters,
    text_query_body,
    unit_vector,
)
from shared.ports.metadata import StoreUnavailable
from shared.ports.search import IndexedChunk, SearchQuery
from shared.rag.text_analysis import FIELD_BOOSTS, analyze_query, opensearch_analysis

pytestmark = pytest.mark.unit

FILTERS = scope_filters("t1", ["d1"])


def make_chunk(chunk_id: str = "c1", content: str = "solar panels", vector: list[float] | None = None) -> IndexedChunk:
    return IndexedChunk(
        id=chunk_id,
        tenant_id="t1",
        dataset_id="d1",
        document_id="doc1",
        document_name="doc1.txt",
        content=content,
        vector=vector if vector is not None else [3.0, 4.0],
        keywords=["energy"],
        questions=["What converts sunlight?"],
        tags=["physics"],
        available=True,
        page_numbers=[2, 3],
        create_time=1700000000,
    )


# -- layout -------------------------------------------------------------------------------------------
def test_one_index_per_dimension_under_one_pattern() -> None:
    assert chunk_index_name("flowless", 384) == "flowless-chunks-384"
    assert chunk_index_name("flowless", 0) == "flowless-chunks-novector"
    assert chunk_index_pattern("flowless") == "flowless-chunks-*"


def test_mapping_is_a_faiss_innerproduct_knn_index_with_the_shared_analyzer() -> None:
    body = index_body(384, opensearch_analysis())
    assert body["settings"]["index"] == {"knn": True}
    assert ANALYZER in body["settings"]["analysis"]["analyzer"]
    mapping = body["mappings"]
    assert mapping["dynamic"] == "strict"
    props = mapping["properties"]
    assert props["vector"] == {
        "type": "knn_vector",
        "dimension": 384,
        "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"},
    }
    for name in ("content", "keywords", "questions"):
        assert props[name] == {"type": "text", "analyzer": ANALYZER}
    for name in ("chunk_id", "tenant_id", "dataset_id", "document_id"):
        assert props[name] == {"type": "keyword"}
    assert props["available"] == {"type": "boolean"}


def test_an_index_for_chunks_without_vectors_has_no_knn() -> None:
    body = index_body(0, opensearch_analysis())
    assert "index" not in body["settings"] and "vector" not in body["mappings"]["properties"]


def test_every_chunk_field_is_stored_and_mapped() -> None:
    """Availability changes re-index a chunk from what is stored: nothing of IndexedChunk may be lost."""
    chunk = make_chunk()
    document = chunk_document(chunk, unit_vector(chunk.vector), 123)
    stored = {"chunk_id" if f.name == "id" else f.name for f in dataclasses.fields(IndexedChunk)}
    # An ordinary chunk has no kind field (indexes written before kinds existed need no re-indexing).
    assert stored - {"kind"} <= set(document) and "kind" not in document
    assert set(document) <= set(index_body(2, opensearch_analysis())["mappings"]["properties"])
    assert document["vector"] == pytest.approx([0.6, 0.8])
    assert (document["page_numbers"], document["indexed_at"]) == ([2, 3], 123)
    record = chunk_document(dataclasses.replace(chunk, kind="entity"), unit_vector(chunk.vector), 123)
    assert stored <= set(record) and record["kind"] == "entity"
    assert set(record) <= set(index_body(2, opensearch_analysis())["mappings"]["properties"])


def test_vectors_are_written_at_unit_length() -> None:
    assert unit_vector([3.0, 4.0]) == pytest.approx([0.6, 0.8])
    assert unit_vector([0.0, 0.0]) == [0.0, 0.0]  # innerproduct accepts it (cosinesimil would reject it)
    assert unit_vector([]) is None and unit_vector(None) is None


# -- query bodies -------------------------------------------------------------------------------------
def test_scope_filters_always_hold_the_tenant_and_available_chunks() -> None:
    assert scope_filters("t1", ["d1", "d2", "d1"]) == [
        {"term": {"tenant_id": "t1"}},
        {"terms": {"dataset_id": ["d1", "d2"]}},
        {"term": {"available": True}},
        {"bool": {"must_not": [{"exists": {"field": "kind"}}]}},  # ordinary chunks only
    ]
    assert scope_filters("t1", ["d1"], kind="relation")[-1] == {"term": {"kind": "relation"}}
    assert scope_filters("t1", ["d1"], ["a", "b"])[-1] == {"terms": {"document_id": ["a", "b"]}}
    assert scope_filters("t1", ["d1"], []) == scope_filters("t1", ["d1"])  # no documents: all of them


def test_knn_body_is_the_documented_efficient_filter_form() -> None:
    """OpenSearch k-NN "efficient filtering": ``{"knn": {<field>: {"vector", "k", "filter"}}}``."""
    body = knn_query_body([0.6, 0.8], FILTERS, 7)
    assert body["query"] == {"knn": {"vector": {"vector": [0.6, 0.8], "k": 7, "filter": {"bool": {"filter": FILTERS}}}}}
    assert body["size"] == 7
    assert "vector" not in body["_source"] and {"chunk_id", "dataset_id", "document_id"} <= set(body["_source"])
    assert "script" not in json.dumps(body)


@pytest.mark.parametrize("hybrid", [False, True])
def test_text_body_is_bm25_over_the_boosted_fields(hybrid: bool) -> None:
    body = text_query_body("solar panels", FILTERS, 50, with_vector=hybrid)
    assert body["size"] == 50
    query = body["query"]["bool"]
    assert query["filter"] == FILTERS
    (must,) = query["must"]
    assert must["multi_match"]["query"] == "solar panels"
    assert must["multi_match"]["type"] == "most_fields"
    boosts = {f.split("^")[0]: float(f.split("^")[1]) if "^" in f else 1.0 for f in must["multi_match"]["fields"]}
    assert boosts == FIELD_BOOSTS
    assert {"content", "keywords", "questions", "chunk_id"} <= set(body["_source"])
    assert ("vector" in body["_source"]) is hybrid  # the cosine of text-only hits is computed from it


@pytest.mark.parametrize(
    "scope",
    [{}, {"document_id": "doc1"}, {"chunk_ids": ["c1", "c2"]}],
    ids=["dataset", "document", "chunks"],
)
def test_deletes_are_always_scoped_to_tenant_and_dataset(scope: dict[str, Any]) -> None:
    filters = delete_query("t1", "d1", **scope)["query"]["bool"]["filter"]
    assert filters[:2] == [{"term": {"tenant_id": "t1"}}, {"term": {"dataset_id": "d1"}}]
    assert len(filters) == 2 + len(scope)


def test_copies_are_deleted_by_id_within_the_tenant() -> None:
    assert delete_copies_query("t1", ["x1"]) == {
        "query": {"bool": {"filter": [{"ids": {"values": ["x1"]}}, {"term": {"tenant_id": "t1"}}]}}
    }


# -- score conversion ---------------------------------------------------------------------------------
def faiss_innerproduct_score(inner_product: float) -> float:
    """OpenSearch's k-NN spaces table, Faiss innerproduct: d = -(x·y); score 1/(1+d) if d >= 0 else -d + 1."""
    d = -inner_product
    return 1 / (1 + d) if d >= 0 else -d + 1


@pytest.mark.parametrize("cosine", [-1.0, -0.75, -0.2, 0.0, 1e-4, 0.3, 0.999, 1.0])
def test_knn_scores_convert_back_to_the_cosine(cosine: float) -> None:
    assert knn_score_to_cosine(faiss_innerproduct_score(cosine)) == pytest.approx(cosine, abs=1e-12)


def test_knn_score_reference_points() -> None:
    assert knn_score_to_cosine(2.0) == 1.0 and knn_score_to_cosine(1.0) == 0.0 and knn_score_to_cosine(0.5) == -1.0


# -- bulk ---------------------------------------------------------------------------------------------
def _actions(payload: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in payload.strip().split("\n")]
    return lines[0::2]


def test_bulk_index_actions_carry_no_id_and_split_by_count() -> None:
    documents = [("flowless-chunks-2", {"chunk_id": f"c{i}"}) for i in range(BULK_MAX_DOCS * 2 + 1)]
    payloads = list(bulk_payloads(documents))
    assert [len(_actions(p)) for p in payloads] == [BULK_MAX_DOCS, BULK_MAX_DOCS, 1]
    assert all(action == {"index": {"_index": "flowless-chunks-2"}} for p in payloads for action in _actions(p))
    assert all(p.endswith("\n") for p in payloads)


def test_bulk_splits_by_size_and_sends_an_oversized_document_alone() -> None:
    big = "x" * (BULK_MAX_BYTES // 3)
    documents = [("i", {"content": big}) for _ in range(4)] + [("i", {"content": "x" * BULK_MAX_BYTES})]
    payloads = list(bulk_payloads(documents))
    assert [len(_actions(p)) for p in payloads] == [2, 2, 1]
    assert all(len(p.encode()) <= BULK_MAX_BYTES for p in payloads[:2])


# -- merging ------------------------------------------------------------------------------------------
def _hit(chunk_id: str, score: float, **source: Any) -> dict[str, Any]:
    return {"_score": score, "_source": {"chunk_id": chunk_id, "dataset_id": "d1", "document_id": "doc1", **source}}


def test_merge_lists_text_hits_then_vector_only_hits_once_each() -> None:
    terms = analyze_query("solar sunlight")
    text_hits = [
        _hit("a", 3.0, content="Solar power", vector=[1.0, 0.0]),
        _hit("b", 2.0, content="x", keywords=["sunlight"], vector=[0.0, 1.0, 0.0]),  # another dimension
        _hit("a", 1.0, content="Solar power", vector=[1.0, 0.0]),  # a second copy of "a"
    ]
    vector_hits = [_hit("a", 1.9), _hit("c", faiss_innerproduct_score(0.5)), _hit("c", 1.2)]
    found = merge_hits(text_hits, vector_hits, terms, [1.0, 0.0])
    assert [c.chunk_id for c in found] == ["a", "b", "c"]
    a, b, c = found
    assert (a.text_score, a.vector_score, a.matched_terms) == (3.0, 1.0, ["solar"])
    assert (b.text_score, b.vector_score, b.matched_terms) == (2.0, None, ["sunlight"])
    assert (c.text_score, c.matched_terms) == (None, [])
    assert c.vector_score == pytest.approx(0.5)


def test_merge_without_a_query_vector_has_no_vector_scores() -> None:
    (found,) = merge_hits([_hit("a", 1.0, content="solar", vector=[1.0])], [], analyze_query("solar"), None)
    assert found.vector_score is None


# -- the engine's requests, on a recording client ------------------------------------------------------
class RecordingClient:
    """Records every call as (method, kwargs); ``answer`` gives each call's response."""

    def __init__(self, answer: Callable[[str, dict[str, Any]], Any] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._answer = answer or (lambda method, kwargs: {})
        self.indices = _Namespace(self, "indices")

    def _call(self, method: str, **kwargs: Any) -> Any:
        self.calls.append((method, kwargs))
        return self._answer(method, kwargs)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        return lambda **kwargs: self._call(method, **kwargs)

    def named(self, method: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == method]


class _Namespace:
    def __init__(self, client: RecordingClient, name: str) -> None:
        self._client, self._name = client, name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        return lambda **kwargs: self._client._call(f"{self._name}.{method}", **kwargs)


def _engine(client: RecordingClient) -> OpenSearchIndex:
    return OpenSearchIndex("https://example.invalid", region="us-east-1", client=client)  # type: ignore[arg-type]


def _no_aoss_forbidden_parameters(client: RecordingClient) -> None:
    for _, kwargs in client.calls:
        params = kwargs.get("params") or {}
        assert "refresh" not in params and "refresh" not in kwargs
        assert "script" not in json.dumps(kwargs.get("body", ""), default=str)


def test_upsert_creates_the_index_indexes_without_ids_then_deletes_the_replaced_copies() -> None:
    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        if method == "indices.exists":
            return False
        if method == "search":  # the stored copies of the chunks
            return {"hits": {"hits": [{"_index": "flowless-chunks-2", "_id": "old-1"}]}}
        if method == "bulk":
            return {"errors": False, "items": []}
        return {}

    client = RecordingClient(answer)
    engine = _engine(client)
    engine.upsert([make_chunk("c1"), make_chunk("c2"), make_chunk("c1", "newer")])
    engine.upsert([make_chunk("c3")])
    first = ["indices.exists", "indices.create", "search", "bulk", "delete_by_query"]
    assert [name for name, _ in client.calls] == [*first, "search", "bulk", "delete_by_query"]  # index known now
    (create,) = client.named("indices.create")
    assert create["index"] == "flowless-chunks-2" and create["body"] == index_body(2, opensearch_analysis())
    lookup = client.named("search")[0]
    assert lookup["body"]["_source"] is False
    assert {"terms": {"chunk_id": ["c1", "c2"]}} in lookup["body"]["query"]["bool"]["filter"]
    bulk = client.named("bulk")[0]["body"]
    lines = [json.loads(line) for line in bulk.strip().split("\n")]
    assert lines[0] == {"index": {"_index": "flowless-chunks-2"}}
    assert [doc["chunk_id"] for doc in lines[1::2]] == ["c1", "c2"] and lines[1]["content"] == "newer"
    deleted = client.named("delete_by_query")[0]
    assert deleted["index"] == "flowless-chunks-2" and deleted["body"] == delete_copies_query("t1", ["old-1"])
    _no_aoss_forbidden_parameters(client)


def test_set_available_reindexes_the_latest_copy_and_deletes_every_copy() -> None:
    stored = [
        {"_index": "flowless-chunks-2", "_id": "x1", "_source": {"chunk_id": "c1", "available": True, "indexed_at": 5}},
        {"_index": "flowless-chunks-2", "_id": "x2", "_source": {"chunk_id": "c1", "available": True, "indexed_at": 9}},
        {"_index": "flowless-chunks-2", "_id": "y1", "_source": {"chunk_id": "c2", "available": False}},
    ]

    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        return {"hits": {"hits": stored}} if method == "search" else {"errors": False, "items": []}

    client = RecordingClient(answer)
    _engine(client).set_available("t1", "d1", ["c1", "c2", "c1"], False)
    assert client.named("search")[0]["body"]["_source"] is True
    (bulk,) = client.named("bulk")
    lines = [json.loads(line) for line in bulk["body"].strip().split("\n")]
    assert len(lines) == 2 and lines[1]["chunk_id"] == "c1" and lines[1]["available"] is False
    assert lines[1]["indexed_at"] > 9
    (deleted,) = client.named("delete_by_query")
    assert deleted["body"] == delete_copies_query("t1", ["x1", "x2"])  # c2 already unavailable: untouched
    _no_aoss_forbidden_parameters(client)


def test_search_is_one_msearch_of_a_text_and_a_knn_request() -> None:
    client = RecordingClient(lambda method, kwargs: {"responses": [{"hits": {"hits": []}}] * 2})
    query = SearchQuery("t1", ["d1"], text="solar", vector=[3.0, 4.0], document_ids=["doc1"], top_k=9)
    assert _engine(client).search(query) == []
    ((_, call),) = client.calls
    text_header, text_body, knn_header, knn_body = call["body"]
    filters = scope_filters("t1", ["d1"], ["doc1"])
    assert text_header == {"index": "flowless-chunks-*", "ignore_unavailable": True, "allow_no_indices": True}
    assert text_body == text_query_body("solar", filters, 9, with_vector=True)
    assert knn_header["index"] == "flowless-chunks-2"
    assert knn_body == knn_query_body([0.6, 0.8], filters, 9)


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery("t1", ["d1"]),
        SearchQuery("t1", ["d1"], text="the of and"),
        SearchQuery("t1", [], text="solar", vector=[1.0]),
        SearchQuery("t1", ["d1"], text="solar", top_k=0),
    ],
    ids=["nothing", "stopwords", "no-datasets", "top-k-0"],
)
def test_searches_that_cannot_match_send_nothing(query: SearchQuery) -> None:
    client = RecordingClient()
    assert _engine(client).search(query) == []
    assert client.calls == []


def test_stopword_text_with_a_vector_sends_only_the_knn_request() -> None:
    client = RecordingClient(lambda method, kwargs: {"responses": [{"hits": {"hits": [_hit("c1", 1.5)]}}]})
    (found,) = _engine(client).search(SearchQuery("t1", ["d1"], text="the", vector=[1.0, 0.0]))
    assert len(client.calls[0][1]["body"]) == 2 and found.vector_score == pytest.approx(0.5)


def test_deletes_go_to_every_chunk_index_without_refresh() -> None:
    client = RecordingClient(lambda method, kwargs: {"deleted": 0, "failures": []})
    engine = _engine(client)
    engine.delete_chunks("t1", "d1", [f"c{i}" for i in range(1500)] + ["c0"])
    engine.delete_document("t1", "d1", "doc1")
    engine.delete_dataset("t1", "d1")
    calls = client.named("delete_by_query")
    assert [len(c["body"]["query"]["bool"]["filter"][-1]["terms"]["chunk_id"]) for c in calls[:2]] == [1000, 500]
    assert all(c["index"] == "flowless-chunks-*" for c in calls)
    assert calls[2]["body"] == delete_query("t1", "d1", document_id="doc1")
    assert calls[3]["body"] == delete_query("t1", "d1")
    _no_aoss_forbidden_parameters(client)


# -- errors -------------------------------------------------------------------------------------------
def _raising(exc: Exception) -> Callable[[str, dict[str, Any]], Any]:
    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        raise exc

    return answer


def test_throttling_and_outages_are_store_unavailable_and_bad_requests_are_not() -> None:
    with pytest.raises(StoreUnavailable):
        _engine(RecordingClient(_raising(TransportError(429, "too_many_requests", {})))).delete_dataset("t", "d")
    with pytest.raises(StoreUnavailable):
        _engine(RecordingClient(_raising(OpenSearchConnectionError("N/A", "refused", None)))).delete_dataset("t", "d")
    with pytest.raises(SearchRequestError):
        _engine(RecordingClient(_raising(TransportError(400, "parsing_exception", {})))).delete_dataset("t", "d")


def test_a_failed_search_in_the_msearch_raises() -> None:
    failed = {"responses": [{"status": 503, "error": {"type": "unavailable", "reason": "busy"}}]}
    with pytest.raises(StoreUnavailable, match="busy"):
        _engine(RecordingClient(lambda method, kwargs: failed)).search(SearchQuery("t1", ["d1"], text="solar"))


def test_bulk_item_errors_raise() -> None:
    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        if method == "bulk":
            item = {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}}
            return {"errors": True, "items": [item]}
        return {"hits": {"hits": []}} if method == "search" else True

    with pytest.raises(SearchRequestError, match="bad"):
        _engine(RecordingClient(answer)).upsert([make_chunk()])


def test_ping_fails_as_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        _engine(RecordingClient(_raising(OpenSearchConnectionError("N/A", "refused", None)))).ping()


# -- the AOSS client ----------------------------------------------------------------------------------
def test_the_default_client_signs_for_aoss_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = aoss_client("https://abc123.us-east-1.aoss.amazonaws.com", region="us-east-1")
    (connection,) = client.transport.connection_pool.connections
    assert connection.host == "https://abc123.us-east-1.aoss.amazonaws.com:443"
    auth = connection.session.auth
    assert (auth.service, auth.signer.region) == ("aoss", "us-east-1")
    headers = auth.signer.sign("GET", "https://abc123.us-east-1.aoss.amazonaws.com/_search", None)
    assert "/us-east-1/aoss/aws4_request" in headers["Authorization"]
    assert "X-Amz-Content-SHA256" in headers


def test_the_reason_opensearch_gives_is_in_the_error() -> None:
    body = {"error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [vector]"}, "status": 400}
    client = RecordingClient(_raising(TransportError(400, "mapper_parsing_exception", body)))
    with pytest.raises(SearchRequestError, match=r"\(400\): failed to parse field \[vector\]"):
        _engine(client).delete_document("t", "d", "doc")
