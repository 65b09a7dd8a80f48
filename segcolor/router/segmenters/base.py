"""The contract every segmenter of the router honours, whatever its backend.

The router only needs per-pixel class probabilities at the image's own resolution, so a
segmenter takes RGB in [0, 1] at any size and returns logits at that same size; the base class
adds test-time augmentation (flip + multi-scale) on top of that once for all backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

# Chosen on grayscale COCO photos (bench/router_quality.py, 141 images, DeepLab port): flip plus
# scales 0.75–1.5 raise the IoU of every group over a single pass (mIoU 0.647 → 0.678); scales
# below 0.75 lose small objects (birds), and 1.25/1.5 are what find them.
DEFAULT_TTA: dict[str, Any] = {"scales": (0.75, 1.0, 1.25, 1.5), "flip": True}


def tta_config(tta: bool | Mapping[str, Any]) -> dict[str, Any] | None:
    """Normalise the ``tta`` argument: False → None, True → defaults, dict → defaults updated."""
    if tta is False or tta is None:
        return None
    cfg = dict(DEFAULT_TTA)
    if isinstance(tta, Mapping):
        unknown = set(tta) - set(DEFAULT_TTA)
        if unknown:
            raise ValueError(f"unknown TTA option(s): {sorted(unknown)}")
        cfg.update(tta)
    cfg["scales"] = tuple(float(s) for s in cfg["scales"])
    if not cfg["scales"] or min(cfg["scales"]) <= 0:
        raise ValueError("TTA scales must be a non-empty list of positive numbers")
    return cfg


class Segmenter(nn.Module):
    """Semantic segmenter: RGB (B,3,H,W) in [0,1] → logits (B,C,H,W) at the same H,W.

    ``classes[i]`` names output channel i. Subclasses implement ``forward``; they may override
    ``forward_scaled`` when they have a better notion of scale than resizing the input (e.g. a
    model that always works at a fixed internal size changes that size instead).
    """

    classes: list[str]
    feature_channels: int = 0  # > 0 when ``forward_features`` gives semantic features

    def __init__(self, classes: Sequence[str]) -> None:
        super().__init__()
        self.classes = list(classes)
        self.gray_head: nn.Module | None = None

    def attach_gray_head(self, head: nn.Module) -> None:
        """Add ``head(features)`` to the class logits (``segmenters.gray_head``): backends with
        features apply it in every pass; the features themselves do not change."""
        if not self.feature_channels:
            raise ValueError(f"{type(self).__name__} gives no features for a gray head to read")
        self.gray_head = head

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def from_pretrained(cls, weights: str | Path | None = None, **kwargs: Any) -> Segmenter:
        """Build the model and load a safetensors state dict; backends override this to find
        their own default weights. The registry calls it for registered classes."""
        model = cls(**kwargs)
        if weights is not None:
            model.load_state_dict(load_file(str(weights)))
        return model

    def forward_scaled(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        """Logits at the input size, computed with the image seen at ``scale`` × its size."""
        if scale == 1.0:
            return self(x)
        h, w = x.shape[-2:]
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
        logits = self(xs)
        return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at the input size and features (B,F,gh,gw) on a grid spanning the input
        corner to corner; backends with ``feature_channels > 0`` implement it."""
        raise NotImplementedError(f"{type(self).__name__} gives no features")

    def grid_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits without the gray head, features), both on the features' grid: what a
        gray head learns from (``segcolor.train.gray_head``)."""
        raise NotImplementedError(f"{type(self).__name__} gives no features")

    def class_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The pretrained classifier alone on grid features (the logits a gray head corrects)."""
        raise NotImplementedError(f"{type(self).__name__} gives no features")

    @torch.no_grad()
    def predict_proba_features(
        self, x: torch.Tensor, tta: bool | Mapping[str, Any] = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``predict_proba`` plus the features of the plain (scale 1, unflipped) pass, which
        TTA reuses, so the features cost nothing beyond the routing itself."""
        logits, features = self.forward_features(x)
        cfg = tta_config(tta)
        if cfg is None:
            return logits.softmax(1), features
        total, n = logits.softmax(1), 1
        flips = (False, True) if cfg["flip"] else (False,)
        for scale in cfg["scales"]:
            for flip in flips:
                if scale == 1.0 and not flip:
                    continue
                xi = x.flip(-1) if flip else x
                prob = self.forward_scaled(xi, scale).softmax(1)
                total = total + (prob.flip(-1) if flip else prob)
                n += 1
        return total / n, features

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, tta: bool | Mapping[str, Any] = False) -> torch.Tensor:
        """Softmax probabilities (B,C,H,W); with TTA, the mean of the probabilities over the
        scales and (optionally) the horizontal flip, since averaging probabilities rather than
        logits keeps one confident view from dominating."""
        cfg = tta_config(tta)
        if cfg is None:
            return self(x).softmax(1)
        total = torch.zeros(())
        n = 0
        flips = (False, True) if cfg["flip"] else (False,)
        for scale in cfg["scales"]:
            for flip in flips:
                xi = x.flip(-1) if flip else x
                prob = self.forward_scaled(xi, scale).softmax(1)
                total = total + (prob.flip(-1) if flip else prob)
                n += 1
        return total / n
