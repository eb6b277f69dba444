"""RAPTOR (recursive abstractive processing for tree-organized retrieval), as RAGFlow builds it.

A document's chunk vectors are clustered layer by layer: the vectors are reduced in dimension, a Gaussian
mixture is fitted with the number of clusters chosen by BIC, each cluster's texts are summarized by the
chat model and the summary embedded; the summaries form the next layer, until one node is left. The
summaries become chunks of the document (marked ``raptor``) and take part in retrieval like the others.

RAGFlow reduces dimensions with UMAP and fits scikit-learn's GaussianMixture. Both are heavy for a Lambda
layer (UMAP needs numba and llvmlite, scikit-learn scipy: together well over 100 MB), so this module does
the same in numpy: PCA (an SVD) for the reduction, and a full-covariance Gaussian mixture fitted by EM
from a k-means++ start (scikit-learn's defaults: ``reg_covar=1e-6``, ``tol=1e-3``, 100 iterations), with
scikit-learn's BIC. Cluster membership follows RAGFlow: the first cluster whose probability exceeds
``threshold`` (the most probable one when none does).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shared.rag.tokens import truncate

Matrix = NDArray[np.float64]
#: Summarize the texts of one cluster (the prompt is built by the caller's ``summarize``).
Summarize = Callable[[Sequence[str]], str]
#: Embed one summary: a vector of the dataset's embedding model.
Embed = Callable[[str], NDArray[np.float32]]
#: Told after each layer: (nodes in the layer clustered, summaries made from them).
LayerDone = Callable[[int, int], None]

#: RAGFlow reduces to at most 12 dimensions before clustering.
MAX_COMPONENTS = 12
#: Summaries some models cut short end with this; it is not part of the summary.
_TRUNCATION_MARKS = re.compile(
    r"(······\n由于长度的原因，回答被截断了，要继续吗？"  # noqa: RUF001 - the Chinese model's own words
    r"|For the content length reason, it stopped, continue\?)"
)


@dataclass(frozen=True)
class RaptorSettings:
    """From the dataset's ``parser_config.raptor``."""

    prompt: str
    max_token: int = 256
    threshold: float = 0.1
    max_cluster: int = 64
    random_seed: int = 0
    #: The chat model's context, shared among the texts of a cluster.
    context_tokens: int = 8192


@dataclass(frozen=True)
class Summary:
    """A node of the tree above the chunks: its text, its vector and its layer (1: summaries of chunks)."""

    content: str
    vector: NDArray[np.float32]
    layer: int


# == dimension reduction and clustering ====================================================================
def reduce_dimensions(vectors: Matrix, components: int) -> Matrix:
    """``vectors`` projected on their first principal components."""
    centered = vectors - vectors.mean(axis=0)
    components = max(1, min(components, *centered.shape))
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    projected: Matrix = centered @ vt[:components].T
    return projected


class GaussianMixture:
    """A full-covariance Gaussian mixture fitted by EM (scikit-learn's ``GaussianMixture`` defaults)."""

    def __init__(
        self, n_components: int, *, seed: int = 0, max_iter: int = 100, tol: float = 1e-3, reg_covar: float = 1e-6
    ) -> None:
        self.k = n_components
        self._rng = np.random.default_rng(seed)
        self._max_iter = max_iter
        self._tol = tol
        self._reg = reg_covar
        self.weights = np.ones(n_components) / n_components
        self.means: Matrix = np.zeros((0, 0))
        self.covariances: Matrix = np.zeros((0, 0, 0))

    def fit(self, x: Matrix) -> GaussianMixture:
        resp = np.zeros((len(x), self.k))
        resp[np.arange(len(x)), self._kmeans_labels(x)] = 1.0
        self._m_step(x, resp)
        lower_bound = -np.inf
        for _ in range(self._max_iter):
            log_norm, resp = self._e_step(x)
            self._m_step(x, resp)
            bound = float(log_norm.mean())
            if abs(bound - lower_bound) < self._tol:
                break
            lower_bound = bound
        return self

    def _kmeans_labels(self, x: Matrix, iterations: int = 10) -> NDArray[np.intp]:
        """k-means++ seeding then a few Lloyd iterations: the starting responsibilities."""
        centers = [x[self._rng.integers(len(x))]]
        for _ in range(1, self.k):
            d2 = np.min([((x - c) ** 2).sum(axis=1) for c in centers], axis=0)
            total = d2.sum()
            pick = self._rng.choice(len(x), p=d2 / total) if total > 0 else self._rng.integers(len(x))
            centers.append(x[pick])
        c = np.asarray(centers)
        labels = np.zeros(len(x), dtype=np.intp)
        for _ in range(iterations):
            labels = np.argmin(((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2), axis=1)
            for j in range(self.k):
                members = x[labels == j]
                if len(members):
                    c[j] = members.mean(axis=0)
        return labels

    def _m_step(self, x: Matrix, resp: Matrix) -> None:
        counts = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
        self.weights = counts / counts.sum()
        self.means = (resp.T @ x) / counts[:, None]
        diff = x[None, :, :] - self.means[:, None, :]  # (k, n, d)
        weighted = resp.T[:, :, None] * diff
        covariances = np.swapaxes(weighted, 1, 2) @ diff / counts[:, None, None]
        self.covariances = covariances + self._reg * np.eye(x.shape[1])

    def _log_prob(self, x: Matrix) -> Matrix:
        """log(weight_j * N(x_i | mean_j, cov_j)) for every row i and component j (batched over components)."""
        d = x.shape[1]
        chol = np.linalg.cholesky(self.covariances)  # (k, d, d)
        diff = np.swapaxes(x[None, :, :] - self.means[:, None, :], 1, 2)  # (k, d, n)
        solved = np.linalg.solve(chol, diff)
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)  # (k,)
        out = -0.5 * (d * math.log(2 * math.pi) + log_det[:, None] + (solved**2).sum(axis=1))  # (k, n)
        weighted: Matrix = out.T + np.log(self.weights)
        return weighted

    def _e_step(self, x: Matrix) -> tuple[NDArray[np.float64], Matrix]:
        weighted = self._log_prob(x)
        peak = weighted.max(axis=1, keepdims=True)
        log_norm = (peak + np.log(np.exp(weighted - peak).sum(axis=1, keepdims=True))).reshape(-1)
        return log_norm, np.exp(weighted - log_norm[:, None])

    def predict_proba(self, x: Matrix) -> Matrix:
        return self._e_step(x)[1]

    def bic(self, x: Matrix) -> float:
        """Bayesian information criterion (lower is better), as scikit-learn computes it."""
        n, d = x.shape
        log_norm, _ = self._e_step(x)
        parameters = self.k * d * (d + 1) / 2 + self.k * d + self.k - 1
        return float(-2.0 * log_norm.sum() + parameters * math.log(n))


def optimal_clusters(x: Matrix, max_cluster: int, seed: int) -> int:
    """The number of clusters with the lowest BIC among 1 … min(max_cluster, n) - 1 (RAGFlow's range)."""
    upper = min(max_cluster, len(x))
    candidates = range(1, max(2, upper))
    bics = [GaussianMixture(k, seed=seed).fit(x).bic(x) for k in candidates]
    return candidates[int(np.argmin(bics))]


def cluster(vectors: Matrix, settings: RaptorSettings) -> list[list[int]]:
    """One layer's clusters: lists of row indices, each non-empty, every row in exactly one."""
    n = len(vectors)
    reduced = reduce_dimensions(vectors, min(MAX_COMPONENTS, n - 2))
    k = optimal_clusters(reduced, settings.max_cluster, settings.random_seed)
    if k == 1:
        return [list(range(n))]
    probabilities = GaussianMixture(k, seed=settings.random_seed).fit(reduced).predict_proba(reduced)
    labels = []
    for row in probabilities:
        above = np.flatnonzero(row > settings.threshold)
        labels.append(int(above[0]) if len(above) else int(np.argmax(row)))
    groups = [[i for i, label in enumerate(labels) if label == c] for c in range(k)]
    return [group for group in groups if group]


# == the tree ===============================================================================================
def cluster_content(texts: Sequence[str], settings: RaptorSettings) -> str:
    """The texts of a cluster as one prompt fills ``{cluster_content}``: each cut to its share of the context."""
    share = max(1, int((settings.context_tokens - settings.max_token) / max(1, len(texts))))
    return "\n".join(truncate(text, share) for text in texts)


def clean_summary(text: str) -> str:
    return _TRUNCATION_MARKS.sub("", text).strip()


def build_tree(
    texts: Sequence[str],
    vectors: NDArray[np.floating],
    settings: RaptorSettings,
    summarize: Summarize,
    embed: Embed,
    on_layer: LayerDone | None = None,
) -> list[Summary]:
    """The summaries above ``texts`` (with their ``vectors``), layer by layer until one node is left.

    Fewer than two chunks make no tree. ``summarize`` and ``embed`` raise what their models raise.
    """
    nodes = [(t, np.asarray(v, dtype=np.float32)) for t, v in zip(texts, vectors, strict=True) if t and len(v)]
    if len(nodes) <= 1:
        return []
    summaries: list[Summary] = []
    start, end, layer = 0, len(nodes), 1
    while end - start > 1:
        layer_vectors = np.asarray([v for _, v in nodes[start:end]], dtype=np.float64)
        groups = [[0, 1]] if end - start == 2 else cluster(layer_vectors, settings)
        for group in groups:
            content = clean_summary(summarize([nodes[start + i][0] for i in group]))
            vector = np.asarray(embed(content), dtype=np.float32)
            nodes.append((content, vector))
            summaries.append(Summary(content, vector, layer))
        if on_layer is not None:
            on_layer(end - start, len(nodes) - end)
        if len(nodes) - end >= end - start:
            break  # no cluster merged anything (every node its own cluster): stop rather than loop forever
        start, end, layer = end, len(nodes), layer + 1
    return summaries
