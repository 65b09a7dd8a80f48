"""Dominant Color Descriptors of many photo files: decoded in parallel, clustered in batches."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segcolor.color.dcd import MAX_SIDE, TD, DominantColors, dominant_colors_many, subsample
from segcolor.errors import BadImageError
from segcolor.io.images import load_image

log = logging.getLogger(__name__)


class _Thumbnails(Dataset):
    """Each photo subsampled to ``max_side`` (None for an unreadable one)."""

    def __init__(self, files: Sequence[Path], max_side: int) -> None:
        self.files = list(files)
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> np.ndarray | str:
        try:
            return subsample(load_image(self.files[index]).rgb, self.max_side)
        except BadImageError as err:
            return str(err)


def _as_list(batch: list) -> list:
    return batch


def describe_files(
    files: Sequence[Path],
    *,
    td: float = TD,
    max_side: int = MAX_SIDE,
    batch_size: int = 16,  # fastest on the CPU: larger batches spill out of the cache
    workers: int = 2,
    progress: bool = True,
) -> list[DominantColors | None]:
    """One descriptor per file, in order; None (with a warning) for files that cannot be read."""
    loader = DataLoader(
        _Thumbnails(files, max_side),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_as_list,
    )
    out: list[DominantColors | None] = []
    bar = tqdm(
        total=len(files), desc="dominant colors", unit="img", disable=not progress, file=sys.stderr
    )
    for batch in loader:
        good = [i for i, item in enumerate(batch) if not isinstance(item, str)]
        described = dominant_colors_many([batch[i] for i in good], td=td, max_side=max_side)
        row: list[DominantColors | None] = [None] * len(batch)
        for i, d in zip(good, described, strict=True):
            row[i] = d
        for item in batch:
            if isinstance(item, str):
                log.warning("skipping unreadable photo: %s", item)
        out += row
        bar.update(len(batch))
    bar.close()
    return out
