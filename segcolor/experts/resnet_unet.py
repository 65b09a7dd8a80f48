"""ResNet-18 U-Net experts: a one-channel ResNet-18 trunk, an upsampling skip-connected decoder.

The default keeps only stem + layer1 + layer2 (output stride 8): under 2 M parameters, so a
shipped expert is a few MB in fp16, yet wide enough a receptive field for region-level color.
``resnet18_unet_deep`` is the full ResNet-18 (output stride 32), selectable by config.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segcolor.experts.base import Expert, Head
from segcolor.experts.registry import register_expert
from segcolor.nets.unet import Unet


class ResNet18UNet(Expert):
    def __init__(
        self,
        depth: int = 3,
        decoder_channels: Sequence[int] = (64, 32, 16),
        head: Head = "regression",
        temperature: float = 0.38,
        feature_channels: int = 0,
        feature_width: int = 64,
    ) -> None:
        super().__init__(head=head, temperature=temperature)
        if not 2 <= depth <= 5 or len(decoder_channels) != depth:
            raise ValueError(
                f"depth must be 2..5 with one decoder width per level, got {depth}, "
                f"{list(decoder_channels)}"
            )
        # smp's Unet("resnet18") in plain torch (module names, init), without ImageNet weights
        # offline: trained from scratch; stages past ``depth`` are not kept
        self.net = Unet(depth, decoder_channels, in_channels=1, classes=self.out_channels)
        self.size_multiple = 2**depth
        self.fusion = None
        if feature_channels and depth < 3:
            raise ValueError(f"semantic features join the trunk at depth 3; got depth {depth}")
        if feature_channels:
            # the router's features join the trunk at output stride 8 (encoder level 3): a
            # projection, then a residual 1x1 mix, so an untrained fusion starts near identity
            width = self.net.encoder.out_channels[3]
            self.fusion = SemanticFusion(feature_channels, feature_width, width)

    def forward_raw(
        self, l_norm: torch.Tensor, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.fusion is None:
            return self.net(l_norm)
        levels = list(self.net.encoder(l_norm))
        levels[3] = self.fusion(levels[3], features)
        return self.net.segmentation_head(self.net.decoder(levels))


class SemanticFusion(nn.Module):
    """Trunk features + projected semantic features -> trunk features (residual)."""

    def __init__(self, feature_channels: int, width: int, trunk_channels: int) -> None:
        super().__init__()
        self.feature_channels = feature_channels
        self.project = nn.Sequential(
            nn.Conv2d(feature_channels, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.mix = nn.Sequential(
            nn.Conv2d(trunk_channels + width, trunk_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(trunk_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, trunk: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        if features is None:  # no router: the semantic input is absent, as in feature dropout
            features = trunk.new_zeros(trunk.shape[0], self.feature_channels, *trunk.shape[-2:])
        semantic = self.project(features.to(trunk.dtype))
        return trunk + self.mix(torch.cat([trunk, semantic], 1))


@register_expert("resnet18_unet", depth=3, decoder_channels=[64, 32, 16], head="regression")
def resnet18_unet(**cfg) -> Expert:
    """Default: ResNet-18 stem + layer1 + layer2, a light U-Net decoder (0.88 M parameters).

    The decoder is kept narrow because its full-resolution blocks dominate the compute.
    """
    return ResNet18UNet(**cfg)


@register_expert(
    "resnet18_unet_semantic",
    depth=3,
    decoder_channels=[64, 32, 16],
    head="regression",
    feature_channels=256,
)
def resnet18_unet_semantic(**cfg) -> Expert:
    """The default expert plus the router's semantic features (DeepLab ASPP, 256 channels)
    fused at output stride 8: a pretrained prior for a trunk trained from scratch."""
    return ResNet18UNet(**cfg)


@register_expert(
    "resnet18_unet_deep", depth=5, decoder_channels=[256, 128, 64, 32, 16], head="regression"
)
def resnet18_unet_deep(**cfg) -> Expert:
    """Full ResNet-18 trunk (all four stages), U-Net decoder (~14 M parameters)."""
    return ResNet18UNet(**cfg)
