"""The product's data flow: image -> (router) -> experts -> (merge) -> image.

The input's own full-resolution lightness is kept; only ab is predicted, at a bounded working
resolution, then upsampled and joined with L, so memory stays bounded for any input size and
the output's L equals the input's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segcolor.color.lab import AB_SCALE, normalize_l, rgb_to_lab
from segcolor.color.recombine import recombine
from segcolor.device import select_device
from segcolor.experts import Expert, load_expert

DEFAULT_WORKING_SIZE = 256


def working_shape(height: int, width: int, working_size: int) -> tuple[int, int]:
    """Scale so the short side is ``working_size`` (never upscale)."""
    scale = min(1.0, working_size / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class LabImage:
    """An image converted to Lab once, at full size and at the working size."""

    lightness: torch.Tensor  # (1,1,H,W) L in [0,100], full resolution
    l_small: torch.Tensor  # (1,1,h,w) L in [0,100], working resolution

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, working_size: int, device: torch.device) -> LabImage:
        tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
        tensor = tensor.permute(2, 0, 1).unsqueeze(0).to(device)
        lightness = rgb_to_lab(tensor)[:, :1]
        size = working_shape(*lightness.shape[-2:], working_size)
        small = (
            lightness
            if size == tuple(lightness.shape[-2:])
            else F.interpolate(
                lightness, size=size, mode="bilinear", antialias=True, align_corners=False
            )
        )
        return cls(lightness=lightness, l_small=small)


def as_float_rgb(image: np.ndarray) -> np.ndarray:
    """Accept H x W (gray) or H x W x 3 (RGB), uint8 or float in [0,1]; return float32 RGB."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an H x W or H x W x 3 image, got shape {array.shape}")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


class Pipeline:
    """Colorize photos. With a single expert there is nothing to route: every pixel uses it."""

    def __init__(
        self,
        expert: Expert,
        device: torch.device | str | None = None,
        working_size: int = DEFAULT_WORKING_SIZE,
    ) -> None:
        self.device = select_device(device)
        self.expert = expert.to(self.device).eval()
        self.working_size = working_size

    @classmethod
    def from_expert(
        cls,
        path: str | Path,
        device: torch.device | str | None = None,
        working_size: int = DEFAULT_WORKING_SIZE,
    ) -> Pipeline:
        return cls(load_expert(path), device=device, working_size=working_size)

    @torch.inference_mode()
    def predict_ab(self, lab: LabImage) -> torch.Tensor:
        """ab (1,2,h,w) at the working resolution, in Lab units."""
        return self.expert(normalize_l(lab.l_small)) * AB_SCALE

    @torch.inference_mode()
    def colorize_float(self, rgb: np.ndarray) -> np.ndarray:
        """Float RGB (H,W,3) in [0,1] -> colorized float RGB of the same size."""
        lab = LabImage.from_rgb(rgb, self.working_size, self.device)
        out = recombine(lab.lightness, self.predict_ab(lab))
        return out[0].permute(1, 2, 0).float().cpu().numpy()

    def colorize(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 (or H x W gray) uint8 RGB in -> H x W x 3 uint8 RGB out."""
        out = self.colorize_float(as_float_rgb(image))
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
