"""The provider table (shared/providers.py) over RAGFlow's catalog: which adapter serves each factory, at which
base URL, with which key; tenant credentials; and RAGFlow's model decisions (shared/services/models.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from shared.adapters.http_reranker import HttpReranker
from shared.adapters.openai_chat import OpenAIChatModel
from shared.adapters.openai_embedder import OpenAIEmbedder
from shared.catalog import BUILTIN_EMBEDDING_MODEL, get_catalog
from shared.errors import ArgumentError
from shared.ports.chat_model import ChatModelConfigError
from shared.ports.embedder import EmbeddingConfigError
from shared.providers import HTTP_RERANK, NO_KEY, OPENAI_COMPATIBLE_CHAT, OPENAI_COMPATIBLE_EMBEDDING, endpoint
from shared.rag.chat_models import build_chat_model, chat_model_for_tenant, clear_chat_model_cache
from shared.rag.embedding import build_embedder, clear_embedder_cache
from shared.rag.rerankers import build_reranker, clear_reranker_cache
from shared.repos.tenants import Tenant, TenantFactory, TenantModel
from shared.routes import ROUTE_GROUPS, match_route, normalize_path
from shared.services.models import ModelAccess


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "COHERE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    clear_chat_model_cache()
    clear_embedder_cache()
    clear_reranker_cache()
    yield
    clear_chat_model_cache()
    clear_embedder_cache()
    clear_reranker_cache()


def _a_model(factory: str, model_type: str) -> str:
    """A listed model of ``factory`` (any name for a factory whose users name theirs)."""
    catalog = get_catalog()
    if not catalog.lists_models(factory):
        return f"some-model@{factory}"
    listed = catalog.models_of(factory, model_type)
    if not listed and model_type == "chat":  # RAGFlow lists some chat models as image2text only (Gemini)
        listed = catalog.models_of(factory, "image2text")
    if not listed:
        pytest.skip(f"{factory} lists no {model_type} model")
    return listed[0].id


def test_every_factory_of_the_tables_is_in_ragflows_catalog_with_models_of_that_kind() -> None:
    catalog = get_catalog()
    for table, kinds in (
        (OPENAI_COMPATIBLE_CHAT, ("chat", "image2text")),
        (OPENAI_COMPATIBLE_EMBEDDING, ("embedding",)),
        (HTTP_RERANK, ("rerank",)),
    ):
        for factory in table:
            assert factory in catalog.factories
            # a factory listing models must list some of this kind (else no model of it could be used)
            assert not catalog.lists_models(factory) or any(catalog.models_of(factory, k) for k in kinds), factory


@pytest.mark.parametrize("factory", sorted(f for f, base in OPENAI_COMPATIBLE_CHAT.items() if base))
def test_openai_compatible_chat_factories_use_their_documented_base_url(factory: str) -> None:
    model = build_chat_model(_a_model(factory, "chat"), api_key="k")
    assert isinstance(model, OpenAIChatModel)
    assert str(model._client.base_url).rstrip("/") == OPENAI_COMPATIBLE_CHAT[factory]
    # a tenant's base URL overrides it
    moved = build_chat_model(_a_model(factory, "chat"), api_base="http://127.0.0.1:9/v1", api_key="k")
    assert str(moved._client.base_url).rstrip("/") == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize("factory", sorted(f for f, base in OPENAI_COMPATIBLE_EMBEDDING.items() if base))
def test_openai_compatible_embedding_factories_use_their_documented_base_url(factory: str) -> None:
    embedder = build_embedder(_a_model(factory, "embedding"), api_key="k")
    assert isinstance(embedder, OpenAIEmbedder)
    assert str(embedder._client.base_url).rstrip("/") == OPENAI_COMPATIBLE_EMBEDDING[factory]


def test_hosted_providers_need_a_key_and_never_get_openais(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    with pytest.raises(ChatModelConfigError, match="No API key is configured for the chat model deepseek-chat"):
        build_chat_model("deepseek-chat@DeepSeek")
    assert isinstance(build_chat_model("gpt-4o@OpenAI"), OpenAIChatModel)  # OpenAI's own environment


def test_servers_of_the_users_own_need_no_key_and_some_need_an_address() -> None:
    ollama = build_chat_model("llama3.2@Ollama")
    assert isinstance(ollama, OpenAIChatModel)
    assert str(ollama._client.base_url) == "http://localhost:11434/v1/" and ollama._client.api_key == NO_KEY
    with pytest.raises(ChatModelConfigError, match="No API base URL is configured for the chat model x@GPUStack"):
        build_chat_model("x@GPUStack")
    with pytest.raises(EmbeddingConfigError, match="No API base URL"):
        build_embedder("e@HuggingFace")


def test_endpoint_rules() -> None:
    assert endpoint("https://api.x/v1", None, None) == ("https://api.x/v1", None)
    assert endpoint("https://api.x/v1", None, "k") == ("https://api.x/v1", "k")
    assert endpoint("https://api.x/v1", "http://proxy/v1", None) == ("http://proxy/v1", NO_KEY)
    assert endpoint(None, None, None, env_base="http://env/v1", env_key="e") == ("http://env/v1", "e")
    assert endpoint(None, None, "k") == (None, "k")


def test_rerank_factories_and_voyages_api(monkeypatch: pytest.MonkeyPatch) -> None:
    jina = build_reranker("jina-reranker-v2-base-multilingual@Jina", api_key="jk")
    assert isinstance(jina, HttpReranker) and jina.url == "https://api.jina.ai/v1/rerank"
    with pytest.raises(Exception, match="No API key"):
        build_reranker("rerank-2@Voyage AI")
    seen: list[dict[str, object]] = []

    def voyage(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.2}],
            },
        )

    reranker = HttpReranker(
        "rerank-2",
        base_url=HTTP_RERANK["Voyage AI"][0] or "",
        api_key="vk",
        top_n_field="top_k",
        transport=httpx.MockTransport(voyage),
    )
    assert reranker.rerank("q", ["a", "b"]) == [0.2, 0.9]
    assert seen[0]["top_k"] == 2 and "top_n" not in seen[0]


def test_tenant_credentials_prefer_the_models_own_then_the_factorys() -> None:
    tenant = Tenant(
        id="t",
        name="t",
        create_time=0,
        models=[TenantModel("OpenAI", "gpt-4o", "chat", api_key="sk-model")],
        factories=[TenantFactory("OpenAI", api_base="http://openai-proxy/v1", api_key="sk-factory")],
    )
    assert tenant.credentials("gpt-4o@OpenAI", "chat") == ("http://openai-proxy/v1", "sk-model")
    assert tenant.credentials("gpt-4.1@OpenAI", "chat") == ("http://openai-proxy/v1", "sk-factory")
    assert tenant.credentials("gpt-4o@OpenAI", "embedding", "chat") == ("http://openai-proxy/v1", "sk-model")
    assert tenant.credentials("x@DeepSeek", "chat") == (None, None)
    model = chat_model_for_tenant(tenant, "gpt-4.1@OpenAI")
    assert isinstance(model, OpenAIChatModel) and model._client.api_key == "sk-factory"


def test_ragflows_model_decisions() -> None:
    access = ModelAccess(get_catalog())
    tenant = Tenant(id="t", name="t", create_time=0, factories=[TenantFactory("ZHIPU-AI", api_key="z")])
    assert access.resolve(tenant, "glm-4", "chat") == "glm-4@ZHIPU-AI"
    assert access.resolve(tenant, "glm-4@ZHIPU-AI", "chat") == "glm-4@ZHIPU-AI"
    assert access.resolve(tenant, BUILTIN_EMBEDDING_MODEL, "embedding") == BUILTIN_EMBEDDING_MODEL
    assert access.resolve(tenant, "all-MiniLM-L6-v2", "embedding") == "all-MiniLM-L6-v2@Builtin"
    assert access.resolve(tenant, "BAAI/bge-small-en-v1.5", "embedding") == BUILTIN_EMBEDDING_MODEL
    for model_id, message in [
        ("glm-4@ZHIPU-AI", None),
        ("embedding-3@ZHIPU-AI", None),
        ("gpt-4o@OpenAI", "Unauthorized model: <gpt-4o@OpenAI>"),
        ("gpt-4o", "Unauthorized model: <gpt-4o>"),
        ("glm-99@ZHIPU-AI", "Unsupported model: <glm-99@ZHIPU-AI>"),
        ("x@Nowhere", "Unsupported model: <x@Nowhere>"),
        ("llama3@Ollama", "Unsupported model: <llama3@Ollama>"),
    ]:
        model_type = "embedding" if "embedding" in model_id else "chat"
        if message is None:
            access.check(tenant, model_id, model_type)
        else:
            with pytest.raises(ArgumentError, match=f"^{message}$"):
                access.check(tenant, model_id, model_type)
    assert access.default_chat(tenant) is None
    assert access.default_embedding(tenant) == BUILTIN_EMBEDDING_MODEL


@pytest.mark.parametrize(
    ("method", "path", "group", "allowed"),
    [
        ("GET", "/api/v1/chats", "chats", ("GET", "POST", "DELETE")),
        ("GET", "/api/v1/chats/", "chats", ("GET", "POST", "DELETE")),
        ("PUT", "//api/v1//datasets//documents/", "datasets", ("PUT",)),
        ("GET", "/api/v1/datasets/documents", None, ("PUT",)),
        ("POST", "/api/v1/chats/c/completions", "completions", ("POST",)),
        ("GET", "/api/v1/nothing", None, ()),
    ],
)
def test_ragflows_router_over_the_registry(method: str, path: str, group: str | None, allowed: tuple[str]) -> None:
    found = match_route(method, path)
    assert (found.group.name if found.group else None, found.allowed) == (group, allowed)


def test_every_registered_route_is_routed_to_itself() -> None:
    # Parameters filled with a value no literal segment has: each route is the most literal match of its path.
    for group in ROUTE_GROUPS:
        for route in group.routes:
            path = re.sub(r"\{[^}]+\}", "an-id", route.path)
            for method in route.methods:
                found = match_route(method, path + "/")
                assert (found.group, found.route) == (group, route), (method, path)


def test_path_normalization() -> None:
    assert normalize_path("/api/v1/datasets/") == "/api/v1/datasets"
    assert normalize_path("//api///v1/x//") == "/api/v1/x"
    assert normalize_path("/") == "/" and normalize_path("//") == "/"
