"""OpenSearch Serverless (AOSS) engine of the search index port: BM25 and k-NN candidates from one collection.

Layout: one index per embedding dimension (``flowless-chunks-384``, ``flowless-chunks-1024`` ...), created on
first use with an explicit mapping: the chunk's fields as keywords (tenant, dataset, document, chunk id),
``content``/``keywords``/``questions`` as text under the analyzer ``shared.rag.text_analysis`` describes
(the same terms as the embedded engine), and ``vector`` as a ``knn_vector`` (HNSW, Faiss, ``innerproduct``:
vectors are L2-normalized before they are written, so the inner product *is* the cosine; unlike
``cosinesimil`` the space accepts a zero vector, and its score maps back to the cosine exactly).

AOSS vector collections shape the writes (tests/support/aoss.py refuses all of this as AOSS does):

* a document can't be indexed under a chosen ``_id``, so the chunk id is a field and AOSS assigns the
  ``_id``; each stored copy also gets a ``copy_id`` of its own (a unique keyword to page on);
* there is no ``_delete_by_query``, no ``_update_by_query``, no scroll and no script. Every change is
  search-then-write: the copies a query finds are paged through with ``search_after`` (sorted on
  ``copy_id``) and deleted by their ``_id`` in bulk requests, or re-indexed (``set_available`` writes the
  chunk anew with the flag flipped, then deletes the copies it found). An upsert looks up the copies of
  its chunks, indexes the new ones, then deletes exactly the ``_id`` s it found (never one it just wrote);
* there is no ``refresh`` (nor ``refresh=wait_for``): writes become searchable after a delay (AOSS: seconds),
  and a change can only find the copies that are searchable when it runs. So every write waits until what it
  wrote is searchable before it returns (``_await_searchable``: a count of the copies it wrote, by their
  ``copy_id``, polled with backoff): the client-side ``refresh=wait_for``. Nothing here reads its own writes
  otherwise (the metadata store answers chunk reads).

What that guarantees: a change always sees every write that returned before it started — a delete or an
availability change right after a parse, a chunk deleted right after it was added, a parse stopped right
after its index step wrote (the step deletes what it wrote, and finds it) — so no copy is left behind by the
delay. A write whose copies are not searchable within ``visibility_timeout_s`` raises ``StoreUnavailable``
(retried: a parse step by the state machine; an API call answers "retry later"); its copies stay, and the
repeated write replaces them. Changes are idempotent — running one again (a retry after a failure or a
timeout) deletes what is left and counts a copy that is already gone (404) as deleted. What the delay still
shows: a delete is applied after the delay, so a search in the next moments may still find the deleted
copies (retrieval renders chunks from the metadata store and skips one it no longer holds, though it may
count it in ``total`` meanwhile), and a replaced copy may be found beside its replacement (searches keep one
candidate per chunk id). Writers of the same chunk at the same moment (not something the services do) may
still leave a second copy, which the next change of that chunk removes.

Knowledge-graph records carry a ``kind`` keyword (``entity``, ``relation``, ``community_report``); ordinary
chunks carry none, so indexes written before the field existed need no re-indexing (the field is added to
their mapping): a chunk search admits documents without a ``kind``, a graph search those of its kind.

Search runs RAGFlow's query analysis as the embedded engine does (``shared.rag.text_analysis``): a first
search counts the records of the datasets (of the query's kind) and how many hold each question term (no hits,
a ``filters`` aggregation), sent side by side with the k-NN query (efficient filtering) on the index of the
query's dimension; ``plan_query`` then chooses the terms, and the BM25 query sends those, each boosted by its
query weight (``query_weight``: the question's count of it, saturated) and named after its place (a hit's
``matched_queries`` are its matched terms). A question of at most ``MAX_QUERY_TERMS`` terms searches all of
them, so its BM25 query goes in the first round trip too; only a longer one waits for the statistics. One
``_search`` per request (``_msearch`` is not confirmed on AOSS's list of supported operations). The queries
are filtered to the tenant, its datasets, optionally documents, and available records of the query's kind. A
text hit's cosine is computed here from its stored vector, read packed (``PACKED_VECTOR``); a k-NN hit's score
is converted back to the cosine (``knn_score_to_cosine``). The request bodies are built by the pure functions
below, so tests assert them without a cluster.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import numpy as np
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import RequestError, TransportError

from shared.constants import SERVICE_NAME
from shared.ports.metadata import StoreUnavailable
from shared.ports.search import CHUNK, Candidate, ChunkKind, IndexedChunk, SearchIndex, SearchQuery
from shared.rag.text_analysis import (
    FIELD_BOOSTS,
    MAX_QUERY_TERMS,
    QueryPlan,
    QueryTerm,
    WeightedTerm,
    analyze_query,
    opensearch_analysis,
    plan_query,
)
from shared.rag.vectors import encode_vector

logger = logging.getLogger(__name__)

#: The analyzer ``opensearch_analysis()`` defines, used by every text field.
ANALYZER: Final = "flowless_text"
#: Faiss HNSW with the inner product of unit vectors (= cosine similarity); see ``knn_score_to_cosine``.
KNN_ENGINE: Final = "faiss"
KNN_SPACE: Final = "innerproduct"
TEXT_FIELDS: Final = ("content", "keywords", "questions")
#: A bulk request carries at most this many documents and about this many bytes (AOSS caps a request at 10 MB).
BULK_MAX_DOCS: Final = 500
BULK_MAX_BYTES: Final = 5 * 1024 * 1024
#: Deletes per bulk request (an action line each, about 100 bytes).
BULK_DELETE_MAX: Final = 1000
#: Ids per terms filter of a delete or a lookup.
TERMS_BATCH: Final = 1000
#: Hits per page when paging through the copies a change finds (``_source`` pages: at most BULK_MAX_DOCS).
PAGE_SIZE: Final = 1000
#: ``index.max_result_window``: the most hits one search returns.
MAX_WINDOW: Final = 10_000
#: How long a write waits for its copies to become searchable before it reports the collection unavailable
#: (within API Gateway's 29 s, with room for the rest of the request).
VISIBILITY_TIMEOUT_S: Final = 20.0
#: First and longest pause between two checks of whether written copies are searchable.
_FIRST_POLL_S: Final = 0.05
_MAX_POLL_S: Final = 1.0
#: Statuses worth retrying: throttling and the service's own failures.
_TRANSIENT_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
#: The field of knowledge-graph records (absent on ordinary chunks); added to indexes created without it.
KIND_MAPPING: Final = {"kind": {"type": "keyword"}}
#: The vector again, as base64 of its little-endian float32s (``encode_vector``), kept in ``_source`` only
#: (neither searched nor aggregated): a text hit's cosine is computed from it. 2 KB per 384-dim chunk against
#: ~8 KB of JSON numbers, and read without parsing them (1,024 text hits: ~90 ms less per search).
PACKED_VECTOR: Final = "vector_f32"
PACKED_VECTOR_MAPPING: Final = {PACKED_VECTOR: {"type": "keyword", "index": False, "doc_values": False}}
#: Fields added to the mapping after the first indexes were created: put into existing indexes at first use.
ADDED_FIELDS: Final = {"copy_id": {"type": "keyword"}, **KIND_MAPPING, **PACKED_VECTOR_MAPPING}
#: Fields a search returns (never the vector unless asked: it is the bulk of a document).
_HIT_FIELDS: Final = ("chunk_id", "dataset_id", "document_id")


class SearchRequestError(RuntimeError):
    """OpenSearch refused a request for a reason retrying won't fix (a bad mapping or query)."""


# == index layout =====================================================================================
def chunk_index_name(prefix: str, dimension: int) -> str:
    """The index of chunks whose vectors have ``dimension`` components (0: chunks without a vector)."""
    return f"{prefix}-chunks-{dimension}" if dimension > 0 else f"{prefix}-chunks-novector"


def chunk_index_pattern(prefix: str) -> str:
    """Every chunk index of ``prefix`` (searches, deletes and the data access policy use it)."""
    return f"{prefix}-chunks-*"


def index_body(dimension: int, analysis: Mapping[str, Any]) -> dict[str, Any]:
    """Settings and mapping of a chunk index. ``dimension`` 0: no vector field (text-only chunks)."""
    text = {"type": "text", "analyzer": ANALYZER}
    keyword = {"type": "keyword"}
    properties: dict[str, Any] = {
        "chunk_id": keyword,
        "tenant_id": keyword,
        "dataset_id": keyword,
        "document_id": keyword,
        "document_name": keyword,
        "content": text,
        "keywords": text,
        "questions": text,
        "tags": keyword,
        "available": {"type": "boolean"},
        "page_numbers": {"type": "integer"},
        "create_time": {"type": "long"},
        # When this copy was written (ms): of two copies of a chunk, the later one is the chunk.
        "indexed_at": {"type": "long"},
        # Unique per stored copy: the sort key that pages through copies (``_id`` can't be sorted on).
        "copy_id": keyword,
        **KIND_MAPPING,
    }
    settings: dict[str, Any] = {"analysis": dict(analysis)}
    if dimension > 0:
        settings["index"] = {"knn": True}
        properties["vector"] = {
            "type": "knn_vector",
            "dimension": dimension,
            "method": {"name": "hnsw", "engine": KNN_ENGINE, "space_type": KNN_SPACE},
        }
        properties.update(PACKED_VECTOR_MAPPING)
    return {"settings": settings, "mappings": {"dynamic": "strict", "properties": properties}}


def new_copy_id() -> str:
    """The ``copy_id`` of a copy about to be written."""
    return uuid.uuid4().hex


def chunk_document(
    chunk: IndexedChunk, vector: Sequence[float] | None, indexed_at: int, copy_id: str
) -> dict[str, Any]:
    """The stored form of a chunk: every field of ``IndexedChunk``, so it can be read back and re-indexed."""
    document: dict[str, Any] = {
        "chunk_id": chunk.id,
        "tenant_id": chunk.tenant_id,
        "dataset_id": chunk.dataset_id,
        "document_id": chunk.document_id,
        "document_name": chunk.document_name,
        "content": chunk.content,
        "keywords": list(chunk.keywords),
        "questions": list(chunk.questions),
        "tags": list(chunk.tags),
        "available": bool(chunk.available),
        "page_numbers": list(chunk.page_numbers),
        "create_time": int(chunk.create_time),
        "indexed_at": indexed_at,
        "copy_id": copy_id,
    }
    if chunk.kind != CHUNK:
        document["kind"] = chunk.kind
    if vector:
        document["vector"] = list(vector)
        document[PACKED_VECTOR] = encode_vector(vector)
    return document


def unit_vector(values: Sequence[float] | None) -> list[float] | None:
    """``values`` scaled to length 1 (a zero vector stays as it is); None for no or an empty vector."""
    if values is None or len(values) == 0:
        return None
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if norm > 0 and abs(norm - 1.0) > 1e-9:
        vector = vector / norm
    return [float(x) for x in vector]


# == queries ===========================================================================================
def scope_filters(
    tenant_id: str, dataset_ids: Sequence[str], document_ids: Sequence[str] | None = None, kind: ChunkKind = CHUNK
) -> list[dict[str, Any]]:
    """The filter clauses of a search: the tenant, its datasets, optionally documents, available records of
    one kind only (ordinary chunks have no ``kind`` field)."""
    filters: list[dict[str, Any]] = [
        {"term": {"tenant_id": tenant_id}},
        {"terms": {"dataset_id": list(dict.fromkeys(dataset_ids))}},
        {"term": {"available": True}},
        {"bool": {"must_not": [{"exists": {"field": "kind"}}]}} if kind == CHUNK else {"term": {"kind": kind}},
    ]
    if document_ids:
        filters.append({"terms": {"document_id": list(dict.fromkeys(document_ids))}})
    return filters


def doc_freq_body(
    terms: Sequence[QueryTerm], tenant_id: str, dataset_ids: Sequence[str], kind: ChunkKind = CHUNK
) -> dict[str, Any]:
    """The statistics a query plan needs, in one search that returns no hits: how many records of ``kind``
    the datasets hold (``hits.total``) and how many of them hold each term (a ``filters`` bucket per term,
    matched as the text query matches it: the word on every text field). Over every record of that kind in
    the datasets searched, available or not, as the embedded engine counts them."""
    kind_filter = scope_filters(tenant_id, dataset_ids, kind=kind)[3]
    dataset_filters = [
        {"term": {"tenant_id": tenant_id}},
        {"terms": {"dataset_id": list(dict.fromkeys(dataset_ids))}},
        kind_filter,
    ]
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"bool": {"filter": dataset_filters}},
        "aggs": {"df": {"filters": {"filters": {f"t{i}": _term_clause(t.word) for i, t in enumerate(terms)}}}},
    }


def plan_from_statistics(terms: Sequence[QueryTerm], response: Mapping[str, Any]) -> QueryPlan:
    """The query plan for ``terms`` from the answer to ``doc_freq_body``."""
    total = response.get("hits", {}).get("total", 0)
    docs = int(total.get("value", 0) if isinstance(total, Mapping) else total)
    buckets = response.get("aggregations", {}).get("df", {}).get("buckets", {})
    doc_freqs = [int(buckets.get(f"t{i}", {}).get("doc_count", 0)) for i in range(len(terms))]
    return plan_query(terms, doc_freqs, docs)


def text_query_body(
    plan: QueryPlan, filters: Sequence[Mapping[str, Any]], size: int, *, with_vector: bool
) -> dict[str, Any]:
    """BM25 of the plan's terms over content, keywords and questions (weighted by ``FIELD_BOOSTS``), a chunk
    holding any of them matching.

    One clause per term, boosted by its query weight (``query_weight``), so the score is the
    embedded engine's sum; ``most_fields`` adds the fields' scores, as the embedded engine weighs keyword
    and question terms on top of the content's. Each clause is named after its term's place in the plan
    (``t0`` …): a hit's ``matched_queries`` say which terms it holds (``matched_terms``), so the hits need
    not carry their texts. In a hybrid search they carry their packed vectors (``PACKED_VECTOR``, for the
    cosine of text-only candidates; a copy written before it existed is read again: ``_with_vectors``).
    """
    source = [*_HIT_FIELDS, *(["copy_id", PACKED_VECTOR] if with_vector else [])]
    return {
        "size": size,
        "track_total_hits": False,
        "_source": source,
        "query": {
            "bool": {
                "filter": list(filters),
                "should": [_term_clause(t.term.word, t.weight, name=f"t{i}") for i, t in enumerate(plan.terms)],
                "minimum_should_match": 1,
            }
        },
    }


def _term_clause(word: str, boost: float = 1.0, *, name: str | None = None) -> dict[str, Any]:
    fields = [field if FIELD_BOOSTS[field] == 1 else f"{field}^{FIELD_BOOSTS[field]:g}" for field in TEXT_FIELDS]
    clause: dict[str, Any] = {"query": word, "fields": fields, "type": "most_fields"}
    if boost != 1:
        clause["boost"] = boost
    if name is not None:
        clause["_name"] = name
    return {"multi_match": clause}


def knn_query_body(vector: Sequence[float], filters: Sequence[Mapping[str, Any]], k: int) -> dict[str, Any]:
    """The ``k`` nearest chunks among those the filters admit (OpenSearch's efficient k-NN filtering:
    the filter goes inside the ``knn`` clause, so ``k`` results are found *after* filtering)."""
    return {
        "size": k,
        "track_total_hits": False,
        "_source": list(_HIT_FIELDS),
        "query": {"knn": {"vector": {"vector": list(vector), "k": k, "filter": {"bool": {"filter": list(filters)}}}}},
    }


def scope_query(
    tenant_id: str, dataset_id: str, *, document_id: str | None = None, chunk_ids: Sequence[str] | None = None
) -> dict[str, Any]:
    """The stored copies (any availability) of a dataset's chunks, or a document's, or some chunk ids: what a
    delete, an upsert's lookup or ``set_available`` acts on. Always tenant-scoped."""
    filters = _dataset_filters(tenant_id, dataset_id)
    if document_id is not None:
        filters.append({"term": {"document_id": document_id}})
    if chunk_ids is not None:
        filters.append({"terms": {"chunk_id": list(chunk_ids)}})
    return {"bool": {"filter": filters}}


def page_body(
    query: Mapping[str, Any], *, size: int, source: bool, after: Sequence[Any] | None = None
) -> dict[str, Any]:
    """One page of the copies ``query`` finds, in ``copy_id`` order, after the page that ended at ``after``
    (``search_after``: AOSS has no scroll, and a sort key unique per copy makes the pages exact)."""
    body: dict[str, Any] = {
        "size": size,
        "track_total_hits": False,
        "_source": source,
        "sort": [{"copy_id": "asc"}],
        "query": dict(query),
    }
    if after is not None:
        body["search_after"] = list(after)
    return body


def _dataset_filters(tenant_id: str, dataset_id: str) -> list[dict[str, Any]]:
    return [{"term": {"tenant_id": tenant_id}}, {"term": {"dataset_id": dataset_id}}]


def knn_score_to_cosine(score: float) -> float:
    """The cosine similarity behind a Faiss ``innerproduct`` k-NN score (vectors of length 1).

    OpenSearch's k-NN "Spaces" table: Faiss takes the distance d = -(x·y) and scores
    ``1 / (1 + d)`` when d >= 0 and ``-d + 1`` when d < 0; so a score >= 1 is ``1 + x·y`` and a score
    below 1 is ``1 / (1 - x·y)``.
    """
    if score >= 1.0:
        return score - 1.0
    return 1.0 - 1.0 / score if score > 0 else -1.0


# == requests ==========================================================================================
@dataclass(frozen=True)
class SearchRequest:
    """One search of a multi-search: the index (name or pattern) and the body."""

    index: str
    body: dict[str, Any]

    @property
    def is_knn(self) -> bool:
        return "knn" in self.body.get("query", {})


class Searcher(Protocol):
    """Runs searches and returns their responses, in order. The default is ``search_each``; tests swap in a
    searcher for a server without k-NN."""

    def __call__(self, client: OpenSearch, requests: Sequence[SearchRequest]) -> list[dict[str, Any]]: ...


#: Threads that send the searches of one query side by side (shared by every engine in the process).
_search_pool: ThreadPoolExecutor | None = None
_search_pool_lock = threading.Lock()


def search_each(client: OpenSearch, requests: Sequence[SearchRequest]) -> list[dict[str, Any]]:
    """One ``_search`` per request, sent side by side (as quick as one ``_msearch``, and ``_search`` is on
    every list of AOSS's supported operations); an index that doesn't exist (yet) finds nothing."""
    if len(requests) <= 1:
        return [_search(client, request) for request in requests]
    return list(_pool().map(lambda request: _search(client, request), requests))


def _search(client: OpenSearch, request: SearchRequest) -> dict[str, Any]:
    response: dict[str, Any] = client.search(
        index=request.index, body=request.body, params={"ignore_unavailable": "true", "allow_no_indices": "true"}
    )
    return response


def _pool() -> ThreadPoolExecutor:
    global _search_pool
    with _search_pool_lock:
        if _search_pool is None:
            _search_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="opensearch-search")
        return _search_pool


def _request_failed(action: str, status: int, error: Any) -> Exception:
    reason = error.get("reason") or error.get("type") if isinstance(error, dict) else error
    message = f"OpenSearch {action} failed ({status}): {reason}"
    return StoreUnavailable(message) if status in _TRANSIENT_STATUSES else SearchRequestError(message)


def _unavailable(action: str, exc: Exception) -> Exception:
    """A client exception as the port's errors: transient ones become ``StoreUnavailable`` (retried)."""
    if isinstance(exc, OpenSearchConnectionError):
        return StoreUnavailable(f"OpenSearch {action} failed: {exc}")
    if isinstance(exc, TransportError):
        status = exc.status_code if isinstance(exc.status_code, int) else 500
        body = exc.info if isinstance(exc.info, dict) else {}
        return _request_failed(action, status, body.get("error") or exc.error)
    return exc


def aoss_client(endpoint: str, *, region: str, timeout_s: float = 20.0, pool_size: int = 16) -> OpenSearch:
    """A client for an OpenSearch Serverless collection endpoint: TLS, SigV4 (service ``aoss``) with the
    process's AWS credentials (refreshed by botocore when they are temporary, as in Lambda)."""
    import boto3
    from opensearchpy import AWSV4SignerAuth, RequestsHttpConnection

    url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if not url.hostname:
        raise ValueError(f"not an OpenSearch endpoint: {endpoint!r}")
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign OpenSearch Serverless requests")
    return OpenSearch(
        hosts=[{"host": url.hostname, "port": url.port or 443}],
        http_auth=AWSV4SignerAuth(credentials, region, "aoss"),
        use_ssl=True,
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        pool_maxsize=pool_size,
        timeout=timeout_s,
        max_retries=2,
        retry_on_timeout=True,
    )


# == the engine ========================================================================================
class OpenSearchIndex(SearchIndex):
    """The search index port on an OpenSearch Serverless vector collection (see the module docstring).

    ``client`` defaults to a SigV4-signed client for ``endpoint``; ``analysis`` (the text analyzer's
    settings) defaults to ``opensearch_analysis()``; ``searcher`` runs the searches (``search_each``);
    ``page_size`` is the hits per page when a change pages through the copies it finds;
    ``visibility_timeout_s`` how long a write waits for its copies to become searchable.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        region: str,
        client: OpenSearch | None = None,
        index_prefix: str = SERVICE_NAME,
        analysis: Mapping[str, Any] | None = None,
        searcher: Searcher = search_each,
        page_size: int = PAGE_SIZE,
        visibility_timeout_s: float = VISIBILITY_TIMEOUT_S,
    ) -> None:
        self._client = client if client is not None else aoss_client(endpoint, region=region)
        self._prefix = index_prefix
        self._pattern = chunk_index_pattern(index_prefix)
        self._analysis = dict(analysis) if analysis is not None else opensearch_analysis()
        self._searcher = searcher
        self._page_size = page_size
        self._visibility_timeout_s = visibility_timeout_s
        self._ready: set[str] = set()
        self._ready_lock = threading.Lock()

    # -- health -------------------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the collection can't be reached or refuses the credentials."""
        try:
            self._client.indices.exists(index=self._pattern)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise StoreUnavailable(f"OpenSearch is unavailable: {exc}") from exc

    # -- writes -------------------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Index the chunks, then delete the copies they replace (found before indexing, deleted by ``_id``);
        returns once the new copies are searchable."""
        latest = {(c.tenant_id, c.dataset_id, c.id): c for c in chunks}
        written: list[str] = []
        for batch in _batched(list(latest.values()), BULK_MAX_DOCS):
            now = _now_ms()
            prepared = []
            dimensions: dict[str, int] = {}
            for chunk in batch:
                vector = unit_vector(chunk.vector)
                index = chunk_index_name(self._prefix, len(vector) if vector else 0)
                dimensions[index] = len(vector) if vector else 0
                prepared.append((index, chunk_document(chunk, vector, now, new_copy_id())))
            for index, dimension in dimensions.items():
                self._ensure_index(index, dimension)
            replaced = self._stored_copies(batch)
            self._bulk_index(prepared)
            written += [document["copy_id"] for _, document in prepared]
            self._delete_copies(replaced)
        self._await_searchable(written)

    def delete_chunks(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str]) -> None:
        """Delete every searchable copy of these chunks (see the module docstring for the guarantee)."""
        for batch in _batched(list(dict.fromkeys(chunk_ids)), TERMS_BATCH):
            self._delete_matching(scope_query(tenant_id, dataset_id, chunk_ids=batch))

    def delete_document(self, tenant_id: str, dataset_id: str, document_id: str) -> None:
        """Delete every searchable copy of the document's chunks."""
        self._delete_matching(scope_query(tenant_id, dataset_id, document_id=document_id))

    def delete_dataset(self, tenant_id: str, dataset_id: str) -> None:
        """Delete every searchable copy of the dataset's chunks."""
        self._delete_matching(scope_query(tenant_id, dataset_id))

    def set_available(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str], available: bool) -> None:
        """Re-index the chunks whose flag differs, with the flag flipped, and delete their previous copies.

        AOSS has no update scripts, so the stored documents are read back and written anew; returns once the
        new copies are searchable.
        """
        written: list[str] = []
        for batch in _batched(list(dict.fromkeys(chunk_ids)), BULK_MAX_DOCS):
            copies: dict[str, list[dict[str, Any]]] = {}
            for page in self._pages(scope_query(tenant_id, dataset_id, chunk_ids=batch), source=True):
                for hit in page:
                    copies.setdefault(hit["_source"]["chunk_id"], []).append(hit)
            # A chunk with any copy of the other flag: its latest copy is written anew, every copy deleted.
            stale = [
                found for found in copies.values() if any(h["_source"].get("available") != available for h in found)
            ]
            if not stale:
                continue
            now = _now_ms()
            latest = [max(found, key=lambda h: int(h["_source"].get("indexed_at") or 0)) for found in stale]
            renewed = [
                (h["_index"], {**h["_source"], "available": available, "indexed_at": now, "copy_id": new_copy_id()})
                for h in latest
            ]
            self._bulk_index(renewed)
            written += [document["copy_id"] for _, document in renewed]
            self._delete_copies((h["_index"], h["_id"]) for found in stale for h in found)
        self._await_searchable(written)

    # -- search -------------------------------------------------------------------------------------
    def search(self, query: SearchQuery) -> list[Candidate]:
        """Text matches by BM25 score, then chunks found only by the vector, by cosine (as the embedded engine)."""
        if query.top_k <= 0 or not query.dataset_ids:
            return []
        terms = analyze_query(query.text) if query.text.strip() else []
        vector = unit_vector(query.vector)
        if not terms and vector is None:
            return []
        filters = scope_filters(query.tenant_id, query.dataset_ids, query.document_ids, query.kind)
        # The statistics that choose the text query's terms (RAGFlow's query analysis, as the embedded engine
        # runs it: shared/rag/text_analysis), side by side with the k-NN search. A question of at most
        # MAX_QUERY_TERMS terms searches every term a chunk holds, so its text query (every term: one no chunk
        # holds matches nothing) goes in the same round trip; a longer one's waits for the statistics.
        with_vector = vector is not None
        requests = []
        if terms:
            statistics = doc_freq_body(terms, query.tenant_id, query.dataset_ids, query.kind)
            requests.append(SearchRequest(self._pattern, statistics))
        if vector is not None:
            index = chunk_index_name(self._prefix, len(vector))
            requests.append(SearchRequest(index, knn_query_body(vector, filters, query.top_k)))
        text_now = 0 < len(terms) <= MAX_QUERY_TERMS
        every_term: QueryPlan | None = None
        if text_now:
            every_term = QueryPlan(tuple(WeightedTerm(term, 0.0) for term in terms), 0.0)
            body = text_query_body(every_term, filters, query.text_limit, with_vector=with_vector)
            requests.append(SearchRequest(self._pattern, body))
        responses = self._run(requests)
        plan = plan_from_statistics(terms, responses[0]) if terms else None
        text_hits: list[dict[str, Any]] = []
        if plan is not None and plan.terms:
            if text_now:
                text_hits = _hits(responses[-1])
            else:
                body = text_query_body(plan, filters, query.text_limit, with_vector=with_vector)
                text_hits = _hits(self._run([SearchRequest(self._pattern, body)])[0])
        vector_hits = _hits(responses[1 if terms else 0]) if vector is not None else []
        if with_vector:
            text_hits = self._with_vectors(text_hits)
        return merge_hits(text_hits, vector_hits, plan, vector, sent=every_term)

    def _with_vectors(self, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Text hits whose copy has no packed vector (written before ``PACKED_VECTOR`` existed) get their
        vector read again, in one search by copy id; the others are as they came."""
        missing = [
            hit["_source"]["copy_id"]
            for hit in hits
            if PACKED_VECTOR not in hit["_source"] and hit["_source"].get("copy_id")
        ]
        if not missing:
            return hits
        found: dict[str, Any] = {}
        for start in range(0, len(missing), TERMS_BATCH):
            batch = missing[start : start + TERMS_BATCH]
            body = {
                "size": len(batch),
                "track_total_hits": False,
                "_source": ["copy_id", "vector"],
                "query": {"terms": {"copy_id": batch}},
            }
            for hit in _hits(self._run([SearchRequest(self._pattern, body)])[0]):
                found[hit["_source"]["copy_id"]] = hit["_source"].get("vector")
        return [
            {**hit, "_source": {**hit["_source"], "vector": found.get(hit["_source"].get("copy_id"))}}
            if PACKED_VECTOR not in hit["_source"]
            else hit
            for hit in hits
        ]

    def _run(self, requests: Sequence[SearchRequest]) -> list[dict[str, Any]]:
        try:
            return self._searcher(self._client, requests)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise _unavailable("search", exc) from exc

    # -- internals ----------------------------------------------------------------------------------
    def _ensure_index(self, index: str, dimension: int) -> None:
        """Create a chunk index on first use (checked once per process; a concurrent creator wins quietly).

        An existing index gets the fields added since indexes were first created (``ADDED_FIELDS``: adding
        a field to a mapping is allowed and idempotent; the documents already there need no re-indexing).
        """
        if index in self._ready:
            return
        with self._ready_lock:
            if index in self._ready:
                return
            try:
                if not self._client.indices.exists(index=index):
                    self._client.indices.create(index=index, body=index_body(dimension, self._analysis))
                    logger.info("created search index %s", index)
                else:
                    self._client.indices.put_mapping(index=index, body={"properties": dict(ADDED_FIELDS)})
            except RequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise _unavailable("index creation", exc) from exc
            except (OpenSearchConnectionError, TransportError) as exc:
                raise _unavailable("index creation", exc) from exc
            self._ready.add(index)

    def _stored_copies(self, chunks: Sequence[IndexedChunk]) -> list[tuple[str, str]]:
        """(index, _id) of every searchable copy of these chunks, in any chunk index."""
        by_dataset: dict[tuple[str, str], list[str]] = {}
        for chunk in chunks:
            by_dataset.setdefault((chunk.tenant_id, chunk.dataset_id), []).append(chunk.id)
        copies: list[tuple[str, str]] = []
        for (tenant_id, dataset_id), ids in by_dataset.items():
            for batch in _batched(ids, TERMS_BATCH):
                for page in self._pages(scope_query(tenant_id, dataset_id, chunk_ids=batch), source=False):
                    copies += [(hit["_index"], hit["_id"]) for hit in page]
        return copies

    def _pages(self, query: Mapping[str, Any], *, source: bool) -> Iterator[list[dict[str, Any]]]:
        """The copies ``query`` finds, a page at a time (``search_after`` on ``copy_id``), every chunk index.

        Each page's position is the last ``copy_id`` it held, so deleting a page before asking for the next
        one skips nothing, whenever the deletes become visible."""
        size = min(self._page_size, BULK_MAX_DOCS) if source else self._page_size
        after: Sequence[Any] | None = None
        while True:
            try:
                response = self._client.search(
                    index=self._pattern,
                    body=page_body(query, size=size, source=source, after=after),
                    params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                )
            except (OpenSearchConnectionError, TransportError) as exc:
                raise _unavailable("search", exc) from exc
            hits = _hits(response)
            if hits:
                yield hits
            if len(hits) < size:
                return
            after = hits[-1]["sort"]

    def _delete_matching(self, query: Mapping[str, Any]) -> None:
        """Search-then-delete: every copy ``query`` finds, deleted by ``_id`` a page at a time."""
        for page in self._pages(query, source=False):
            self._delete_copies((hit["_index"], hit["_id"]) for hit in page)

    def _bulk_index(self, documents: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Index documents (no ``_id``, no refresh) in requests of at most BULK_MAX_DOCS / BULK_MAX_BYTES."""
        for payload in bulk_payloads(documents):
            try:
                response = self._client.bulk(body=payload)
            except (OpenSearchConnectionError, TransportError) as exc:
                raise _unavailable("bulk index", exc) from exc
            if response.get("errors"):
                failed = [item["index"] for item in response["items"] if "error" in item.get("index", {})]
                if failed:
                    first = failed[0]
                    status = max(int(item.get("status") or 500) for item in failed)
                    raise _request_failed(f"bulk index ({len(failed)} documents)", status, first["error"])

    def _await_searchable(self, copy_ids: Sequence[str]) -> None:
        """Return once every copy in ``copy_ids`` is searchable — what ``refresh=wait_for`` gives on OpenSearch
        and AOSS refuses: a count of the copies by ``copy_id``, asked again with backoff. Raises
        ``StoreUnavailable`` when they are not all searchable within ``visibility_timeout_s``."""
        pending = [list(batch) for batch in _batched(list(copy_ids), TERMS_BATCH)]
        deadline = time.monotonic() + self._visibility_timeout_s
        pause = _FIRST_POLL_S
        while pending:
            pending = [batch for batch in pending if self._searchable_count(batch) < len(batch)]
            if not pending:
                return
            if time.monotonic() + pause > deadline:
                missing = sum(len(batch) for batch in pending)
                raise StoreUnavailable(
                    f"OpenSearch: {missing} written documents not searchable after {self._visibility_timeout_s:g} s"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, _MAX_POLL_S)

    def _searchable_count(self, copy_ids: Sequence[str]) -> int:
        body = {"size": 0, "track_total_hits": True, "query": {"terms": {"copy_id": list(copy_ids)}}}
        try:
            response = self._client.search(
                index=self._pattern, body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"}
            )
        except (OpenSearchConnectionError, TransportError) as exc:
            raise _unavailable("search", exc) from exc
        total = response.get("hits", {}).get("total", 0)
        return int(total.get("value", 0) if isinstance(total, dict) else total)

    def _delete_copies(self, copies: Iterable[tuple[str, str]]) -> None:
        """Delete documents by (index, _id) in bulk requests. A document already gone (404: deleted by an
        earlier try, or its index deleted) counts as deleted, so a retried delete succeeds."""
        for payload in bulk_delete_payloads(copies):
            try:
                response = self._client.bulk(body=payload)
            except (OpenSearchConnectionError, TransportError) as exc:
                raise _unavailable("bulk delete", exc) from exc
            if response.get("errors"):
                failed = [
                    item["delete"]
                    for item in response["items"]
                    if "error" in item.get("delete", {}) and item["delete"].get("status") != 404
                ]
                if failed:
                    status = max(int(item.get("status") or 500) for item in failed)
                    raise _request_failed(f"bulk delete ({len(failed)} documents)", status, failed[0]["error"])


def bulk_payloads(documents: Iterable[tuple[str, Mapping[str, Any]]]) -> Iterator[str]:
    """NDJSON bulk bodies of ``index`` actions without ``_id`` (AOSS vector collections reject one),
    each of at most BULK_MAX_DOCS documents and, unless one document alone is larger, BULK_MAX_BYTES."""
    lines: list[str] = []
    size = count = 0
    for index, document in documents:
        action = json.dumps({"index": {"_index": index}}, separators=(",", ":"))
        source = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        added = len(action.encode()) + len(source.encode()) + 2
        if count and (count >= BULK_MAX_DOCS or size + added > BULK_MAX_BYTES):
            yield "\n".join(lines) + "\n"
            lines, size, count = [], 0, 0
        lines += [action, source]
        size += added
        count += 1
    if lines:
        yield "\n".join(lines) + "\n"


def bulk_delete_payloads(copies: Iterable[tuple[str, str]]) -> Iterator[str]:
    """NDJSON bulk bodies of ``delete`` actions by (index, ``_id``), at most BULK_DELETE_MAX each, each
    document once."""
    lines: list[str] = []
    for index, doc_id in dict.fromkeys(copies):
        lines.append(json.dumps({"delete": {"_index": index, "_id": doc_id}}, separators=(",", ":")))
        if len(lines) == BULK_DELETE_MAX:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def merge_hits(
    text_hits: Sequence[Mapping[str, Any]],
    vector_hits: Sequence[Mapping[str, Any]],
    plan: QueryPlan | None,
    vector: Sequence[float] | None,
    *,
    sent: QueryPlan | None = None,
) -> list[Candidate]:
    """Candidates from the two hit lists (each best first): text hits with their BM25 score, the terms they
    contain (the named clauses they matched, of ``sent``, the plan the text query was built from: ``plan``
    by default), the plan's reference score and (in a hybrid search) the cosine of their stored vector; then
    the vector-only hits with the cosine their k-NN score stands for. One candidate per chunk (copies are
    dropped)."""
    query = np.asarray(vector, dtype=np.float64) if vector is not None else None
    searched = sent or plan
    words = [t.term.word for t in searched.terms] if searched else []
    reference = plan.reference_score if plan else None
    merged: dict[tuple[str, str], Candidate] = {}
    cosines = _cosines(query, [hit["_source"] for hit in text_hits])
    matched: dict[tuple[Any, ...], tuple[str, ...]] = {}  # hits share few sets of matched clauses
    for text_hit, hits in ((True, text_hits), (False, vector_hits)):
        for position, hit in enumerate(hits):
            source = hit["_source"]
            key = (source["dataset_id"], source["chunk_id"])
            if key in merged:
                continue
            ids = {"chunk_id": source["chunk_id"], "document_id": source["document_id"], "dataset_id": key[0]}
            if text_hit:
                merged[key] = Candidate(
                    **ids,
                    text_score=float(hit["_score"]),
                    vector_score=cosines[position],
                    matched_terms=list(_memo(matched, tuple(hit.get("matched_queries") or ()), words)),
                    text_reference=reference,
                )
            else:
                vector_score = knn_score_to_cosine(float(hit["_score"]))
                merged[key] = Candidate(**ids, vector_score=vector_score, text_reference=reference)
    return list(merged.values())


def _cosines(
    query: np.ndarray[Any, np.dtype[np.float64]] | None, sources: Sequence[Mapping[str, Any]]
) -> list[float | None]:
    """Cosine of the query and each hit's stored (unit) vector, packed or not (the packed ones in one
    product); None without a query, without a vector or for another dimension."""
    if query is None:
        return [None] * len(sources)
    out: list[float | None] = [None] * len(sources)
    rows: list[int] = []
    packed: list[bytes] = []
    width = 4 * len(query)
    for i, source in enumerate(sources):
        value = source.get(PACKED_VECTOR)
        if isinstance(value, str):
            try:
                raw = base64.b64decode(value)  # anything but a packed vector of this dimension is left out below
            except (binascii.Error, ValueError):
                continue
            if len(raw) == width:
                rows.append(i)
                packed.append(raw)
        else:
            stored = source.get("vector")
            if stored and len(stored) == len(query):
                out[i] = float(np.dot(query, np.asarray(stored, dtype=np.float64)))
    if rows:
        matrix = np.frombuffer(b"".join(packed), dtype="<f4").reshape(len(rows), len(query))
        for i, value in zip(rows, (matrix.astype(np.float64) @ query).tolist(), strict=True):
            out[i] = value
    return out


def _memo(
    seen: dict[tuple[Any, ...], tuple[str, ...]], names: tuple[Any, ...], words: Sequence[str]
) -> tuple[str, ...]:
    found = seen.get(names)
    if found is None:
        found = seen[names] = _matched_words(names, words)
    return found


def _matched_words(names: Iterable[Any], words: Sequence[str]) -> tuple[str, ...]:
    """The words of the text query's clauses (``t<i>``) a hit matched (its ``matched_queries``), in the
    query's order."""
    matched = set()
    for name in names:
        if isinstance(name, str) and name[:1] == "t" and name[1:].isdigit() and int(name[1:]) < len(words):
            matched.add(int(name[1:]))
    return tuple(words[i] for i in sorted(matched))


def _hits(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = response.get("hits", {}).get("hits", [])
    return hits


def _batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
