"""What a running canvas needs from outside: chat models and the tenant's datasets.

The service layer provides both, bound to the tenant the agent belongs to, so components never see
tenants, stores or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.ports.chat_model import ChatModel


@dataclass(frozen=True)
class RetrievalSettings:
    """How a Retrieval component (or tool) searches; RAGFlow's parameter names and defaults."""

    dataset_ids: tuple[str, ...]
    top_n: int = 8
    top_k: int = 1024
    similarity_threshold: float = 0.2
    keywords_similarity_weight: float = 0.5
    rerank_id: str | None = None


@dataclass(frozen=True)
class RetrievedChunks:
    """Chunks as the retrieval API returns them (``id``, ``content``, ``document_id``, ``document_keyword``
    ...), best first, and the per-document counts (``doc_name``, ``doc_id``, ``count``)."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    doc_aggs: list[dict[str, Any]] = field(default_factory=list)


class Knowledge(Protocol):
    """The tenant's datasets, as a canvas may use them."""

    def dataset_id(self, name_or_id: str) -> str | None:
        """The id of the tenant's dataset with this id or name, None when the tenant has none such."""

    def retrieve(self, question: str, settings: RetrievalSettings) -> RetrievedChunks:
        """Chunks of the datasets most similar to ``question``. Raises ComponentError when it cannot."""


#: The chat model for an ``llm_id`` (``name@factory``; None or "" for the tenant's default). Raises
#: ChatModelError when the model is unknown or not configured.
ChatModels = Callable[[str | None], ChatModel]


@dataclass(frozen=True)
class Runtime:
    chat_model: ChatModels
    knowledge: Knowledge
