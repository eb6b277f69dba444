"""Cohere Rerank on Amazon Bedrock (``bedrock-runtime`` InvokeModel, ``cohere.rerank-v3-5:0``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from shared.ports.reranker import Reranker, RerankError, scores_in_order

#: Cohere Rerank on Bedrock takes at most 1,000 documents per call.
MAX_DOCUMENTS = 1000

_THROTTLED = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}


class BedrockReranker(Reranker):
    """``client`` is a ``bedrock-runtime`` client (see ``bedrock_runtime_client``)."""

    def __init__(self, model: str, *, client: Any, model_id: str | None = None) -> None:
        if not model.startswith("cohere.rerank-"):
            raise RerankError(f"The Bedrock rerank model {model} is not supported.")
        self.model = model
        self.model_id = model_id or f"{model}@Bedrock"
        self._client = client

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        if isinstance(texts, str):
            raise TypeError("rerank takes a sequence of texts, not one string")
        texts = list(texts)
        scores: list[float] = []
        for start in range(0, len(texts), MAX_DOCUMENTS):
            scores.extend(self._call(query, texts[start : start + MAX_DOCUMENTS]))
        return scores

    def _call(self, query: str, texts: list[str]) -> list[float]:
        what = f"The Bedrock model {self.model}"
        body = {"query": query, "documents": [t or " " for t in texts], "top_n": len(texts), "api_version": 2}
        try:
            response = self._client.invoke_model(
                modelId=self.model, body=json.dumps(body), contentType="application/json", accept="application/json"
            )
            answer = json.loads(response["body"].read())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "")
            if code in _THROTTLED:
                raise RerankError(f"{what} is throttled; try again later.") from exc
            raise RerankError(f"{what} failed ({code or 'error'}): {message}") from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise RerankError(f"{what} timed out.") from exc
        except BotoCoreError as exc:  # no credentials, endpoint unreachable ...
            raise RerankError(f"Could not call the Bedrock model {self.model}: {exc}") from exc
        except ValueError as exc:  # not JSON
            raise RerankError(f"{what} gave an unreadable answer.") from exc
        results = answer.get("results") if isinstance(answer, dict) else None
        return scores_in_order(results, len(texts), what=what)
