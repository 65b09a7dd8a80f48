"""The vivid style: a chosen color where the faithful regression gives the mean of the
plausible ones.

A regression trained for low error answers an unsure pixel with the mean of its plausible colors,
and the mean of red and blue is gray-brown. The 313-bin head says which colors are plausible; the
annealed mean of its distribution (Zhang et al.: T = 0.38) picks among them. Picked per pixel,
neighbouring pixels may pick differently (blotches); so each pixel's distribution is first
multiplied by its region's pooled one (``region_prior``, a product of experts): the colors the
region as a whole finds likely win in every pixel of it, and a coat is one red, not red and blue
patches. The choice is made at the head's stride 4 and added to the regression's answer as a
smooth shift, so edges and fine detail stay the regression's; where the user gave a hint the
faithful answer (which follows it) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from segcolor.color.bins import annealed_mean


@dataclass(frozen=True)
class VividOptions:
    temperature: float = 0.25  # of the annealed mean: 1 = the mean, toward 0 = the mode
    region_prior: float = 1.0  # exponent of the region's pooled distribution (0: per pixel)


def region_distribution(probs: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """(B,313) distribution of a region: the mean of its pixels' (B,313,h,w) distributions,
    each pixel counted by its region weight (B,1,h,w)."""
    weight = region.float()
    total = (probs * weight).sum((2, 3))
    return total / weight.sum((2, 3)).clamp_min(1e-6)


def vivid_ab(
    ab: torch.Tensor,
    logits: torch.Tensor,
    options: VividOptions,
    region: torch.Tensor | None = None,
    hint_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Vivid ab (B,2,H,W, Lab units) from the faithful ``ab`` and the 313-bin ``logits``
    (B,313,h,w at stride 4); ``region`` (B,1,H,W): where this expert's answer is used."""
    small = logits.shape[-2:]
    log_probs = F.log_softmax(logits.float(), dim=1)
    if region is not None and options.region_prior > 0:
        weight = F.interpolate(region.float(), size=small, mode="area")
        pooled = region_distribution(log_probs.exp(), weight)
        log_probs = log_probs + options.region_prior * pooled.clamp_min(1e-8).log()[..., None, None]
    chosen = annealed_mean(log_probs, options.temperature)
    base = F.interpolate(ab.float(), size=small, mode="area")
    shift = F.interpolate(chosen - base, size=ab.shape[-2:], mode="bilinear", align_corners=False)
    if hint_mask is not None:
        near = F.max_pool2d(hint_mask.float(), 9, stride=1, padding=4)
        shift = shift * (1.0 - near)
    return ab + shift.to(ab.dtype)
