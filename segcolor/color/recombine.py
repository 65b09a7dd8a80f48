"""Join predicted ab with the input's own full-resolution lightness.

The cost per pixel is one Lab -> RGB conversion: the gamut fit (a bisection, ten conversions)
runs only on the pixels that are out of gamut. ``recombine_bands`` does it a band of rows at a
time, upsampling the chroma for those rows only, so a 100 MP scan needs no full-size float image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from segcolor.color.bands import BAND_PIXELS, RowFunction, for_each_band, row_bands
from segcolor.color.lab import _lab_to_rgb_unclipped, channels_within, fit_to_gamut

GAMUT_TOL = 1e-3  # RGB this far outside [0, 1] still counts as in gamut (as ``fit_to_gamut``)


def upsample_ab(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B,2,h,w) -> (B,2,H,W); bilinear, because chroma is smooth where lightness is not."""
    if ab.shape[-2:] == size:
        return ab
    return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)


def lab_to_rgb_fitted(lab: torch.Tensor) -> torch.Tensor:
    """Lab (B,3,H,W) -> RGB in [0, 1]; out-of-gamut pixels lose chroma, not lightness.

    The same result as ``lab_to_rgb(fit_to_gamut(lab))``, converting in-gamut pixels once.
    """
    rgb = _lab_to_rgb_unclipped(lab)
    inside = channels_within(rgb, -GAMUT_TOL, 1.0 + GAMUT_TOL)[:, 0]
    if not bool(inside.all()):
        outside = ~inside
        pixels = lab.permute(0, 2, 3, 1)[outside].T[:, :, None]  # (3, N, 1)
        fitted = _lab_to_rgb_unclipped(fit_to_gamut(pixels, tol=GAMUT_TOL))
        rgb.permute(0, 2, 3, 1)[outside] = fitted[:, :, 0].T
    return rgb.clamp_(0.0, 1.0)


def recombine(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Full-size L (B,1,H,W) in [0,100] + ab at any size -> RGB (B,3,H,W) in [0,1].

    Out-of-gamut colors lose chroma, not lightness, so the output keeps the input's L.
    """
    ab_full = upsample_ab(ab, tuple(lightness.shape[-2:]))
    return lab_to_rgb_fitted(torch.cat([lightness, ab_full.to(lightness.dtype)], dim=1))


class ChromaRows:
    """Working-resolution ab (1,2,h,w), bilinearly upsampled to (H, W) a band of rows at a time.

    Widened once to (2, h, W) (small: h is the working height), then each band's rows are mixed
    from their two source rows with the weights ``F.interpolate`` uses, so a band equals the
    same rows of ``upsample_ab`` up to float rounding.
    """

    def __init__(self, ab: torch.Tensor, size: tuple[int, int]) -> None:
        height, width = size
        small_height = ab.shape[-2]
        self.wide = upsample_ab(ab.float(), (small_height, width))
        scale = np.float32(small_height) / np.float32(height)
        source = np.maximum(scale * (np.arange(height, dtype=np.float32) + 0.5) - 0.5, 0.0)
        top = source.astype(np.int64)
        self.identity = small_height == height
        self.top = torch.from_numpy(top).to(ab.device)
        self.bottom = torch.from_numpy(np.minimum(top + 1, small_height - 1)).to(ab.device)
        weight = np.clip(source - top, 0.0, 1.0).astype(np.float32)
        self.weight = torch.from_numpy(weight).to(ab.device)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """ab (1,2,stop-start,W) of output rows ``start:stop``."""
        if self.identity:
            return self.wide[:, :, start:stop]
        top = self.wide.index_select(2, self.top[start:stop])
        bottom = self.wide.index_select(2, self.bottom[start:stop])
        weight = self.weight[start:stop].view(1, 1, -1, 1)
        return top * (1.0 - weight) + bottom * weight


def recombine_bands(
    lightness_rows: RowFunction,
    ab: torch.Tensor,
    out: np.ndarray,
    band_pixels: int = BAND_PIXELS,
) -> np.ndarray:
    """Full-size L, given band by band, + working-resolution ab (1,2,h,w) -> ``out`` (H,W,3).

    ``out`` is float32 (RGB in [0, 1]) or uint8/uint16 (rounded as ``save_image`` rounds);
    returned for convenience.
    """
    height, width = out.shape[:2]
    chroma = ChromaRows(ab, (height, width))
    top = None if out.dtype == np.float32 else float(np.iinfo(out.dtype).max)

    def band(start: int, stop: int) -> None:
        lightness = torch.from_numpy(lightness_rows(start, stop)).to(ab.device)[None, None]
        rgb = lab_to_rgb_fitted(torch.cat([lightness, chroma.rows(start, stop)], dim=1))[0]
        if top is not None:
            rgb = rgb.mul_(top).round_()
        torch.from_numpy(out[start:stop]).copy_(rgb.permute(1, 2, 0))

    for_each_band(band, row_bands(height, width, band_pixels), ab.device)
    return out
