"""The local worker embeds the chunks of many documents in one model call, and a document the model refuses
fails alone: seen from the API and from the model's side (a real OpenAI-compatible server on loopback)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from shared.ports.embedder import normalize_rows
from shared.rag.embedding import blend_title
from shared.services.ingestion import decode_vector
from shared.services.tenants import ModelSetting
from tests.support.api import create_dataset, eventually, get_document, parse, upload, upload_one, wait_parsed
from tests.support.fake_openai import FakeOpenAI, Reply, Request
from tests.support.server import RunningServer

pytestmark = pytest.mark.integration

KEY = "sk-pipeline"
MODEL = "text-embedding-3-small@OpenAI"
DIMENSION = 1536
TEXTS = {
    f"note{i}.txt": f"Note {i}: otters, beavers and {word} share the river bank in spring."
    for i, word in enumerate(["herons", "kingfishers", "voles", "trout", "dragonflies"])
}
REFUSED = "refused.txt"


class GatedModel:
    """Embeddings as FakeOpenAI serves them, except: the first request waits for ``open``, and a request
    holding the word POISON is refused with a 400."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        self.open = threading.Event()
        self.waiting = threading.Event()

    def __call__(self, request: Request) -> Reply:
        if not self.waiting.is_set():
            self.waiting.set()
            self.open.wait(30)
        if any("POISON" in text for text in request.body["input"]):
            return Reply.error(400, "This input is not accepted.", type="invalid_request_error")
        return self.fake.handle_embeddings(request)


@pytest.fixture
def model() -> Iterator[GatedModel]:
    with FakeOpenAI(api_key=KEY, dimension=DIMENSION) as fake:
        gated = GatedModel(fake)
        fake.route("POST", "/v1/embeddings", gated)
        yield gated
        gated.open.set()


@pytest.fixture
def api(server: RunningServer, model: GatedModel) -> Iterator[httpx.Client]:
    _, key = server.container.tenant_service.create(
        "pipeline", [ModelSetting(MODEL, "embedding", api_base=model.fake.base_url, api_key=KEY)]
    )
    with server.client(key) as client:
        yield client


def test_documents_waiting_for_the_model_share_one_call_and_a_refused_one_fails_alone(
    api: httpx.Client, server: RunningServer, model: GatedModel
) -> None:
    ds = create_dataset(api, embedding_model=MODEL)
    first = upload_one(api, ds["id"], "first.txt", b"The first note keeps the model busy.")
    assert parse(api, ds["id"], first["id"]) == {"code": 0}
    assert model.waiting.wait(30)  # the model holds the first document's call
    files = [(name, text.encode()) for name, text in TEXTS.items()] + [(REFUSED, b"POISON pill in the river.")]
    docs = {doc["name"]: doc for doc in upload(api, ds["id"], *files)["data"]}
    assert parse(api, ds["id"], *(doc["id"] for doc in docs.values())) == {"code": 0}
    for doc in docs.values():  # every one parsed and chunked, waiting for the model
        eventually(
            lambda d=doc: get_document(api, ds["id"], d["id"]), lambda d: "Generate 1 chunks" in d["progress_msg"]
        )
    model.open.set()

    finished = {name: wait_parsed(api, ds["id"], doc["id"]) for name, doc in docs.items()}
    assert wait_parsed(api, ds["id"], first["id"])["run"] == "DONE"
    refused = finished.pop(REFUSED)
    assert refused["run"] == "FAIL" and refused["chunk_count"] == 0
    assert refused["progress_msg"].splitlines()[-1].split(" ", 1)[1].startswith("[ERROR] Embedding failed:")
    assert all(doc["run"] == "DONE" and doc["chunk_count"] == 1 for doc in finished.values())
    lines = [line.split(" ", 1)[1] for line in finished["note0.txt"]["progress_msg"].splitlines()]
    assert lines[0] == "Task has been received."
    assert lines[1:4] == [
        "Page(1~100000001): Start to parse.",
        "Page(1~100000001): Finish parsing.",
        "Page(1~100000001): Generate 1 chunks",
    ]
    assert lines[4].startswith("Page(1~100000001): Embedding chunks (")
    assert lines[5].startswith("Page(1~100000001): Indexing done (") and lines[6].startswith("Task done (")

    # The model saw the waiting documents' texts, and their names (RAGFlow weighs the name into each
    # vector), in one request; the refused document's texts then went alone.
    inputs = [request.body["input"] for request in model.fake.requests_to("/v1/embeddings")]
    together = [batch for batch in inputs if sum(text in TEXTS.values() for text in batch) == len(TEXTS)]
    assert together and {name for name in TEXTS} <= set(together[0])
    assert ["POISON pill in the river.", REFUSED] in inputs

    for name, doc in finished.items():  # each vector as if its document had been embedded on its own
        (chunk,) = server.container.document_repo.chunks_of(doc["id"])
        text, title = normalize_rows(
            [FakeOpenAI.embedding(chunk["content"], DIMENSION), FakeOpenAI.embedding(name, DIMENSION)]
        )
        expected = blend_title(text[None, :], title, 0.1)[0]
        np.testing.assert_allclose(decode_vector(chunk["vector"]), expected, atol=1e-6)
    dataset = api.get("/api/v1/datasets", params={"id": ds["id"]}).json()["data"][0]
    assert dataset["chunk_count"] == len(TEXTS) + 1
