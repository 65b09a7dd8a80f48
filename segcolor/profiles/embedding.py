"""A fixed-length embedding of a Dominant Color Descriptor, for K-means over profiles.

Why an embedding and K-means rather than k-medoids under the MPEG-7 distance: that distance is
a *matching* distance. Its similarity ``a_ij`` is 0 beyond Td (16 Lab units), so a photo whose
colors are all more than 16 units from another's is exactly as far from it whether it is a
slightly different orange or a blue; clusters built on it split on accidents of matching. The
embedding below keeps the same quadratic form ``D^2 = p1'Ap1 + p2'Ap2 - 2 p1'Ap2`` but with a
Gaussian similarity of longer reach, so distance keeps growing as colors move apart, and it is
Euclidean, so K-means has real centroids (the mean of members' embeddings is the embedding of
their pooled colors) at O(N K) per step instead of k-medoids' O(N^2) distance matrix.

The embedding is the descriptor's colors, weighted by their shares, spread over the 313 in-gamut
ab bins (``segcolor.color.bins``) with a Gaussian of width ``sigma``: a smoothed ab histogram
that sums to 1. Lightness is left out on purpose: the colorizer gets L from the photo and has
to supply only ab, so profiles that differ in lightness alone are profiles no expert needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segcolor.color.bins import bin_centers
from segcolor.color.dcd import DominantColors

SIGMA = 16.0  # Lab units; the similarity of two colors is exp(-d^2 / (4 sigma^2))
KIND = "ab-gaussian-313"


def embed(descriptors: Sequence[DominantColors], sigma: float = SIGMA) -> np.ndarray:
    """(N, 313) float32: each descriptor as a Gaussian-smoothed ab distribution."""
    centers = bin_centers().double().numpy()  # (313, 2)
    out = np.zeros((len(descriptors), len(centers)), dtype=np.float64)
    for i, d in enumerate(descriptors):
        if not len(d):
            continue
        diff = d.colors[:, None, 1:] - centers[None]  # (n, 313, 2)
        kernel = np.exp(-(diff**2).sum(-1) / (2.0 * sigma**2))
        kernel /= kernel.sum(1, keepdims=True)  # each color keeps exactly its share
        out[i] = d.percents @ kernel
    return out.astype(np.float32)
