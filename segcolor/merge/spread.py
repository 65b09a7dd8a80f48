"""Spread each color hint over what looks like the same thing: near it, of a similar lightness,
in the same routed region.

The experts read hints too (they were trained with them), but a small network fine-tuned for
minutes learns to copy a hint onto its own pixels far better than to carry it across a coat.
So after the merge, each hint's residual — its color minus the answer just around it, i.e. what
the experts did not carry over — is spread as a correction, weighted by a joint bilateral kernel
(distance to the hint's pixels, lightness difference, region overlap) and normalised as
Shepard's interpolation with a floor (``reach``), so corrections fade to nothing far from every
hint. Where the experts already carried a hint, its residual is small and so is the correction.
Plain tensors in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt


@dataclass(frozen=True)
class SpreadOptions:
    space: float = 0.4  # Gaussian sigma of the distance to a hint, as a share of the short side
    lightness: float = 20.0  # Gaussian sigma of the lightness difference, L units
    reach: float = 0.01  # summed weight below which a correction fades (Shepard's floor)
    ring: int = 2  # px around a hint where the answer is read to find its residual


def spread_hints(
    ab: torch.Tensor,
    lightness: torch.Tensor,
    masks: np.ndarray,
    colors: np.ndarray,
    regions: torch.Tensor | None = None,
    options: SpreadOptions | None = None,
) -> torch.Tensor:
    """ab (1,2,h,w) Lab units with each hint's residual spread; ``lightness`` (1,1,h,w) L units,
    ``masks`` (N,h,w) bool and ``colors`` (N,2) a, b of the hints, ``regions`` (E,h,w) the
    routing weights (None: one region). The hints' own pixels keep the answer given."""
    opts = options or SpreadOptions()
    if len(masks) == 0 or opts.space <= 0:
        return ab
    height, width = ab.shape[-2:]
    device = ab.device
    light = lightness[0, 0].float()
    sigma = opts.space * min(height, width)
    total = torch.zeros(height, width, device=device)
    weighted = torch.zeros(2, height, width, device=device)
    for covered, color in zip(masks, colors, strict=True):
        mask = torch.from_numpy(covered).to(device)
        grown = F.max_pool2d(mask[None, None].float(), 2 * opts.ring + 1, 1, opts.ring)[0, 0] > 0
        ring = grown & ~mask
        around = ring if bool(ring.any()) else mask
        residual = torch.as_tensor(color, device=device) - ab[0][:, around].float().mean(1)
        distance = torch.from_numpy(distance_transform_edt(~covered)).to(device).float()
        weight = torch.exp(-(distance**2) / (2 * sigma**2))
        level = light[mask].mean()
        weight = weight * torch.exp(-((light - level) ** 2) / (2 * opts.lightness**2))
        if regions is not None:
            share = regions[:, mask].float().mean(1)  # the hint's regions
            weight = weight * torch.einsum("e,ehw->hw", share, regions.float()).clamp(0, 1)
        total += weight
        weighted += weight * residual[:, None, None]
    correction = weighted / (total + opts.reach)
    keep = torch.from_numpy(masks.any(0)).to(device)
    return ab + (correction * ~keep).to(ab.dtype)[None]
