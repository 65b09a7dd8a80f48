"""ResNet-18 U-Net experts: a one-channel ResNet-18 trunk, an upsampling skip-connected decoder.

The default keeps only stem + layer1 + layer2 (output stride 8): under 2 M parameters, so a
shipped expert is a few MB in fp16, yet wide enough a receptive field for region-level color.
``resnet18_unet_deep`` is the full ResNet-18 (output stride 32), selectable by config.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segcolor.color.bins import NUM_BINS
from segcolor.experts.base import HINT_CHANNELS, Expert, Head
from segcolor.experts.registry import register_expert
from segcolor.nets.resnet import STAGES
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
        hint_channels: int = 0,
        bins_head: bool = False,
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
        self.depth = depth
        self.fusion = None
        if feature_channels and depth < 3:
            raise ValueError(f"semantic features join the trunk at depth 3; got depth {depth}")
        if feature_channels:
            # the router's features join the trunk at output stride 8 (encoder level 3): a
            # projection, then a residual 1x1 mix, so an untrained fusion starts near identity
            width = self.net.encoder.out_channels[3]
            self.fusion = SemanticFusion(feature_channels, feature_width, width)
        if hint_channels not in (0, HINT_CHANNELS):
            raise ValueError(f"hint_channels must be 0 or {HINT_CHANNELS}, got {hint_channels}")
        self.hints = HintInputs(decoder_channels[-1]) if hint_channels else None
        if bins_head and depth < 3:
            raise ValueError(f"the 313-bin head reads the stride-4 decoder level; depth {depth}")
        self.bins_level = depth - 3  # the decoder block whose output is at stride 4
        self.bins = BinsHead(decoder_channels[self.bins_level]) if bins_head else None

    def forward_heads(
        self,
        l_norm: torch.Tensor,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
        bins: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hinted = self.hints is not None and hints is not None
        if hinted:  # the encoder's own steps, with the hints added to the stem
            encoder = self.net.encoder
            stem = encoder.conv1(l_norm) + self.hints.early(hints)
            levels = [l_norm, encoder.relu(encoder.bn1(stem))]
            x = encoder.maxpool(levels[1]) if self.depth >= 2 else levels[1]
            for name in STAGES[: self.depth - 1]:
                x = getattr(encoder, name)(x)
                levels.append(x)
        else:
            levels = list(self.net.encoder(l_norm))
        if self.fusion is not None:
            levels[3] = self.fusion(levels[3], features)
        seen: list[torch.Tensor] = []
        hook = None
        if bins and self.bins is not None:  # the bins head reads the stride-4 decoder level
            block = self.net.decoder.blocks[self.bins_level]
            hook = block.register_forward_hook(lambda module, args, out: seen.append(out))
        try:
            x = self.net.decoder(levels)
        finally:
            if hook is not None:
                hook.remove()
        logits = self.bins(seen[0]) if seen else None
        if hinted:
            x = x + self.hints.late(hints)
        return self.net.segmentation_head(x), logits

    def forward_raw(
        self,
        l_norm: torch.Tensor,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.fusion is None and self.hints is None and self.bins is None:
            return self.net(l_norm)
        return self.forward_heads(l_norm, features, hints, bins=False)[0]


class HintInputs(nn.Module):
    """Color hints (normalised a, b and a mask, zero where there is no hint) into the network
    twice: at the stem, so the trunk can spread a hint over its region, and just before the
    output, so a hint's own pixels can take its color exactly. Both start at zero: an expert
    fine-tuned from one without hints begins by giving the very same answer."""

    def __init__(self, decoder_channels: int) -> None:
        super().__init__()
        self.early = nn.Conv2d(HINT_CHANNELS, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.late = nn.Conv2d(HINT_CHANNELS, decoder_channels, 3, padding=1, bias=False)
        nn.init.zeros_(self.early.weight)
        nn.init.zeros_(self.late.weight)


class BinsHead(nn.Module):
    """The vivid style's head: a distribution over the 313 ab bins at output stride 4, read
    from the first decoder level. Its input is detached, so training it leaves every weight
    of the faithful answer as it was (the faithful style's quality cannot move)."""

    def __init__(self, channels: int, width: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, NUM_BINS, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.detach())


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
    "resnet18_unet_hints",
    depth=3,
    decoder_channels=[64, 32, 16],
    head="regression",
    feature_channels=256,
    hint_channels=HINT_CHANNELS,
    bins_head=True,
)
def resnet18_unet_hints(**cfg) -> Expert:
    """The semantic expert that also takes color hints and has the vivid style's 313-bin
    head (the shipped experts since round 3); one file serves both styles."""
    return ResNet18UNet(**cfg)


@register_expert(
    "resnet18_unet_deep", depth=5, decoder_channels=[256, 128, 64, 32, 16], head="regression"
)
def resnet18_unet_deep(**cfg) -> Expert:
    """Full ResNet-18 trunk (all four stages), U-Net decoder (~14 M parameters)."""
    return ResNet18UNet(**cfg)
