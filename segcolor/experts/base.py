"""The contract every expert follows: normalised L (B,1,H,W) -> normalised ab (B,2,H,W).

Subclasses implement ``forward_raw`` at sizes that are multiples of ``size_multiple``; the base
class pads any input (reflect) and crops the result, and decodes a classification head's
313-bin logits to ab with the annealed mean, so callers never care which head an expert has.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from segcolor.color.bins import ANNEAL_T, NUM_BINS, annealed_mean
from segcolor.color.lab import AB_SCALE

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

    def forward_raw(self, l_norm: torch.Tensor) -> torch.Tensor:
        """Network output at a padded size: ab (regression) or 313 logits (classification)."""
        raise NotImplementedError

    def forward_padded(self, l_norm: torch.Tensor) -> torch.Tensor:
        """``forward_raw`` on any H, W: pad to ``size_multiple``, run, crop back."""
        height, width = l_norm.shape[-2:]
        m = self.size_multiple
        pad_h, pad_w = (-height) % m, (-width) % m
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            l_norm = F.pad(l_norm, (0, pad_w, 0, pad_h), mode=mode)
        return self.forward_raw(l_norm)[..., :height, :width]

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw output -> normalised ab."""
        if self.head == "classification":
            return annealed_mean(raw, self.temperature) / AB_SCALE
        return raw

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        if l_norm.ndim != 4 or l_norm.shape[1] != 1:
            raise ValueError(f"expected normalised L of shape (B,1,H,W), got {tuple(l_norm.shape)}")
        return self.decode(self.forward_padded(l_norm))
