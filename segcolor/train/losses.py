"""Training losses on the expert's raw output and the normalised ab target.

Every loss takes ``(raw, target)``: ``raw`` is ``Expert.forward_padded``'s output (ab for a
regression head, 313 logits for a classification head), ``target`` is normalised ab (B,2,H,W).
The rare-color and classification losses weight each pixel by the rarity of its true color,
looked up in ``ab_prior``: the training set's distribution over the 313 ab bins (see
``segcolor.train.data.compute_ab_prior``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segcolor.color.bins import (
    bin_centers,
    nearest_bin,
    rare_color_weights,
    soft_encode,
    zhang_rebalance_weights,
)
from segcolor.color.lab import denormalize_ab
from segcolor.train.config import LOSS_KINDS


def smooth_prior(counts: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Counts -> a distribution smoothed with a Gaussian in ab space (Zhang et al., sigma=5).

    Smoothing gives bins that the histogram sample happened to miss a small, sane probability
    instead of zero (which would give them a huge weight).
    """
    centers = bin_centers().double()
    kernel = torch.exp(-(torch.cdist(centers, centers) ** 2) / (2.0 * sigma**2))
    smoothed = kernel @ (counts.double() / counts.sum())
    return smoothed / smoothed.sum()


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of (B,C,H,W) or (B,H,W) ``values``, each pixel counted by ``weight`` (B,1,H,W)
    when given (a routed expert's loss: its own pixels fully, context lightly)."""
    if weight is None:
        return values.mean()
    weight = weight.float() if values.ndim == 4 else weight.float()[:, 0]
    channels = values.shape[1] if values.ndim == 4 else 1
    return (values * weight).sum() / (weight.sum() * channels).clamp_min(1e-8)


class PixelLoss(nn.Module):
    """Plain L2 (``mse``) or L1 between the predicted and the true normalised ab."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(
        self, raw: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        diff = raw.float() - target.float()
        return weighted_mean(diff**2 if self.kind == "l2" else diff.abs(), weight)


class RareColorLoss(nn.Module):
    """``l2_weight * L2 + (1 - l2_weight) * rarity-weighted L2`` (seed 003's 65/35 blend).

    The per-pixel weight is ``w[nearest bin of the true color]`` with ``w`` normalised so that
    its mean over the training distribution is 1: both terms are on the same scale, and with a
    uniform prior the loss is exactly the plain L2.
    """

    def __init__(self, ab_prior: torch.Tensor, l2_weight: float = 0.65, eps: float = 1e-3) -> None:
        super().__init__()
        self.l2_weight = l2_weight
        self.register_buffer("bin_weights", rare_color_weights(ab_prior.double(), eps).float())

    def forward(
        self, raw: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        raw, target = raw.float(), target.float()
        sq_err = (raw - target) ** 2
        rarity = self.bin_weights[nearest_bin(denormalize_ab(target))].unsqueeze(1)
        blend = self.l2_weight + (1.0 - self.l2_weight) * rarity
        return weighted_mean(blend * sq_err, weight)


class ClassificationLoss(nn.Module):
    """Zhang et al.'s rebalanced multinomial cross-entropy over the 313 ab bins.

    Target: soft-encoded true color (Gaussian over its 5 nearest bins); each pixel's loss is
    weighted by ``zhang_rebalance_weights(prior, lam)`` of its nearest bin.
    """

    def __init__(self, ab_prior: torch.Tensor, lam: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("bin_weights", zhang_rebalance_weights(ab_prior.double(), lam).float())

    def forward(
        self, raw: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        ab = denormalize_ab(target.float())
        cross_entropy = -(soft_encode(ab) * F.log_softmax(raw.float(), dim=1)).sum(dim=1)
        return weighted_mean(self.bin_weights[nearest_bin(ab)] * cross_entropy, weight)


class BinsLoss(nn.Module):
    """The vivid style's head trained beside the faithful answer: Zhang's rebalanced
    cross-entropy on the 313-bin logits at stride 4, against the targets (and loss weights)
    averaged to that grid, times ``weight``."""

    def __init__(self, ab_prior: torch.Tensor, weight: float = 1.0, lam: float = 0.5) -> None:
        super().__init__()
        self.weight = weight
        self.loss = ClassificationLoss(ab_prior, lam)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        size = logits.shape[-2:]
        target = F.adaptive_avg_pool2d(target.float(), size)
        if weight is not None:
            weight = F.adaptive_avg_pool2d(weight.float(), size)
        return self.weight * self.loss(logits, target, weight)


def needs_prior(kind: str) -> bool:
    """Whether ``kind`` weights pixels by color rarity (and so needs the training histogram)."""
    return kind in ("rebalanced", "classification")


def create_loss(cfg: dict[str, Any], ab_prior: torch.Tensor | None = None) -> nn.Module:
    """The loss named by ``cfg["kind"]`` (the training config's ``loss`` section)."""
    kind = cfg["kind"]
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}; expected one of {', '.join(LOSS_KINDS)}")
    if kind in ("l2", "l1"):
        return PixelLoss(kind)
    if ab_prior is None:
        raise ValueError(f"loss {kind!r} needs the training set's ab prior")
    if kind == "rebalanced":
        return RareColorLoss(ab_prior, cfg.get("l2_weight", 0.65), cfg.get("eps", 1e-3))
    return ClassificationLoss(ab_prior, cfg.get("lam", 0.5))
