"""Zhang et al.'s quantised ab space: 313 in-gamut bins on a grid of 10.

Used by the classification head (soft-encoded targets, annealed-mean decoding) and by the
rare-color loss weights (ab histograms of the training set).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.spatial import ConvexHull, Delaunay

from segcolor.color.lab import rgb_to_lab

GRID = 10.0
NUM_BINS = 313
ANNEAL_T = 0.38


@lru_cache(maxsize=1)
def _bin_centers_np() -> np.ndarray:
    """Grid points whose 20x20 ab neighbourhood touches the sRGB gamut (exactly 313 of them)."""
    axis = np.linspace(0.0, 1.0, 32)
    rgb = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), 0).reshape(3, -1, 1)
    ab = rgb_to_lab(torch.from_numpy(rgb))[1:, :, 0].numpy().T
    hull = Delaunay(ab[ConvexHull(ab).vertices])
    ticks = np.arange(-110.0, 111.0, GRID)
    grid = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)
    offsets = np.linspace(-GRID, GRID, 5)
    keep = np.zeros(len(grid), dtype=bool)
    for dx in offsets:
        for dy in offsets:
            keep |= hull.find_simplex(grid + (dx, dy)) >= 0
    centers = grid[keep].astype(np.float32)
    assert len(centers) == NUM_BINS, len(centers)
    return centers


def bin_centers(device: torch.device | str | None = None) -> torch.Tensor:
    """(313, 2) ab values of the bin centers."""
    return torch.from_numpy(_bin_centers_np()).to(device)


def _sq_dist_to_centers(ab: torch.Tensor) -> torch.Tensor:
    """(B,2,H,W) ab -> (B,313,H,W) squared distances to every bin center."""
    centers = bin_centers(ab.device).to(ab.dtype)
    diff = ab.unsqueeze(1) - centers.view(1, NUM_BINS, 2, 1, 1)
    return (diff**2).sum(dim=2)


_OFFSET = 11  # grid ticks -110..110 -> table rows 0..22


@lru_cache(maxsize=1)
def _grid_table_np() -> np.ndarray:
    """(23, 23) bin index of each grid point, -1 where the grid point is not one of the 313."""
    table = np.full((2 * _OFFSET + 1, 2 * _OFFSET + 1), -1, dtype=np.int64)
    cells = np.rint(_bin_centers_np() / GRID).astype(np.int64) + _OFFSET
    table[cells[:, 0], cells[:, 1]] = np.arange(NUM_BINS)
    return table


def nearest_bin(ab: torch.Tensor) -> torch.Tensor:
    """(B,2,H,W) ab -> (B,H,W) index of the nearest bin center, in O(pixels) memory.

    Bin centers are grid points, so rounding to the grid finds the nearest center whenever the
    rounded point is a bin; only pixels outside the 313 (out of gamut, e.g. after a saturation
    boost) need the full search.
    """
    ab = ab.float()
    table = torch.from_numpy(_grid_table_np()).to(ab.device)
    cell = torch.round(ab / GRID).long().clamp(-_OFFSET, _OFFSET) + _OFFSET
    index = table[cell[:, 0], cell[:, 1]]
    missing = index < 0
    if missing.any():
        points = ab.permute(0, 2, 3, 1)[missing]
        index[missing] = torch.cdist(points, bin_centers(ab.device)).argmin(dim=1)
    return index


def soft_encode(ab: torch.Tensor, neighbours: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """(B,2,H,W) ab -> (B,313,H,W) target distribution: a Gaussian over the nearest bins."""
    dist2 = _sq_dist_to_centers(ab)
    near_d2, near_idx = dist2.topk(neighbours, dim=1, largest=False)
    weights = torch.exp(-near_d2 / (2.0 * sigma**2))
    weights = weights / weights.sum(dim=1, keepdim=True)
    return torch.zeros_like(dist2).scatter_(1, near_idx, weights)


def annealed_mean(logits: torch.Tensor, temperature: float = ANNEAL_T) -> torch.Tensor:
    """(B,313,H,W) logits -> (B,2,H,W) ab: the mean of the re-tempered distribution.

    T=1 is the mean (desaturated), T->0 the mode (vivid but patchy); 0.38 is Zhang's compromise.
    """
    probs = torch.softmax(logits.float() / temperature, dim=1)
    centers = bin_centers(logits.device)
    return torch.einsum("bqhw,qc->bchw", probs, centers)


def ab_histogram(ab: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Counts of pixels per bin, (313,) float64, for class-rebalancing statistics;
    ``weights`` (B,H,W) counts each pixel by its weight (e.g. its routing weight)."""
    idx = nearest_bin(ab).flatten()
    w = None if weights is None else weights.flatten().double()
    return torch.bincount(idx, weights=w, minlength=NUM_BINS).double().cpu()


def rare_color_weights(prob: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Per-bin weights proportional to 1/sqrt(p + eps), normalised so E_p[w] = 1 (seed 003)."""
    weights = 1.0 / torch.sqrt(prob + eps)
    return weights / (prob * weights).sum()


def zhang_rebalance_weights(prob: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Zhang's weights ((1 - lam) p + lam / Q)^-1, normalised so E_p[w] = 1."""
    weights = 1.0 / ((1.0 - lam) * prob + lam / NUM_BINS)
    return weights / (prob * weights).sum()
