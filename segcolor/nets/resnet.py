"""torchvision's ResNet-18 in plain ``torch.nn``: same module names, forward and init draws.

The experts' trunk (via smp's ResNet encoder) and the profile classifier's are this network;
their checkpoints name its modules (``conv1``, ``bn1``, ``layer2.0.downsample.0``, ...).
"""

from __future__ import annotations

import torch
from torch import nn

STAGES = ("layer1", "layer2", "layer3", "layer4")
WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3×3 convs and a residual (projected when it changes
    size or width)."""

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


def make_stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    """Two blocks; the projection is built before the blocks, as torchvision does (init order)."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
        )
    return nn.Sequential(
        BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes)
    )


class ResNet18(nn.Module):
    """``torchvision.models.resnet18(weights=None)`` without its pooling and classifier.

    It draws from the RNG exactly as torchvision does (the 1000-class classifier is built and
    dropped, then convs are re-initialised kaiming-normal, fan-out), so a seed gives the same
    weights as before; on the meta device (``build_empty``) it draws nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for name, planes in zip(STAGES, WIDTHS, strict=True):
            setattr(self, name, make_stage(inplanes, planes, 1 if name == "layer1" else 2))
            inplanes = planes
        nn.Linear(512, 1000)  # torchvision's classifier: only its init draws are kept
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                conv_init_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def conv_init_(weight: torch.Tensor) -> None:
    """torchvision's ResNet conv init (kaiming-normal, fan-out). Skipped on the meta device, where
    ``normal_`` runs a Python reference that imports ``torch._dynamo`` (about 1 s)."""
    if not weight.is_meta:
        nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
