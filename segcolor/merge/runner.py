"""Run a model on crops of an image instead of the whole of it, and hand back patches."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from segcolor.merge.composite import Patch
from segcolor.merge.crops import Box


def run_on_crops(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    batches: Sequence[Sequence[Box]],
    expert: int = 0,
) -> list[Patch]:
    """``model`` maps (B,1,h,w) -> (B,2,h,w); each batch holds equally sized boxes of ``image``
    (1,1,H,W) and runs as one forward pass."""
    patches: list[Patch] = []
    for batch in batches:
        crops = torch.cat([image[..., y0:y1, x0:x1] for x0, y0, x1, y1 in batch])
        out = model(crops)
        patches.extend(Patch(expert, box, out[i]) for i, box in enumerate(batch))
    return patches
