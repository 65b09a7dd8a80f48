"""Composite the experts' ab by per-pixel weights, feathered so no seam shows.

Each expert's ab comes as patches (the crops it ran on); a pixel outside all of an expert's
patches gets zero weight from it. The weights are blurred with a Gaussian and renormalised to
sum to 1, so where two experts meet their colors blend over a few pixels instead of jumping.
Plain tensors in and out: nothing here knows about routers, categories or pipelines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from segcolor.merge.crops import Box

_EPS = 1e-6


@dataclass
class Patch:
    """An expert's ab over one crop."""

    expert: int  # channel of the weights tensor
    box: Box  # x0, y0, x1, y1 in working pixels
    ab: torch.Tensor  # (2, y1 - y0, x1 - x0)


def feather_sigma(fraction: float, size: tuple[int, int]) -> float:
    """Blur sigma in pixels: ``fraction`` of the short side, so the look is size-independent."""
    return fraction * min(size)


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (K,H,W) maps; borders replicate (weights do not fade out)."""
    if sigma <= 0:
        return maps
    radius = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-(x**2) / (2.0 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = maps.shape[0]
    out = maps[None]
    out = F.pad(out, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return out[0]


def normalize(weights: torch.Tensor) -> torch.Tensor:
    """Scale (K,H,W) weights to sum to 1 per pixel (pixels with no weight stay 0)."""
    return weights / weights.sum(0, keepdim=True).clamp_min(_EPS)


def feather(weights: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blurred, renormalised weights: soft transitions about ``sigma`` px wide."""
    return normalize(gaussian_blur(weights, sigma)) if sigma > 0 else weights


def one_hot(labels: torch.Tensor, count: int) -> torch.Tensor:
    """(H,W) int labels -> (count,H,W) hard weights."""
    return F.one_hot(labels.long(), count).permute(2, 0, 1).float()


def edge_window(box: Box, size: tuple[int, int], ramp: float, device=None) -> torch.Tensor:
    """(h,w) trust in a crop's pixels: rising from ~0 at a cut edge to 1 at ``ramp`` px inside.
    Edges on the image border are not cuts (a whole-image run sees the same border)."""
    x0, y0, x1, y1 = box

    def axis(lo: int, hi: int, limit: int) -> torch.Tensor:
        pos = torch.arange(lo, hi, device=device, dtype=torch.float32) + 0.5
        out = torch.ones(hi - lo, device=device)
        if ramp > 0 and lo > 0:
            out = torch.minimum(out, (pos - lo) / ramp)
        if ramp > 0 and hi < limit:
            out = torch.minimum(out, (hi - pos) / ramp)
        return out

    return torch.minimum(axis(y0, y1, size[0])[:, None], axis(x0, x1, size[1])[None, :])


def composite(
    weights: torch.Tensor, patches: Sequence[Patch], sigma: float = 0.0, ramp: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend patches of ab by ``weights`` (K,H,W) feathered with ``sigma`` px.

    Returns ab (2,H,W) and the weights actually used (K,H,W; zero outside an expert's patches,
    summing to 1 wherever any patch lies). Where patches of one expert overlap, each counts by
    its ``edge_window`` (``ramp`` px), so a crop's less reliable rim defers to another's middle.
    """
    channels, height, width = weights.shape
    device, dtype = weights.device, weights.dtype
    ab_sum = torch.zeros(channels, 2, height, width, device=device, dtype=dtype)
    count = torch.zeros(channels, height, width, device=device, dtype=dtype)
    for patch in patches:
        x0, y0, x1, y1 = patch.box
        trust = edge_window(patch.box, (height, width), ramp, device).to(dtype).clamp_min(1e-3)
        ab_sum[patch.expert, :, y0:y1, x0:x1] += trust * patch.ab.to(device=device, dtype=dtype)
        count[patch.expert, y0:y1, x0:x1] += trust
    covered = (count > 0).to(dtype)
    used = feather(weights, sigma) * covered
    # where blurring left no covered weight (a sliver far from its own expert's other pixels),
    # fall back to the unblurred weights, which are > 0 inside the pixel's own region's box
    thin = used.sum(0, keepdim=True) < 1e-3
    if bool(thin.any()):
        used = torch.where(thin, weights * covered, used)
    used = normalize(used)
    ab = (used[:, None] * ab_sum / count.clamp_min(1e-6)[:, None]).sum(0)
    return ab, used


def full_patches(abs_full: torch.Tensor) -> list[Patch]:
    """Whole-image ab of each expert, (K,2,H,W), as patches (for comparisons and previews)."""
    height, width = abs_full.shape[-2:]
    return [Patch(k, (0, 0, width, height), abs_full[k]) for k in range(abs_full.shape[0])]
