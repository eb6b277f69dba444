"""Picks the chat model for a ``name@factory`` model id and keeps one per process.

Adapters are imported only when a model of their factory is first asked for, so a function that never
chats never loads openai or builds a Bedrock client.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.catalog import get_catalog
from shared.config import get_settings
from shared.ports.chat_model import ChatModel, ChatModelConfigError
from shared.providers import BEDROCK_FACTORY, OPENAI_COMPATIBLE_CHAT, OPENAI_ENVIRONMENT_FACTORIES, endpoint
from shared.rag.model_cache import ModelCache

if TYPE_CHECKING:
    from shared.repos.tenants import Tenant

_models: ModelCache[ChatModel] = ModelCache()


def build_chat_model(model_id: str, *, api_base: str | None = None, api_key: str | None = None) -> ChatModel:
    """The chat model for ``model_id`` (RAGFlow's ``name@factory``; chat or image2text), built once per
    process for each endpoint and key, so tenants with different keys never share a client.

    ``api_base``/``api_key`` are the tenant's settings for the model (or its factory); an OpenAI-compatible
    factory (``shared/providers.py``) defaults to its documented base URL (OpenAI's own factories to
    ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` first), and for Bedrock ``api_base`` is the endpoint URL
    (credentials come from the AWS environment). Raises :class:`ChatModelConfigError` for an unknown model, a factory
    this deployment has no provider for, or a missing API key.
    """
    return _models.get(model_id, api_base, api_key, _create)


def clear_chat_model_cache() -> None:
    """Forget every built chat model (tests; changed credentials)."""
    _models.clear()


def chat_model_for_tenant(tenant: Tenant, model_id: str | None = None) -> ChatModel:
    """``model_id`` (else the tenant's default chat model) with the tenant's endpoint and key for it.

    Raises :class:`ChatModelConfigError` when neither names a model, or the model cannot be built.
    """
    model_id = model_id or tenant.llm_id
    if not model_id:
        raise ChatModelConfigError("No chat model is configured for this tenant")
    # A model set up for image2text serves chat too; a chat entry wins when both exist.
    api_base, api_key = tenant.credentials(model_id, "chat", "image2text")
    return build_chat_model(model_id, api_base=api_base, api_key=api_key)


def _create(model_id: str, *, api_base: str | None, api_key: str | None) -> ChatModel:
    catalog = get_catalog()
    info = catalog.lookup(model_id, "chat") or catalog.lookup(model_id, "image2text")
    if info is None:
        raise ChatModelConfigError(f"Unknown chat model: {model_id}")
    if info.factory in OPENAI_COMPATIBLE_CHAT:
        from shared.adapters.openai_chat import OpenAIChatModel

        environment = info.factory in OPENAI_ENVIRONMENT_FACTORIES
        base_url, key = endpoint(
            OPENAI_COMPATIBLE_CHAT[info.factory],
            api_base,
            api_key,
            env_base=os.environ.get("OPENAI_BASE_URL") if environment else None,
            env_key=os.environ.get("OPENAI_API_KEY") if environment else None,
        )
        if not base_url:
            raise ChatModelConfigError(f"No API base URL is configured for the chat model {model_id}.")
        if not key:
            raise ChatModelConfigError(f"No API key is configured for the chat model {model_id}.")
        return OpenAIChatModel(info.name, model_id=info.id, api_key=key, base_url=base_url)
    if info.factory == BEDROCK_FACTORY:
        from shared.adapters.aws.bedrock_chat import BedrockChatModel

        return BedrockChatModel(
            info.name, client=_bedrock_client(get_settings().aws_region, api_base), model_id=info.id
        )
    raise ChatModelConfigError(f"No provider for {info.factory} in this deployment")  # known, no adapter


@lru_cache(maxsize=8)
def _bedrock_client(region: str, endpoint_url: str | None) -> Any:
    """One ``bedrock-runtime`` client per region and endpoint, shared by every Bedrock chat model."""
    from shared.adapters.aws.bedrock_chat import bedrock_chat_client

    return bedrock_chat_client(region, endpoint_url=endpoint_url)
