"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, TEI, LiteLLM ...).

Used by both deployments, so it lives beside ``aws/`` and ``local/`` rather than in either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import openai

from shared.adapters.openai_common import endpoint_label, provider_message
from shared.ports.embedder import (
    Embedder,
    EmbeddingConfigError,
    EmbeddingError,
    EmbeddingServiceError,
    Vectors,
    normalize_rows,
)

#: Inputs per request. OpenAI takes 2,048, but self-hosted servers take fewer (TEI: 32 by default).
DEFAULT_BATCH_SIZE = 32
DEFAULT_TIMEOUT_SECONDS = 30.0
#: Retries after the first attempt, with the client's exponential backoff (connection errors, 408, 409,
#: 429 and 5xx are retried; other 4xx are final).
DEFAULT_MAX_RETRIES = 2


class OpenAIEmbedder(Embedder):
    """One model of an OpenAI-compatible endpoint. The HTTP client is built once and reused.

    ``dimension`` comes from the model catalog; when the catalog does not know it (any model of an
    OpenAI-API-Compatible endpoint) it is learnt from the first answer. Every answer must match it.
    """

    def __init__(
        self,
        model: str,
        *,
        model_id: str | None = None,
        api_key: str,
        base_url: str | None = None,
        dimension: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not api_key:
            raise EmbeddingConfigError(f"No API key is configured for the embedding model {model_id or model}.")
        self.model = model
        self.model_id = model_id or f"{model}@OpenAI"
        self._batch_size = batch_size
        self._timeout = timeout
        self._dimension = dimension
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self._endpoint = endpoint_label(self._client)

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._request(["dimension probe"])  # the answer sets it; two racing probes agree
        assert self._dimension is not None
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in requests of at most ``batch_size`` inputs each."""
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # OpenAI rejects empty strings; a single space stands in for them.
        inputs = [text if text.strip() else " " for text in texts]
        batches = [
            self._request(inputs[start : start + self._batch_size]) for start in range(0, len(inputs), self._batch_size)
        ]
        return np.concatenate(batches)

    def _request(self, inputs: list[str]) -> Vectors:
        try:
            response = self._client.embeddings.create(model=self.model, input=inputs, encoding_format="float")
        except openai.APIError as exc:
            raise self._error(exc) from exc
        try:
            rows = sorted(response.data, key=lambda item: item.index)
            vectors = np.array([row.embedding for row in rows], dtype=np.float32)
        except (AttributeError, TypeError, ValueError):  # missing fields, non-numbers, ragged rows
            vectors = np.zeros(0, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbeddingServiceError(
                f"The embedding service at {self._endpoint} gave an unreadable answer for model {self.model_id}."
            )
        if len(vectors) != len(inputs):
            raise EmbeddingServiceError(
                f"The embedding service at {self._endpoint} returned {len(vectors)} vectors for {len(inputs)} texts."
            )
        if self._dimension is None:  # the first answer fixes the dimension of a model the catalog doesn't know
            self._dimension = int(vectors.shape[1])
        if vectors.shape[1] != self._dimension:
            raise EmbeddingServiceError(
                f"The embedding model {self.model_id} returned {vectors.shape[1]}-dimensional vectors; "
                f"{self._dimension} were expected."
            )
        return normalize_rows(vectors)

    def _error(self, exc: openai.APIError) -> EmbeddingError:
        """A user-facing error for a failed request; the API key never appears in it."""
        where = f"the embedding service at {self._endpoint}"
        if isinstance(exc, openai.APITimeoutError):
            return EmbeddingServiceError(f"The embedding model {self.model_id} timed out after {self._timeout:g}s.")
        if isinstance(exc, openai.APIConnectionError):
            return EmbeddingServiceError(f"Could not connect to {where} for model {self.model_id}.")
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return EmbeddingConfigError(f"The API key was rejected by {where} for model {self.model_id}.")
        if isinstance(exc, openai.NotFoundError):
            return EmbeddingConfigError(f"The embedding model {self.model} was not found at {where}.")
        if isinstance(exc, openai.RateLimitError):
            return EmbeddingServiceError(f"The embedding model {self.model_id} is rate limited; try again later.")
        if isinstance(exc, openai.APIStatusError):
            return EmbeddingServiceError(
                f"The embedding model {self.model_id} failed (HTTP {exc.status_code}): {provider_message(exc)}"
            )
        return EmbeddingServiceError(f"The embedding model {self.model_id} gave an unreadable answer.")
