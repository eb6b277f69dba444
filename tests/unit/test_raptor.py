"""RAPTOR's clustering (PCA and a numpy Gaussian mixture chosen by BIC) and its tree of summaries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from shared.rag.raptor import (
    GaussianMixture,
    RaptorSettings,
    build_tree,
    clean_summary,
    cluster,
    cluster_content,
    optimal_clusters,
    reduce_dimensions,
)

SETTINGS = RaptorSettings(prompt="{cluster_content}")


def blobs(centres: int, per: int, dim: int = 16, spread: float = 0.05, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = np.vstack([rng.normal(size=dim) * 3 + rng.normal(size=(per, dim)) * spread for _ in range(centres)])
    normed: np.ndarray = points / np.linalg.norm(points, axis=1, keepdims=True)
    return normed


def test_pca_keeps_the_main_directions() -> None:
    x = blobs(2, 10)
    reduced = reduce_dimensions(x, 3)
    assert reduced.shape == (20, 3)
    assert reduce_dimensions(x[:2], 12).shape == (2, 2)  # never more components than points allow


def test_the_mixture_finds_separated_clusters_and_bic_prefers_them() -> None:
    x = reduce_dimensions(blobs(3, 15), 2)
    labels = GaussianMixture(3, seed=0).fit(x).predict_proba(x).argmax(axis=1)
    assert sorted(np.bincount(labels)) == [15, 15, 15]
    assert optimal_clusters(x, 8, seed=0) == 3
    probabilities = GaussianMixture(2, seed=0).fit(x).predict_proba(x)
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_clusters_cover_every_row_once_and_are_reproducible() -> None:
    x = blobs(3, 12, dim=32)
    first = cluster(x, SETTINGS)
    assert sorted(i for group in first for i in group) == list(range(36)) and all(first)
    assert cluster(x, SETTINGS) == first  # the seed makes it deterministic
    assert cluster(x, RaptorSettings(prompt="", max_cluster=1)) == [list(range(36))]


def test_a_tree_is_built_layer_by_layer_up_to_one_root() -> None:
    x = blobs(3, 6, dim=16)
    texts = [f"text {i}" for i in range(len(x))]
    asked: list[Sequence[str]] = []
    layers: list[tuple[int, int]] = []

    def summarize(members: Sequence[str]) -> str:
        asked.append(members)
        return f"summary of {len(members)}"

    rng = np.random.default_rng(3)
    tree = build_tree(
        texts,
        x,
        SETTINGS,
        summarize,
        lambda text: rng.normal(size=16).astype(np.float32),
        lambda a, b: layers.append((a, b)),
    )
    assert tree and tree[-1].layer == max(s.layer for s in tree) and layers[-1][1] == 1
    assert [b for _, b in layers] == [len([s for s in tree if s.layer == n]) for n in range(1, len(layers) + 1)]
    assert sorted(t for members in asked[: layers[0][1]] for t in members) == sorted(texts)
    assert all(s.vector.dtype == np.float32 for s in tree)


def test_nothing_to_summarize_below_two_chunks() -> None:
    assert build_tree(["only"], np.ones((1, 4)), SETTINGS, lambda m: pytest.fail("asked"), lambda t: np.ones(4)) == []
    two = build_tree(["a", "b"], np.eye(2), SETTINGS, lambda m: "+".join(m), lambda t: np.ones(2, dtype=np.float32))
    assert [(s.content, s.layer) for s in two] == [("a+b", 1)]


def test_cluster_content_shares_the_context_and_summaries_drop_truncation_notes() -> None:
    content = cluster_content(["word " * 500, "short"], RaptorSettings(prompt="", max_token=100, context_tokens=300))
    assert content.endswith("\nshort") and len(content.split()) < 150
    assert clean_summary("A summary. For the content length reason, it stopped, continue?") == "A summary."
