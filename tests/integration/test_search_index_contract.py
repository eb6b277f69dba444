"""One contract suite for every SearchIndex engine: the embedded index, and OpenSearch on the strict AOSS
stand-in (osmem-server behind ``tests.support.aoss.StrictAoss``).

An engine enters the suite as an ``Engine``: how to open a handle on the test's (initially empty) index,
how to open another handle on the same storage (persistence), how to close one, and how to wait until
writes are visible to searches if the engine makes them visible late (``settle``). The contract holds once
the writes before it have settled: a change acts on what is searchable. The tests speak only the port, plus
``rebuild`` where the engine has it. Engine-specific behaviour is at the end of the file.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch
from osmem_server import OsmemServer

from shared.adapters.aws import opensearch_index
from shared.adapters.aws.opensearch_index import OpenSearchIndex
from shared.adapters.aws.s3_blobs import S3BlobStore
from shared.adapters.aws.shard_index import ShardSnapshotIndex
from shared.adapters.local.embedded_index import EmbeddedSearchIndex
from shared.ports.metadata import StoreUnavailable
from shared.ports.search import TEXT_CANDIDATES, Candidate, IndexedChunk, SearchIndex, SearchQuery
from shared.rag.text_analysis import BM25_K1, MAX_QUERY_TERMS, bm25_idf, query_weight
from tests.support.aoss import DEFAULT_VISIBILITY_DELAY_S, StrictAoss
from tests.support.dynamo import moto_dynamo_store
from tests.support.opensearch import TEST_REGION, ExactKnnSearcher, client_for, osmem_analysis, run_osmem_server

pytestmark = pytest.mark.integration

DIM = 8
#: The stand-in's visibility delay in this suite (each write waits it out in ``settle``), and the page size of
#: the engine's search-then-change paging (small, so every change here spans several pages).
VISIBILITY_DELAY_S = 0.1
PAGE_SIZE = 3


@dataclass
class Engine:
    name: str
    open: Callable[[], SearchIndex]  # a handle on this test's index (the same storage every time)
    close: Callable[[SearchIndex], None]
    settle: Callable[[SearchIndex], None] = lambda index: None  # make the last writes searchable
    cleanup: Callable[[], None] = lambda: None


def _embedded(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    def close(index: SearchIndex) -> None:
        assert isinstance(index, EmbeddedSearchIndex)
        index.close()

    return Engine("embedded", open=lambda: EmbeddedSearchIndex(tmp_path / "index"), close=close)


@pytest.fixture(scope="session")
def osmem() -> Iterator[OsmemServer]:
    with run_osmem_server() as server:
        yield server


def _opensearch(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    # A clone per test (an empty cluster of its own) behind the strict AOSS stand-in, which refuses what
    # AOSS refuses and makes writes searchable VISIBILITY_DELAY_S late. osmem-server has no k-NN query, so
    # the engine's k-NN requests are answered by an exact emulation (tests/support/opensearch.py; the request
    # bodies are asserted in tests/unit/test_opensearch_queries.py).
    clone = request.getfixturevalue("osmem").clone()
    aoss = StrictAoss(clone.url, visibility_delay_s=VISIBILITY_DELAY_S).start()
    client, searcher = client_for(aoss.url), ExactKnnSearcher()

    def open_index() -> SearchIndex:
        return OpenSearchIndex(
            aoss.url,
            region=TEST_REGION,
            client=client,
            analysis=osmem_analysis(),
            searcher=searcher,
            page_size=PAGE_SIZE,
        )

    def cleanup() -> None:
        aoss.close()
        clone.close()
        assert aoss.refusals == [], f"OpenSearch Serverless would have refused: {aoss.refusals}"

    return Engine(
        "opensearch", open=open_index, close=lambda index: None, settle=lambda index: aoss.settle(), cleanup=cleanup
    )


def _shards(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    # The embedded engine as it runs on Lambda: snapshots in S3 and heads in DynamoDB (under moto); each
    # open() is another process (a cache folder of its own) on the same table and bucket.
    stack = contextlib.ExitStack()
    store = stack.enter_context(moto_dynamo_store())
    boto3.client("s3", region_name=TEST_REGION).create_bucket(Bucket="shards")
    blobs = S3BlobStore("shards", region=TEST_REGION)
    opened = iter(range(1_000))

    def open_index() -> SearchIndex:
        cache = tmp_path / f"process-{next(opened)}"
        return ShardSnapshotIndex(store=store, blobs=blobs, truth=lambda tenant, dataset: [], cache_dir=cache)

    def close(index: SearchIndex) -> None:
        assert isinstance(index, ShardSnapshotIndex)
        index.close()

    return Engine("shards", open=open_index, close=close, cleanup=stack.close)


ENGINES: dict[str, Callable[[pytest.FixtureRequest, Path], Engine]] = {
    "embedded": _embedded,
    "opensearch": _opensearch,
    "shards": _shards,
}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    harness = ENGINES[request.param](request, tmp_path)
    yield harness
    harness.cleanup()


@pytest.fixture
def index(engine: Engine) -> Iterator[SearchIndex]:
    handle = engine.open()
    yield handle
    engine.close(handle)


# -- data helpers ---------------------------------------------------------------------------------
def unit(values: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def axis(i: int, dim: int = DIM) -> list[float]:
    return [1.0 if k == i else 0.0 for k in range(dim)]


def blend(i: int, j: int, weight_j: float, dim: int = DIM) -> list[float]:
    return unit([a + weight_j * b for a, b in zip(axis(i, dim), axis(j, dim), strict=True)])


@dataclass
class Make:
    """Chunk factory with the test's defaults (tenant t1, dataset d1, document doc1)."""

    tenant_id: str = "t1"
    dataset_id: str = "d1"
    document_id: str = "doc1"
    vectors: dict[str, list[float]] = field(default_factory=dict)

    def __call__(
        self,
        chunk_id: str,
        content: str,
        vector: list[float] | None = None,
        **overrides: object,
    ) -> IndexedChunk:
        fields: dict[str, object] = {
            "id": chunk_id,
            "tenant_id": self.tenant_id,
            "dataset_id": self.dataset_id,
            "document_id": self.document_id,
            "document_name": f"{self.document_id}.txt",
            "content": content,
            "vector": vector if vector is not None else axis(7),
        }
        fields.update(overrides)
        return IndexedChunk(**fields)  # type: ignore[arg-type]


chunk = Make()


def ids(candidates: list[Candidate]) -> list[str]:
    return [c.chunk_id for c in candidates]


def find(
    index: SearchIndex,
    text: str = "",
    vector: list[float] | None = None,
    *,
    tenant: str = "t1",
    datasets: Sequence[str] = ("d1",),
    documents: Sequence[str] | None = None,
    top_k: int = 1024,
    text_limit: int = TEXT_CANDIDATES,
) -> list[Candidate]:
    return index.search(
        SearchQuery(
            tenant_id=tenant,
            dataset_ids=list(datasets),
            text=text,
            vector=vector,
            document_ids=documents,
            top_k=top_k,
            text_limit=text_limit,
        )
    )


def write(engine: Engine, index: SearchIndex, chunks: Sequence[IndexedChunk]) -> None:
    index.upsert(chunks)
    engine.settle(index)


# -- the contract, on every engine ----------------------------------------------------------------
def test_ping(index: SearchIndex) -> None:
    index.ping()


def test_upsert_adds_and_replaces_by_id(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("c1", "the aurora shimmered over the fjord"), chunk("c2", "a quiet harbour")])
    assert ids(find(index, "aurora")) == ["c1"]
    write(engine, index, [chunk("c1", "glaciers carve the valley")])
    assert find(index, "aurora") == []
    found = find(index, "glaciers")
    assert ids(found) == ["c1"]
    assert ids(find(index, "harbour")) == ["c2"]
    write(engine, index, [chunk("c1", "glaciers carve the valley")])  # idempotent
    assert len(find(index, "glaciers valley")) == 1


def test_text_match_ranks_better_matches_higher(engine: Engine, index: SearchIndex) -> None:
    write(
        engine,
        index,
        [
            chunk("both", "Solar panels convert sunlight into electricity for the grid."),
            chunk("one", "The grid operator publishes electricity prices every hour of the day."),
            chunk("none", "Wind turbines spin in the northern sea."),
        ],
    )
    found = find(index, "solar panels sunlight")
    assert ids(found) == ["both"]
    found = find(index, "solar sunlight electricity")
    assert ids(found) == ["both", "one"]
    assert found[0].text_score is not None and found[1].text_score is not None
    assert found[0].text_score > found[1].text_score > 0
    assert found[0].vector_score is None  # no query vector, no vector signal
    assert set(found[0].matched_terms) == {"solar", "sunlight", "electricity"}
    assert found[1].matched_terms == ["electricity"]


def test_a_long_question_searches_its_most_informative_terms(engine: Engine, index: SearchIndex) -> None:
    """RAGFlow-style query analysis on both engines: at most MAX_QUERY_TERMS terms, the highest count x IDF
    first (ties: earlier in the question); a term left out matches nothing."""
    rare = [f"rare{i}x" for i in range(MAX_QUERY_TERMS + 5)]
    chunks = [chunk("all", " ".join(rare)), chunk("late", rare[-1]), chunk("early", rare[0])]
    chunks += [chunk(f"f{i}", f"common filler{i}") for i in range(6)]
    write(engine, index, chunks)
    found = {c.chunk_id: c for c in find(index, " ".join([*rare, "common"]))}
    # rare0 is in two chunks (lower IDF than rare1..): rare1 .. rare25 are the 25 most informative
    kept = rare[1 : MAX_QUERY_TERMS + 1]
    assert set(found) == {"all"} and found["all"].matched_terms == kept
    # the reference match is the whole question's (every term some chunk holds), not only the searched terms'
    n = len(chunks)
    idfs = [bm25_idf(2, n), *[bm25_idf(1, n) for _ in rare[1:-1]], bm25_idf(2, n), bm25_idf(6, n)]
    assert found["all"].text_reference == pytest.approx(sum(idfs) / (1 + BM25_K1), rel=1e-5)


def test_a_repeated_question_word_weighs_its_saturated_count(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("s", "solar roof"), chunk("w", "wind roof"), chunk("x", "nothing here")])
    found = {c.chunk_id: c for c in find(index, "solar wind solar")}
    twice = query_weight(2)  # 1.375: more than once, less than twice
    assert found["s"].text_score == pytest.approx(twice * found["w"].text_score, rel=1e-5)  # type: ignore[operator]
    assert found["s"].text_reference == found["w"].text_reference
    assert found["s"].text_reference == pytest.approx((twice + 1) * bm25_idf(1, 3) / (1 + BM25_K1), rel=1e-5)


def test_words_match_their_other_forms(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("c1", "Researchers studied how the cells were dividing."), chunk("c2", "Nothing")])
    assert ids(find(index, "studies")) == ["c1"]
    assert ids(find(index, "divide")) == ["c1"]
    assert ids(find(index, "CELL")) == ["c1"]


def test_keywords_and_questions_are_searchable(engine: Engine, index: SearchIndex) -> None:
    write(
        engine,
        index,
        [
            chunk("kw", "Table 3 lists the measured values.", keywords=["photosynthesis", "chlorophyll"]),
            chunk("q", "See the appendix for details.", questions=["How do volcanoes erupt?"]),
            chunk("plain", "Nothing to see here."),
        ],
    )
    assert ids(find(index, "photosynthesis")) == ["kw"]
    assert ids(find(index, "chlorophyll")) == ["kw"]
    assert ids(find(index, "volcano erupted")) == ["q"]


def test_cjk_text_is_searchable(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("zh", "数据库系统的索引结构"), chunk("en", "database index structure")])
    assert ids(find(index, "数据库")) == ["zh"]
    assert ids(find(index, "索引")) == ["zh"]


def test_vector_search_returns_nearest_first_with_cosine(engine: Engine, index: SearchIndex) -> None:
    near, middle, far = blend(0, 1, 0.2), blend(0, 1, 1.0), axis(1)
    write(engine, index, [chunk("far", "x", far), chunk("near", "y", near), chunk("middle", "z", middle)])
    query = axis(0)
    found = find(index, vector=query)
    assert ids(found) == ["near", "middle", "far"]
    for candidate, vector in zip(found, (near, middle, far), strict=True):
        assert candidate.vector_score == pytest.approx(sum(a * b for a, b in zip(query, vector, strict=True)), abs=1e-5)
        assert candidate.text_score is None
    assert ids(find(index, vector=axis(0), top_k=2)) == ["near", "middle"]


def test_hybrid_gives_each_candidate_both_signals(engine: Engine, index: SearchIndex) -> None:
    write(
        engine,
        index,
        [
            chunk("text", "mitochondria produce energy in the cell", axis(3)),
            chunk("vector", "membranes and energy", axis(0)),
            chunk("neither", "unrelated words only", axis(5)),
        ],
    )
    found = {c.chunk_id: c for c in find(index, "mitochondria energy", axis(0), top_k=1)}
    assert set(found) == {"text", "vector"}
    assert found["text"].text_score is not None and found["text"].vector_score == pytest.approx(0.0, abs=1e-6)
    assert found["vector"].vector_score == pytest.approx(1.0, abs=1e-5)
    if found["vector"].text_score is not None:  # computed where the engine can: it matches "energy"
        assert 0 < found["vector"].text_score < found["text"].text_score
        assert found["vector"].matched_terms == ["energy"]


def test_top_k_bounds_the_vector_candidates_only(engine: Engine, index: SearchIndex) -> None:
    # RAGFlow's Elasticsearch search: a k-NN clause of top_k beside a text query top_k does not cap
    write(engine, index, [chunk(f"c{i}", f"common word number{i}", blend(0, 1, 0.5 + i / 40)) for i in range(20)])
    write(engine, index, [chunk(f"v{i}", f"other text {i}", blend(0, 1, i / 40)) for i in range(5)])
    assert len(find(index, "common", top_k=5)) == 20
    assert len(find(index, vector=axis(0), top_k=5)) == 5
    hybrid = find(index, "common", axis(0), top_k=2)
    assert sorted(ids(hybrid)) == sorted([f"c{i}" for i in range(20)] + ["v0", "v1"])
    assert len(find(index, "common", top_k=5, text_limit=7)) == 7  # text has its own, fixed bound


def test_tenant_isolation(engine: Engine, index: SearchIndex) -> None:
    other = Make(tenant_id="t2")
    write(engine, index, [chunk("mine", "shared secret phrase", axis(0))])
    write(engine, index, [other("theirs", "shared secret phrase", axis(0))])
    assert ids(find(index, "secret phrase", axis(0))) == ["mine"]
    assert ids(find(index, "secret phrase", axis(0), tenant="t2")) == ["theirs"]
    assert find(index, "secret", axis(0), tenant="t3") == []
    index.delete_dataset("t2", "d1")
    index.delete_chunks("t2", "d1", ["mine"])
    engine.settle(index)
    assert ids(find(index, "secret phrase", axis(0))) == ["mine"]


def test_dataset_and_document_filters(engine: Engine, index: SearchIndex) -> None:
    second = Make(dataset_id="d2", document_id="docB")
    write(
        engine,
        index,
        [
            chunk("a1", "river delta sediment", axis(0), document_id="docA"),
            chunk("a2", "river delta sediment", axis(0), document_id="docA2"),
            second("b1", "river delta sediment", axis(0)),
        ],
    )
    assert sorted(ids(find(index, "river"))) == ["a1", "a2"]
    assert sorted(ids(find(index, "river", datasets=["d1", "d2"]))) == ["a1", "a2", "b1"]
    assert ids(find(index, "river", datasets=["d2"])) == ["b1"]
    assert ids(find(index, "river", axis(0), documents=["docA"])) == ["a1"]
    assert sorted(ids(find(index, vector=axis(0), datasets=["d1", "d2"], documents=["docA", "docB"]))) == ["a1", "b1"]
    assert find(index, "river", axis(0), documents=["no-such-doc"]) == []
    assert find(index, "river", axis(0), datasets=["no-such-dataset"]) == []
    assert find(index, "river", axis(0), datasets=[]) == []
    by_id = {c.chunk_id: c for c in find(index, "river", datasets=["d1", "d2"])}
    assert (by_id["a1"].dataset_id, by_id["a1"].document_id) == ("d1", "docA")
    assert (by_id["b1"].dataset_id, by_id["b1"].document_id) == ("d2", "docB")


def test_filters_that_exclude_every_chunk_of_a_query_term(engine: Engine, index: SearchIndex) -> None:
    write(
        engine,
        index,
        [
            chunk("a1", "river delta", axis(0), document_id="docA"),
            chunk("a2", "ocean trench", axis(1), document_id="docA2"),
            chunk("hidden", "glacier", axis(2), available=False),
        ],
    )
    (found,) = find(index, "river ocean glacier", documents=["docA"])
    assert (found.chunk_id, found.matched_terms) == ("a1", ["river"])
    assert sorted(ids(find(index, "river ocean glacier"))) == ["a1", "a2"]


def test_unavailable_chunks_are_never_returned(engine: Engine, index: SearchIndex) -> None:
    write(
        engine,
        index,
        [chunk("on", "lantern light", axis(0)), chunk("off", "lantern light", axis(0), available=False)],
    )
    assert ids(find(index, "lantern", axis(0))) == ["on"]
    index.set_available("t1", "d1", ["on"], False)
    engine.settle(index)
    assert find(index, "lantern", axis(0)) == []
    index.set_available("t1", "d1", ["on", "off", "unknown"], True)
    engine.settle(index)
    assert sorted(ids(find(index, "lantern"))) == ["off", "on"]
    assert sorted(ids(find(index, vector=axis(0)))) == ["off", "on"]


def test_delete_chunks_document_and_dataset(engine: Engine, index: SearchIndex) -> None:
    second = Make(dataset_id="d2")
    write(
        engine,
        index,
        [
            chunk("a", "granite quarry", axis(0), document_id="docA"),
            chunk("b", "granite quarry", axis(0), document_id="docA"),
            chunk("c", "granite quarry", axis(0), document_id="docC"),
            chunk("d", "granite quarry", axis(0), document_id="docC"),
            second("e", "granite quarry", axis(0)),
        ],
    )
    index.delete_chunks("t1", "d1", ["a", "never-existed", "a"])
    engine.settle(index)
    assert sorted(ids(find(index, "granite", axis(0)))) == ["b", "c", "d"]
    index.delete_document("t1", "d1", "docC")
    engine.settle(index)
    assert ids(find(index, "granite", axis(0))) == ["b"]
    index.delete_dataset("t1", "d2")
    engine.settle(index)
    assert find(index, "granite", axis(0), datasets=["d2"]) == []
    assert ids(find(index, "granite", axis(0))) == ["b"]
    index.delete_document("t1", "d1", "no-such-doc")
    index.delete_dataset("t1", "no-such-dataset")
    index.delete_chunks("t1", "no-such-dataset", ["b"])
    engine.settle(index)
    assert ids(find(index, "granite", axis(0))) == ["b"]
    write(engine, index, [second("e", "granite quarry", axis(0))])  # a deleted dataset can come back
    assert ids(find(index, "granite", datasets=["d2"])) == ["e"]


def test_graph_records_are_found_only_by_their_kind(engine: Engine, index: SearchIndex) -> None:
    """Knowledge-graph records share the index with chunks but never answer a plain search."""
    write(
        engine,
        index,
        [
            chunk("c", "granite quarry", axis(0)),
            chunk("e", "granite quarry", axis(0), document_id="", kind="entity"),
            chunk("r", "granite quarry", axis(1), document_id="", kind="relation"),
            Make(dataset_id="d2")("e2", "granite quarry", axis(0), document_id="", kind="entity"),
        ],
    )
    assert ids(find(index, "granite", axis(0))) == ["c"]
    assert ids(find(index, vector=axis(0))) == ["c"]

    def of_kind(kind: str, text: str = "", vector: list[float] | None = None) -> list[Candidate]:
        return index.search(SearchQuery("t1", ["d1"], text=text, vector=vector, kind=kind))  # type: ignore[arg-type]

    (entity,) = of_kind("entity", vector=axis(0))
    assert (entity.chunk_id, entity.dataset_id, entity.document_id) == ("e", "d1", "")
    assert entity.vector_score == pytest.approx(1.0)
    assert ids(of_kind("entity", "granite")) == ["e"]
    assert ids(of_kind("relation", vector=axis(0))) == ["r"]
    assert of_kind("community_report", vector=axis(0)) == []
    assert index.search(SearchQuery("t2", ["d1"], vector=axis(0), kind="entity")) == []  # tenant isolation

    index.delete_document("t1", "d1", "doc1")  # a document's chunks only
    engine.settle(index)
    assert find(index, "granite") == [] and ids(of_kind("entity", "granite")) == ["e"]
    index.delete_chunks("t1", "d1", ["e"])  # by id, whatever the kind
    engine.settle(index)
    assert of_kind("entity", "granite") == [] and ids(of_kind("relation", "granite")) == ["r"]
    index.set_available("t1", "d1", ["r"], False)
    engine.settle(index)
    assert of_kind("relation", "granite") == []
    index.delete_dataset("t1", "d2")  # every kind
    engine.settle(index)
    assert index.search(SearchQuery("t1", ["d2"], vector=axis(0), kind="entity")) == []


def test_empty_query_finds_nothing(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("c1", "anything at all", axis(0))])
    assert find(index) == []
    assert find(index, "   ") == []
    assert find(index, "zzyzx-unknown-word") == []
    assert find(index, "anything", top_k=0) == []


def test_stopword_only_query_still_returns_vector_candidates(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("c1", "the of and", axis(0)), chunk("c2", "meaningful words", axis(1))])
    assert find(index, "the of and") == []
    found = find(index, "The of and", axis(1))
    assert ids(found) == ["c2", "c1"]
    assert all(c.text_score is None for c in found)


def test_vector_dimensions_may_differ_between_datasets(engine: Engine, index: SearchIndex) -> None:
    small = Make(dataset_id="small")
    write(engine, index, [chunk("wide", "prism", axis(0, 8)), small("narrow", "prism", axis(0, 4))])
    both = ["d1", "small"]
    assert ids(find(index, vector=axis(0, 4), datasets=both)) == ["narrow"]
    assert ids(find(index, vector=axis(0, 8), datasets=both)) == ["wide"]
    found = {c.chunk_id: c for c in find(index, "prism", axis(0, 4), datasets=both)}
    assert found["narrow"].vector_score == pytest.approx(1.0, abs=1e-5)
    assert found["wide"].vector_score is None  # no vector of the query's dimension


def test_data_survives_a_new_instance(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("c1", "persistent memory", axis(0)), chunk("c2", "volatile memory", axis(1))])
    index.delete_chunks("t1", "d1", ["c2"])
    index.set_available("t1", "d1", ["c1"], False)
    engine.settle(index)  # the next change acts on what this one wrote
    index.set_available("t1", "d1", ["c1"], True)
    write(engine, index, [chunk("c3", "persistent storage", axis(2))])
    before = find(index, "persistent memory", axis(0))
    engine.close(index)
    reopened = engine.open()
    try:
        after = find(reopened, "persistent memory", axis(0))
        assert ids(after) == ids(before) == ["c1", "c3"]
        assert [c.text_score for c in after] == pytest.approx([c.text_score for c in before])
        assert [c.vector_score for c in after] == pytest.approx([c.vector_score for c in before])
    finally:
        engine.close(reopened)


def test_rebuild_replaces_everything(engine: Engine, index: SearchIndex) -> None:
    rebuild = getattr(index, "rebuild", None)
    if rebuild is None:
        pytest.skip(f"{engine.name} has no rebuild")
    write(engine, index, [chunk("stale", "old content", axis(0))])
    count = rebuild(iter([chunk("fresh1", "new content", axis(0)), Make(dataset_id="d2")("fresh2", "new", axis(1))]))
    engine.settle(index)
    assert count == 2
    assert find(index, "old") == []
    assert ids(find(index, "content", axis(0))) == ["fresh1"]
    assert ids(find(index, "new", datasets=["d2"])) == ["fresh2"]
    write(engine, index, [chunk("later", "new arrivals", axis(2))])  # writes go on after a rebuild
    assert sorted(ids(find(index, "new"))) == ["fresh1", "later"]


def test_concurrent_readers_while_a_writer_upserts(engine: Engine, index: SearchIndex) -> None:
    write(engine, index, [chunk("anchor", "lighthouse beacon", axis(0))])
    errors: list[BaseException] = []
    seen_counts: list[list[int]] = [[] for _ in range(4)]
    stop = threading.Event()

    def reader(slot: int) -> None:
        try:
            while not stop.is_set():
                found = find(index, "lighthouse wave", axis(0))
                assert "anchor" in ids(found), "a chunk that was never touched went missing"
                assert all(c.dataset_id == "d1" for c in found)
                seen_counts[slot].append(sum(1 for c in found if c.chunk_id.startswith("w")))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    try:
        for batch in range(40):
            index.upsert([chunk(f"w{batch}-{i}", f"wave {batch} {i}", blend(1, 0, 0.1)) for i in range(10)])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    engine.settle(index)
    assert not errors, errors[0]
    for counts in seen_counts:
        assert counts == sorted(counts), "a reader saw written chunks disappear"
    assert sum(1 for c in find(index, "wave") if c.chunk_id.startswith("w")) == 400


# -- OpenSearch on the AOSS stand-in: what a change guarantees while writes are not yet visible ------------
@dataclass
class Aoss:
    """The OpenSearch engine on a strict AOSS stand-in of its own, and a plain client of the osmem-server
    behind it (which sees every stored copy, searchable yet or not)."""

    index: OpenSearchIndex
    stand_in: StrictAoss
    upstream: OpenSearch

    def copies(self, chunk_id: str) -> int:
        """Stored copies of a chunk, searchable yet or not."""
        body = {"query": {"term": {"chunk_id": chunk_id}}, "size": 100}
        hits: list[object] = self.upstream.search(index="flowless-chunks-*", body=body)["hits"]["hits"]
        return len(hits)


@contextmanager
def aoss_engine(osmem: OsmemServer, visibility_delay_s: float, **options: Any) -> Iterator[Aoss]:
    clone = osmem.clone()
    stand_in = StrictAoss(clone.url, visibility_delay_s=visibility_delay_s).start()
    try:
        index = OpenSearchIndex(
            stand_in.url,
            region=TEST_REGION,
            client=client_for(stand_in.url),
            analysis=osmem_analysis(),
            searcher=ExactKnnSearcher(),
            page_size=PAGE_SIZE,
            **options,
        )
        yield Aoss(index, stand_in, client_for(clone.url))
        assert stand_in.refusals == [], stand_in.refusals
    finally:
        stand_in.close()
        clone.close()


def test_aoss_a_write_returns_once_it_is_searchable(osmem: OsmemServer) -> None:
    """At the stand-in's default (AOSS-like) delay: what an upsert or an availability change wrote is found by
    the very next search, with no settling in between."""
    with aoss_engine(osmem, DEFAULT_VISIBILITY_DELAY_S) as aoss:
        aoss.index.upsert([chunk("c1", "granite quarry", axis(0)), chunk("c2", "granite quarry", axis(0))])
        assert sorted(ids(find(aoss.index, "granite", axis(0)))) == ["c1", "c2"]
        aoss.index.set_available("t1", "d1", ["c1"], False)
        assert ids(find(aoss.index, "granite", axis(0))) == ["c2"] and aoss.copies("c1") == 1


def test_aoss_a_change_right_after_a_write_acts_on_it(osmem: OsmemServer) -> None:
    """The delay gap closed, at the default delay: a delete and an availability change made the moment after
    the chunks were written find them (a parse stopped after its index step wrote, a document disabled right
    after it was parsed), and no copy is left behind once the deletes are applied."""
    with aoss_engine(osmem, DEFAULT_VISIBILITY_DELAY_S) as aoss:
        written = [chunk(f"c{i}", "granite quarry", axis(0)) for i in range(1, 4)]
        aoss.index.upsert(written)
        aoss.index.delete_chunks("t1", "d1", ["c1"])
        aoss.index.set_available("t1", "d1", ["c2"], False)
        aoss.stand_in.settle()
        assert ids(find(aoss.index, "granite", axis(0))) == ["c3"]
        assert [aoss.copies(c.id) for c in written] == [0, 1, 1]
        aoss.index.upsert(
            [
                chunk("c4", "granite quarry", axis(0), document_id="doc2"),
                chunk("c5", "granite quarry", axis(0), dataset_id="d2"),
            ]
        )
        aoss.index.delete_document("t1", "d1", "doc2")
        aoss.index.delete_dataset("t1", "d2")
        aoss.stand_in.settle()
        assert aoss.copies("c4") == 0 and aoss.copies("c5") == 0


def test_aoss_a_write_not_searchable_in_time_is_reported_and_its_repeat_replaces_it(osmem: OsmemServer) -> None:
    with aoss_engine(osmem, DEFAULT_VISIBILITY_DELAY_S, visibility_timeout_s=0.2) as aoss:
        with pytest.raises(StoreUnavailable, match=r"not searchable after 0\.2 s"):
            aoss.index.upsert([chunk("c1", "granite quarry", axis(0))])
        aoss.stand_in.settle()
        assert aoss.copies("c1") == 1
        patient = OpenSearchIndex(
            aoss.stand_in.url,
            region=TEST_REGION,
            client=client_for(aoss.stand_in.url),
            analysis=osmem_analysis(),
            searcher=ExactKnnSearcher(),
        )
        patient.upsert([chunk("c1", "granite quarry", axis(0))])  # the retry: it replaces the copy left
        aoss.stand_in.settle()
        assert aoss.copies("c1") == 1 and ids(find(patient, "granite")) == ["c1"]


def test_aoss_a_retried_change_succeeds_and_acts_once(osmem: OsmemServer) -> None:
    """A delete retried before the first one is visible finds the same copies: they answer 404, which is
    success; the copies are gone once, and nothing else is touched."""
    with aoss_engine(osmem, VISIBILITY_DELAY_S) as aoss:
        aoss.index.upsert([chunk(f"a{i}", "basalt column", axis(0), document_id="docA") for i in range(7)])
        aoss.index.upsert([chunk("b0", "basalt column", axis(0), document_id="docB")])
        aoss.stand_in.settle()
        aoss.index.delete_document("t1", "d1", "docA")
        aoss.index.delete_document("t1", "d1", "docA")  # the retry: every copy is already being deleted
        assert len(find(aoss.index, "basalt")) == 8  # still searchable until the delay has passed
        aoss.stand_in.settle()
        assert ids(find(aoss.index, "basalt", axis(0))) == ["b0"]
        aoss.index.delete_document("t1", "d1", "docA")  # and once more, now that nothing is left
        aoss.index.delete_dataset("t1", "no-such-dataset")


def test_aoss_two_upserts_in_a_row_leave_one_copy(osmem: OsmemServer) -> None:
    with aoss_engine(osmem, VISIBILITY_DELAY_S) as aoss:
        aoss.index.upsert([chunk("c1", "obsidian shard", axis(0))])
        aoss.index.upsert([chunk("c1", "obsidian blade", axis(0))])  # finds the first copy: it is searchable
        aoss.stand_in.settle()
        assert aoss.copies("c1") == 1 and ids(find(aoss.index, "blade")) == ["c1"] and find(aoss.index, "shard") == []


def test_aoss_changes_page_through_many_copies(osmem: OsmemServer) -> None:
    """PAGE_SIZE is 3: an availability change and a delete of 20 chunks take several pages each."""
    with aoss_engine(osmem, VISIBILITY_DELAY_S) as aoss:
        many = [chunk(f"m{i:02d}", f"pumice stone {i}", blend(0, 1, i / 20)) for i in range(20)]
        aoss.index.upsert(many)
        aoss.stand_in.settle()
        aoss.index.set_available("t1", "d1", [c.id for c in many[:10]], False)
        aoss.stand_in.settle()
        assert sorted(ids(find(aoss.index, "pumice", top_k=100))) == [c.id for c in many[10:]]
        assert all(aoss.copies(c.id) == 1 for c in many)
        aoss.index.delete_document("t1", "d1", "doc1")
        aoss.stand_in.settle()
        assert find(aoss.index, "pumice", axis(0)) == [] and sum(aoss.copies(c.id) for c in many) == 0


# -- embedded engine specifics ----------------------------------------------------------------------
@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedSearchIndex]:
    with EmbeddedSearchIndex(tmp_path / "index") as index:
        yield index


def test_embedded_new_directory_asks_for_a_rebuild(tmp_path: Path) -> None:
    with EmbeddedSearchIndex(tmp_path / "index") as index:
        assert index.needs_rebuild() and index.is_empty()
        first = index.generation
        index.rebuild([])
        assert not index.needs_rebuild()
        assert index.generation != first
        generation = index.generation
        index.upsert([chunk("c1", "text")])
        assert not index.is_empty() and index.count() == 1
    with EmbeddedSearchIndex(tmp_path / "index") as index:
        assert not index.needs_rebuild() and index.generation == generation and index.count() == 1
    (tmp_path / "index" / "index.sqlite3").unlink()
    for leftover in (tmp_path / "index").iterdir():
        leftover.unlink()
    with EmbeddedSearchIndex(tmp_path / "index") as index:
        assert index.needs_rebuild() and index.is_empty() and index.generation != generation


def test_embedded_failed_rebuild_is_flagged(embedded: EmbeddedSearchIndex) -> None:
    embedded.rebuild([chunk("c1", "kept")])

    def broken() -> Iterator[IndexedChunk]:
        yield chunk("c2", "half")
        raise RuntimeError("metadata store went away")

    with pytest.raises(RuntimeError):
        embedded.rebuild(broken())
    assert embedded.needs_rebuild()
    embedded.rebuild([chunk("c1", "kept")])
    assert not embedded.needs_rebuild() and ids(find(embedded, "kept")) == ["c1"]


def test_embedded_compaction_keeps_results(embedded: EmbeddedSearchIndex) -> None:
    for round_ in range(3):  # replacing every chunk leaves tombstones; compaction renumbers the rows
        embedded.upsert([chunk(f"c{i}", f"token{i} shared round{round_}", blend(0, 1, i / 50)) for i in range(600)])
    embedded.delete_chunks("t1", "d1", [f"c{i}" for i in range(0, 600, 2)])
    before_text, before_vector = find(embedded, "shared token7 round2"), find(embedded, vector=axis(0), top_k=10)
    embedded.compact()
    after_text, after_vector = find(embedded, "shared token7 round2"), find(embedded, vector=axis(0), top_k=10)
    assert ids(after_text) == ids(before_text) and ids(after_vector) == ids(before_vector)
    assert [c.text_score for c in after_text] == pytest.approx([c.text_score for c in before_text])
    assert [c.vector_score for c in after_vector] == pytest.approx([c.vector_score for c in before_vector])
    assert embedded.count() == 300 and ids(before_text)[0] == "c7" and ids(before_vector)[0] == "c1"
    assert find(embedded, "round0") == []


def test_embedded_normalises_vectors(embedded: EmbeddedSearchIndex) -> None:
    embedded.upsert([chunk("c1", "x", [3.0, 4.0, 0, 0, 0, 0, 0, 0])])
    (found,) = find(embedded, vector=[6.0, 0, 0, 0, 0, 0, 0, 0])
    assert found.vector_score == pytest.approx(0.6, abs=1e-6)


def test_embedded_ping_fails_once_closed(tmp_path: Path) -> None:
    index = EmbeddedSearchIndex(tmp_path / "index")
    index.ping()
    index.close()
    with pytest.raises(RuntimeError):
        index.ping()


def test_embedded_counts_stay_right_after_repeated_ids(embedded: EmbeddedSearchIndex) -> None:
    embedded.upsert([chunk("a", "one"), chunk("a", "one two"), chunk("b", "two")])
    assert embedded.count() == 2 and ids(find(embedded, "one")) == ["a"]
    embedded.delete_chunks("t1", "d1", ["a", "a", "b", "b"])
    assert embedded.count() == 0 and embedded.is_empty()
    embedded.upsert([chunk("a", "one")])
    assert embedded.count() == 1


def test_embedded_statistics_span_the_datasets_searched(embedded: EmbeddedSearchIndex) -> None:
    """Searching datasets x and y scores like one dataset holding both (BM25 N, df, avgdl over both)."""
    texts = [f"alpha {'beta ' * (i % 3)}gamma{i % 4} delta{i % 5}" for i in range(40)]
    vectors = [blend(i % 8, (i + 1) % 8, i / 40) for i in range(40)]
    embedded.upsert(
        [chunk(f"c{i}", t, v, dataset_id="all") for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    )
    embedded.upsert(
        [chunk(f"c{i}", t, v, dataset_id="xy"[i % 2]) for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    )
    query = ("beta gamma1 delta2", axis(0))
    one = {c.chunk_id: c for c in find(embedded, *query, datasets=["all"])}
    two = {c.chunk_id: c for c in find(embedded, *query, datasets=["x", "y"])}
    assert sorted(one) == sorted(two)
    for chunk_id, expected in one.items():
        assert two[chunk_id].text_score == pytest.approx(expected.text_score)
        assert two[chunk_id].vector_score == pytest.approx(expected.vector_score)
        assert two[chunk_id].matched_terms == expected.matched_terms
    for top_k in (3, 10):  # the same best scores (ties may pick different chunks)
        for text, vector in ((query[0], None), ("", query[1])):
            best = find(embedded, text, vector, datasets=["all"], top_k=top_k)
            split = find(embedded, text, vector, datasets=["x", "y"], top_k=top_k)
            assert [c.text_score or c.vector_score for c in split] == pytest.approx(
                [c.text_score or c.vector_score for c in best]
            )


def test_embedded_int8_first_pass_finds_the_exact_nearest(
    embedded: EmbeddedSearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large blocks are scanned in int8 first (``quantized.py``); the answer is still float32's: the same
    top-k rows with the same cosines, also under a document filter, and text matches keep their exact cosine."""
    import numpy as np

    from shared.adapters.local.embedded_index import index as index_module

    rng = np.random.default_rng(7)
    centres = rng.standard_normal((40, 64))
    matrix = centres[np.arange(3000) % 40] + 0.6 * rng.standard_normal((3000, 64))
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    embedded.upsert(
        [
            chunk(f"c{i}", f"word{i % 97} common", row.tolist(), document_id=f"doc{i % 7}")
            for i, row in enumerate(matrix)
        ]
        + [replace(chunk("plain", "word3 common"), vector=None)]  # no vector: only text can find it
    )

    def exact(query: np.ndarray, k: int, documents: set[str] | None = None) -> list[tuple[str, float]]:
        sims = matrix @ query
        keep = [i for i in range(3000) if documents is None or f"doc{i % 7}" in documents]
        best = sorted(keep, key=lambda i: -sims[i])[:k]
        return [(f"c{i}", float(sims[i])) for i in best]

    for seed in range(5):
        query = matrix[seed * 101] + 0.9 * rng.standard_normal(64)
        query /= np.linalg.norm(query)
        for threshold in (1, 10**9):  # int8 first pass, then plain float32
            monkeypatch.setattr(index_module, "MIN_ROWS", threshold)
            for k, documents in ((50, None), (500, None), (40, {"doc2", "doc5"})):
                found = find(embedded, vector=query.tolist(), top_k=k, documents=sorted(documents or ()) or None)
                expected = exact(query, k, documents)
                assert ids(found) == [i for i, _ in expected]
                assert [c.vector_score for c in found] == pytest.approx([s for _, s in expected], abs=1e-5)
            hybrid = find(embedded, "word3", query.tolist(), top_k=20)
            by_id = {c.chunk_id: c for c in hybrid}
            assert by_id["plain"].vector_score is None
            for c in hybrid:
                if c.chunk_id != "plain":
                    assert c.vector_score == pytest.approx(float(matrix[int(c.chunk_id[1:])] @ query), abs=1e-5)


def test_aoss_copies_written_before_vectors_were_packed_still_get_their_cosine(
    osmem: OsmemServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text hits carry their vector packed (``PACKED_VECTOR``); a copy written before the field existed has
    only the JSON one, which the search then reads again by copy id: the cosine is the same either way."""
    with aoss_engine(osmem, VISIBILITY_DELAY_S) as aoss:
        aoss.index.upsert([chunk("new", "granite quarry", blend(0, 1, 0.5))])
        written = opensearch_index.chunk_document

        def unpacked(*args: Any, **kwargs: Any) -> dict[str, Any]:  # what the engine wrote before
            document = written(*args, **kwargs)
            document.pop(opensearch_index.PACKED_VECTOR, None)
            return document

        monkeypatch.setattr(opensearch_index, "chunk_document", unpacked)
        aoss.index.upsert([chunk("old", "granite quarry", blend(0, 2, 0.25))])
        aoss.stand_in.settle()
        found = {c.chunk_id: c for c in find(aoss.index, "granite", axis(0))}
    assert found["new"].vector_score == pytest.approx(blend(0, 1, 0.5)[0], rel=1e-6)
    assert found["old"].vector_score == pytest.approx(blend(0, 2, 0.25)[0], rel=1e-6)
    assert found["old"].text_score and found["new"].text_score
