"""Color hints sampled from the training photo itself, as Zhang et al. (SIGGRAPH 2017) train
their user-guided network: a geometric number of points (p = 1/8), each a square patch of 1-9 px
around a spot drawn from a Gaussian about the centre, revealing the patch's mean ab. A share of
the samples gets no hint at all, so the answer without hints does not get worse.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from segcolor.experts.base import HINT_CHANNELS
from segcolor.train.config import HINT_DEFAULTS


def sample_hints(
    target: torch.Tensor, generator: torch.Generator, options: dict[str, Any] | None = None
) -> torch.Tensor:
    """(B,3,H,W) hints for a batch of normalised ab targets (B,2,H,W): each patch's mean ab
    and a mask of 1 over it; zero elsewhere. Drawn on the CPU from ``generator``, so a run
    resumed at an epoch boundary draws the same hints."""
    opts = {**HINT_DEFAULTS, **(options or {})}
    batch, _, height, width = target.shape
    hints = torch.zeros(batch, HINT_CHANNELS, height, width)
    ab = target.detach().float().cpu()
    for i in range(batch):
        if float(torch.rand((), generator=generator)) < opts["none"]:
            continue
        # Geometric(p) on 1, 2, ...: the number of trials until the first success
        u = max(float(torch.rand((), generator=generator)), 1e-12)
        count = min(int(math.log(u) / math.log(1.0 - opts["p"])) + 1, opts["max_points"])
        sides = torch.randint(1, opts["max_patch"] + 1, (count,), generator=generator)
        centres = torch.randn(count, 2, generator=generator) * 0.25 + 0.5
        for side, (cy, cx) in zip(sides.tolist(), centres.tolist(), strict=True):
            y0 = min(max(int(cy * height) - side // 2, 0), height - side)
            x0 = min(max(int(cx * width) - side // 2, 0), width - side)
            patch = ab[i, :, y0 : y0 + side, x0 : x0 + side]
            hints[i, :2, y0 : y0 + side, x0 : x0 + side] = patch.mean((1, 2))[:, None, None]
            hints[i, 2, y0 : y0 + side, x0 : x0 + side] = 1.0
    return hints.to(target.device)


class HintSampler:
    """``sample_hints`` with a generator seeded by (seed, epoch, rank): the hints of an epoch
    do not depend on where a run was resumed."""

    def __init__(self, options: dict[str, Any] | None, seed: int, rank: int = 0) -> None:
        self.options = {**HINT_DEFAULTS, **(options or {})}
        self.seed, self.rank = seed, rank
        self.generator = torch.Generator()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(hash((self.seed, epoch, self.rank)) % 2**62)

    def __call__(self, target: torch.Tensor) -> torch.Tensor:
        return sample_hints(target, self.generator, self.options)
