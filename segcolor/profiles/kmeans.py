"""K-means (k-means++ seeding, several restarts) in numpy: deterministic given the seed.

Short enough to keep here rather than depend on scikit-learn for one algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KMeansResult:
    centers: np.ndarray  # (K, D)
    labels: np.ndarray  # (N,)
    inertia: float  # sum of squared distances to the assigned centers


def _sq_dist(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(1)[None]
    return np.maximum(d2, 0.0)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++: each new center drawn with probability proportional to D(x)^2."""
    centers = [x[rng.integers(len(x))]]
    closest = _sq_dist(x, centers[0][None])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        index = rng.choice(len(x), p=closest / total) if total > 0 else rng.integers(len(x))
        centers.append(x[index])
        closest = np.minimum(closest, _sq_dist(x, x[index][None])[:, 0])
    return np.stack(centers)


def _lloyd(
    x: np.ndarray, centers: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, float]:
    for _ in range(max_iter):
        labels = _sq_dist(x, centers).argmin(1)
        new = centers.copy()
        for j in range(len(centers)):
            members = x[labels == j]
            if len(members):
                new[j] = members.mean(0)
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= tol:
            break
    d2 = _sq_dist(x, centers)
    labels = d2.argmin(1)
    return centers, labels, float(d2[np.arange(len(x)), labels].sum())


def kmeans(
    x: np.ndarray, k: int, seed: int = 0, n_init: int = 10, max_iter: int = 100, tol: float = 1e-9
) -> KMeansResult:
    """The best of ``n_init`` k-means++ runs; clusters are numbered largest first."""
    x = np.asarray(x, dtype=np.float64)
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of points ({len(x)}), got {k}")
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        run = _lloyd(x, _plus_plus(x, k, rng), max_iter, tol)
        if best is None or run[2] < best[2]:
            best = run
    assert best is not None
    centers, labels, inertia = best
    sizes = np.bincount(labels, minlength=k)
    order = np.lexsort((np.arange(k), -sizes))  # largest first; ties by index (stable)
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return KMeansResult(centers=centers[order], labels=remap[labels], inertia=inertia)


def assign(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center for each row of ``x``."""
    return _sq_dist(np.asarray(x, dtype=np.float64), np.asarray(centers, dtype=np.float64)).argmin(
        1
    )
