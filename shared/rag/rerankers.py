"""Picks the rerank model for a ``name@factory`` model id and keeps one per process and endpoint/key.

Adapters are imported only when a model of their factory is first asked for.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.catalog import get_catalog
from shared.config import get_settings
from shared.ports.reranker import Reranker, RerankError
from shared.providers import (
    BEDROCK_FACTORY,
    HTTP_RERANK,
    NO_KEY,
    OPENAI_ENVIRONMENT_FACTORIES,
    RERANK_KEY_VARIABLES,
    endpoint,
)
from shared.rag.model_cache import ModelCache

if TYPE_CHECKING:
    from shared.repos.tenants import Tenant

_rerankers: ModelCache[Reranker] = ModelCache()


def build_reranker(model_id: str, *, api_base: str | None = None, api_key: str | None = None) -> Reranker:
    """The rerank model for ``model_id``, built once per process for each endpoint and key.

    Factories answering the common ``/rerank`` API (Cohere, Jina, Voyage AI, ... ``shared/providers.py``):
    ``api_base`` defaults to the documented base URL, the key to ``COHERE_API_KEY`` for Cohere;
    ``OpenAI-API-Compatible`` (vLLM, Infinity ... serving ``/rerank``) defaults to ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY``. ``Bedrock``: ``api_base`` is the endpoint URL, credentials come from the AWS
    environment. Raises :class:`RerankError` for an
    unknown model, a factory this deployment has no provider for, or a missing endpoint or key.
    """
    return _rerankers.get(model_id, api_base, api_key, _create)


def clear_reranker_cache() -> None:
    """Forget every built rerank model (tests; changed credentials)."""
    _rerankers.clear()


def reranker_for_tenant(tenant: Tenant, model_id: str) -> Reranker:
    """``model_id`` with the tenant's endpoint and key for it (if the tenant configured them)."""
    api_base, api_key = tenant.credentials(model_id, "rerank")
    return build_reranker(model_id, api_base=api_base, api_key=api_key)


def _create(model_id: str, *, api_base: str | None, api_key: str | None) -> Reranker:
    info = get_catalog().lookup(model_id, "rerank")
    if info is None:
        raise RerankError(f"Unknown rerank model: {model_id}")
    if info.factory in HTTP_RERANK:
        from shared.adapters.http_reranker import HttpReranker

        default_base, top_n_field = HTTP_RERANK[info.factory]
        key_variable = RERANK_KEY_VARIABLES.get(info.factory)
        base_url, key = endpoint(
            default_base,
            api_base,
            api_key,
            env_base=os.environ.get("OPENAI_BASE_URL") if info.factory in OPENAI_ENVIRONMENT_FACTORIES else None,
            env_key=os.environ.get(key_variable) if key_variable else None,
        )
        if not base_url:
            raise RerankError(f"No API base URL is configured for the rerank model {model_id}.")
        if not key:
            raise RerankError(f"No API key is configured for the rerank model {model_id}.")
        return HttpReranker(
            info.name,
            base_url=base_url,
            api_key=None if key == NO_KEY else key,
            model_id=info.id,
            top_n_field=top_n_field,
        )
    if info.factory == BEDROCK_FACTORY:
        from shared.adapters.aws.bedrock_reranker import BedrockReranker

        return BedrockReranker(info.name, client=_bedrock_client(get_settings().aws_region, api_base), model_id=info.id)
    raise RerankError(f"No provider for {info.factory} in this deployment")


@lru_cache(maxsize=8)
def _bedrock_client(region: str, endpoint_url: str | None) -> Any:
    """One ``bedrock-runtime`` client per region and endpoint, shared by every Bedrock rerank model."""
    from shared.adapters.aws.bedrock_embedder import bedrock_runtime_client

    return bedrock_runtime_client(region, endpoint_url=endpoint_url)
