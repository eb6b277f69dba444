"""Rerank models without a network: the factory's branches, the HTTP and Bedrock mappings, score range."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from shared.adapters.aws.bedrock_reranker import BedrockReranker
from shared.adapters.http_reranker import HttpReranker
from shared.ports.reranker import RerankError, scores_in_order
from shared.providers import HTTP_RERANK
from shared.rag.rerankers import (
    build_reranker,
    clear_reranker_cache,
    reranker_for_tenant,
)
from shared.repos.tenants import Tenant, TenantModel

BEDROCK_RERANK = "cohere.rerank-v3-5:0"
COHERE_BASE_URL = HTTP_RERANK["Cohere"][0]


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("COHERE_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clear_reranker_cache()
    yield
    clear_reranker_cache()


# -- factory ------------------------------------------------------------------------------------------------


def test_cohere_needs_a_key_and_defaults_to_cohere_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        RerankError, match=re.escape("No API key is configured for the rerank model rerank-english-v3.0@Cohere")
    ):
        build_reranker("rerank-english-v3.0@Cohere")
    reranker = build_reranker("rerank-english-v3.0@Cohere", api_key="co-secret")
    assert isinstance(reranker, HttpReranker)
    assert reranker.url == f"{COHERE_BASE_URL}/rerank" and reranker.model == "rerank-english-v3.0"
    assert reranker.model_id == "rerank-english-v3.0@Cohere"
    assert build_reranker("rerank-english-v3.0@Cohere", api_key="co-secret") is reranker  # built once
    assert build_reranker("rerank-english-v3.0@Cohere", api_key="other") is not reranker  # per key
    monkeypatch.setenv("COHERE_API_KEY", "from-env")
    assert isinstance(build_reranker("rerank-english-v3.0@Cohere"), HttpReranker)


def test_openai_compatible_takes_any_name_and_needs_a_base(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RerankError, match="No API base URL"):
        build_reranker("bge-reranker@OpenAI-API-Compatible")
    reranker = build_reranker("bge-reranker@OpenAI-API-Compatible", api_base="http://vllm:8000/v1/")
    assert isinstance(reranker, HttpReranker) and reranker.url == "http://vllm:8000/v1/rerank"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:9/v1")
    assert isinstance(build_reranker("x@OpenAI-API-Compatible"), HttpReranker)


def test_bedrock_unknown_and_unprovided_factories() -> None:
    assert isinstance(build_reranker(f"{BEDROCK_RERANK}@Bedrock"), BedrockReranker)
    with pytest.raises(RerankError, match="No provider for NVIDIA in this deployment"):
        build_reranker("nvidia/nv-rerankqa-mistral-4b-v3@NVIDIA")
    with pytest.raises(RerankError, match="Unknown rerank model: nope@Cohere"):
        build_reranker("nope@Cohere")
    with pytest.raises(RerankError, match="Unknown rerank model"):
        build_reranker("text-embedding-3-small@OpenAI")  # an embedding model, not a rerank one


def test_tenant_settings_are_used() -> None:
    tenant = Tenant(id="t1", name="t", create_time=0)
    tenant.models = [
        TenantModel("Cohere", "rerank-english-v3.0", "chat", api_key="wrong-type"),
        TenantModel("Cohere", "rerank-english-v3.0", "rerank", api_base="https://proxy.example/v2", api_key="k"),
    ]
    reranker = reranker_for_tenant(tenant, "rerank-english-v3.0@Cohere")
    assert isinstance(reranker, HttpReranker) and reranker.url == "https://proxy.example/v2/rerank"
    with pytest.raises(RerankError, match="No API key"):
        reranker_for_tenant(Tenant(id="t2", name="t", create_time=0), "rerank-english-v3.0@Cohere")


# -- HTTP rerank API -----------------------------------------------------------------------------------------


def _http(handler: Any, **kwargs: Any) -> HttpReranker:
    return HttpReranker(
        "rerank-v3.5",
        base_url="https://api.example/v2",
        api_key="sk-secret",
        model_id="rerank-v3.5@Cohere",
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def test_http_request_and_scores_in_input_order() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        results = [{"index": 2, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.25}]
        return httpx.Response(200, json={"id": "r", "results": results})

    reranker = _http(handler)
    assert reranker.rerank("q", ["a", "", "c"]) == [0.25, 0.0, 0.9]  # absent from results: 0
    request = seen[0]
    assert str(request.url) == "https://api.example/v2/rerank"
    assert request.headers["authorization"] == "Bearer sk-secret"
    assert json.loads(request.content) == {
        "model": "rerank-v3.5",
        "query": "q",
        "documents": ["a", " ", "c"],
        "top_n": 3,
    }
    assert reranker.rerank("q", []) == []
    assert len(seen) == 1  # nothing to rerank: no call


def test_http_reads_tei_lists_and_squashes_logits() -> None:
    reranker = _http(lambda _: httpx.Response(200, json=[{"index": 0, "score": 3.0}, {"index": 1, "score": -3.0}]))
    high, low = reranker.rerank("q", ["a", "b"])
    assert 0.9 < high < 1 and 0 < low < 0.1 and high + low == pytest.approx(1)


def test_http_errors_are_user_facing_without_the_key() -> None:
    failing = _http(lambda _: httpx.Response(401, json={"message": "invalid api token"}))
    with pytest.raises(RerankError) as info:
        failing.rerank("q", ["a"])
    assert info.value.message == "The rerank model rerank-v3.5@Cohere failed (HTTP 401): invalid api token."
    assert "sk-secret" not in info.value.message

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RerankError, match="timed out"):
        _http(timeout).rerank("q", ["a"])

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(RerankError, match=re.escape("Could not reach the rerank model rerank-v3.5@Cohere")):
        _http(refused).rerank("q", ["a"])
    for answer in ({"results": [{"index": 5, "relevance_score": 0.1}]}, {"results": "x"}, {"nothing": 1}):
        with pytest.raises(RerankError, match="unreadable answer"):
            _http(lambda _, a=answer: httpx.Response(200, json=a)).rerank("q", ["a"])
    with pytest.raises(RerankError, match="unreadable answer"):
        _http(lambda _: httpx.Response(200, content=b"<html>")).rerank("q", ["a"])


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([{"index": 0, "relevance_score": 1}, {"index": 1, "relevance_score": 0}], [1.0, 0.0]),
        ([{"index": 1, "relevance_score": 0.5}], [0.0, 0.5]),
        ([{"index": 0, "relevance_score": 0.0}, {"index": 1, "relevance_score": 2.0}], [0.5, 0.8807970779778823]),
    ],
)
def test_scores_are_in_unit_range(results: list[dict[str, Any]], expected: list[float]) -> None:
    scores = scores_in_order(results, 2, what="m")
    assert scores == pytest.approx(expected)
    assert all(0 <= s <= 1 for s in scores)


# -- Bedrock (botocore Stubber: real request/response validation, no network) -----------------------------


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _body(answer: Any) -> StreamingBody:
    data = json.dumps(answer).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def test_bedrock_maps_request_and_answer(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    expected = {
        "modelId": BEDROCK_RERANK,
        "body": json.dumps({"query": "why", "documents": ["a", "b", "c"], "top_n": 3, "api_version": 2}),
        "contentType": "application/json",
        "accept": "application/json",
    }
    answer = {
        "id": "x",
        "results": [
            {"index": 1, "relevance_score": 0.8},
            {"index": 2, "relevance_score": 0.3},
            {"index": 0, "relevance_score": 0.01},
        ],
    }
    stubber.add_response("invoke_model", {"body": _body(answer), "contentType": "application/json"}, expected)
    reranker = BedrockReranker(BEDROCK_RERANK, client=client)
    assert reranker.model_id == f"{BEDROCK_RERANK}@Bedrock"
    assert reranker.rerank("why", ["a", "b", "c"]) == [0.01, 0.8, 0.3]


def test_bedrock_errors(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    reranker = BedrockReranker(BEDROCK_RERANK, client=client)
    stubber.add_client_error("invoke_model", "ThrottlingException", "Rate exceeded")
    with pytest.raises(RerankError, match="throttled"):
        reranker.rerank("q", ["a"])
    stubber.add_client_error("invoke_model", "AccessDeniedException", "no access to the model")
    with pytest.raises(RerankError, match=r"failed \(AccessDeniedException\): no access to the model"):
        reranker.rerank("q", ["a"])
    stubber.add_response("invoke_model", {"body": _body({"oops": 1}), "contentType": "application/json"})
    with pytest.raises(RerankError, match="unreadable answer"):
        reranker.rerank("q", ["a"])
    with pytest.raises(RerankError, match="not supported"):
        BedrockReranker("amazon.rerank-v1:0", client=client)
