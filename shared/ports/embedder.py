"""Embedder port: turns texts into unit-length vectors for retrieval.

Every adapter returns float32 rows of L2 norm 1 (a zero row only when the model gave a zero vector), so
cosine similarity is a dot product and vectors from any adapter can be stored and compared the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from shared.user_errors import UserFacingError

Vectors = npt.NDArray[np.float32]


class EmbeddingError(UserFacingError):
    """The texts could not be embedded. ``message`` is fit to show to the API's user; it never holds secrets."""


class EmbeddingConfigError(EmbeddingError):
    """The model is unknown, unsupported, or lacks what it needs to run (endpoint, API key, model files)."""


class EmbeddingServiceError(EmbeddingError):
    """The model's service failed: unreachable, too slow, refused the request, or answered nonsense."""


class Embedder(ABC):
    """One embedding model. Instances are built once per process and are safe to share between threads."""

    #: RAGFlow's ``name@factory`` id of the model.
    model_id: str

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of every vector this model returns."""

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed passages to index: shape ``(len(texts), dimension)``, rows in the order of ``texts``.

        Raises :class:`EmbeddingError` when the model cannot embed them.
        """

    def embed_query(self, text: str) -> Vectors:
        """Embed a search query: shape ``(dimension,)``.

        Symmetric models embed a query like a passage; models with a query mode (Cohere) override this.
        """
        return self.embed_documents([text]).reshape(-1)


def normalize_rows(vectors: npt.ArrayLike) -> Vectors:
    """``vectors`` as float32 rows scaled to unit L2 norm; all-zero rows stay zero."""
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit = np.zeros_like(rows)
    np.divide(rows, norms, out=unit, where=norms > 0)
    return unit
