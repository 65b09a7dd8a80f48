"""torchvision's MobileNetV2 ``features`` in plain ``torch.nn``: the same module names
(``features.2.conv.1.0``) and forward, so the segmenter's port and its cached conversion keep
their keys. Default PyTorch init: the only user replaces every conv with TFLite weights.
"""

from __future__ import annotations

import torch
from torch import nn

# expansion t, channels c, repeats n, first stride s (torchvision's inverted_residual_setting)
SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip


def make_divisible(v: float, divisor: int) -> int:
    """torchvision's (and TF-slim's) channel rounding: to a multiple of ``divisor``, never more
    than 10 % below ``v``."""
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


class Conv2dNormActivation(nn.Sequential):
    """torchvision's ``Conv2dNormActivation`` as MobileNetV2 uses it: conv (no bias), BN, ReLU6."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """torchvision's block: 1×1 expansion (absent when t = 1), 3×3 depthwise, linear 1×1
    projection; a residual when stride and width are unchanged."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        self.stride = stride
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden, kernel_size=1))
        layers += [
            Conv2dNormActivation(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2_features(width_mult: float = 1.0, round_nearest: int = 8) -> nn.Sequential:
    """``torchvision.models.mobilenet_v2(width_mult=..., round_nearest=...).features``: the stem,
    17 inverted residual blocks and the final 1×1 conv (index 18)."""
    channels = make_divisible(32 * width_mult, round_nearest)
    last = make_divisible(1280 * max(1.0, width_mult), round_nearest)
    features: list[nn.Module] = [Conv2dNormActivation(3, channels, stride=2)]
    for t, c, n, s in SETTING:
        out = make_divisible(c * width_mult, round_nearest)
        for i in range(n):
            features.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
            channels = out
    features.append(Conv2dNormActivation(channels, last, kernel_size=1))
    return nn.Sequential(*features)
