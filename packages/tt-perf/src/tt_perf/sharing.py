"""Weight sharing: each layer's surviving weights replaced by one of a few shared values.

After pruning, a layer keeps some thousands of non-zero weights. Weight sharing (the second
stage of Deep Compression, Han et al. 2016) clusters them by value into ``k`` groups with
k-means and replaces each weight by its group's centroid: the layer is then a *codebook* of
``k`` float32 values plus one index of ``log2(k)`` bits per weight (16 centroids: 4 bits
instead of 32).

The clustering is one-dimensional, so each Lloyd iteration is two vectorised steps: every
weight goes to the nearest centroid (the cells are the intervals between the midpoints of
the sorted centroids, found with ``np.searchsorted``), then every centroid moves to the mean
of its cell (``np.bincount``). The centroids start spread linearly over the weights' range,
as Deep Compression found best: the few large weights, which matter most, keep centroids of
their own instead of being pulled towards the crowd near zero.

Pruned weights (exact zeros) take no part: they stay zero and cost no index.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tt_core import ArgumentError, Module

from .pruning import prunable_layers

MAX_CLUSTERS = 256  # indices fit a uint8


def assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted ``centroids`` for every value (ties to the lower one)."""
    midpoints = (centroids[1:] + centroids[:-1]) / 2
    return np.searchsorted(midpoints, values, side="left").astype(np.uint8)


def kmeans_codebook(values: np.ndarray, clusters: int, iterations: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """One-dimensional k-means of ``values``, initialised linearly over their range.

    Returns ``(centroids, codes)``: ``clusters`` sorted float32 centroids and, for every
    value, the uint8 index of its centroid (``centroids[codes]`` is the shared value).

    Raises:
        ArgumentError: ``clusters`` outside 1..256, or no values to cluster.

    Examples:
        >>> centroids, codes = kmeans_codebook(np.array([-1.0, -0.9, 0.5, 0.6, 0.55]), 2)
        >>> [round(float(c), 2) for c in centroids], codes.tolist()
        ([-0.95, 0.55], [0, 0, 1, 1, 1])
    """
    if not 1 <= clusters <= MAX_CLUSTERS:
        raise ArgumentError(f"clusters must be between 1 and {MAX_CLUSTERS} (uint8 indices), got {clusters}")
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size == 0:
        raise ArgumentError("k-means needs at least one value to cluster (is every weight of the layer pruned?)")
    centroids = np.linspace(values.min(), values.max(), clusters, dtype=np.float64)
    for _ in range(iterations):
        codes = assign(values, centroids)
        counts = np.bincount(codes, minlength=clusters)
        sums = np.bincount(codes, weights=values, minlength=clusters)
        centroids = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), centroids))
    centroids = centroids.astype(np.float32)
    return centroids, assign(values, centroids)


def share_weights(model: Module, clusters: int | dict[str, int] = 16, *, iterations: int = 15,
                  skip: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Replace the non-zero weights of every Linear and Conv2d layer by their k-means centroid (in place).

    Args:
        model: the (pruned) model; zeros stay zero.
        clusters: centroids per layer, one number for all or ``{layer name: number}``
            (layers not named get 16).
        iterations: Lloyd iterations per layer.
        skip: dotted names of layers to leave as they are.

    Returns:
        ``{layer name: codebook}``, the sorted centroids of each shared layer.

    Examples:
        >>> import tt_core as tt
        >>> model = tt.Sequential(tt.Linear(8, 4))
        >>> books = share_weights(model, 3)
        >>> len(np.unique(model[0].weight.data)) <= 3, books["0"].shape
        (True, (3,))
    """
    books = {}
    for name, layer in prunable_layers(model, skip):
        weight = layer.weight.data
        kept = weight != 0
        if not kept.any():
            continue
        k = clusters.get(name, 16) if isinstance(clusters, dict) else clusters
        centroids, codes = kmeans_codebook(weight[kept], k, iterations)
        shared = weight.copy(order="K")  # the layout of the weight (a Linear's is column-major)
        shared[kept] = centroids[codes]
        layer.weight.data = shared
        books[name] = centroids
    return books
