"""A gray-photo correction for a segmenter trained on color photos.

The router's segmenter was trained on color photos but only ever sees gray ones, and it misses
much there: a black swan that it finds on 17 % of a color frame is background everywhere on
the same frame in gray. ``GrayHead`` is a small residual head on the segmenter's own last
features (the ASPP projection) that adds a correction to its class logits; it is learned by
distillation (``segcolor.train.gray_head``): on training photos, the segmenter's answer on the
color photo teaches the head what the gray photo shows. The backbone and its features stay as
they are, so the experts, which read those features, need no retraining, and the head's last
layer starts at zero, so an untrained head changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from segcolor.errors import CheckpointError
from segcolor.nets.loading import read_metadata

FORMAT = "segcolor-gray-head/1"


class GrayHead(nn.Module):
    """Features (B,F,h,w) -> a correction (B,C,h,w) added to the segmenter's class logits."""

    def __init__(self, in_channels: int, classes: Sequence[str], hidden: int = 64) -> None:
        super().__init__()
        self.classes = list(classes)
        self.hidden = hidden
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),  # a little spatial context
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, len(self.classes), 1),
        )
        nn.init.zeros_(self.body[-1].weight)  # starts as "no correction"
        nn.init.zeros_(self.body[-1].bias)

    @property
    def in_channels(self) -> int:
        return self.body[0].in_channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(features)

    def metadata(self, segmenter: str) -> dict[str, str]:
        return {
            "format": FORMAT,
            "segmenter": segmenter,
            "classes": ",".join(self.classes),
            "in_channels": str(self.in_channels),
            "hidden": str(self.hidden),
        }


def load_gray_head(path: str | Path, segmenter: str, classes: Sequence[str]) -> GrayHead:
    """Read a head written by ``segcolor.train.gray_head`` and check that it was learned for
    ``segmenter`` (same name and classes); any mismatch is a one-line ``CheckpointError``."""
    path = Path(path)
    meta = read_metadata(path, "gray head")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"not a segcolor gray head (format {meta.get('format')!r})", path)
    if meta.get("segmenter") != segmenter or meta.get("classes") != ",".join(classes):
        raise CheckpointError(
            f"this head was learned for segmenter {meta.get('segmenter')!r}, not {segmenter!r}"
            " (or for other classes)",
            path,
        )
    try:
        head = GrayHead(int(meta["in_channels"]), list(classes), hidden=int(meta["hidden"]))
        head.load_state_dict(load_file(str(path)))
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"damaged gray head ({str(err).splitlines()[0]})", path) from None
    return head.eval()
