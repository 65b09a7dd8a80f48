"""The segmenter's semantic features, resampled onto the experts' stride-8 grid.

The router runs a pretrained segmenter on every photo anyway; its ASPP features (what the
network knows about each place: person, grass, sky, ...) are handed to the experts as a
pretrained semantic prior, at no extra cost. Experts fuse them at output stride
``FEATURE_STRIDE``, so a photo's features are sampled once at the centres of its 8x8 cells,
and an expert running on a crop whose corner lies on the stride grid takes the matching slice.

The grid is the contract between the router, which makes the features, and the experts, which
read them, so it lives below both and neither imports the other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FEATURE_STRIDE = 8  # experts fuse the features at this output stride


def grid_shape(height: int, width: int, stride: int = FEATURE_STRIDE) -> tuple[int, int]:
    """Cells of ``stride`` px covering an image (the last one may be partial)."""
    return math.ceil(height / stride), math.ceil(width / stride)


def sample_features(
    features: torch.Tensor, size: tuple[int, int], ys: torch.Tensor, xs: torch.Tensor
) -> torch.Tensor:
    """Bilinear samples of ``features`` (B,F,gh,gw), whose grid spans an image of ``size``
    (H, W) corner to corner, at pixel positions ``ys`` (n,) x ``xs`` (m,) -> (B,F,n,m)."""
    height, width = size
    gy = 2.0 * ys.clamp(0, height - 1) / max(height - 1, 1) - 1.0
    gx = 2.0 * xs.clamp(0, width - 1) / max(width - 1, 1) - 1.0
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)
    grid = grid.to(features).expand(features.shape[0], -1, -1, -1)
    return F.grid_sample(features, grid, mode="bilinear", align_corners=True)


def cell_centers(length: int, stride: int = FEATURE_STRIDE) -> torch.Tensor:
    """Pixel coordinates of the centres of the stride cells along one axis."""
    return (
        torch.arange(math.ceil(length / stride), dtype=torch.float32) * stride + (stride - 1) / 2.0
    )


def features_on_grid(
    features: torch.Tensor, size: tuple[int, int], stride: int = FEATURE_STRIDE
) -> torch.Tensor:
    """The photo's features at the centres of its ``stride`` cells: (B,F,ceil(H/s),ceil(W/s))."""
    return sample_features(
        features, size, cell_centers(size[0], stride), cell_centers(size[1], stride)
    )


def crop_features(features: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """The grid cells under a working-pixel box (x0, y0, x1, y1) whose corner is on the grid."""
    x0, y0, x1, y1 = box
    s = FEATURE_STRIDE
    return features[..., y0 // s : math.ceil(y1 / s), x0 // s : math.ceil(x1 / s)]
