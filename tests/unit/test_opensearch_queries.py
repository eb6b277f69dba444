"""The OpenSearch engine without a cluster: request bodies (k-NN as OpenSearch documents it), the mapping,
the score conversion, bulk batching, hit merging, and the requests the engine makes (AOSS's limits: no
``_id`` of ours, no refresh, no script, no scroll, no delete-by-query; changes are search-then-bulk)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from shared.adapters.aws.opensearch_index import (
    ANALYZER,
    BULK_DELETE_MAX,
    BULK_MAX_BYTES,
    BULK_MAX_DOCS,
    PACKED_VECTOR,
    PAGE_SIZE,
    OpenSearchIndex,
    SearchRequest,
    SearchRequestError,
    aoss_client,
    bulk_delete_payloads,
    bulk_payloads,
    chunk_document,
    chunk_index_name,
    chunk_index_pattern,
    doc_freq_body,
    encode_vector,
    index_body,
    knn_query_body,
    knn_score_to_cosine,
    merge_hits,
    page_body,
    plan_from_statistics,
    scope_filters,
    scope_query,
    search_each,
    text_query_body,
    unit_vector,
)
from shared.ports.metadata import StoreUnavailable
from shared.ports.search import TEXT_CANDIDATES, IndexedChunk, SearchQuery
from shared.rag.text_analysis import (
    FIELD_BOOSTS,
    MAX_QUERY_TERMS,
    QueryPlan,
    WeightedTerm,
    analyze_query,
    bm25_idf,
    opensearch_analysis,
    plan_query,
    query_weight,
)

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
    for name in ("chunk_id", "tenant_id", "dataset_id", "document_id", "copy_id"):
        assert props[name] == {"type": "keyword"}
    assert props["available"] == {"type": "boolean"}


def test_an_index_for_chunks_without_vectors_has_no_knn() -> None:
    body = index_body(0, opensearch_analysis())
    assert "index" not in body["settings"] and "vector" not in body["mappings"]["properties"]


def test_every_chunk_field_is_stored_and_mapped() -> None:
    """Availability changes re-index a chunk from what is stored: nothing of IndexedChunk may be lost."""
    chunk = make_chunk()
    document = chunk_document(chunk, unit_vector(chunk.vector), 123, "copy-1")
    stored = {"chunk_id" if f.name == "id" else f.name for f in dataclasses.fields(IndexedChunk)}
    # An ordinary chunk has no kind field (indexes written before kinds existed need no re-indexing).
    assert stored - {"kind"} <= set(document) and "kind" not in document
    assert set(document) <= set(index_body(2, opensearch_analysis())["mappings"]["properties"])
    assert document["vector"] == pytest.approx([0.6, 0.8])
    assert (document["page_numbers"], document["indexed_at"], document["copy_id"]) == ([2, 3], 123, "copy-1")
    record = chunk_document(dataclasses.replace(chunk, kind="entity"), unit_vector(chunk.vector), 123, "copy-2")
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


def _plan(text: str, doc_freqs: list[int] | None = None, docs: int = 100) -> QueryPlan:
    terms = analyze_query(text)
    return plan_query(terms, doc_freqs if doc_freqs is not None else [1] * len(terms), docs)


@pytest.mark.parametrize("hybrid", [False, True])
def test_text_body_is_bm25_of_the_planned_terms_over_the_boosted_fields(hybrid: bool) -> None:
    body = text_query_body(_plan("solar panels, solar roofs"), FILTERS, 50, with_vector=hybrid)
    assert body["size"] == 50
    query = body["query"]["bool"]
    assert query["filter"] == FILTERS and query["minimum_should_match"] == 1
    clauses = [c["multi_match"] for c in query["should"]]
    # one clause per distinct term, boosted by its query weight (the question's count of it, saturated)
    assert [(c["query"], c.get("boost", 1)) for c in clauses] == [
        ("solar", query_weight(2)),
        ("panels", 1),
        ("roofs", 1),
    ]
    for i, clause in enumerate(clauses):
        assert clause["type"] == "most_fields"
        boosts = {f.split("^")[0]: float(f.split("^")[1]) if "^" in f else 1.0 for f in clause["fields"]}
        assert boosts == FIELD_BOOSTS
        assert clause["_name"] == f"t{i}"  # a hit's matched_queries name the terms it holds
    # no texts (the matched terms come from the named clauses) and, in a hybrid search, the packed vector the
    # cosine of text-only hits is computed from (with the copy id, to read an older copy's vector again)
    hit_fields = {"chunk_id", "dataset_id", "document_id"}
    assert set(body["_source"]) == (hit_fields | {"copy_id", PACKED_VECTOR} if hybrid else hit_fields)


def test_doc_freq_body_counts_each_term_in_the_datasets_without_hits() -> None:
    terms = analyze_query("solar panels")
    body = doc_freq_body(terms, "t1", ["d1", "d2", "d1"])
    assert body["size"] == 0 and body["track_total_hits"] is True
    chunks_only = {"bool": {"must_not": [{"exists": {"field": "kind"}}]}}  # ordinary chunks have no kind
    datasets = [{"term": {"tenant_id": "t1"}}, {"terms": {"dataset_id": ["d1", "d2"]}}, chunks_only]
    assert body["query"] == {"bool": {"filter": datasets}}
    entities = doc_freq_body(terms, "t1", ["d1"], "entity")["query"]["bool"]["filter"]
    assert entities[-1] == {"term": {"kind": "entity"}}
    buckets = body["aggs"]["df"]["filters"]["filters"]
    assert [b["multi_match"]["query"] for b in buckets.values()] == ["solar", "panels"]
    assert "script" not in json.dumps(body)


def test_plan_from_statistics_reads_the_counts() -> None:
    terms = analyze_query("solar panels zebra")
    response = {
        "hits": {"total": {"value": 1000, "relation": "eq"}, "hits": []},
        "aggregations": {
            "df": {"buckets": {"t0": {"doc_count": 10}, "t1": {"doc_count": 400}, "t2": {"doc_count": 0}}}
        },
    }
    plan = plan_from_statistics(terms, response)
    assert [t.term.word for t in plan.terms] == ["solar", "panels"]  # no chunk holds "zebra"
    assert plan.terms[0].idf == pytest.approx(bm25_idf(10, 1000)) and plan.terms[1].idf == pytest.approx(
        bm25_idf(400, 1000)
    )


@pytest.mark.parametrize(
    "scope",
    [{}, {"document_id": "doc1"}, {"chunk_ids": ["c1", "c2"]}],
    ids=["dataset", "document", "chunks"],
)
def test_changes_are_always_scoped_to_tenant_and_dataset(scope: dict[str, Any]) -> None:
    filters = scope_query("t1", "d1", **scope)["bool"]["filter"]
    assert filters[:2] == [{"term": {"tenant_id": "t1"}}, {"term": {"dataset_id": "d1"}}]
    assert len(filters) == 2 + len(scope)
    assert {"term": {"available": True}} not in filters  # a change acts on available and unavailable copies


def test_pages_are_sorted_on_the_unique_copy_id_and_continue_with_search_after() -> None:
    query = scope_query("t1", "d1")
    first = page_body(query, size=50, source=False)
    assert first == {
        "size": 50,
        "track_total_hits": False,
        "_source": False,
        "sort": [{"copy_id": "asc"}],
        "query": query,
    }
    assert page_body(query, size=50, source=True, after=["abc"])["search_after"] == ["abc"]


def test_bulk_deletes_name_index_and_id_once_each_in_batches() -> None:
    copies = [("flowless-chunks-2", f"id{i}") for i in range(BULK_DELETE_MAX + 1)] + [("flowless-chunks-2", "id0")]
    payloads = list(bulk_delete_payloads(copies))
    lines = [[json.loads(line) for line in p.strip().split("\n")] for p in payloads]
    assert [len(batch) for batch in lines] == [BULK_DELETE_MAX, 1]
    assert lines[0][0] == {"delete": {"_index": "flowless-chunks-2", "_id": "id0"}}
    assert all(p.endswith("\n") for p in payloads)
    assert list(bulk_delete_payloads([])) == []


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
def _hit(chunk_id: str, score: float, matched: Sequence[str] = (), **source: Any) -> dict[str, Any]:
    hit = {"_score": score, "_source": {"chunk_id": chunk_id, "dataset_id": "d1", "document_id": "doc1", **source}}
    return {**hit, "matched_queries": list(matched)} if matched else hit


def test_merge_lists_text_hits_then_vector_only_hits_once_each() -> None:
    plan = _plan("solar sunlight")
    text_hits = [
        _hit("a", 3.0, ["t0"], vector=[1.0, 0.0]),
        _hit("b", 2.0, ["t1", "other", "t9"], vector=[0.0, 1.0, 0.0]),  # another dimension; unknown names
        _hit("a", 1.0, ["t0"], vector=[1.0, 0.0]),  # a second copy of "a"
    ]
    vector_hits = [_hit("a", 1.9), _hit("c", faiss_innerproduct_score(0.5)), _hit("c", 1.2)]
    found = merge_hits(text_hits, vector_hits, plan, [1.0, 0.0])
    assert [c.chunk_id for c in found] == ["a", "b", "c"]
    a, b, c = found
    assert (a.text_score, a.vector_score, a.matched_terms) == (3.0, 1.0, ["solar"])
    assert (b.text_score, b.vector_score, b.matched_terms) == (2.0, None, ["sunlight"])
    assert (c.text_score, c.matched_terms) == (None, [])
    assert c.vector_score == pytest.approx(0.5)
    assert {x.text_reference for x in found} == {plan.reference_score}


def test_a_packed_vector_is_the_vector() -> None:
    vector = [0.6, -0.8, 1e-7, 3.0]
    assert np.array_equal(np.frombuffer(base64.b64decode(encode_vector(vector)), "<f4"), np.float32(vector))
    document = chunk_document(make_chunk("c1", vector=[0.6, 0.8]), [0.6, 0.8], 1, "copy")
    assert document["vector"] == [0.6, 0.8] and document[PACKED_VECTOR] == encode_vector([0.6, 0.8])
    (packed,) = merge_hits(
        [_hit("a", 1.0, ["t0"], **{PACKED_VECTOR: encode_vector([0.6, 0.8])})], [], _plan("x"), [1.0, 0]
    )
    assert packed.vector_score == pytest.approx(0.6)
    broken = [_hit(name, 1.0, **{PACKED_VECTOR: value}) for name, value in (("a", "AAA="), ("b", "not base64!"))]
    assert [c.vector_score for c in merge_hits(broken, [], _plan("x"), [1.0, 0])] == [None, None]  # not 2 floats


def test_merge_without_a_query_vector_has_no_vector_scores() -> None:
    (found,) = merge_hits([_hit("a", 1.0, ["t0"], vector=[1.0])], [], _plan("solar"), None)
    assert found.vector_score is None


def test_merged_terms_are_those_of_the_query_that_was_sent() -> None:
    # A short question's text query sends every term (before the statistics said which ones chunks hold).
    terms = analyze_query("zebra solar")
    sent = QueryPlan(tuple(WeightedTerm(term, 0.0) for term in terms), 0.0)
    plan = _plan("zebra solar")
    (found,) = merge_hits([_hit("a", 1.0, ["t1"])], [], plan, None, sent=sent)
    assert found.matched_terms == ["solar"] and found.text_reference == plan.reference_score


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


#: The only calls AOSS vector collections serve that the engine needs.
_ALLOWED_CALLS = {"indices.exists", "indices.create", "search", "bulk"}


def _no_aoss_forbidden_requests(client: RecordingClient) -> None:
    for name, kwargs in client.calls:
        assert name in _ALLOWED_CALLS, name  # no delete_by_query, msearch, scroll, refresh, update ...
        params = kwargs.get("params") or {}
        assert "refresh" not in params and "refresh" not in kwargs and "scroll" not in params
        body = kwargs.get("body", "")
        assert "script" not in json.dumps(body, default=str)
        if name == "bulk":  # index actions without _id, deletes by the _id found
            for line in body.strip().split("\n"):
                action = json.loads(line)
                if "index" in action:
                    assert "_id" not in action["index"]


def _all_searchable(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to a write's visibility check (a count of the copies it wrote), every copy searchable;
    None for any other search."""
    body = kwargs.get("body") or {}
    if body.get("size") != 0 or not body.get("track_total_hits"):
        return None
    return {"hits": {"total": {"value": len(body["query"]["terms"]["copy_id"]), "relation": "eq"}, "hits": []}}


def _page(*hits: dict[str, Any]) -> dict[str, Any]:
    return {"hits": {"hits": [{**hit, "sort": [hit.get("_source", {}).get("copy_id", hit["_id"])]} for hit in hits]}}


def test_upsert_creates_the_index_indexes_without_ids_then_deletes_the_replaced_copies() -> None:
    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        if method == "indices.exists":
            return False
        if method == "search":  # the stored copies of the chunks, or how many written copies are searchable
            return _all_searchable(kwargs) or _page({"_index": "flowless-chunks-2", "_id": "old-1"})
        if method == "bulk":
            return {"errors": False, "items": []}
        return {}

    client = RecordingClient(answer)
    engine = _engine(client)
    engine.upsert([make_chunk("c1"), make_chunk("c2"), make_chunk("c1", "newer")])
    engine.upsert([make_chunk("c3")])
    first = ["indices.exists", "indices.create", "search", "bulk", "bulk", "search"]
    assert [name for name, _ in client.calls] == [*first, "search", "bulk", "bulk", "search"]  # index known now
    (create,) = client.named("indices.create")
    assert create["index"] == "flowless-chunks-2" and create["body"] == index_body(2, opensearch_analysis())
    lookup = client.named("search")[0]
    assert lookup["body"]["_source"] is False and lookup["body"]["sort"] == [{"copy_id": "asc"}]
    assert {"terms": {"chunk_id": ["c1", "c2"]}} in lookup["body"]["query"]["bool"]["filter"]
    indexed, deleted = (call["body"] for call in client.named("bulk")[:2])
    lines = [json.loads(line) for line in indexed.strip().split("\n")]
    assert lines[0] == {"index": {"_index": "flowless-chunks-2"}}
    assert [doc["chunk_id"] for doc in lines[1::2]] == ["c1", "c2"] and lines[1]["content"] == "newer"
    assert len({doc["copy_id"] for doc in lines[1::2]}) == 2  # a copy id of its own each
    assert deleted == '{"delete":{"_index":"flowless-chunks-2","_id":"old-1"}}\n'
    # then it waits until what it wrote is searchable: a count of those copies
    check = client.named("search")[1]
    assert check["index"] == "flowless-chunks-*" and check["body"] == {
        "size": 0,
        "track_total_hits": True,
        "query": {"terms": {"copy_id": [doc["copy_id"] for doc in lines[1::2]]}},
    }
    _no_aoss_forbidden_requests(client)


def test_set_available_reindexes_the_latest_copy_and_deletes_every_copy() -> None:
    sources: list[dict[str, Any]] = [
        {"chunk_id": "c1", "available": True, "indexed_at": 5},
        {"chunk_id": "c1", "available": True, "indexed_at": 9},
        {"chunk_id": "c2", "available": False},
    ]
    stored = [
        {"_index": "flowless-chunks-2", "_id": doc_id, "_source": {**source, "copy_id": f"copy-{number}"}}
        for number, (doc_id, source) in enumerate(zip(["x1", "x2", "y1"], sources, strict=True))
    ]

    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        if method == "search":
            return _all_searchable(kwargs) or _page(*stored)
        return {"errors": False, "items": []}

    client = RecordingClient(answer)
    _engine(client).set_available("t1", "d1", ["c1", "c2", "c1"], False)
    assert client.named("search")[-1]["body"]["query"] == {"terms": {"copy_id": [lines_copy_id(client)]}}
    assert client.named("search")[0]["body"]["_source"] is True
    indexed, deleted = client.named("bulk")
    lines = [json.loads(line) for line in indexed["body"].strip().split("\n")]
    assert len(lines) == 2 and lines[1]["chunk_id"] == "c1" and lines[1]["available"] is False
    assert lines[1]["indexed_at"] > 9 and lines[1]["copy_id"] not in {"copy-0", "copy-1", "copy-2"}
    actions = [json.loads(line) for line in deleted["body"].strip().split("\n")]
    assert [a["delete"]["_id"] for a in actions] == ["x1", "x2"]  # c2 already unavailable: untouched
    _no_aoss_forbidden_requests(client)


def lines_copy_id(client: RecordingClient) -> str:
    """The copy id of the one document the first bulk request indexed."""
    indexed = client.named("bulk")[0]["body"].strip().split("\n")
    copy_id: str = json.loads(indexed[1])["copy_id"]
    return copy_id


def test_a_write_waits_until_its_copies_are_searchable_and_says_when_they_are_not() -> None:
    visible = iter([0, 1, 2])

    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        if method == "search" and _all_searchable(kwargs) is not None:  # 0, then 1, then both copies
            return {"hits": {"total": {"value": next(visible), "relation": "eq"}, "hits": []}}
        return _page() if method == "search" else {"errors": False, "items": []}

    client = RecordingClient(answer)
    _engine(client).upsert([make_chunk("c1"), make_chunk("c2")])
    assert [name for name, _ in client.calls][-3:] == ["search", "search", "search"]

    never = RecordingClient(
        lambda method, kwargs: (
            {"hits": {"total": {"value": 0}, "hits": []}} if method == "search" else {"errors": False}
        )
    )
    engine = OpenSearchIndex(
        "https://example.invalid",
        region="us-east-1",
        client=never,  # type: ignore[arg-type]
        visibility_timeout_s=0.2,
    )
    with pytest.raises(StoreUnavailable, match=r"2 written documents not searchable after 0\.2 s"):
        engine.upsert([make_chunk("c1"), make_chunk("c2")])


def _batching_engine(client: RecordingClient, batches: list[list[SearchRequest]]) -> OpenSearchIndex:
    """An engine over ``client`` that records each batch of searches it sends side by side (one round trip)."""

    def searcher(opensearch: Any, requests: Sequence[SearchRequest]) -> list[dict[str, Any]]:
        batches.append(list(requests))
        return search_each(opensearch, requests)

    return OpenSearchIndex("https://example.invalid", region="us-east-1", client=client, searcher=searcher)  # type: ignore[arg-type]


def test_a_question_of_few_terms_is_searched_in_one_round_trip() -> None:
    statistics = {
        "hits": {"total": {"value": 50}, "hits": []},
        "aggregations": {"df": {"buckets": {"t0": {"doc_count": 3}, "t1": {"doc_count": 0}}}},
    }
    client = RecordingClient(lambda method, kwargs: statistics if "aggs" in kwargs["body"] else {"hits": {"hits": []}})
    batches: list[list[SearchRequest]] = []
    engine = _batching_engine(client, batches)
    query = SearchQuery(
        "t1", ["d1"], text="solar zebra", vector=[3.0, 4.0], document_ids=["doc1"], top_k=9, text_limit=50
    )
    assert engine.search(query) == []
    (batch,) = batches  # the statistics, the k-NN search and the text query, side by side
    terms = analyze_query("solar zebra")
    filters = scope_filters("t1", ["d1"], ["doc1"])
    every_term = QueryPlan(tuple(WeightedTerm(term, 0.0) for term in terms), 0.0)
    assert [(r.index, r.body) for r in batch] == [
        ("flowless-chunks-*", doc_freq_body(terms, "t1", ["d1"])),
        ("flowless-chunks-2", knn_query_body([0.6, 0.8], filters, 9)),
        # top_k is the k-NN's k; text matches have their own bound. Every term is sent ("zebra", which no chunk
        # holds, matches nothing): the same hits as the planned query, one round trip sooner.
        ("flowless-chunks-*", text_query_body(every_term, filters, 50, with_vector=True)),
    ]
    searches = client.named("search")
    assert all(s["params"] == {"ignore_unavailable": "true", "allow_no_indices": "true"} for s in searches)
    _no_aoss_forbidden_requests(client)


def test_a_long_question_counts_terms_beside_the_knn_search_then_sends_the_planned_text_query() -> None:
    words = [f"w{i}x" for i in range(MAX_QUERY_TERMS + 5)]
    buckets = {f"t{i}": {"doc_count": 1 + i} for i in range(len(words))}
    statistics = {"hits": {"total": {"value": 5000}, "hits": []}, "aggregations": {"df": {"buckets": buckets}}}
    client = RecordingClient(lambda method, kwargs: statistics if "aggs" in kwargs["body"] else {"hits": {"hits": []}})
    batches: list[list[SearchRequest]] = []
    engine = _batching_engine(client, batches)
    query = SearchQuery("t1", ["d1"], text=" ".join(words), vector=[1.0, 0.0], text_limit=50)
    assert engine.search(query) == []
    first, (text,) = batches
    terms = analyze_query(" ".join(words))
    filters = scope_filters("t1", ["d1"])
    assert [r.body for r in first] == [doc_freq_body(terms, "t1", ["d1"]), knn_query_body([1.0, 0.0], filters, 1024)]
    plan = plan_from_statistics(terms, statistics)
    assert len(plan.terms) == MAX_QUERY_TERMS and text.body == text_query_body(plan, filters, 50, with_vector=True)


def test_a_question_no_chunk_holds_a_term_of_finds_nothing_by_text() -> None:
    statistics = {"hits": {"total": {"value": 50}, "hits": []}, "aggregations": {"df": {"buckets": {}}}}
    client = RecordingClient(lambda method, kwargs: statistics)
    assert _engine(client).search(SearchQuery("t1", ["d1"], text="zebra")) == []
    assert [kwargs["body"].get("size") for name, kwargs in client.calls] == [0, TEXT_CANDIDATES]  # side by side


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
    client = RecordingClient(lambda method, kwargs: {"hits": {"hits": [_hit("c1", 1.5)]}})
    (found,) = _engine(client).search(SearchQuery("t1", ["d1"], text="the", vector=[1.0, 0.0]))
    assert [kwargs["index"] for _, kwargs in client.calls] == ["flowless-chunks-2"]
    assert found.vector_score == pytest.approx(0.5)


class PagedStore:
    """A recording client over stored copies: searches page them by ``copy_id`` (``search_after``, ``size``),
    filtered by the query's term clauses; bulk deletes remove them (404 for one already gone). With
    ``deletes_visible`` False, searches go on showing deleted copies (AOSS before its refresh)."""

    def __init__(self, copies: list[dict[str, Any]], *, deletes_visible: bool = True) -> None:
        self.copies = {c["_id"]: c for c in copies}
        self.searchable = self.copies if deletes_visible else dict(self.copies)
        self.recorder = RecordingClient(self._answer)
        self.deleted: list[str] = []

    def _answer(self, method: str, kwargs: dict[str, Any]) -> Any:
        if method == "search":
            body = kwargs["body"]
            assert body["sort"] == [{"copy_id": "asc"}]
            wanted = self._matching(body["query"]["bool"]["filter"])
            after = (body.get("search_after") or [""])[0]
            page = sorted((c for c in wanted if c["_source"]["copy_id"] > after), key=lambda c: c["_source"]["copy_id"])
            return _page(*page[: body["size"]])
        if method == "bulk":
            items = []
            for line in kwargs["body"].strip().split("\n"):
                doc_id = json.loads(line)["delete"]["_id"]
                found = self.copies.pop(doc_id, None) is not None
                self.deleted.append(doc_id)
                items.append({"delete": {"_id": doc_id, "status": 200 if found else 404}})
            return {"errors": False, "items": items}
        raise AssertionError(method)

    def _matching(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = list(self.searchable.values())
        for clause in filters:
            ((kind, condition),) = clause.items()
            ((name, value),) = condition.items()
            accepted = set(value) if kind == "terms" else {value}
            out = [c for c in out if c["_source"][name] in accepted]
        return out


def _copies(count: int, **source: Any) -> list[dict[str, Any]]:
    return [
        {
            "_index": "flowless-chunks-2",
            "_id": f"id{n}",
            "_source": {
                "tenant_id": "t1",
                "dataset_id": "d1",
                "document_id": "doc1",
                "chunk_id": f"c{n}",
                "copy_id": f"{n:05d}",
                **source,
            },
        }
        for n in range(count)
    ]


def test_a_delete_pages_through_every_copy_and_deletes_each_once() -> None:
    store = PagedStore(_copies(PAGE_SIZE * 2 + 7) + [{**c, "_id": "other"} for c in _copies(1, document_id="doc2")])
    engine = OpenSearchIndex("https://example.invalid", region="us-east-1", client=store.recorder)  # type: ignore[arg-type]
    engine.delete_document("t1", "d1", "doc1")
    searches = store.recorder.named("search")
    assert len(searches) == 3 and "search_after" not in searches[0]["body"]
    assert searches[1]["body"]["search_after"] == [f"{PAGE_SIZE - 1:05d}"]
    assert all(s["index"] == "flowless-chunks-*" for s in searches)
    assert len(store.deleted) == len(set(store.deleted)) == PAGE_SIZE * 2 + 7
    assert list(store.copies) == ["other"]  # another document's copy stays
    _no_aoss_forbidden_requests(store.recorder)


def test_a_delete_of_chunk_ids_goes_in_batches_of_terms() -> None:
    store = PagedStore(_copies(1500))
    engine = OpenSearchIndex("https://example.invalid", region="us-east-1", client=store.recorder)  # type: ignore[arg-type]
    engine.delete_chunks("t1", "d1", [f"c{i}" for i in range(1500)] + ["c0", "never-existed"])
    terms = [
        len(call["body"]["query"]["bool"]["filter"][-1]["terms"]["chunk_id"]) for call in store.recorder.named("search")
    ]
    assert terms[0] == 1000 and sum(set(terms)) == 1000 + 501 and store.copies == {}
    _no_aoss_forbidden_requests(store.recorder)


def test_a_retried_delete_counts_copies_already_gone_as_deleted() -> None:
    """A retry (or a second delete while the first is not yet visible) finds copies already deleted: their
    404 items are success, not errors."""
    store = PagedStore(_copies(3), deletes_visible=False)
    engine = OpenSearchIndex("https://example.invalid", region="us-east-1", client=store.recorder)  # type: ignore[arg-type]
    engine.delete_dataset("t1", "d1")
    assert store.copies == {} and len(store.searchable) == 3  # deleted, still searchable
    engine.delete_dataset("t1", "d1")  # the retry: every item answers 404
    assert store.deleted == ["id0", "id1", "id2"] * 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, StoreUnavailable), (503, StoreUnavailable), (400, SearchRequestError)],
)
def test_a_failed_bulk_delete_item_raises(status: int, error: type[Exception]) -> None:
    def answer(method: str, kwargs: dict[str, Any]) -> Any:
        if method == "search":
            return _page({"_index": "flowless-chunks-2", "_id": "x1"}, {"_index": "flowless-chunks-2", "_id": "x2"})
        gone = {"delete": {"_id": "x1", "status": 404, "error": {"type": "index_not_found_exception", "reason": "no"}}}
        failed = {"delete": {"_id": "x2", "status": status, "error": {"type": "failure", "reason": "it failed"}}}
        return {"errors": True, "items": [gone, failed]}

    with pytest.raises(error, match="it failed"):
        _engine(RecordingClient(answer)).delete_chunks("t1", "d1", ["c1"])


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


def test_a_failed_search_raises() -> None:
    busy = TransportError(503, "unavailable", {"error": {"type": "unavailable", "reason": "busy"}})
    with pytest.raises(StoreUnavailable, match="busy"):
        _engine(RecordingClient(_raising(busy))).search(SearchQuery("t1", ["d1"], text="solar", vector=[1.0]))


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
