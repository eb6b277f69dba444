"""The strict OpenSearch Serverless stand-in (tests/support/aoss.py), over real HTTP: each refusal with
AOSS's status and body, the operations it serves, and the delay before a write is searchable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from osmem_server import OsmemServer

from tests.support.aoss import (
    DEFAULT_VISIBILITY_DELAY_S,
    ID_NOT_SUPPORTED,
    MAX_BODY_BYTES,
    UPDATE_ID_NOT_SUPPORTED,
    StrictAoss,
    error_body,
    run_strict_aoss,
)
from tests.support.api import eventually

INDEX = "books"
MAPPING = {"mappings": {"properties": {"title": {"type": "text"}, "shelf": {"type": "keyword"}}}}


@pytest.fixture
def aoss(osmem: OsmemServer) -> Iterator[StrictAoss]:
    clone = osmem.clone()
    try:
        with run_strict_aoss(clone.url, visibility_delay_s=0.2) as stand_in:
            yield stand_in
    finally:
        clone.close()


@pytest.fixture
def http(aoss: StrictAoss) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=aoss.url, timeout=30) as client:
        assert client.put(f"/{INDEX}", json=MAPPING).status_code == 200
        yield client


def ndjson(*lines: dict[str, Any]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def bulk(http: httpx.Client, *lines: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/_bulk", content=ndjson(*lines), headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def titles(http: httpx.Client, query: str = "dune") -> list[str]:
    response = http.post(f"/{INDEX}/_search", json={"query": {"match": {"title": query}}})
    assert response.status_code == 200, response.text
    return sorted(hit["_source"]["title"] for hit in response.json()["hits"]["hits"])


def count(http: httpx.Client) -> int:
    total: int = http.post(f"/{INDEX}/_count", json={"query": {"match_all": {}}}).json()["count"]
    return total


# -- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"/{INDEX}/_doc/mine"),
        ("POST", f"/{INDEX}/_doc/mine"),
        ("PUT", f"/{INDEX}/_create/mine"),
        ("POST", f"/{INDEX}/_create/mine"),
    ],
)
def test_a_chosen_id_is_refused(http: httpx.Client, aoss: StrictAoss, method: str, path: str) -> None:
    response = http.request(method, path, json={"title": "Dune"})
    assert response.status_code == 400
    assert response.json() == error_body(400, "illegal_argument_exception", ID_NOT_SUPPORTED)
    assert [(r.method, r.status, r.reason) for r in aoss.refusals] == [(method, 400, ID_NOT_SUPPORTED)]
    aoss.settle()
    assert count(http) == 0


def test_updates_are_refused(http: httpx.Client) -> None:
    response = http.post(f"/{INDEX}/_update/any", json={"doc": {"title": "Dune"}})
    assert response.status_code == 400
    assert response.json() == error_body(400, "illegal_argument_exception", UPDATE_ID_NOT_SUPPORTED)
    scripted = http.post(f"/{INDEX}/_update/any", json={"script": {"source": "ctx._source.n += 1"}})
    assert scripted.status_code == 400 and scripted.json()["error"]["reason"] == UPDATE_ID_NOT_SUPPORTED


def test_bulk_lines_with_an_id_or_an_update_fail_alone(http: httpx.Client, aoss: StrictAoss) -> None:
    answer = bulk(
        http,
        {"index": {"_index": INDEX, "_id": "mine"}},
        {"title": "Dune with an id"},
        {"index": {"_index": INDEX}},
        {"title": "Dune"},
        {"create": {"_index": INDEX, "_id": "also-mine"}},
        {"title": "Dune created with an id"},
        {"update": {"_index": INDEX, "_id": "mine"}},
        {"doc": {"title": "Dune updated"}},
        {"create": {"_index": INDEX}},
        {"title": "Dune Messiah"},
    )
    assert answer["errors"] is True
    ops = [next(iter(item)) for item in answer["items"]]
    assert ops == ["index", "index", "create", "update", "create"]
    results = [next(iter(item.values())) for item in answer["items"]]
    assert [r["status"] for r in results] == [400, 201, 400, 400, 201]
    assert results[0]["error"] == {"type": "illegal_argument_exception", "reason": ID_NOT_SUPPORTED}
    assert results[2]["error"] == {"type": "illegal_argument_exception", "reason": ID_NOT_SUPPORTED}
    assert results[3]["error"] == {"type": "illegal_argument_exception", "reason": UPDATE_ID_NOT_SUPPORTED}
    assert len(results[1]["_id"]) == 20 and results[1]["_id"] != results[4]["_id"]  # ids are assigned
    assert len(aoss.refusals) == 3
    aoss.settle()
    assert titles(http) == ["Dune", "Dune Messiah"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/{INDEX}/_delete_by_query"),
        ("POST", f"/{INDEX}/_update_by_query"),
        ("POST", f"/{INDEX}/_refresh"),
        ("POST", "/_refresh"),
        ("GET", f"/{INDEX}/_refresh"),
        ("POST", "/_search/scroll"),
        ("DELETE", "/_search/scroll"),
        ("POST", "/_msearch"),
        ("POST", f"/{INDEX}/_msearch"),
        ("GET", "/"),
        ("GET", "/_cluster/health"),
        ("POST", "/_reindex"),
        ("PUT", "/_bulk"),
    ],
)
def test_operations_off_the_supported_list_answer_404_with_no_body(
    http: httpx.Client, aoss: StrictAoss, method: str, path: str
) -> None:
    response = http.request(method, path, json={"query": {"match_all": {}}})
    assert (response.status_code, response.content) == (404, b"")
    assert [(r.method, r.path, r.status) for r in aoss.refusals] == [(method, path, 404)]


def test_a_scroll_is_refused_at_its_first_request(http: httpx.Client) -> None:
    response = http.post(f"/{INDEX}/_search", params={"scroll": "1m"}, json={"query": {"match_all": {}}})
    assert (response.status_code, response.content) == (404, b"")


@pytest.mark.parametrize(
    ("query", "policy"),
    [("refresh=true", "true"), ("refresh", "true"), ("refresh=", "true"), ("refresh=wait_for", "wait_for")],
)
def test_refresh_policies_are_refused(http: httpx.Client, aoss: StrictAoss, query: str, policy: str) -> None:
    reason = f"{policy} refresh policy is not supported."
    for method, path, body in (
        ("POST", f"/{INDEX}/_doc", json.dumps({"title": "Dune"}).encode()),
        ("POST", "/_bulk", ndjson({"index": {"_index": INDEX}}, {"title": "Dune"})),
        ("DELETE", f"/{INDEX}/_doc/whatever", b""),
    ):
        response = http.request(method, f"{path}?{query}", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json() == error_body(400, "status_exception", reason)
    aoss.settle()
    assert count(http) == 0  # nothing was written
    fine = http.post(f"/{INDEX}/_doc", params={"refresh": "false"}, json={"title": "Dune"})
    assert fine.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"query": {"script": {"script": {"source": "doc['shelf'].size() > 0"}}}},
        {"query": {"script_score": {"query": {"match_all": {}}, "script": {"source": "_score * 2"}}}},
        {"query": {"match_all": {}}, "script_fields": {"twice": {"script": {"source": "1 + 1"}}}},
        {"query": {"match_all": {}}, "sort": [{"_script": {"type": "number", "script": {"source": "1"}}}]},
        {"query": {"function_score": {"functions": [{"script_score": {"script": {"source": "1"}}}]}}},
    ],
    ids=["script-query", "script-score", "script-fields", "script-sort", "function-score"],
)
def test_scripts_in_searches_are_refused(http: httpx.Client, body: dict[str, Any]) -> None:
    response = http.post(f"/{INDEX}/_search", json=body)
    assert response.status_code == 400
    assert response.json() == error_body(400, "illegal_argument_exception", "cannot execute [inline] scripts")


def test_a_stored_script_is_refused_too(http: httpx.Client) -> None:
    response = http.post(f"/{INDEX}/_count", json={"query": {"script": {"script": {"id": "stored-one"}}}})
    assert response.json()["error"]["reason"] == "cannot execute [stored] scripts"


def test_a_body_over_10_mib_is_refused(http: httpx.Client, aoss: StrictAoss) -> None:
    title = "x" * (MAX_BODY_BYTES // 2)
    body = ndjson({"index": {"_index": INDEX}}, {"title": title}, {"index": {"_index": INDEX}}, {"title": title})
    assert len(body) > MAX_BODY_BYTES  # refused before anything reaches osmem-server
    response = http.post("/_bulk", content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 413
    assert response.json() == {"Message": "Request size exceeded 10485760 bytes"}
    # At the limit: one delete line padded with blanks (nothing big for osmem-server to index).
    action = json.dumps({"delete": {"_index": INDEX, "_id": "none"}}).encode()
    at_limit = action[:-1] + b" " * (MAX_BODY_BYTES - len(action) - 1) + b"}\n"
    assert len(at_limit) == MAX_BODY_BYTES
    response = http.post("/_bulk", content=at_limit, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200 and response.json()["items"][0]["delete"]["result"] == "not_found"
    assert [r.status for r in aoss.refusals] == [413]


# -- what it serves ----------------------------------------------------------------------------------
def test_the_operations_a_vector_collection_serves(http: httpx.Client, aoss: StrictAoss) -> None:
    assert http.head(f"/{INDEX}").status_code == 200
    assert http.head("/missing").status_code == 404
    assert INDEX in http.get(f"/{INDEX}/_mapping").json()
    assert http.get("/_cat/indices").status_code == 200
    created = http.post(f"/{INDEX}/_doc", json={"title": "Dune", "shelf": "sf"})
    assert created.status_code == 201 and created.json()["result"] == "created"
    doc_id = created.json()["_id"]
    assert http.get(f"/{INDEX}/_doc/{doc_id}").json()["_source"]["title"] == "Dune"  # a get is real-time
    aoss.settle()
    page = http.post(
        f"/{INDEX}/_search",
        json={"size": 1, "sort": [{"shelf": "asc"}], "query": {"term": {"shelf": "sf"}}, "_source": False},
    ).json()
    assert [hit["_id"] for hit in page["hits"]["hits"]] == [doc_id]
    after = http.post(
        f"/{INDEX}/_search",
        json={"size": 1, "sort": [{"shelf": "asc"}], "search_after": page["hits"]["hits"][0]["sort"]},
    ).json()
    assert after["hits"]["hits"] == []
    assert http.delete(f"/{INDEX}").status_code == 200
    assert aoss.refusals == []


# -- visibility ----------------------------------------------------------------------------------------
def test_a_write_is_searchable_only_after_the_delay(http: httpx.Client, aoss: StrictAoss) -> None:
    first = bulk(http, {"index": {"_index": INDEX}}, {"title": "Dune"})
    assert first["errors"] is False
    assert titles(http) == [] and count(http) == 0  # written, not yet searchable
    one = http.post(f"/{INDEX}/_doc", json={"title": "Dune Messiah"})
    assert one.status_code == 201
    assert titles(http) == []
    aoss.settle()
    assert titles(http) == ["Dune", "Dune Messiah"] and count(http) == 2


def test_a_delete_takes_effect_only_after_the_delay(http: httpx.Client, aoss: StrictAoss) -> None:
    written = bulk(
        http, {"index": {"_index": INDEX}}, {"title": "Dune"}, {"index": {"_index": INDEX}}, {"title": "Dune Messiah"}
    )
    dune, messiah = (item["index"]["_id"] for item in written["items"])
    aoss.settle()
    answer = bulk(
        http,
        {"delete": {"_index": INDEX, "_id": dune}},
        {"delete": {"_index": INDEX, "_id": "never-was"}},
    )
    assert answer["errors"] is False  # not_found is not a failure
    assert [(i["delete"]["result"], i["delete"]["status"]) for i in answer["items"]] == [
        ("deleted", 200),
        ("not_found", 404),
    ]
    assert titles(http) == ["Dune", "Dune Messiah"]  # deleted, still searchable
    again = bulk(http, {"delete": {"_index": INDEX, "_id": dune}})
    assert again["items"][0]["delete"]["status"] == 404  # a delete already under way: gone for the next one
    assert http.get(f"/{INDEX}/_doc/{dune}").json()["found"] is False
    single = http.delete(f"/{INDEX}/_doc/{messiah}")
    assert single.status_code == 200 and single.json()["result"] == "deleted"
    assert http.delete(f"/{INDEX}/_doc/{messiah}").status_code == 404
    aoss.settle()
    assert titles(http) == [] and count(http) == 0


def test_hidden_writes_leave_sizes_and_scores_of_the_rest_as_they_are(http: httpx.Client, aoss: StrictAoss) -> None:
    bulk(http, *[line for i in range(5) for line in ({"index": {"_index": INDEX}}, {"title": f"dune {i}"})])
    aoss.settle()
    query = {"size": 3, "query": {"match": {"title": "dune"}}}
    visible = {h["_id"] for h in http.post(f"/{INDEX}/_search", json={**query, "size": 10}).json()["hits"]["hits"]}
    bulk(http, *[line for _ in range(5) for line in ({"index": {"_index": INDEX}}, {"title": "dune dune dune"})])
    during = http.post(f"/{INDEX}/_search", json=query).json()["hits"]["hits"]
    assert len(during) == 3 and {h["_id"] for h in during} <= visible  # a full page of what is visible
    assert http.post(f"/{INDEX}/_search", json={**query, "size": 10}).json()["hits"]["total"]["value"] == 5
    aoss.settle()
    after = http.post(f"/{INDEX}/_search", json=query).json()["hits"]["hits"]
    assert [h["_source"]["title"] for h in after] == ["dune dune dune"] * 3  # the better matches, now visible


def test_the_default_delay_is_seconds(osmem: OsmemServer) -> None:
    """With the stand-in's default delay (AOSS-like: seconds), a search right after a write misses it and
    finds it once the delay has passed; a delete likewise."""
    assert DEFAULT_VISIBILITY_DELAY_S >= 1
    clone = osmem.clone()
    try:
        with run_strict_aoss(clone.url) as aoss, httpx.Client(base_url=aoss.url, timeout=30) as http:
            assert aoss.visibility_delay_s == DEFAULT_VISIBILITY_DELAY_S
            http.put(f"/{INDEX}", json=MAPPING)
            doc_id = http.post(f"/{INDEX}/_doc", json={"title": "Dune"}).json()["_id"]
            assert titles(http) == []
            assert eventually(lambda: titles(http), lambda found: found == ["Dune"]) == ["Dune"]
            assert http.delete(f"/{INDEX}/_doc/{doc_id}").json()["result"] == "deleted"
            assert titles(http) == ["Dune"]
            assert eventually(lambda: titles(http), lambda found: found == []) == []
            assert aoss.refusals == []
    finally:
        clone.close()
