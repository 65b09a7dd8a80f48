"""Run a model on crops of an image instead of the whole of it, and hand back patches."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from segcolor.merge.composite import Patch
from segcolor.merge.crops import Box


def run_on_crops(
    model: Callable[..., torch.Tensor],
    image: torch.Tensor,
    batches: Sequence[Sequence[Box]],
    expert: int = 0,
    features: torch.Tensor | None = None,
    stride: int = 8,
    maps: Mapping[str, torch.Tensor | None] | None = None,
) -> list[Patch]:
    """``model`` maps (B,1,h,w) and optional per-image features (B,F,h/stride,w/stride) to
    (B,2,h,w); each batch holds equally sized boxes of ``image`` (1,1,H,W), corners on the
    ``stride`` grid when ``features`` (1,F,H/stride,W/stride) are given, and runs as one pass.
    ``maps``: more per-pixel inputs (1,C,H,W), cropped alike and passed by name (None: left
    out)."""
    patches: list[Patch] = []
    given = {k: v for k, v in (maps or {}).items() if v is not None}
    for batch in batches:
        crops = torch.cat([image[..., y0:y1, x0:x1] for x0, y0, x1, y1 in batch])
        extra = {
            k: torch.cat([v[..., y0:y1, x0:x1] for x0, y0, x1, y1 in batch])
            for k, v in given.items()
        }
        feats = None
        if features is not None:
            feats = torch.cat([
                features[..., y0 // stride : -(-y1 // stride), x0 // stride : -(-x1 // stride)]
                for x0, y0, x1, y1 in batch
            ])  # fmt: skip
        out = model(crops, **extra) if feats is None else model(crops, feats, **extra)
        patches.extend(Patch(expert, box, out[i]) for i, box in enumerate(batch))
    return patches
