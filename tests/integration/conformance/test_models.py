"""Models and tenant defaults, as RAGFlow v0.23.1's server decides them (the behaviour page's first section):
its whole catalog is known, "Unsupported" vs "Unauthorized", the builtin models that ship, bare names, a
factory's key authorizing its models, and the tenant's defaults filling what a request leaves out."""

from __future__ import annotations

from typing import Any

import pytest

from shared.catalog import BUILTIN_EMBEDDING_MODEL
from shared.services.tenants import FactorySetting, ModelSetting
from tests.support.conformance import Backend, Client

NOT_SHIPPED = (
    "is not shipped with this server; the builtin models are: all-MiniLM-L6-v2@Builtin, BAAI/bge-small-en-v1.5@Builtin"
)


def new_dataset(api: Client, name: str = "kb", **fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.post("/api/v1/datasets", json={"name": name, **fields}).json()
    return answer


def new_chat(api: Client, name: str = "assistant", **fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.post("/api/v1/chats", json={"name": name, **fields}).json()
    return answer


def retrieve(api: Client, dataset_id: str, **fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.post(
        "/api/v1/retrieval", json={"question": "anything", "dataset_ids": [dataset_id], **fields}
    ).json()
    return answer


@pytest.mark.parametrize(
    ("model", "message"),
    [
        # in RAGFlow's catalog, not configured for the tenant
        ("text-embedding-3-small@OpenAI", "Unauthorized model: <text-embedding-3-small@OpenAI>"),
        ("jina-embeddings-v3@Jina", "Unauthorized model: <jina-embeddings-v3@Jina>"),
        ("voyage-3@Voyage AI", "Unauthorized model: <voyage-3@Voyage AI>"),
        ("embedding-3@ZHIPU-AI", "Unauthorized model: <embedding-3@ZHIPU-AI>"),
        # absent from it: an unknown name, an unknown factory, a chat model as embedder, a user-named model
        ("text-embedding-9@OpenAI", "Unsupported model: <text-embedding-9@OpenAI>"),
        ("model@Nowhere", "Unsupported model: <model@Nowhere>"),
        ("gpt-4o@OpenAI", "Unsupported model: <gpt-4o@OpenAI>"),
        ("nomic-embed-text@Ollama", "Unsupported model: <nomic-embed-text@Ollama>"),
        # RAGFlow's builtin models: known, but only the shipped one is usable
        ("BAAI/bge-m3@Builtin", f"Builtin model <BAAI/bge-m3@Builtin> {NOT_SHIPPED}"),
        ("Qwen/Qwen3-Embedding-0.6B@Builtin", f"Builtin model <Qwen/Qwen3-Embedding-0.6B@Builtin> {NOT_SHIPPED}"),
        ("nope@Builtin", "Unsupported model: <nope@Builtin>"),
    ],
)
def test_unsupported_and_unauthorized_embedding_models(ragflow: Backend, model: str, message: str) -> None:
    api = ragflow.tenant()
    assert new_dataset(api, embedding_model=model) == {"code": 101, "message": message}
    assert api.get("/api/v1/datasets").json()["data"] == []


def test_the_shipped_builtin_model_is_every_tenants_default(ragflow: Backend) -> None:
    api = ragflow.tenant()
    assert new_dataset(api, "explicit", embedding_model=BUILTIN_EMBEDDING_MODEL)["code"] == 0
    # A dataset without an embedding model gets the tenant's default (embd_id), the builtin one for a new tenant.
    assert new_dataset(api, "default")["data"]["embedding_model"] == BUILTIN_EMBEDDING_MODEL


def test_the_tenants_default_embedding_model_feeds_new_datasets(ragflow: Backend) -> None:
    api = ragflow.tenant(models=[ModelSetting("text-embedding-3-large@OpenAI", "embedding", api_key="sk-x")])
    assert new_dataset(api)["data"]["embedding_model"] == "text-embedding-3-large@OpenAI"


def test_a_factorys_key_authorizes_every_model_it_lists(ragflow: Backend) -> None:
    api = ragflow.tenant(factories=[FactorySetting("OpenAI", api_key="sk-openai")])
    for model in ("text-embedding-3-small@OpenAI", "text-embedding-ada-002@OpenAI"):
        assert new_dataset(api, model, embedding_model=model)["data"]["embedding_model"] == model
    for model in ("gpt-4o-mini@OpenAI", "gpt-5@OpenAI", "o3@OpenAI"):
        assert new_chat(api, model, llm={"model_name": model})["data"]["llm"]["model_name"] == model
    # only its own models, and only those it lists
    assert new_chat(api, "x", llm={"model_name": "gpt-9@OpenAI"})["message"] == "Unsupported model: <gpt-9@OpenAI>"
    res = new_chat(api, "y", llm={"model_name": "deepseek-chat@DeepSeek"})
    assert res == {"code": 101, "message": "Unauthorized model: <deepseek-chat@DeepSeek>"}


def test_a_factory_whose_users_name_their_models_takes_any_name_once_configured(ragflow: Backend) -> None:
    bare = ragflow.tenant("bare")
    res = new_chat(bare, llm={"model_name": "llama3.2@Ollama"})
    assert res == {"code": 101, "message": "Unsupported model: <llama3.2@Ollama>"}
    api = ragflow.tenant(factories=[FactorySetting("Ollama", api_base="http://127.0.0.1:9/v1")])
    assert new_chat(api, llm={"model_name": "llama3.2@Ollama"})["data"]["llm"]["model_name"] == "llama3.2@Ollama"


def test_a_bare_model_name_resolves_against_the_tenants_factories(ragflow: Backend) -> None:
    api = ragflow.tenant(factories=[FactorySetting("ZHIPU-AI", api_key="zk")])
    res = new_chat(api, "glm", llm={"model_name": "glm-4"})
    assert res["code"] == 0 and res["data"]["llm"]["model_name"] == "glm-4@ZHIPU-AI"
    configured = ragflow.tenant("configured", models=[ModelSetting("deepseek-chat@DeepSeek", "chat", api_key="dk")])
    res = new_chat(configured, "deepseek", llm={"model_name": "deepseek-chat"})
    assert res["data"]["llm"]["model_name"] == "deepseek-chat@DeepSeek"
    # known to the catalog but not among the tenant's factories; known nowhere
    other = ragflow.tenant("other")
    assert new_chat(other, "a", llm={"model_name": "glm-4"}) == {"code": 101, "message": "Unauthorized model: <glm-4>"}
    assert new_chat(other, "b", llm={"model_name": "glm-99"}) == {"code": 101, "message": "Unsupported model: <glm-99>"}


def test_the_tenants_default_chat_model_and_default_llm_settings(ragflow: Backend) -> None:
    api = ragflow.tenant(models=[ModelSetting("gpt-4o-mini@OpenAI", "chat", api_key="sk")])
    llm = new_chat(api)["data"]["llm"]
    assert llm == {
        "model_name": "gpt-4o-mini@OpenAI",
        "model_type": "chat",
        "temperature": 0.1,
        "top_p": 0.3,
        "presence_penalty": 0.4,
        "frequency_penalty": 0.7,
        "max_tokens": 512,
    }


def test_a_chat_model_known_but_not_configured_is_unauthorized(ragflow: Backend) -> None:
    api = ragflow.tenant()
    for model in ("gpt-4o@OpenAI", "claude-sonnet-4-20250514@Anthropic", "qwen3-max@Tongyi-Qianwen"):
        assert new_chat(api, llm={"model_name": model}) == {"code": 101, "message": f"Unauthorized model: <{model}>"}
    assert api.get("/api/v1/chats").json() == {"code": 0, "data": []}


def test_a_configured_factory_without_an_adapter_answers_a_clear_error_at_use(ragflow: Backend) -> None:
    api = ragflow.tenant(models=[ModelSetting("gte-rerank@Tongyi-Qianwen", "rerank", api_key="dash")])
    dataset = new_dataset(api)["data"]
    res = retrieve(api, dataset["id"], rerank_id="gte-rerank@Tongyi-Qianwen")
    assert res == {"code": 102, "message": "No provider for Tongyi-Qianwen in this deployment"}
    # not configured: refused before use, as RAGFlow does
    res = retrieve(api, dataset["id"], rerank_id="rerank-2@Voyage AI")
    assert res == {"code": 101, "message": "Unauthorized model: <rerank-2@Voyage AI>"}
    user_named = ragflow.tenant("fastembed", models=[ModelSetting("BAAI/bge-small-en-v1.5@FastEmbed", "embedding")])
    fast = new_dataset(user_named, embedding_model="BAAI/bge-small-en-v1.5@FastEmbed")["data"]
    res = retrieve(user_named, fast["id"])
    assert res == {
        "code": 102,
        "message": "Embedding failed: No provider for FastEmbed embedding models in this deployment: "
        "BAAI/bge-small-en-v1.5@FastEmbed",
    }
