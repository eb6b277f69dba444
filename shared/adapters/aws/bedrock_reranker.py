"""Cohere Rerank on Amazon Bedrock (``bedrock-runtime`` InvokeModel, ``cohere.rerank-v3-5:0``)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from shared.ports.reranker import BatchedReranker, RerankError, scores_in_order

_THROTTLED = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}


class BedrockReranker(BatchedReranker):
    """``client`` is a ``bedrock-runtime`` client (see ``bedrock_runtime_client``)."""

    #: Cohere Rerank on Bedrock takes at most 1,000 documents per call.
    batch_size = 1000

    def __init__(self, model: str, *, client: Any, model_id: str | None = None) -> None:
        if not model.startswith("cohere.rerank-"):
            raise RerankError(f"The Bedrock rerank model {model} is not supported.")
        self.model = model
        self.model_id = model_id or f"{model}@Bedrock"
        self._client = client

    def _score_batch(self, query: str, texts: list[str]) -> list[float]:
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
