"""OpenAIEmbedder over real HTTP against the local OpenAI-compatible test server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest

from shared.adapters.openai_embedder import OpenAIEmbedder
from shared.ports.embedder import EmbeddingConfigError, EmbeddingServiceError, normalize_rows
from shared.rag.embedding import build_embedder, clear_embedder_cache
from tests.support.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.integration

KEY = "sk-test-embeddings"
MODEL = "fake-embed-small"
DIM = 32
EMBEDDINGS = "/v1/embeddings"
FAST_RETRY = {"retry-after-ms": "10"}  # the client honours it, so retry tests don't sleep for seconds


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY, models={MODEL: DIM, "fake-embed-wide": 48}) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset(server: FakeOpenAI) -> None:
    server.requests.clear()


def embedder(server: FakeOpenAI, **overrides: object) -> OpenAIEmbedder:
    options: dict[str, object] = {"api_key": KEY, "base_url": server.base_url, "dimension": DIM, "max_retries": 0}
    options.update(overrides)
    return OpenAIEmbedder(MODEL, model_id=f"{MODEL}@OpenAI-API-Compatible", **options)  # type: ignore[arg-type]


def expected(*texts: str, dimension: int = DIM) -> np.ndarray:
    return normalize_rows([FakeOpenAI.embedding(text, dimension) for text in texts])


def test_embeds_in_batches_and_keeps_order(server: FakeOpenAI) -> None:
    texts = [f"passage number {i} about topic {i % 3}" for i in range(7)]

    vectors = embedder(server, batch_size=3).embed_documents(texts)

    np.testing.assert_allclose(vectors, expected(*texts), atol=1e-6)
    sent = server.requests_to(EMBEDDINGS)
    assert [len(request.body["input"]) for request in sent] == [3, 3, 1]
    assert all(request.body["model"] == MODEL for request in sent)
    assert all(request.body["encoding_format"] == "float" for request in sent)
    assert all(request.headers["authorization"] == f"Bearer {KEY}" for request in sent)


def test_query_and_similarity(server: FakeOpenAI) -> None:
    model = embedder(server)

    query = model.embed_query("cats on mats")
    near, far = model.embed_documents(["cats sleep on mats", "quarterly revenue grew"])

    assert query.shape == (DIM,)
    assert float(query @ near) > float(query @ far)


def test_empty_list_sends_nothing(server: FakeOpenAI) -> None:
    assert embedder(server).embed_documents([]).shape == (0, DIM)
    assert server.requests_to(EMBEDDINGS) == []


def test_blank_text_is_sent_as_a_space(server: FakeOpenAI) -> None:
    vectors = embedder(server).embed_documents(["", "real words"])

    assert vectors.shape == (2, DIM)
    assert server.requests_to(EMBEDDINGS)[0].body["input"] == [" ", "real words"]


def test_dimension_is_learnt_when_the_catalog_has_none(server: FakeOpenAI) -> None:
    model = OpenAIEmbedder("fake-embed-wide", api_key=KEY, base_url=server.base_url, dimension=None)

    assert model.dimension == 48
    assert model.embed_documents(["a", "b"]).shape == (2, 48)
    assert len(server.requests_to(EMBEDDINGS)) == 2  # one probe, then the real call


def test_first_answer_fixes_an_unknown_dimension(server: FakeOpenAI) -> None:
    model = OpenAIEmbedder("fake-embed-wide", api_key=KEY, base_url=server.base_url, dimension=None)

    assert model.embed_documents(["a"]).shape == (1, 48)
    assert model.dimension == 48
    assert len(server.requests_to(EMBEDDINGS)) == 1  # no probe needed


def test_wrong_dimension_is_reported(server: FakeOpenAI) -> None:
    with pytest.raises(EmbeddingServiceError, match="returned 32-dimensional vectors; 1536 were expected"):
        embedder(server, dimension=1536).embed_documents(["hello"])


def test_rejected_key_is_a_config_error_without_the_key(server: FakeOpenAI) -> None:
    with pytest.raises(EmbeddingConfigError, match="API key was rejected") as caught:
        embedder(server, api_key="sk-wrong-secret").embed_documents(["hello"])

    assert "sk-wrong-secret" not in caught.value.message
    assert server.url in caught.value.message


def test_unknown_model_is_a_config_error(server: FakeOpenAI) -> None:
    model = OpenAIEmbedder("no-such-model", api_key=KEY, base_url=server.base_url, dimension=DIM, max_retries=0)

    with pytest.raises(EmbeddingConfigError, match="no-such-model was not found"):
        model.embed_query("hello")


def test_server_error_is_retried(server: FakeOpenAI) -> None:
    server.script(EMBEDDINGS, Reply.error(503, "overloaded", headers=FAST_RETRY))

    vectors = embedder(server, max_retries=2).embed_documents(["hello"])

    np.testing.assert_allclose(vectors, expected("hello"), atol=1e-6)
    assert len(server.requests_to(EMBEDDINGS)) == 2


def test_persistent_server_error_carries_the_provider_message(server: FakeOpenAI) -> None:
    server.script(EMBEDDINGS, *[Reply.error(500, "the GPU caught fire", headers=FAST_RETRY)] * 2)

    with pytest.raises(EmbeddingServiceError, match=r"HTTP 500\): the GPU caught fire"):
        embedder(server, max_retries=1).embed_documents(["hello"])
    assert len(server.requests_to(EMBEDDINGS)) == 2


def test_bad_request_carries_the_provider_message(server: FakeOpenAI) -> None:
    server.script(EMBEDDINGS, Reply.error(400, "input too long", type="invalid_request_error"))

    with pytest.raises(EmbeddingServiceError, match=r"HTTP 400\): input too long"):
        embedder(server).embed_documents(["hello"])


def test_rate_limit(server: FakeOpenAI) -> None:
    server.script(EMBEDDINGS, Reply.error(429, "slow down", type="rate_limit_error"))

    with pytest.raises(EmbeddingServiceError, match="rate limited"):
        embedder(server).embed_documents(["hello"])


def test_timeout(server: FakeOpenAI) -> None:
    server.script(EMBEDDINGS, Reply(body={}, delay=3.0))

    with pytest.raises(EmbeddingServiceError, match=r"timed out after 0.3s"):
        embedder(server, timeout=0.3).embed_documents(["hello"])


def test_unreachable_endpoint() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIEmbedder(MODEL, api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", dimension=DIM, max_retries=0)

    with pytest.raises(
        EmbeddingServiceError, match=f"Could not connect to the embedding service at http://127.0.0.1:{port}"
    ):
        model.embed_documents(["hello"])


@pytest.mark.parametrize(
    "body",
    [
        {"object": "list", "data": [{"index": 0}]},
        {"object": "list", "data": [{"index": 0, "embedding": "not numbers"}]},
        {"object": "list"},
    ],
)
def test_unreadable_answer(server: FakeOpenAI, body: dict[str, object]) -> None:
    server.script(EMBEDDINGS, Reply(body=body))

    with pytest.raises(EmbeddingServiceError, match="unreadable answer"):
        embedder(server).embed_documents(["hello"])


def test_too_few_vectors(server: FakeOpenAI) -> None:
    row = {"object": "embedding", "index": 0, "embedding": FakeOpenAI.embedding("a", DIM)}
    server.script(EMBEDDINGS, Reply(body={"object": "list", "data": [row], "model": MODEL}))

    with pytest.raises(EmbeddingServiceError, match="returned 1 vectors for 2 texts"):
        embedder(server).embed_documents(["a", "b"])


def test_plain_openai_client_gets_base64_vectors(server: FakeOpenAI) -> None:
    # The openai client asks for base64 by default; the test server must serve it like OpenAI does.
    client = openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0)

    response = client.embeddings.create(model=MODEL, input=["hello world"], dimensions=16)

    assert server.requests_to(EMBEDDINGS)[0].body["encoding_format"] == "base64"
    np.testing.assert_allclose(response.data[0].embedding, FakeOpenAI.embedding("hello world", 16), atol=1e-6)


def test_factory_builds_an_openai_compatible_embedder(server: FakeOpenAI) -> None:
    clear_embedder_cache()
    try:
        model = build_embedder(f"{MODEL}@OpenAI-API-Compatible", api_base=server.base_url, api_key=KEY)
        assert model is build_embedder(f"{MODEL}@OpenAI-API-Compatible", api_base=server.base_url, api_key=KEY)
        assert model.dimension == DIM
        np.testing.assert_allclose(model.embed_documents(["hi there"]), expected("hi there"), atol=1e-6)
    finally:
        clear_embedder_cache()


def test_test_server_streams_chunked_replies(server: FakeOpenAI) -> None:
    # The extension point the chat completions route will use: a reply whose chunks arrive as produced.
    frames = [b'data: {"n": 1}\n\n', b'data: {"n": 2}\n\n', b"data: [DONE]\n\n"]
    server.route("POST", "/v1/stream-check", lambda request: Reply(chunks=iter(frames)))

    with httpx.stream(
        "POST", f"{server.base_url}/stream-check", json={}, headers={"Authorization": f"Bearer {KEY}"}
    ) as response:
        received = b"".join(response.iter_raw())

    assert response.headers["content-type"] == "text/event-stream"
    assert received == b"".join(frames)
