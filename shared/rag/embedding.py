"""Picks the embedder for a ``name@factory`` model id and keeps one per process.

Adapters are imported only when a model of their factory is first asked for, so a function that never
embeds never loads onnxruntime, openai or the Bedrock client.
"""

from __future__ import annotations

import os

from shared.catalog import BUILTIN_FACTORY, get_catalog, split_model_id
from shared.config import get_settings
from shared.ports.embedder import Embedder, EmbeddingConfigError, Vectors
from shared.providers import BEDROCK_FACTORY, OPENAI_COMPATIBLE_EMBEDDING, OPENAI_ENVIRONMENT_FACTORIES, endpoint
from shared.rag.model_cache import ModelCache

_embedders: ModelCache[Embedder] = ModelCache()


def build_embedder(model_id: str, *, api_base: str | None = None, api_key: str | None = None) -> Embedder:
    """The embedder for ``model_id`` (RAGFlow's ``name@factory``), built once per process and reused.

    ``api_base``/``api_key`` are the tenant's settings for the model (or its factory); an OpenAI-compatible
    factory (``shared/providers.py``) defaults to its documented base URL (OpenAI's own factories to
    ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` first). The builtin models ignore both. Raises
    :class:`EmbeddingConfigError` for an unknown or unsupported model or a missing API key.
    """
    _, factory = split_model_id(model_id)
    if factory == BUILTIN_FACTORY:  # one instance whatever the caller passed
        api_base = api_key = None
    return _embedders.get(model_id, api_base, api_key, _create)


def clear_embedder_cache() -> None:
    """Forget every built embedder (tests; changed credentials)."""
    _embedders.clear()


def _create(model_id: str, *, api_base: str | None, api_key: str | None) -> Embedder:
    catalog = get_catalog()
    info = catalog.lookup(model_id, "embedding")
    if info is None:
        raise EmbeddingConfigError(f"Unknown embedding model: {model_id}")
    if info.factory == BUILTIN_FACTORY:
        if model_id not in catalog.shipped_builtin:
            shipped = ", ".join(catalog.shipped_builtin)
            raise EmbeddingConfigError(f"Builtin model {model_id} is not shipped; the builtin models are: {shipped}")
        from shared.adapters.local.builtin_embedder import BuiltinEmbedder, builtin_model

        return BuiltinEmbedder(builtin_model(info.id))
    if info.factory in OPENAI_COMPATIBLE_EMBEDDING:
        from shared.adapters.openai_embedder import OpenAIEmbedder

        environment = info.factory in OPENAI_ENVIRONMENT_FACTORIES
        base_url, key = endpoint(
            OPENAI_COMPATIBLE_EMBEDDING[info.factory],
            api_base,
            api_key,
            env_base=os.environ.get("OPENAI_BASE_URL") if environment else None,
            env_key=os.environ.get("OPENAI_API_KEY") if environment else None,
        )
        if not base_url:
            raise EmbeddingConfigError(f"No API base URL is configured for the embedding model {model_id}.")
        if not key:
            raise EmbeddingConfigError(f"No API key is configured for the embedding model {model_id}.")
        return OpenAIEmbedder(info.name, model_id=info.id, api_key=key, base_url=base_url, dimension=info.dimension)
    if info.factory == BEDROCK_FACTORY:
        from shared.adapters.aws.bedrock_embedder import BedrockEmbedder, bedrock_runtime_client

        if info.dimension is None:
            raise EmbeddingConfigError(f"The model catalog has no dimension for {model_id}.")
        client = bedrock_runtime_client(get_settings().aws_region, endpoint_url=api_base)
        return BedrockEmbedder(info.name, client=client, dimension=info.dimension, model_id=info.id)
    raise EmbeddingConfigError(f"No provider for {info.factory} embedding models in this deployment: {model_id}")


def embed_with_title(embedder: Embedder, title: str, texts: list[str], title_weight: float) -> Vectors:
    """RAGFlow's chunk vectors: ``title_weight`` of the document name's vector blended into each text's.

    Rows are re-normalized to unit length. ``title_weight`` 0 embeds the texts alone.
    """
    vectors = embedder.embed_documents(texts)
    if len(texts) == 0 or title_weight <= 0:
        return vectors
    return blend_title(vectors, embedder.embed_documents([title])[0], title_weight)


def blend_title(vectors: Vectors, title_vector: Vectors, title_weight: float) -> Vectors:
    """``title_weight`` of ``title_vector`` blended into each row of ``vectors``, rows re-normalized."""
    import numpy as np

    if title_weight <= 0:
        return vectors
    blended = title_weight * title_vector + (1 - title_weight) * vectors
    norms = np.maximum(np.linalg.norm(blended, axis=1, keepdims=True), 1e-12)
    result: Vectors = (blended / norms).astype(np.float32)
    return result
