"""Scene cuts and repeated frames, from lightness alone (the input is black and white).

Two cheap signatures per frame: a 32-bin histogram of L and a 32x32 thumbnail of L. Within a
shot, motion moves content around but keeps the histogram (small total-variation distance);
old film's exposure flicker shifts the histogram but barely changes the thumbnail. A cut changes
both, so the score is their geometric mean. Measured on the clips in the shared data/video: the
three cuts of the 1952 film score 0.31-0.57, everything else (pans, fast motion, film flicker)
at most 0.13; the default threshold 0.2 sits between.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BINS = 32
THUMB = 32
DEFAULT_CUT_THRESHOLD = 0.2
# A repeated frame (telecine and frame-rate conversion duplicates, a freeze): nothing moved by
# more than codec noise. Duplicates in the 1952 film score mean <= 0.4, 99.9th pct <= 3.3;
# a person moving, even small and far away, puts the 99.9th percentile above 20.
REPEAT_MEAN = 0.5
REPEAT_PEAK = 3.5


@dataclass(frozen=True)
class Signature:
    """What one frame's lightness looks like, coarsely."""

    histogram: np.ndarray  # (BINS,) float32, sums to 1
    thumbnail: np.ndarray  # (THUMB, THUMB) float32, L / 100


def signature(lightness: np.ndarray) -> Signature:
    """``lightness``: (H, W) L in [0, 100]."""
    values = np.asarray(lightness, dtype=np.float32)
    hist = np.histogram(values, bins=BINS, range=(0.0, 100.0))[0].astype(np.float32)
    hist /= max(float(hist.sum()), 1.0)
    thumb = cv2.resize(values, (THUMB, THUMB), interpolation=cv2.INTER_AREA) / 100.0
    return Signature(hist, thumb.astype(np.float32))


def cut_score(before: Signature, after: Signature) -> float:
    """0 for identical frames, up to 1 for unrelated ones."""
    hist = 0.5 * float(np.abs(before.histogram - after.histogram).sum())
    thumb = float(np.abs(before.thumbnail - after.thumbnail).mean())
    return float(np.sqrt(hist * thumb))


def is_repeat(previous: np.ndarray, current: np.ndarray) -> bool:
    """Whether ``current`` repeats ``previous`` (both (h, w) L in [0, 100]) up to noise."""
    if previous.shape != current.shape:
        return False
    change = cv2.GaussianBlur(np.abs(current - previous).astype(np.float32), (0, 0), 1.0)
    if float(change.mean()) >= REPEAT_MEAN:
        return False
    return float(np.percentile(change, 99.9)) < REPEAT_PEAK


class CutDetector:
    """Feed frames in order; ``update`` says whether this frame starts a new shot."""

    def __init__(self, threshold: float = DEFAULT_CUT_THRESHOLD) -> None:
        self.threshold = threshold
        self.last: Signature | None = None
        self.score = 0.0

    def reset(self) -> None:
        self.last = None
        self.score = 0.0

    def update(self, lightness: np.ndarray) -> bool:
        """True on a cut (and on the first frame: there is nothing to continue from)."""
        current = signature(lightness)
        previous, self.last = self.last, current
        if previous is None:
            self.score = 1.0
            return True
        self.score = cut_score(previous, current)
        return self.score > self.threshold

    def state(self) -> dict[str, np.ndarray]:
        if self.last is None:
            return {}
        return {"cut_histogram": self.last.histogram, "cut_thumbnail": self.last.thumbnail}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if "cut_histogram" in state:
            self.last = Signature(state["cut_histogram"], state["cut_thumbnail"])
        else:
            self.last = None
