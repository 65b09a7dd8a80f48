"""Run a model on crops of an image instead of the whole of it, and hand back patches."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from segcolor.merge.composite import Patch
from segcolor.merge.crops import Box


def run_on_crops(
    model: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    image: torch.Tensor,
    batches: Sequence[Sequence[Box]],
    expert: int = 0,
    features: torch.Tensor | None = None,
    stride: int = 8,
) -> list[Patch]:
    """``model`` maps (B,1,h,w) and optional per-image features (B,F,h/stride,w/stride) to
    (B,2,h,w); each batch holds equally sized boxes of ``image`` (1,1,H,W), corners on the
    ``stride`` grid when ``features`` (1,F,H/stride,W/stride) are given, and runs as one pass."""
    patches: list[Patch] = []
    for batch in batches:
        crops = torch.cat([image[..., y0:y1, x0:x1] for x0, y0, x1, y1 in batch])
        feats = None
        if features is not None:
            feats = torch.cat([
                features[..., y0 // stride : -(-y1 // stride), x0 // stride : -(-x1 // stride)]
                for x0, y0, x1, y1 in batch
            ])  # fmt: skip
        out = model(crops) if feats is None else model(crops, feats)
        patches.extend(Patch(expert, box, out[i]) for i, box in enumerate(batch))
    return patches
