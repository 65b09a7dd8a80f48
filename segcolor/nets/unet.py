"""segmentation-models-pytorch's ``Unet("resnet18", encoder_weights=None)`` in plain ``torch.nn``.

smp (0.3–0.6) is the source of the layout, and the expert checkpoints use its names
(``encoder.layer1.0.conv1``, ``decoder.blocks.0.conv1.0``, ``segmentation_head.0``); the forward
(nearest upsampling, skip concatenation) and the init draws are its own, so a seed gives the same
expert as ``smp.Unet`` did. ``tests/test_nets.py`` checks all three against smp when installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcolor.nets.resnet import STAGES, ResNet18

# channels of each encoder level for a ResNet-18 (level 0 is the input)
RESNET18_CHANNELS = (64, 64, 128, 256, 512)


class ResNet18Encoder(ResNet18):
    """smp's ``ResNetEncoder``: the trunk's levels at strides 1, 2, 4, ... 2**depth.

    The first conv takes ``in_channels`` (a fresh default-initialised conv, as smp's
    ``patch_first_conv`` makes without pretrained weights); stages past ``depth`` are dropped.
    """

    def __init__(self, depth: int = 5, in_channels: int = 3) -> None:
        if not 1 <= depth <= 5:
            raise ValueError(f"encoder depth must be 1..5, got {depth}")
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        for unused in STAGES[depth - 1 :]:
            delattr(self, unused)
        self.depth = depth
        self.out_channels = [in_channels, *RESNET18_CHANNELS][: depth + 1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        x = self.relu(self.bn1(self.conv1(x)))
        features.append(x)
        if self.depth >= 2:
            x = self.maxpool(x)
        for name in STAGES[: self.depth - 1]:
            x = getattr(self, name)(x)
            features.append(x)
        return features


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """smp's ``Conv2dReLU`` (3×3, batch norm, so no conv bias)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DecoderBlock(nn.Module):
    """smp's ``UnetDecoderBlock`` without attention: upsample (nearest), concatenate the skip,
    two conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels + skip_channels, out_channels)
        self.conv2 = conv_bn_relu(out_channels, out_channels)

    def forward(
        self, x: torch.Tensor, size: Sequence[int], skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = F.interpolate(x, size=tuple(size), mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UnetDecoder(nn.Module):
    """smp's ``UnetDecoder``: from the deepest level up, one block per level, each joined by
    the encoder's level of the same size (the input level is never a skip)."""

    def __init__(self, encoder_channels: Sequence[int], decoder_channels: Sequence[int]) -> None:
        super().__init__()
        if len(encoder_channels) != len(decoder_channels) + 1:
            raise ValueError(
                f"{len(encoder_channels) - 1} encoder levels need as many decoder widths, got "
                f"{list(decoder_channels)}"
            )
        deep_first = list(encoder_channels[1:])[::-1]
        in_channels = [deep_first[0], *decoder_channels[:-1]]
        skip_channels = [*deep_first[1:], 0]
        self.center = nn.Identity()
        self.blocks = nn.ModuleList(
            DecoderBlock(i, s, o)
            for i, s, o in zip(in_channels, skip_channels, decoder_channels, strict=True)
        )

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        sizes = [f.shape[2:] for f in features][::-1]
        deep_first = list(features[1:])[::-1]
        skips = deep_first[1:]
        x = self.center(deep_first[0])
        for i, block in enumerate(self.blocks):
            x = block(x, sizes[i + 1], skips[i] if i < len(skips) else None)
        return x


class Unet(nn.Module):
    """ResNet-18 encoder, U-Net decoder and a 3×3 conv head (no activation), initialised as
    smp does: decoder convs kaiming-uniform, the head xavier-uniform, biases zero."""

    def __init__(
        self,
        encoder_depth: int = 5,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        in_channels: int = 3,
        classes: int = 1,
    ) -> None:
        super().__init__()
        self.encoder = ResNet18Encoder(encoder_depth, in_channels)
        self.decoder = UnetDecoder(self.encoder.out_channels, decoder_channels)
        head = nn.Conv2d(decoder_channels[-1], classes, kernel_size=3, padding=1)
        self.segmentation_head = nn.Sequential(head, nn.Identity(), nn.Identity())
        for m in self.decoder.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        nn.init.xavier_uniform_(head.weight)
        nn.init.constant_(head.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(self.decoder(self.encoder(x)))
