"""CIE L of decoded pixels, a band of rows at a time, without a float copy of the whole image.

A scan arrives as uint8/uint16 gray or uint8 RGB; converting all of it to float RGB first (12 or
24 bytes a pixel) is what made 24 MP photos cost gigabytes. Gray L depends on the gray level
alone, so a 256- or 65536-entry table computed with ``rgb_to_lab`` gives today's L exactly; RGB
goes through a linearisation table and the luminance row of the same matrix.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from segcolor.color.lab import _EPS, _KAPPA, _RGB_TO_XYZ, rgb_to_lab

_LUMINANCE = _RGB_TO_XYZ[1].to(torch.float32).numpy()  # Y row; the D65 white's Y is 1


def levels(dtype: np.dtype) -> int | None:
    """How many gray levels an integer image has (white is the last); None for bool and float,
    whose values are already in [0, 1]."""
    if dtype == np.uint8:
        return 256
    if dtype == np.uint16:
        return 65536
    return None


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """Accept H x W (gray) or H x W x 3/4 (RGB, alpha ignored): uint8, uint16, bool or float."""
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise ValueError(f"expected an H x W or H x W x 3 image, got shape {pixels.shape}")
    if pixels.dtype.kind not in "buf" or (pixels.dtype.kind == "u" and pixels.itemsize > 2):
        raise ValueError(f"expected uint8, uint16 or float pixels, got {pixels.dtype}")
    return pixels


@lru_cache(maxsize=4)
def gray_lightness_table(count: int) -> np.ndarray:
    """L of each gray level 0..count-1, from the conversion a float image goes through."""
    gray = torch.arange(count, dtype=torch.float32) / float(count - 1)
    return rgb_to_lab(gray.view(1, 1, -1).expand(3, 1, count))[0, 0].numpy()


@lru_cache(maxsize=4)
def linear_table(count: int) -> np.ndarray:
    """sRGB level -> linear light, for integer RGB."""
    return _linearize(np.arange(count, dtype=np.float32) / np.float32(count - 1))


def _linearize(rgb: np.ndarray) -> np.ndarray:
    rgb = np.clip(rgb, 0.0, 1.0)
    return np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92).astype(np.float32)


def _lightness_of_luminance(y: np.ndarray) -> np.ndarray:
    f = np.where(y > _EPS, np.maximum(y, _EPS) ** (1.0 / 3.0), (_KAPPA * y + 16.0) / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def lightness_rows(pixels: np.ndarray, start: int, stop: int) -> np.ndarray:
    """L in [0, 100] of rows ``start:stop``, float32 (rows, W)."""
    rows = pixels[start:stop]
    count = levels(rows.dtype)
    if rows.ndim == 2:
        if count is not None:
            return gray_lightness_table(count)[rows]
        return _lightness_of_luminance(_linearize(rows.astype(np.float32)))
    rows = rows[..., :3]
    linear = linear_table(count)[rows] if count else _linearize(rows.astype(np.float32))
    return _lightness_of_luminance(linear @ _LUMINANCE)
