"""The index-visibility gap closed, at the strict AOSS stand-in's default (AOSS-like) delay.

OpenSearch Serverless makes a write searchable only seconds later, and a change (a delete, an availability
switch) can only find what is searchable. The OpenSearch engine therefore waits, in every write, until what it
wrote is searchable (``shared/adapters/aws/opensearch_index.py``): these tests make a change the moment after a
write, through the services and the API, and check that nothing is left behind once the deletes are applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch
from osmem_server import OsmemServer

from functions.local.server import local_container
from shared.adapters.aws.opensearch_index import OpenSearchIndex
from shared.container import Container
from shared.ports.search import Candidate, IndexedChunk, SearchIndex, SearchQuery
from shared.ports.workflow import BuildTask, ParseTask, Workflow
from shared.schemas.documents import DocumentIdsRequest
from tests.support.aoss import DEFAULT_VISIBILITY_DELAY_S, StrictAoss, run_strict_aoss
from tests.support.api import create_dataset, parse_and_wait, upload_one
from tests.support.opensearch import client_for, osmem_index
from tests.support.server import RunningServer, run_local_server

pytestmark = pytest.mark.integration


@dataclass
class Collection:
    """The engine on a stand-in at the default delay, and a plain client of the osmem-server behind it (which
    sees every stored copy, searchable yet or not)."""

    index: OpenSearchIndex
    stand_in: StrictAoss
    upstream: OpenSearch

    def copies(self, **term: str) -> list[dict[str, Any]]:
        """The stored copies matching one field, searchable yet or not."""
        body = {"size": 1000, "query": {"term": term}}
        hits: list[dict[str, Any]] = self.upstream.search(index="flowless-chunks-*", body=body)["hits"]["hits"]
        return [hit["_source"] for hit in hits]


@pytest.fixture
def collection(osmem: OsmemServer) -> Iterator[Collection]:
    clone = osmem.clone()
    try:
        with run_strict_aoss(clone.url, visibility_delay_s=DEFAULT_VISIBILITY_DELAY_S) as stand_in:
            yield Collection(osmem_index(stand_in.url), stand_in, client_for(clone.url))
            assert stand_in.refusals == []
    finally:
        clone.close()


@dataclass
class StopWhileIndexing(SearchIndex):
    """The engine, with a user's stop arriving while the index step writes: just before its chunks land."""

    engine: SearchIndex
    stop: list[Any] = field(default_factory=list)

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        while self.stop:
            self.stop.pop()()
        self.engine.upsert(chunks)

    def delete_chunks(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str]) -> None:
        self.engine.delete_chunks(tenant_id, dataset_id, chunk_ids)

    def delete_document(self, tenant_id: str, dataset_id: str, document_id: str) -> None:
        self.engine.delete_document(tenant_id, dataset_id, document_id)

    def delete_dataset(self, tenant_id: str, dataset_id: str) -> None:
        self.engine.delete_dataset(tenant_id, dataset_id)

    def set_available(self, tenant_id: str, dataset_id: str, chunk_ids: Sequence[str], available: bool) -> None:
        self.engine.set_available(tenant_id, dataset_id, chunk_ids, available)

    def search(self, query: SearchQuery) -> list[Candidate]:
        return self.engine.search(query)

    def ping(self) -> None:
        self.engine.ping()


class Recorded(Workflow):
    """Parses are run by the test itself, step by step."""

    def __init__(self) -> None:
        self.started: list[ParseTask] = []

    def start_parse(self, task: ParseTask) -> None:
        self.started.append(task)

    def start_build(self, task: BuildTask) -> None:
        raise RuntimeError("this test starts no knowledge builds")

    def ping(self) -> None:
        pass


def test_a_parse_stopped_while_its_index_step_writes_leaves_no_copy(tmp_path: Path, collection: Collection) -> None:
    """Stop lands between the index step's check and its write: the stop's own delete finds nothing yet, and the
    step, seeing it was stopped once its write is searchable, deletes what it wrote — and finds it."""
    container: Container = local_container(tmp_path / "data")
    index = StopWhileIndexing(collection.index)
    workflow = Recorded()
    container.overrides.update(search_index=index, workflow=workflow)
    tenant, _ = container.tenant_service.create("t")
    dataset = container.datasets.create(tenant.id, _dataset_request("stopped"))
    document = _upload(container, tenant.id, dataset["id"], "notes.txt", b"Granite is quarried in blocks.\n" * 20)
    ids = DocumentIdsRequest.model_validate({"document_ids": [document["id"]]})
    container.ingestion.parse(tenant.id, dataset["id"], ids)
    (task,) = workflow.started
    index.stop.append(lambda: container.ingestion.stop(tenant.id, dataset["id"], ids))

    container.ingestion.run_task(task)

    assert container.document_repo.get(dataset["id"], document["id"])["run"] == "CANCEL"
    assert container.document_repo.chunks_of(document["id"]) == []
    collection.stand_in.settle()
    assert collection.copies(document_id=document["id"]) == []


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory, osmem: OsmemServer) -> Iterator[tuple[RunningServer, Any]]:
    clone = osmem.clone()
    try:
        with run_strict_aoss(clone.url, visibility_delay_s=DEFAULT_VISIBILITY_DELAY_S) as stand_in:
            data_dir = Path(tmp_path_factory.mktemp("aoss-default-delay"))
            with run_local_server(data_dir, search_index=osmem_index(stand_in.url)) as running:
                yield running, Collection(osmem_index(stand_in.url), stand_in, client_for(clone.url))
            assert stand_in.refusals == []
    finally:
        clone.close()


def test_a_document_disabled_right_after_its_parse_never_comes_back(slow_server: tuple[RunningServer, Any]) -> None:
    server, collection = slow_server
    with server.client(server.new_tenant_key()) as api:
        ds = create_dataset(api, chunk_method="one")
        doc = upload_one(api, ds["id"], "granite.txt", b"Granite is an igneous rock quarried in blocks.")
        assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
        disabled = api.put(f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}", json={"enabled": 0}).json()
        assert disabled["code"] == 0, disabled
        collection.stand_in.settle()
        found = api.post("/api/v1/retrieval", json={"question": "granite", "dataset_ids": [ds["id"]]}).json()
        assert found["code"] == 0 and found["data"]["chunks"] == [] and found["data"]["total"] == 0
        assert [copy["available"] for copy in collection.copies(document_id=doc["id"])] == [False]


def test_a_chunk_deleted_right_after_it_was_added_leaves_no_copy(slow_server: tuple[RunningServer, Any]) -> None:
    server, collection = slow_server
    with server.client(server.new_tenant_key()) as api:
        ds = create_dataset(api, chunk_method="one")
        doc = upload_one(api, ds["id"], "basalt.txt", b"Basalt forms columns as lava cools.")
        assert parse_and_wait(api, ds["id"], doc["id"])["run"] == "DONE"
        url = f"/api/v1/datasets/{ds['id']}/documents/{doc['id']}/chunks"
        added = api.post(url, json={"content": "Obsidian is volcanic glass."}).json()
        assert added["code"] == 0, added
        chunk_id = added["data"]["chunk"]["id"]
        assert api.request("DELETE", url, json={"chunk_ids": [chunk_id]}).json()["code"] == 0
        collection.stand_in.settle()
        assert collection.copies(chunk_id=chunk_id) == []
        assert len(collection.copies(document_id=doc["id"])) == 1


def _dataset_request(name: str) -> Any:
    from shared.schemas.datasets import CreateDatasetRequest

    return CreateDatasetRequest.model_validate({"name": name, "chunk_method": "one"})


def _upload(container: Container, tenant_id: str, dataset_id: str, name: str, data: bytes) -> dict[str, Any]:
    from shared.services.documents import UploadedFile

    (created,) = container.documents.upload(tenant_id, dataset_id, [UploadedFile(name, data)])
    document: dict[str, Any] = created
    return document
