"""The widely used HTTP rerank API (Cohere, Jina, vLLM, Infinity, TEI-compatible gateways ...).

``POST {base_url}/rerank`` with ``{"model", "query", "documents", "top_n"}`` answers
``{"results": [{"index", "relevance_score"}, ...]}`` (Voyage AI: under ``data``, and its count field is
``top_k``); a bare list of ``{"index", "score"}`` (TEI) is read too.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.ports.reranker import BatchedReranker, RerankError, scores_in_order

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_MAX_DETAIL = 300


class HttpReranker(BatchedReranker):
    """One model behind a ``/rerank`` endpoint. ``api_key`` (if any) goes in a bearer header, nowhere else."""

    #: Most rerank services accept up to 1,000 documents per call.
    batch_size = 1000

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        model_id: str | None = None,
        top_n_field: str = "top_n",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.model_id = model_id or model
        self.url = base_url.rstrip("/") + "/rerank"
        self._top_n_field = top_n_field
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def _score_batch(self, query: str, texts: list[str]) -> list[float]:
        what = f"The rerank model {self.model_id}"
        body = {
            "model": self.model,
            "query": query,
            "documents": [t or " " for t in texts],
            self._top_n_field: len(texts),
        }
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise RerankError(f"{what} timed out.") from exc
        except httpx.HTTPError as exc:
            raise RerankError(f"Could not reach the rerank model {self.model_id} ({type(exc).__name__}).") from exc
        if response.status_code >= 400:
            raise RerankError(f"{what} failed (HTTP {response.status_code}){_detail(response)}.")
        try:
            answer: Any = response.json()
        except ValueError as exc:
            raise RerankError(f"{what} gave an unreadable answer.") from exc
        results = (answer.get("results") or answer.get("data")) if isinstance(answer, dict) else answer
        return scores_in_order(results, len(texts), what=what)


def _detail(response: httpx.Response) -> str:
    """The provider's error message, short (providers put it in ``message``, ``detail`` or ``error``)."""
    try:
        answer = response.json()
    except ValueError:
        return ""
    message: Any = None
    if isinstance(answer, dict):
        message = answer.get("message") or answer.get("detail") or answer.get("error")
        if isinstance(message, dict):
            message = message.get("message")
    if not isinstance(message, str) or not message.strip():
        return ""
    return ": " + message.strip()[:_MAX_DETAIL]
