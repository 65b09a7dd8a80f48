"""The read stage's result: a photo's lightness at the working size and, by bands, at full size.

Only ab is predicted; the full-resolution L is the input's own. ``LabImage`` keeps the decoded
pixels and computes L of any rows on demand, so a large scan needs no full-size float copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from segcolor.color.bands import BAND_PIXELS, shrink_rows
from segcolor.color.lightness import check_pixels, lightness_rows
from segcolor.io.images import float_rgb


def working_shape(height: int, width: int, working_size: int) -> tuple[int, int]:
    """Scale so the short side is ``working_size`` (never upscale)."""
    scale = min(1.0, working_size / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class LabImage:
    """An image's lightness: at the working size as a tensor; at full size computed a band of
    rows at a time from the decoded pixels, so a large scan gets no full-size float copy."""

    l_small: torch.Tensor  # (1,1,h,w) L in [0,100], working resolution
    pixels: np.ndarray  # as decoded: (H,W) gray or (H,W,3) RGB, uint8/uint16 or float in [0,1]
    band_pixels: int = BAND_PIXELS  # rows per band of the full-resolution stage, in pixels

    @classmethod
    def from_rgb(
        cls,
        rgb: np.ndarray,
        working_size: int,
        device: torch.device,
        band_pixels: int = BAND_PIXELS,
    ) -> LabImage:
        """Accepts what ``as_float_rgb`` accepts (uint8/uint16/float, gray or RGB); no copy."""
        pixels = check_pixels(np.asarray(rgb))
        size = pixels.shape[:2]
        working = working_shape(*size, working_size)
        rows_of = partial(lightness_rows, pixels)
        small = shrink_rows(rows_of, size, working, torch.device(device), band_pixels)
        return cls(l_small=small, pixels=pixels, band_pixels=band_pixels)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    def lightness_rows(self, start: int, stop: int) -> np.ndarray:
        """L of rows ``start:stop`` at full resolution, float32 (rows, W)."""
        return lightness_rows(self.pixels, start, stop)

    @property
    def lightness(self) -> torch.Tensor:
        """Full-size L (1,1,H,W) as one float tensor (4 bytes a pixel: for inspection)."""
        full = self.lightness_rows(0, self.size[0])
        return torch.from_numpy(full).to(self.l_small.device)[None, None]


def as_float_rgb(image: np.ndarray) -> np.ndarray:
    """Accept H x W (gray) or H x W x 3 (RGB), uint8, uint16 or float in [0,1]; return float32
    RGB (a full-size copy: ``colorize`` does not need one)."""
    return float_rgb(image)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
