"""Which photos a training run holds out: a stable hash of the file name, the same everywhere.

Training splits its data with these, and everything that must not look at training photos
(``segcolor evaluate --held-out``, ``segcolor profiles --val-fraction``, the benchmarks) picks
the held-out ones with the same rule, so they live below both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def unit_hash(text: str) -> float:
    """A stable number in [0, 1) for ``text`` (same on every machine and Python run)."""
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_score(path: Path) -> float:
    """A file's place in [0, 1) for the train/val split; it is held out when below the fraction.

    Keyed on the file name alone, so the same photo lands on the same side whichever folder a
    config points at; ``segcolor evaluate --held-out`` uses it to pick never-trained-on photos.
    """
    return unit_hash("val:" + path.name)


def subset_score(path: Path) -> float:
    """A file's place in [0, 1) for ``data.max_images`` over several folders: the photos with
    the smallest scores form a stable subset that samples every folder (unlike their first N,
    which would be the first folder's). Keyed on the folder and file name, as on any machine."""
    return unit_hash("subset:" + "/".join(path.parts[-2:]))


def is_held_out(path: Path, val_fraction: float) -> bool:
    """True when training with ``val_fraction`` keeps ``path`` out of the training set."""
    return split_score(path) < val_fraction
