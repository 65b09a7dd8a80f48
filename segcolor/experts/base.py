"""The contract every expert follows: normalised L (B,1,H,W) -> normalised ab (B,2,H,W).

An expert may also take the router's semantic features (B,F,ceil(H/8),ceil(W/8)) (see
``segcolor.feature_grid``); they are optional: ``uses_features`` says whether it was trained
with them, and one that was still runs without them (it was trained with some feature
dropout), only less well. Subclasses implement ``forward_raw`` at sizes that are multiples of
``size_multiple``; the base class pads any input (reflect) and crops the result, and decodes a
classification head's 313-bin logits to ab with the annealed mean, so callers never care which
head an expert has.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from segcolor.color.bins import ANNEAL_T, NUM_BINS, annealed_mean
from segcolor.color.lab import AB_SCALE
from segcolor.feature_grid import FEATURE_STRIDE

Head = Literal["regression", "classification"]


class Expert(nn.Module):
    """Base class of all colorization experts."""

    arch: str = ""
    arch_config: dict[str, Any]
    size_multiple: int = 1

    def __init__(self, head: Head = "regression", temperature: float = ANNEAL_T) -> None:
        super().__init__()
        if head not in ("regression", "classification"):
            raise ValueError(f"head must be 'regression' or 'classification', not {head!r}")
        self.head = head
        self.temperature = temperature
        self.arch_config = {}

    @property
    def out_channels(self) -> int:
        return 2 if self.head == "regression" else NUM_BINS

    @property
    def feature_channels(self) -> int:
        """Channels of the semantic features this expert fuses (0: it takes none)."""
        return int(self.arch_config.get("feature_channels", 0) or 0)

    @property
    def uses_features(self) -> bool:
        return self.feature_channels > 0

    def forward_raw(
        self, l_norm: torch.Tensor, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Network output at a padded size: ab (regression) or 313 logits (classification)."""
        raise NotImplementedError

    def forward_padded(
        self, l_norm: torch.Tensor, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``forward_raw`` on any H, W: pad to ``size_multiple``, run, crop back."""
        height, width = l_norm.shape[-2:]
        m = self.size_multiple
        pad_h, pad_w = (-height) % m, (-width) % m
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            l_norm = F.pad(l_norm, (0, pad_w, 0, pad_h), mode=mode)
        if not self.uses_features:
            features = None
        elif features is not None:
            features = _fit_grid(features, l_norm.shape[-2:])
        # experts without features keep the one-argument ``forward_raw`` of older subclasses
        raw = self.forward_raw(l_norm) if features is None else self.forward_raw(l_norm, features)
        return raw[..., :height, :width]

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw output -> normalised ab."""
        if self.head == "classification":
            return annealed_mean(raw, self.temperature) / AB_SCALE
        return raw

    def forward(self, l_norm: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        if l_norm.ndim != 4 or l_norm.shape[1] != 1:
            raise ValueError(f"expected normalised L of shape (B,1,H,W), got {tuple(l_norm.shape)}")
        if (
            features is not None
            and self.uses_features
            and (features.ndim != 4 or features.shape[1] != self.feature_channels)
        ):
            raise ValueError(
                f"expected features of shape (B,{self.feature_channels},h,w), got "
                f"{tuple(features.shape)}"
            )
        return self.decode(self.forward_padded(l_norm, features))


def _fit_grid(features: torch.Tensor, padded: tuple[int, int]) -> torch.Tensor:
    """Features on the stride-8 grid of the padded input: cells past the photo's edge (padding)
    repeat the last ones, as the padded L repeats the edge."""
    gh, gw = padded[0] // FEATURE_STRIDE, padded[1] // FEATURE_STRIDE
    h, w = features.shape[-2:]
    if (h, w) == (gh, gw):
        return features
    if h > gh or w > gw:
        return features[..., :gh, :gw]
    return F.pad(features, (0, gw - w, 0, gh - h), mode="replicate")
