"""Embedders without a network: the builtin ONNX model, Bedrock's request/response mapping, the factory."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import pytest_socket
from botocore.response import StreamingBody
from botocore.stub import Stubber

from shared.adapters.aws.bedrock_embedder import COHERE_MAX_TEXTS, BedrockEmbedder
from shared.adapters.local.builtin_embedder import (
    BGE_QUERY_INSTRUCTION,
    BGE_SMALL_EN,
    BUILTIN_MODELS,
    MINILM,
    BuiltinEmbedder,
    _package_file,
    builtin_model,
)
from shared.adapters.openai_embedder import OpenAIEmbedder
from shared.catalog import BUILTIN_FACTORY, get_catalog
from shared.ports.embedder import EmbeddingConfigError, EmbeddingError, EmbeddingServiceError, normalize_rows
from shared.rag.embedding import build_embedder, clear_embedder_cache

pytestmark = pytest.mark.unit

CAT = "a cat sits on the mat"
KITTEN = "a kitten is on the rug"
MARKETS = "stock markets fell sharply"
MIXED = [
    "short",
    CAT,
    "Retrieval-augmented generation grounds a language model's answer in passages fetched from an index. " * 6,
    "",
    "Serverless functions scale to zero when idle.",
    MARKETS,
    "The mitochondria is the powerhouse of the cell; ATP synthase turns a proton gradient into ATP. " * 2,
    KITTEN,
]


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    pytest_socket.disable_socket()
    yield
    pytest_socket.enable_socket()


@pytest.fixture(scope="module")
def builtin() -> BuiltinEmbedder:
    embedder = BuiltinEmbedder()
    embedder.load()
    return embedder


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- builtin ---------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_sockets_are_disabled() -> None:
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket()


def test_builtin_vectors_are_unit_float32_rows(builtin: BuiltinEmbedder) -> None:
    vectors = builtin.embed_documents(MIXED)

    assert builtin.model_id == "all-MiniLM-L6-v2@Builtin"
    assert builtin.dimension == 384
    assert vectors.shape == (len(MIXED), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_builtin_is_semantically_sane(builtin: BuiltinEmbedder) -> None:
    cat, kitten, markets = builtin.embed_documents([CAT, KITTEN, MARKETS])

    assert cos(cat, kitten) > cos(cat, markets) + 0.2


def test_builtin_keeps_order_and_padding_does_not_change_vectors() -> None:
    # Small batches force several length-sorted batches, each padded to its longest text.
    embedder = BuiltinEmbedder(batch_size=3)
    together = embedder.embed_documents(MIXED)
    alone = np.stack([embedder.embed_documents([text])[0] for text in MIXED])

    np.testing.assert_allclose(together, alone, atol=1e-3)
    assert all(cos(together[i], alone[i]) > 0.9999 for i in range(len(MIXED)))


def test_builtin_query_matches_document_row(builtin: BuiltinEmbedder) -> None:
    query = builtin.embed_query(CAT)

    assert query.shape == (384,)
    np.testing.assert_allclose(query, builtin.embed_documents([CAT])[0], atol=1e-6)


def test_builtin_truncates_long_text_at_256_tokens(builtin: BuiltinEmbedder) -> None:
    head = "The quick brown fox jumps over the lazy dog. " * 60  # ~600 tokens
    long, longer = builtin.embed_documents([head, head + "Completely different closing words about finance."])

    assert long.shape == (384,)
    np.testing.assert_allclose(long, longer, atol=1e-6)  # everything past token 256 is cut


def test_builtin_empty_inputs(builtin: BuiltinEmbedder) -> None:
    assert builtin.embed_documents([]).shape == (0, 384)
    assert builtin.embed_documents([]).dtype == np.float32
    (blank,) = builtin.embed_documents([""])
    assert abs(float(np.linalg.norm(blank)) - 1.0) < 1e-5


def test_builtin_rejects_a_bare_string(builtin: BuiltinEmbedder) -> None:
    with pytest.raises(TypeError):
        builtin.embed_documents("one text")


def test_builtin_loads_the_session_once_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = BuiltinEmbedder()
    loads = 0
    original = BuiltinEmbedder._load_runtime

    def counting(self: BuiltinEmbedder) -> Any:
        nonlocal loads
        loads += 1
        return original(self)

    monkeypatch.setattr(BuiltinEmbedder, "_load_runtime", counting)
    start = threading.Barrier(4)
    results: list[np.ndarray] = []

    def worker() -> None:
        start.wait()
        results.append(embedder.embed_query(CAT))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert loads == 1
    assert len(results) == 4


def test_builtin_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    embedder = BuiltinEmbedder(model_path=tmp_path / "missing.onnx")

    with pytest.raises(EmbeddingConfigError, match="could not be loaded"):
        embedder.embed_documents(["x"])


def test_builtin_missing_package_is_a_config_error() -> None:
    with pytest.raises(EmbeddingConfigError, match="not installed"):
        _package_file("no_such_model_package", "model.onnx")


# -- builtin BAAI/bge-small-en-v1.5 ---------------------------------------------------------------------

YEAST_QUESTION = "why does yeast make dough rise?"
FACTS = [
    "Cats are small domestic felines that purr and chase mice around the house.",
    "Rockets burn liquid oxygen and kerosene to reach orbit around the Earth.",
    "Bread dough rises because yeast ferments sugar and releases carbon dioxide.",
]


@pytest.fixture(scope="module")
def bge() -> BuiltinEmbedder:
    embedder = BuiltinEmbedder(BGE_SMALL_EN)
    embedder.load()
    return embedder


def test_bge_vectors_are_unit_float32_rows(bge: BuiltinEmbedder) -> None:
    vectors = bge.embed_documents(MIXED)

    assert bge.model_id == "BAAI/bge-small-en-v1.5@Builtin"
    assert bge.dimension == 384
    assert vectors.shape == (len(MIXED), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_bge_vectors_depend_on_the_text_alone(bge: BuiltinEmbedder) -> None:
    # One text per ONNX run: a text's vector is the same in any call, whatever else is embedded with it.
    together = bge.embed_documents(MIXED)
    alone = np.stack([bge.embed_documents([text])[0] for text in MIXED])

    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(bge.embed_documents(MIXED[::-1]), together[::-1])
    assert BGE_SMALL_EN.batch_size == 1
    # Batched, the int8 model's activation scales are shared by the batch: close, not equal.
    batched = BuiltinEmbedder(BGE_SMALL_EN, batch_size=8).embed_documents(MIXED)
    assert all(cos(batched[i], together[i]) > 0.99 for i in range(len(MIXED)))


def test_bge_pools_the_cls_token(bge: BuiltinEmbedder) -> None:
    import onnxruntime
    from tokenizers import Tokenizer

    # BGE's sentence vector is the [CLS] state; the mean of the tokens (MiniLM's pooling) is a different one.
    tokenizer = Tokenizer.from_file(str(_package_file(BGE_SMALL_EN.tokenizer_package, BGE_SMALL_EN.tokenizer_file)))
    session = onnxruntime.InferenceSession(
        str(_package_file(BGE_SMALL_EN.model_package, BGE_SMALL_EN.model_file)), providers=["CPUExecutionProvider"]
    )
    ids = np.array([tokenizer.encode(CAT).ids], dtype=np.int64)
    (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids})
    cls, mean = hidden[0, 0], hidden[0].mean(axis=0)

    vector = bge.embed_documents([CAT])[0]
    assert cos(vector, cls) > 0.999
    assert cos(vector, mean) < 0.99


def test_bge_queries_are_embedded_bare_like_passages(bge: BuiltinEmbedder) -> None:
    query = bge.embed_query(YEAST_QUESTION)

    assert query.shape == (384,)
    np.testing.assert_array_equal(query, bge.embed_documents([YEAST_QUESTION])[0])


def test_a_query_instruction_is_prepended_to_queries_only() -> None:
    instructed = BuiltinEmbedder(dataclasses.replace(BGE_SMALL_EN, query_instruction=BGE_QUERY_INSTRUCTION))
    query = instructed.embed_query(YEAST_QUESTION)

    np.testing.assert_array_equal(query, instructed.embed_documents([BGE_QUERY_INSTRUCTION + YEAST_QUESTION])[0])
    assert cos(query, instructed.embed_documents([YEAST_QUESTION])[0]) < 0.99  # passages stay bare
    assert BGE_QUERY_INSTRUCTION == "Represent this sentence for searching relevant passages: "


def test_builtin_models_pool_and_mark_queries_as_measured() -> None:
    assert (MINILM.pooling, MINILM.query_instruction, MINILM.max_tokens) == ("mean", "", 256)
    assert (BGE_SMALL_EN.pooling, BGE_SMALL_EN.query_instruction, BGE_SMALL_EN.max_tokens) == ("cls", "", 512)


def test_bge_ranks_the_relevant_passage_first(bge: BuiltinEmbedder) -> None:
    cat, kitten, markets = bge.embed_documents([CAT, KITTEN, MARKETS])
    scores = bge.embed_documents(FACTS) @ bge.embed_query(YEAST_QUESTION)

    assert int(np.argmax(scores)) == 2
    assert scores[2] > max(scores[0], scores[1]) + 0.1
    assert cos(cat, kitten) > cos(cat, markets) + 0.1


def test_bge_truncates_long_text_at_512_tokens(bge: BuiltinEmbedder) -> None:
    head = "The quick brown fox jumps over the lazy dog. " * 60  # ~600 tokens
    cut_at_256 = BuiltinEmbedder(BGE_SMALL_EN, max_tokens=256).embed_documents([head])[0]
    long, longer = bge.embed_documents([head, head + "Completely different closing words about finance."])

    np.testing.assert_allclose(long, longer, atol=1e-6)  # everything past token 512 is cut
    assert cos(long, cut_at_256) < 0.9999  # tokens 256-512 are read


def test_the_catalogs_builtin_embedding_models_are_the_shipped_ones() -> None:
    catalog = get_catalog()
    for model_id, model in BUILTIN_MODELS.items():
        info = catalog.find(model_id, "embedding")
        assert info is not None and info.factory == BUILTIN_FACTORY, model_id
        assert info.dimension == model.dimension and info.max_tokens == model.max_tokens
    assert set(BUILTIN_MODELS) == {"all-MiniLM-L6-v2@Builtin", "BAAI/bge-small-en-v1.5@Builtin"}


def test_a_builtin_model_that_is_not_shipped_is_a_config_error() -> None:
    with pytest.raises(
        EmbeddingConfigError, match=r"\(shipped: all-MiniLM-L6-v2@Builtin, BAAI/bge-small-en-v1\.5@Builtin\)"
    ):
        builtin_model("BAAI/bge-m3@Builtin")


def test_model_files_are_found_when_the_packages_code_is_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Lambda layer keeps only a model package's data files: the folder is then a namespace package.
    (tmp_path / "pruned_model_pkg" / "models").mkdir(parents=True)
    (tmp_path / "pruned_model_pkg" / "models" / "model.onnx").write_bytes(b"onnx")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert _package_file("pruned_model_pkg", "models/model.onnx") == tmp_path / "pruned_model_pkg/models/model.onnx"
    with pytest.raises(EmbeddingConfigError, match=r"incomplete: models/other\.onnx is missing"):
        _package_file("pruned_model_pkg", "models/other.onnx")


def test_model_files_are_found_without_running_the_packages_code() -> None:
    import sys

    sys.modules.pop("compartment", None)  # its __init__ arms a network guard: it must never run here
    path = _package_file(BGE_SMALL_EN.model_package, BGE_SMALL_EN.model_file)

    assert path.is_file() and path.name == "model_quantized.onnx"
    assert "compartment" not in sys.modules


def test_normalize_rows_leaves_zero_rows_alone() -> None:
    rows = normalize_rows([[3.0, 4.0], [0.0, 0.0]])

    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert rows.dtype == np.float32


# -- Bedrock (botocore Stubber: real request/response validation, no network) ------------------------------


class JsonBody:
    """Matches an InvokeModel ``body`` by its decoded JSON, whatever the key order."""

    def __init__(self, expected: dict[str, Any]) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str | bytes) and json.loads(other) == self.expected

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


def _answer(payload: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


def _invoke_params(model: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"modelId": model, "body": JsonBody(body), "contentType": "application/json", "accept": "application/json"}


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _vector(seed: int, dimension: int) -> list[float]:
    return [float(value) for value in np.random.default_rng(seed).normal(size=dimension)]


def test_titan_maps_each_text_to_one_invoke(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    model = "amazon.titan-embed-text-v2:0"
    embedder = BedrockEmbedder(model, client=client, dimension=256, concurrency=1)
    for seed, text in enumerate(["first", "second"]):
        stubber.add_response(
            "invoke_model",
            _answer({"embedding": _vector(seed, 256), "inputTextTokenCount": 1}),
            _invoke_params(model, {"inputText": text, "dimensions": 256, "normalize": True}),
        )

    vectors = embedder.embed_documents(["first", "second"])

    assert embedder.model_id == "amazon.titan-embed-text-v2:0@Bedrock"
    assert vectors.shape == (2, 256)
    np.testing.assert_allclose(vectors, normalize_rows([_vector(0, 256), _vector(1, 256)]), atol=1e-6)


def test_cohere_batches_96_texts_and_marks_documents_and_queries(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    model = "cohere.embed-english-v3"
    embedder = BedrockEmbedder(model, client=client, dimension=8)
    texts = [f"text {i}" for i in range(COHERE_MAX_TEXTS + 2)]
    first, rest = texts[:COHERE_MAX_TEXTS], texts[COHERE_MAX_TEXTS:]
    stubber.add_response(
        "invoke_model",
        _answer({"embeddings": [_vector(i, 8) for i in range(len(first))], "response_type": "embeddings_floats"}),
        _invoke_params(model, {"texts": first, "input_type": "search_document", "truncate": "END"}),
    )
    # The by-type shape (what Cohere answers when embedding_types is set) is read too.
    stubber.add_response(
        "invoke_model",
        _answer({"embeddings": {"float": [_vector(100 + i, 8) for i in range(len(rest))]}}),
        _invoke_params(model, {"texts": rest, "input_type": "search_document", "truncate": "END"}),
    )
    stubber.add_response(
        "invoke_model",
        _answer({"embeddings": [_vector(7, 8)]}),
        _invoke_params(model, {"texts": ["a question"], "input_type": "search_query", "truncate": "END"}),
    )

    documents = embedder.embed_documents(texts)
    query = embedder.embed_query("a question")

    assert documents.shape == (len(texts), 8)
    np.testing.assert_allclose(documents[0], normalize_rows([_vector(0, 8)])[0], atol=1e-6)
    np.testing.assert_allclose(documents[-1], normalize_rows([_vector(101, 8)])[0], atol=1e-6)
    np.testing.assert_allclose(query, normalize_rows([_vector(7, 8)])[0], atol=1e-6)


@pytest.mark.parametrize(
    ("code", "status", "error", "message"),
    [
        ("ThrottlingException", 429, EmbeddingServiceError, "throttled"),
        ("AccessDeniedException", 403, EmbeddingConfigError, "AccessDeniedException"),
        ("ModelTimeoutException", 408, EmbeddingServiceError, "ModelTimeoutException"),
    ],
)
def test_bedrock_errors_become_embedding_errors(
    bedrock: tuple[Any, Stubber], code: str, status: int, error: type[EmbeddingError], message: str
) -> None:
    client, stubber = bedrock
    stubber.add_client_error("invoke_model", service_error_code=code, service_message="nope", http_status_code=status)
    embedder = BedrockEmbedder("amazon.titan-embed-text-v2:0", client=client, dimension=256)

    with pytest.raises(error, match=message):
        embedder.embed_query("hello")


def test_bedrock_wrong_dimension_is_a_service_error(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response("invoke_model", _answer({"embedding": _vector(0, 512)}))
    embedder = BedrockEmbedder("amazon.titan-embed-text-v2:0", client=client, dimension=256)

    with pytest.raises(EmbeddingServiceError, match="512-dimensional"):
        embedder.embed_documents(["hello"])


def test_bedrock_unreadable_answer_is_a_service_error(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response("invoke_model", _answer({"message": "no embedding here"}))
    embedder = BedrockEmbedder("amazon.titan-embed-text-v2:0", client=client, dimension=256)

    with pytest.raises(EmbeddingServiceError, match="unreadable"):
        embedder.embed_documents(["hello"])


class _EchoTitan:
    """A stand-in client whose vector encodes the text, to check order under concurrent calls."""

    def invoke_model(self, *, modelId: str, body: str, contentType: str, accept: str) -> dict[str, Any]:
        number = float(json.loads(body)["inputText"].split()[-1])
        return _answer({"embedding": [number + 1.0, 1.0]})


def test_titan_concurrent_calls_keep_text_order() -> None:
    embedder = BedrockEmbedder("amazon.titan-embed-text-v2:0", client=_EchoTitan(), dimension=2, concurrency=4)

    vectors = embedder.embed_documents([f"text {i}" for i in range(20)])

    expected = normalize_rows([[i + 1.0, 1.0] for i in range(20)])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_bedrock_unsupported_model() -> None:
    with pytest.raises(EmbeddingConfigError, match="not supported"):
        BedrockEmbedder("amazon.titan-embed-image-v1", client=object(), dimension=1024)


# -- factory -----------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    clear_embedder_cache()
    yield
    clear_embedder_cache()


@pytest.mark.usefixtures("fresh_cache")
def test_factory_builds_the_builtin_embedder_once() -> None:
    first = build_embedder("all-MiniLM-L6-v2@Builtin")
    again = build_embedder("all-MiniLM-L6-v2@Builtin", api_base="http://ignored", api_key="ignored")

    assert isinstance(first, BuiltinEmbedder)
    assert again is first
    assert first.dimension == 384


@pytest.mark.usefixtures("fresh_cache")
def test_factory_builds_each_builtin_model_once() -> None:
    bge = build_embedder("BAAI/bge-small-en-v1.5@Builtin")
    minilm = build_embedder("all-MiniLM-L6-v2@Builtin")

    assert isinstance(bge, BuiltinEmbedder) and isinstance(minilm, BuiltinEmbedder)
    assert bge.model is BGE_SMALL_EN and minilm.model is MINILM
    assert bge.model_id == "BAAI/bge-small-en-v1.5@Builtin"
    assert build_embedder("BAAI/bge-small-en-v1.5@Builtin") is bge


@pytest.mark.usefixtures("fresh_cache")
def test_factory_openai_takes_dimension_from_the_catalog_and_caches_per_endpoint_and_key() -> None:
    embedder = build_embedder("text-embedding-3-small@OpenAI", api_key="sk-a")

    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.model == "text-embedding-3-small"
    assert embedder.dimension == 1536
    assert build_embedder("text-embedding-3-small@OpenAI", api_key="sk-a") is embedder
    assert build_embedder("text-embedding-3-small@OpenAI", api_key="sk-b") is not embedder
    assert build_embedder("text-embedding-3-small@OpenAI", api_base="http://127.0.0.1:1/v1", api_key="sk-a") is not (
        embedder
    )


@pytest.mark.usefixtures("fresh_cache")
def test_factory_openai_reads_the_standard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")

    embedder = build_embedder("text-embedding-3-large@OpenAI")

    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.dimension == 3072


@pytest.mark.usefixtures("fresh_cache")
def test_factory_openai_without_a_key_is_a_config_error() -> None:
    with pytest.raises(EmbeddingConfigError, match="No API key"):
        build_embedder("text-embedding-3-small@OpenAI")


@pytest.mark.usefixtures("fresh_cache")
def test_factory_openai_compatible_needs_no_key_with_an_endpoint() -> None:
    embedder = build_embedder("nomic-embed-text@OpenAI-API-Compatible", api_base="http://127.0.0.1:9/v1")

    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.model == "nomic-embed-text"
    assert embedder.model_id == "nomic-embed-text@OpenAI-API-Compatible"


@pytest.mark.usefixtures("fresh_cache")
def test_factory_bedrock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Credentials from the environment, so building the client never asks the instance metadata service.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    embedder = build_embedder("cohere.embed-english-v3@Bedrock")

    assert isinstance(embedder, BedrockEmbedder)
    assert embedder.dimension == 1024


@pytest.mark.usefixtures("fresh_cache")
@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        ("no-such-model@Builtin", "Unknown embedding model"),
        ("gpt-4o@OpenAI", "Unknown embedding model"),
        ("BAAI/bge-large-en-v1.5@BAAI", "Unknown embedding model"),  # no such factory in RAGFlow's catalog
        (
            "BAAI/bge-m3@Builtin",
            "is not shipped; the builtin models are: all-MiniLM-L6-v2@Builtin, BAAI/bge-small-en-v1.5@Builtin",
        ),
        ("BAAI/bge-small-en-v1.5@FastEmbed", "No provider for FastEmbed embedding models"),
    ],
)
def test_factory_rejects_unknown_and_unsupported_models(model_id: str, message: str) -> None:
    with pytest.raises(EmbeddingConfigError, match=message):
        build_embedder(model_id)
