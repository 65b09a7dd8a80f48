"""Join predicted ab with the input's own full-resolution lightness."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from segcolor.color.lab import fit_to_gamut, lab_to_rgb


def upsample_ab(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B,2,h,w) -> (B,2,H,W); bilinear, because chroma is smooth where lightness is not."""
    if ab.shape[-2:] == size:
        return ab
    return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)


def recombine(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Full-size L (B,1,H,W) in [0,100] + ab at any size -> RGB (B,3,H,W) in [0,1].

    Out-of-gamut colors lose chroma, not lightness, so the output keeps the input's L.
    """
    ab_full = upsample_ab(ab, tuple(lightness.shape[-2:]))
    return lab_to_rgb(fit_to_gamut(torch.cat([lightness, ab_full.to(lightness.dtype)], dim=1)))
