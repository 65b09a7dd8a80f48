"""Temporal-consistency measures of a colorized clip: static-pixel flicker, warp error, CDC.

Every function takes plain arrays (uint8 RGB frames, float Lab), so ``tests/test_video_metrics``
checks them on known cases and ``bench/video_stability.py`` and ``experiments/flicker_sources.py``
share them.

- **static-pixel flicker** (``static_mask``, ``ab_distance``): the mean ab change (Euclidean,
  Lab units) between output frames t and t-1 over the pixels whose *input* L changes by less
  than ``STATIC_L`` within their 5x5 neighbourhood: no motion model, only still pixels count.
- **warp error** (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): output
  frame t-1 is moved onto frame t along dense optical flow computed from the *reference* frames
  (the color originals, or the gray input for a B&W film; never the output), and compared with
  output frame t over the pixels the flow explains. Non-occluded: the forward-backward check
  of Ruder et al. / Lai et al., with b = flow t -> t-1 at x and f = flow t-1 -> t at x + b(x),
  a pixel is occluded where ``|b + f|^2 > 0.01 (|b|^2 + |f|^2) + 0.5`` (px^2), where x + b(x)
  leaves the frame, and (as Lai et al.'s code, ``motion_boundaries=True``) on motion boundaries,
  ``|grad b_x|^2 + |grad b_y|^2 > 0.01 |b|^2 + 0.002``. Reported two ways:
  ``warp_ab``: mean ||ab_t(x) - ab_{t-1}(x + b(x))||_2 in Lab units (comparable with flicker);
  ``warp_rgb``: Lai et al.'s E_warp, mean ||rgb_t(x) - rgb_{t-1}(x + b(x))||_2^2 with RGB in
  [0, 1] (squared, summed over the 3 channels; the papers print it x 10^-3 or so).
- **CDC**, color distribution consistency (Liu et al., TCVC, "Temporally Consistent Video
  Colorization with Deep Feature Propagation and Self-regularization Learning", 2021; used by
  the NTIRE 2023 video colorization challenge, BiSTNet, ColorMNet): per RGB channel a
  256-bin histogram of each frame, normalised to sum 1; the Jensen-Shannon divergence
  (natural log, so in [0, ln 2]) between frames t and t+g; averaged over t, then over the three
  channels. ``cdc(frames, gaps=(1, 2, 4))`` is the mean over the gaps (weights 1/3 each), as the
  reference code (TCVC eval_results.py) does. No motion, no ground truth: only how much the
  color distribution jumps. Pairs that span a scene cut can be left out (``cuts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

STATIC_L = 2.0  # L units: "barely changes"
OCCLUSION_RATIO = 0.01  # forward-backward check: |b + f|^2 > 0.01 (|b|^2 + |f|^2) + 0.5
OCCLUSION_SLACK = 0.5  # px^2
BOUNDARY_RATIO = 0.01  # motion boundary: |grad b|^2 > 0.01 |b|^2 + 0.002
BOUNDARY_SLACK = 0.002
FLOW_METHODS = ("dis", "farneback")


# ------------------------------------------------------------------ static-pixel flicker


def static_mask(l_prev: np.ndarray, l_cur: np.ndarray, tolerance: float = STATIC_L) -> np.ndarray:
    """Pixels whose input L (H,W, in [0,100]) changes by less than ``tolerance`` anywhere in
    their 5x5 neighbourhood between two frames."""
    change = np.abs(l_cur.astype(np.float32) - l_prev.astype(np.float32))
    return cv2.dilate(change, np.ones((5, 5), np.uint8)) < tolerance


def ab_distance(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean Euclidean ab distance (Lab units) of two Lab images (H,W,3) over ``mask``."""
    dist = np.linalg.norm(a[..., 1:].astype(np.float32) - b[..., 1:].astype(np.float32), axis=-1)
    if mask is None:
        return float(dist.mean())
    return float(dist[mask].mean()) if mask.any() else float("nan")


# ------------------------------------------------------------------ optical flow


def to_gray8(frame: np.ndarray) -> np.ndarray:
    """uint8 RGB (H,W,3) or gray (H,W) -> uint8 gray, as the flow estimators take it."""
    if frame.ndim == 2:
        return frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Dense flow between full-resolution gray frames: OpenCV DIS (medium preset, with its
    variational refinement) or Farneback."""

    def __init__(self, method: str = "dis") -> None:
        if method not in FLOW_METHODS:
            raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow (H,W,2) float32 with source(x) ~ target(x + flow(x))."""
        if self.method == "dis":
            return self._dis.calc(source, target, None)
        return cv2.calcOpticalFlowFarneback(source, target, None, 0.5, 5, 15, 3, 5, 1.1, 0)


@dataclass
class Motion:
    """Where each pixel of frame t was in frame t-1, and whether that is trusted."""

    map_x: np.ndarray  # (H,W) float32: x + b_x(x)
    map_y: np.ndarray
    valid: np.ndarray  # (H,W) bool: not occluded, inside frame t-1, not on a motion boundary

    def warp(self, previous: np.ndarray) -> np.ndarray:
        """Frame t-1's ``previous`` (H,W[,C]) resampled at frame t's pixels (bilinear)."""
        return cv2.remap(
            previous.astype(np.float32), self.map_x, self.map_y, cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip

    @property
    def valid_share(self) -> float:
        return float(self.valid.mean())


def occlusion(
    back: np.ndarray, fwd: np.ndarray, motion_boundaries: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occlusion mask on frame t's grid from ``back`` (t -> t-1) and ``fwd`` (t-1 -> t) flows,
    both (H,W,2): returns (occluded (H,W) bool, map_x, map_y)."""
    height, width = back.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = xs + back[..., 0]
    map_y = ys + back[..., 1]
    fwd_there = cv2.remap(fwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = np.square(back + fwd_there).sum(-1)
    magnitude = np.square(back).sum(-1) + np.square(fwd_there).sum(-1)
    occluded = round_trip > OCCLUSION_RATIO * magnitude + OCCLUSION_SLACK
    occluded |= (map_x < 0) | (map_x > width - 1) | (map_y < 0) | (map_y > height - 1)
    if motion_boundaries:
        du_y, du_x = np.gradient(back[..., 0])
        dv_y, dv_x = np.gradient(back[..., 1])
        gradient = du_x**2 + du_y**2 + dv_x**2 + dv_y**2
        occluded |= gradient > BOUNDARY_RATIO * np.square(back).sum(-1) + BOUNDARY_SLACK
    return occluded, map_x, map_y


def motion_between(
    previous: np.ndarray,
    current: np.ndarray,
    flow: FlowEstimator | None = None,
    motion_boundaries: bool = True,
) -> Motion:
    """The motion from reference frame t-1 (``previous``) to t (``current``), RGB or gray."""
    flow = flow or FlowEstimator()
    prev8, cur8 = to_gray8(previous), to_gray8(current)
    back = flow(cur8, prev8)  # current(x) ~ previous(x + back(x))
    fwd = flow(prev8, cur8)
    occluded, map_x, map_y = occlusion(back, fwd, motion_boundaries)
    return Motion(map_x, map_y, ~occluded)


# ------------------------------------------------------------------ warp error


def warp_error_ab(lab_prev: np.ndarray, lab_cur: np.ndarray, motion: Motion) -> float:
    """Mean ||ab_t - warp(ab_{t-1})||_2 (Lab units) over the non-occluded pixels."""
    moved = motion.warp(lab_prev[..., 1:])
    dist = np.linalg.norm(lab_cur[..., 1:].astype(np.float32) - moved, axis=-1)
    return float(dist[motion.valid].mean()) if motion.valid.any() else float("nan")


def warp_error_rgb(rgb_prev: np.ndarray, rgb_cur: np.ndarray, motion: Motion) -> float:
    """Lai et al.'s E_warp of one pair: mean over non-occluded pixels of the squared L2 RGB
    difference, RGB in [0, 1] (uint8 frames are divided by 255)."""
    scale = 255.0 if rgb_cur.dtype == np.uint8 else 1.0
    moved = motion.warp(rgb_prev) / scale
    diff = np.square(rgb_cur.astype(np.float32) / scale - moved).sum(-1)
    return float(diff[motion.valid].mean()) if motion.valid.any() else float("nan")


# ------------------------------------------------------------------ CDC


def channel_histograms(frame: np.ndarray, bins: int = 256) -> np.ndarray:
    """(3, bins) per-channel histograms of a uint8 RGB frame, each summing to 1."""
    pixels = frame.reshape(-1, frame.shape[-1]).astype(np.int64)
    scale = 256 // bins
    hists = np.stack(
        [np.bincount(pixels[:, c] // scale, minlength=bins) for c in range(pixels.shape[1])]
    ).astype(np.float64)
    return hists / hists.sum(-1, keepdims=True)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) along the last axis of two distributions."""
    p = p / p.sum(-1, keepdims=True)
    q = q / q.sum(-1, keepdims=True)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log(a / m), 0.0)
        return terms.sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc(
    frames: Sequence[np.ndarray] | np.ndarray,
    gaps: Sequence[int] = (1,),
    bins: int = 256,
    cuts: Sequence[int] = (),
) -> float:
    """Color distribution consistency of uint8 RGB frames: for each gap g, the JS divergence
    of per-channel histograms between frames t and t+g, averaged over t and the 3 channels;
    then the mean over ``gaps`` (nan when the clip is too short for every gap). ``cuts``:
    indices of frames that start a new shot; pairs spanning one are left out (the reference
    code has no cuts: without ``cuts`` this is its number)."""
    hists = [channel_histograms(f, bins) for f in frames]
    cut = np.zeros(len(hists) + 1, np.int64)
    for c in cuts:
        if 0 < c < len(hists):
            cut[c + 1] += 1
    before = np.cumsum(cut)  # before[i]: cuts at indices < i
    per_gap = []
    for gap in gaps:
        js = [
            js_divergence(hists[t], hists[t + gap])
            for t in range(len(hists) - gap)
            if before[t + gap + 1] == before[t + 1]  # no cut in (t, t + gap]
        ]
        if js:
            per_gap.append(float(np.mean(js)))  # over t and channels (equal counts per channel)
    return float(np.mean(per_gap)) if per_gap else float("nan")


def scene_cuts(frames: Sequence[np.ndarray]) -> list[int]:
    """Indices (> 0) of the frames that start a new shot, by segcolor's cut detector on the
    frames' L (the stabilizer's own rule; the first frame is not listed)."""
    from skimage.color import rgb2lab

    from segcolor.video.scenes import CutDetector

    detector = CutDetector()
    cuts = []
    for index, frame in enumerate(frames):
        rgb = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=-1)
        if detector.update(rgb2lab(rgb)[..., 0]) and index > 0:
            cuts.append(index)
    return cuts
