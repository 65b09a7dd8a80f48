"""The contract every expert follows: normalised L (B,1,H,W) -> normalised ab (B,2,H,W).

Two optional inputs and one optional output extend it. Color hints (B,3,H,W: normalised a, b
and a mask, zero where no hint) go to experts trained with them (``takes_hints``), and are
ignored by the others. A 313-bin head (``has_bins``) gives the vivid style: ``forward(...,
style="vivid")`` answers with a chosen color where the faithful regression answers with the
mean of the plausible ones (``segcolor.color.vivid``); experts without that head answer
faithfully in either style.

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
from segcolor.color.vivid import VividOptions, vivid_ab
from segcolor.feature_grid import FEATURE_STRIDE

Head = Literal["regression", "classification"]
HINT_CHANNELS = 3  # normalised a, b, and a mask: 1 where the user gave a color
BINS_STRIDE = 4  # the 313-bin head's output stride


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

    @property
    def takes_hints(self) -> bool:
        """Whether this expert was built to read color hints (older checkpoints were not)."""
        return bool(self.arch_config.get("hint_channels"))

    @property
    def has_bins(self) -> bool:
        """Whether this expert has the vivid style's 313-bin head."""
        return bool(self.arch_config.get("bins_head"))

    def forward_raw(
        self, l_norm: torch.Tensor, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Network output at a padded size: ab (regression) or 313 logits (classification)."""
        raise NotImplementedError

    def forward_heads(
        self,
        l_norm: torch.Tensor,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
        bins: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward_raw`` and the 313-bin logits at stride 4 (None without that head, or when
        ``bins`` is False: the faithful style need not pay for them), at a padded size.
        Subclasses with hints or the bins head override it."""
        return self._forward_raw(l_norm, features), None

    def _forward_raw(self, l_norm: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        # experts without features keep the one-argument ``forward_raw`` of older subclasses
        return self.forward_raw(l_norm) if features is None else self.forward_raw(l_norm, features)

    def forward_padded_heads(
        self,
        l_norm: torch.Tensor,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
        bins: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward_heads`` on any H, W: pad to ``size_multiple``, run, crop back."""
        height, width = l_norm.shape[-2:]
        m = self.size_multiple
        pad_h, pad_w = (-height) % m, (-width) % m
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            l_norm = F.pad(l_norm, (0, pad_w, 0, pad_h), mode=mode)
            if hints is not None:  # no hint in the padding
                hints = F.pad(hints, (0, pad_w, 0, pad_h))
        if not self.uses_features:
            features = None
        elif features is not None:
            features = _fit_grid(features, l_norm.shape[-2:])
        if not self.takes_hints:
            hints = None
        if hints is None and not (bins and self.has_bins):
            return self._forward_raw(l_norm, features)[..., :height, :width], None
        raw, logits = self.forward_heads(l_norm, features, hints, bins)
        if logits is not None:
            logits = logits[..., : -(-height // BINS_STRIDE), : -(-width // BINS_STRIDE)]
        return raw[..., :height, :width], logits

    def forward_padded(
        self,
        l_norm: torch.Tensor,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``forward_raw`` on any H, W: pad to ``size_multiple``, run, crop back."""
        return self.forward_padded_heads(l_norm, features, hints, bins=False)[0]

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw output -> normalised ab."""
        if self.head == "classification":
            return annealed_mean(raw, self.temperature) / AB_SCALE
        return raw

    def forward(
        self,
        l_norm: torch.Tensor,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
        style: str = "faithful",
        region: torch.Tensor | None = None,
        vivid: VividOptions | None = None,
    ) -> torch.Tensor:
        """Normalised ab. ``hints`` (B,3,H,W) for experts that take them; ``style="vivid"``
        decodes the 313-bin head (experts without one answer faithfully), choosing among the
        colors the whole of ``region`` (B,1,H,W: this expert's routing weight) finds likely."""
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
        expected = (l_norm.shape[0], HINT_CHANNELS, *l_norm.shape[-2:])
        if hints is not None and tuple(hints.shape) != expected:
            raise ValueError(
                f"expected hints of shape (B,{HINT_CHANNELS},H,W) like L, got {tuple(hints.shape)}"
            )
        want_bins = style == "vivid" and self.has_bins
        if not want_bins:
            return self.decode(self.forward_padded(l_norm, features, hints))
        raw, logits = self.forward_padded_heads(l_norm, features, hints)
        assert logits is not None
        ab = self.decode(raw) * AB_SCALE
        mask = None if hints is None or not self.takes_hints else hints[:, 2:3]
        return vivid_ab(ab, logits, vivid or VividOptions(), region, mask) / AB_SCALE


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
