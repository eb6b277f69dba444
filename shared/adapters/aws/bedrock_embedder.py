"""Embeddings from Amazon Bedrock (``bedrock-runtime`` InvokeModel): Amazon Titan Text v2 and Cohere Embed v3.

Titan embeds one text per call, so calls run a few at a time; Cohere takes up to 96 texts per call and
embeds queries differently from documents (``input_type``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from shared.ports.embedder import (
    Embedder,
    EmbeddingConfigError,
    EmbeddingError,
    EmbeddingServiceError,
    Vectors,
    normalize_rows,
)

#: Titan Text v2 accepts up to 8k tokens; Bedrock rejects inputs over 50,000 characters.
TITAN_MAX_CHARS = 50_000
#: Cohere Embed v3 on Bedrock: at most 96 texts per call and 2,048 characters per text.
COHERE_MAX_TEXTS = 96
COHERE_MAX_CHARS = 2_048
DEFAULT_CONCURRENCY = 4

_CONFIG_ERRORS = {"AccessDeniedException", "ResourceNotFoundException", "ValidationException"}
_THROTTLED = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}


def bedrock_runtime_client(region: str, *, endpoint_url: str | None = None) -> Any:
    """A ``bedrock-runtime`` client with adaptive retries and bounded timeouts; build once, share freely."""
    config = Config(
        region_name=region,
        retries={"mode": "adaptive", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=DEFAULT_CONCURRENCY * 2,
    )
    return boto3.client("bedrock-runtime", endpoint_url=endpoint_url, config=config)


class BedrockEmbedder(Embedder):
    """One Bedrock embedding model. ``client`` is a ``bedrock-runtime`` client (see :func:`bedrock_runtime_client`)."""

    def __init__(
        self,
        model: str,
        *,
        client: Any,
        dimension: int,
        model_id: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if model.startswith("amazon.titan-embed-text-v2"):
            self._family = "titan"
        elif model.startswith("cohere.embed-"):
            self._family = "cohere"
        else:
            raise EmbeddingConfigError(f"The Bedrock embedding model {model} is not supported.")
        self.model = model
        self.model_id = model_id or f"{model}@Bedrock"
        self._client = client
        self._dimension = dimension
        self._concurrency = max(1, concurrency)

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        return self._embed(list(texts), input_type="search_document")

    def embed_query(self, text: str) -> Vectors:
        return self._embed([text], input_type="search_query").reshape(-1)

    def _embed(self, texts: list[str], *, input_type: str) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self._family == "titan":
            if len(texts) == 1 or self._concurrency == 1:
                rows = [self._titan(text) for text in texts]
            else:
                with ThreadPoolExecutor(max_workers=min(self._concurrency, len(texts))) as pool:
                    rows = list(pool.map(self._titan, texts))
        else:
            rows = []
            for start in range(0, len(texts), COHERE_MAX_TEXTS):
                rows.extend(self._cohere(texts[start : start + COHERE_MAX_TEXTS], input_type))
        vectors = np.asarray(rows, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(texts), self._dimension):
            got = vectors.shape[-1] if vectors.ndim == 2 else "malformed"
            raise EmbeddingServiceError(
                f"The Bedrock model {self.model} returned {got}-dimensional vectors; {self._dimension} were expected."
            )
        return normalize_rows(vectors)

    def _titan(self, text: str) -> list[float]:
        body = {"inputText": text[:TITAN_MAX_CHARS] or " ", "dimensions": self._dimension, "normalize": True}
        answer = self._invoke(body)
        embedding = answer.get("embedding")
        if not isinstance(embedding, list):
            raise self._unreadable()
        return embedding

    def _cohere(self, texts: list[str], input_type: str) -> list[list[float]]:
        body = {
            "texts": [text[:COHERE_MAX_CHARS] or " " for text in texts],
            "input_type": input_type,
            "truncate": "END",
        }
        embeddings = self._invoke(body).get("embeddings")
        # Without embedding_types the answer holds a list of float lists; with it, {"float": [...]}.
        if isinstance(embeddings, dict):
            embeddings = embeddings.get("float")
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise self._unreadable()
        return embeddings

    def _invoke(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.invoke_model(
                modelId=self.model,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
            answer = json.loads(response["body"].read())
        except ClientError as exc:
            raise self._client_error(exc) from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise EmbeddingServiceError(f"The Bedrock model {self.model} timed out.") from exc
        except BotoCoreError as exc:  # no credentials, endpoint unreachable ...
            raise EmbeddingServiceError(f"Could not call the Bedrock model {self.model}: {exc}") from exc
        except ValueError as exc:  # not JSON
            raise self._unreadable() from exc
        if not isinstance(answer, dict):
            raise self._unreadable()
        return answer

    def _client_error(self, exc: ClientError) -> EmbeddingError:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code in _THROTTLED:
            return EmbeddingServiceError(f"The Bedrock model {self.model} is throttled; try again later.")
        if code in _CONFIG_ERRORS:
            return EmbeddingConfigError(f"The Bedrock model {self.model} refused the request ({code}): {message}")
        return EmbeddingServiceError(f"The Bedrock model {self.model} failed ({code or 'error'}): {message}")

    def _unreadable(self) -> EmbeddingServiceError:
        return EmbeddingServiceError(f"The Bedrock model {self.model} gave an unreadable answer.")
