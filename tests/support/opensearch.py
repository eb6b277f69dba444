"""OpenSearch for tests: osmem-server (an in-memory OpenSearch-compatible server) and what it lacks.

osmem-server answers BM25, bool/terms filters, ``search_after`` paging and ``_bulk`` like OpenSearch, but
not everything the engine asks of OpenSearch Serverless (and it accepts much that AOSS refuses: the tests put
``tests.support.aoss.StrictAoss`` in front of it):

* the ``knn`` query is rejected. ``ExactKnnSearcher`` stands in for it (and only for it): it runs the k-NN
  request's own filter on the server and ranks what it admits by exact inner product, scored as Faiss
  scores ``innerproduct`` (OpenSearch's k-NN "Spaces" table), so the engine's score conversion, merging
  and filters are exercised while the k-NN request body itself is asserted in the unit tests;
* the ``stemmer`` filter with language ``possessive_english`` indexes nothing at all (the field then
  matches every query). ``osmem_analysis()`` is the engine's analyzer without that one filter.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from opensearchpy import OpenSearch
from osmem_server import OsmemServer

from shared.adapters.aws.opensearch_index import KNN_SPACE, MAX_WINDOW, OpenSearchIndex, SearchRequest, search_each
from shared.rag.text_analysis import opensearch_analysis

#: What OpenSearch Serverless would be asked for; osmem-server ignores it.
TEST_REGION = "us-east-1"
_POSSESSIVE_FILTER = "flowless_possessive"


@contextmanager
def run_osmem_server(*, startup_timeout_s: float = 30.0) -> Iterator[OsmemServer]:
    """Start osmem-server on a free loopback port (the server picks it and reports it), wait until it
    answers HTTP, and stop it afterwards. It also exits on its own if this process goes away."""
    server = OsmemServer.start(addr="127.0.0.1:0", japanese=False, startup_timeout=startup_timeout_s)
    try:
        _wait_until_ready(server.url, startup_timeout_s)
        yield server
    finally:
        server.close()


def _wait_until_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"osmem-server at {url} did not answer within {timeout_s} s")
        time.sleep(0.05)


def client_for(url: str) -> OpenSearch:
    """A plain HTTP client (no auth, no TLS) for an osmem-server URL."""
    return OpenSearch(hosts=[url], timeout=30, pool_maxsize=8)


def osmem_analysis() -> dict[str, Any]:
    """``opensearch_analysis()`` less the possessive stemmer osmem-server can't index with (see above)."""
    analysis = opensearch_analysis()
    del analysis["filter"][_POSSESSIVE_FILTER]
    analyzer = analysis["analyzer"]["flowless_text"]
    analyzer["filter"] = [name for name in analyzer["filter"] if name != _POSSESSIVE_FILTER]
    return analysis


def faiss_innerproduct_score(inner_product: float) -> float:
    """OpenSearch's score for a Faiss ``innerproduct`` hit: d = -(x·y); 1/(1+d) if d >= 0, else 1 - d."""
    distance = -inner_product
    return 1.0 / (1.0 + distance) if distance >= 0 else 1.0 - distance


class ExactKnnSearcher:
    """EMULATED k-NN for osmem-server (which rejects ``knn`` queries); every other search is real.

    A k-NN request is answered from the documents its filter admits on the server, ranked by exact inner
    product and scored as Faiss ``innerproduct`` scores — the answer an exact k-NN search gives.
    ``emulated`` counts the k-NN requests answered this way.
    """

    def __init__(self) -> None:
        if KNN_SPACE != "innerproduct":
            raise AssertionError(f"the emulation scores innerproduct, the engine uses {KNN_SPACE}")
        self.emulated = 0

    def __call__(self, client: OpenSearch, requests: Sequence[SearchRequest]) -> list[dict[str, Any]]:
        real = iter(search_each(client, [request for request in requests if not request.is_knn]))
        return [self._knn(client, request) if request.is_knn else next(real) for request in requests]

    def _knn(self, client: OpenSearch, request: SearchRequest) -> dict[str, Any]:
        self.emulated += 1
        clause = request.body["query"]["knn"]["vector"]
        query = np.asarray(clause["vector"], dtype=np.float64)
        admitted = client.search(
            index=request.index,
            body={"size": MAX_WINDOW, "query": clause.get("filter") or {"match_all": {}}},
            params={"ignore_unavailable": "true"},
        )["hits"]["hits"]
        scored = []
        for hit in admitted:
            stored = hit["_source"].get("vector")
            if stored is not None and len(stored) == len(query):
                score = faiss_innerproduct_score(float(np.dot(query, np.asarray(stored, dtype=np.float64))))
                scored.append({**hit, "_score": score, "_source": _only(hit["_source"], request.body.get("_source"))})
        scored.sort(key=lambda hit: -hit["_score"])
        return {"hits": {"hits": scored[: min(int(clause["k"]), int(request.body.get("size", 10)))]}}


def _only(source: Mapping[str, Any], fields: Any) -> dict[str, Any]:
    if fields is None or fields is True:
        return dict(source)
    return {name: source[name] for name in fields if name in source}


def osmem_index(url: str, **options: Any) -> OpenSearchIndex:
    """The OpenSearch engine on an osmem-server (or ``StrictAoss``) URL: the test analyzer, k-NN answered by
    ``ExactKnnSearcher``; ``options`` go to ``OpenSearchIndex``."""
    return OpenSearchIndex(
        url,
        region=TEST_REGION,
        client=client_for(url),
        analysis=osmem_analysis(),
        searcher=ExactKnnSearcher(),
        **options,
    )
