"""Reranker port: scores how relevant each text is to a query, for retrieval's rerank step.

A rerank model, when configured, replaces vector similarity in RAGFlow's hybrid score, so every adapter
returns relevance in [0, 1], one score per text, in the order of the texts.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

from shared.user_errors import UserFacingError


class RerankError(UserFacingError):
    """The texts could not be reranked. ``message`` is fit to show to the API's user; it never holds secrets."""


class Reranker(ABC):
    """One rerank model. Instances are built once per process and are safe to share between threads."""

    #: RAGFlow's ``name@factory`` id of the model.
    model_id: str

    @abstractmethod
    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to ``query``: in [0, 1], one per text, in the order of ``texts``.

        Raises :class:`RerankError` when the model cannot score them.
        """


class BatchedReranker(Reranker):
    """A rerank API that takes at most ``batch_size`` texts a call: the texts go in batches, scores come back
    in order. Subclasses score one batch."""

    batch_size: int = 1000

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        if isinstance(texts, str):
            raise TypeError("rerank takes a sequence of texts, not one string")
        texts = list(texts)
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            scores.extend(self._score_batch(query, texts[start : start + self.batch_size]))
        return scores

    @abstractmethod
    def _score_batch(self, query: str, texts: list[str]) -> list[float]:
        """Scores of at most ``batch_size`` texts, in their order."""


def scores_in_order(results: object, count: int, *, what: str) -> list[float]:
    """Cohere-style ``[{"index", "relevance_score"}]`` as one score per text in input order (0 when absent).

    Scores already in [0, 1] are kept; when any falls outside (a server answering raw logits, as some
    cross-encoder servers do), every score goes through the logistic function so the order is kept.
    Raises :class:`RerankError` (mentioning ``what``) for an answer of another shape.
    """
    if not isinstance(results, list):
        raise RerankError(f"{what} gave an unreadable answer.")
    scores = [0.0] * count
    raw: dict[int, float] = {}
    for item in results:
        if not isinstance(item, dict):
            raise RerankError(f"{what} gave an unreadable answer.")
        index = item.get("index")
        score = item.get("relevance_score", item.get("score"))
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < count
            or isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
        ):
            raise RerankError(f"{what} gave an unreadable answer.")
        raw[index] = float(score)
    logits = any(not 0.0 <= s <= 1.0 for s in raw.values())
    for index, score in raw.items():
        scores[index] = 1.0 / (1.0 + math.exp(-score)) if logits else score
    return scores
