"""bench/video_metrics.py on known cases: static-pixel flicker, warp error (flow + occlusion
check), CDC."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import video_metrics as vm  # noqa: E402

HEIGHT, WIDTH = 120, 160


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A colorful uint8 RGB texture with detail at several scales (flow can lock onto it)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), np.float32)
    for sigma, weight in ((1.5, 0.5), (4.0, 1.0), (12.0, 1.5)):
        noise = rng.normal(size=(height, width, 3)).astype(np.float32)
        out += weight * cv2.GaussianBlur(noise, (0, 0), sigma) * sigma
    out = (out - out.min()) / (out.max() - out.min())
    return (out * 255).round().astype(np.uint8)


def shifted_pair(dx: float, dy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two windows of one large texture: the second sees the scene moved by (dx, dy) px, i.e.
    frame1(x) = frame0(x - d); the true flow t -> t-1 is -d."""
    big = texture(HEIGHT + 40, WIDTH + 40, seed)
    frame0 = big[20 : 20 + HEIGHT, 20 : 20 + WIDTH]
    m = np.float32([[1, 0, 20 - dx], [0, 1, 20 - dy]])  # frame1 pixel x <- big(x + 20 - d)
    frame1 = cv2.warpAffine(big, m, (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    return frame0, frame1


def lab(frame: np.ndarray) -> np.ndarray:
    return rgb2lab(frame).astype(np.float32)


# ------------------------------------------------------------------ static-pixel flicker


def test_static_mask_and_ab_distance() -> None:
    l0 = np.full((20, 20), 50.0, np.float32)
    l1 = l0.copy()
    l1[10, 10] = 60.0  # one moving pixel: its 5x5 neighbourhood is not static
    mask = vm.static_mask(l0, l1)
    assert mask.sum() == 400 - 25 and not mask[8:13, 8:13].any()
    a = np.zeros((20, 20, 3), np.float32)
    b = a.copy()
    b[..., 1] = 3.0
    b[..., 2] = 4.0
    assert vm.ab_distance(a, b, mask) == pytest.approx(5.0)
    assert vm.ab_distance(a, a, mask) == 0.0


# ------------------------------------------------------------------ flow and occlusion


def test_identical_frames_warp_error_zero_nothing_occluded() -> None:
    frame = texture(HEIGHT, WIDTH)
    motion = vm.motion_between(frame, frame)
    assert motion.valid_share > 0.99
    assert vm.warp_error_ab(lab(frame), lab(frame), motion) < 1e-3
    assert vm.warp_error_rgb(frame, frame, motion) < 1e-6


@pytest.mark.parametrize("method", vm.FLOW_METHODS)
@pytest.mark.parametrize(("dx", "dy"), [(3.0, -2.0), (1.5, 0.5)])
def test_global_shift_is_explained_by_the_flow(method: str, dx: float, dy: float) -> None:
    frame0, frame1 = shifted_pair(dx, dy)
    motion = vm.motion_between(frame0, frame1, vm.FlowEstimator(method))
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    inner = (slice(10, -10), slice(10, -10))
    # the flow recovered: x + b(x) = x - d
    assert np.median(np.abs(motion.map_x - xs + dx)[inner]) < 0.1
    assert np.median(np.abs(motion.map_y - ys + dy)[inner]) < 0.1
    assert motion.valid[inner].mean() > 0.9
    # the content entering at the border is never trusted (x + b(x) leaves frame 0)
    if dx >= 1:
        assert not motion.valid[:, : int(dx) - 1].any()
    warp_ab = vm.warp_error_ab(lab(frame0), lab(frame1), motion)
    e_warp = vm.warp_error_rgb(frame0, frame1, motion)
    # the same pixels with the exact flow: 0 for whole-pixel shifts; for sub-pixel ones the
    # bilinear resampling of this detailed texture leaves ~0.76 (the floor of any warp error)
    exact = vm.Motion(xs - np.float32(dx), ys - np.float32(dy), motion.valid)
    floor = vm.warp_error_ab(lab(frame0), lab(frame1), exact)
    assert floor < (0.01 if dx == int(dx) else 1.0)
    assert warp_ab < floor + 0.3
    # without motion compensation the same pair differs a lot
    no_motion = vm.ab_distance(lab(frame0), lab(frame1))
    assert warp_ab < 0.15 * no_motion
    assert e_warp < 1e-4


def test_occlusion_check_formula() -> None:
    """Consistent flows pass, flows that disagree beyond 0.01 (|b|^2+|f|^2) + 0.5 fail."""
    back = np.zeros((10, 10, 2), np.float32)
    back[..., 0] = -2.0
    fwd = -back
    occluded, _, _ = vm.occlusion(back, fwd, motion_boundaries=False)
    assert not occluded[:, 2:].any() and occluded[:, :2].all()  # x - 2 < 0 leaves the frame
    fwd_bad = fwd.copy()
    fwd_bad[..., 1] = 0.75  # |b + f|^2 = 0.5625 <= 0.01 * (4 + 4.5625) + 0.5 = 0.5856
    occluded, _, _ = vm.occlusion(back, fwd_bad, motion_boundaries=False)
    assert not occluded[:, 2:].any()
    fwd_bad[..., 1] = 0.8  # 0.64 > 0.01 * (4 + 4.64) + 0.5 = 0.586: occluded
    occluded, _, _ = vm.occlusion(back, fwd_bad, motion_boundaries=False)
    assert occluded.all()


def test_moving_object_uncovers_occluded_background() -> None:
    """A square moves 6 px right over a still textured background: the background it uncovers
    in frame 1 was hidden in frame 0 and must be flagged; the far background must not."""
    background = texture(HEIGHT, WIDTH, seed=1)
    square = texture(30, 30, seed=2)
    frame0 = background.copy()
    frame1 = background.copy()
    frame0[40:70, 50:80] = square
    frame1[40:70, 56:86] = square
    motion = vm.motion_between(frame0, frame1)
    uncovered = np.zeros((HEIGHT, WIDTH), bool)
    uncovered[42:68, 52:54] = True  # hidden under the square in frame 0, visible in frame 1
    assert not motion.valid[uncovered].any()
    far = np.zeros((HEIGHT, WIDTH), bool)
    far[:, 110:] = True
    far[:25] = True
    assert motion.valid[far].mean() > 0.95


# ------------------------------------------------------------------ color noise


def noisy_ab(frame: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``frame`` with Gaussian noise of ``sigma`` Lab units on a and b (L kept)."""
    rng = np.random.default_rng(seed)
    out = lab(frame)
    out[..., 1:] += rng.normal(0, sigma, size=out[..., 1:].shape)
    return (np.clip(lab2rgb(out), 0, 1) * 255).round().astype(np.uint8)


def test_color_noise_raises_warp_error_and_cdc() -> None:
    frame0, frame1 = shifted_pair(2.0, 1.0)
    motion = vm.motion_between(frame0, frame1)  # flow from the clean reference frames
    warp, e_warp, cdcs = [], [], []
    for sigma in (0.0, 2.0, 6.0):
        out1 = noisy_ab(frame1, sigma) if sigma else frame1
        warp.append(vm.warp_error_ab(lab(frame0), lab(out1), motion))
        e_warp.append(vm.warp_error_rgb(frame0, out1, motion))
        cdcs.append(vm.cdc([frame0, out1]))
    assert warp[0] < warp[1] < warp[2] and e_warp[0] < e_warp[1] < e_warp[2]
    assert cdcs[0] < cdcs[1] < cdcs[2]
    # 2-D Gaussian noise: E|n| = sigma sqrt(pi/2) (gamut clipping and uint8 rounding aside)
    assert warp[2] == pytest.approx(6.0 * math.sqrt(math.pi / 2), rel=0.25)


def test_static_flicker_of_a_global_tint_change() -> None:
    frame = texture(HEIGHT, WIDTH)
    base = lab(frame)
    tinted = base.copy()
    tinted[..., 1] += 4.0
    mask = vm.static_mask(base[..., 0], tinted[..., 0])
    assert mask.all()
    assert vm.ab_distance(base, tinted, mask) == pytest.approx(4.0)


# ------------------------------------------------------------------ CDC


def test_cdc_known_values() -> None:
    frame = texture(HEIGHT, WIDTH)
    assert vm.cdc([frame, frame, frame]) == 0.0
    # CDC looks only at histograms: shuffled pixels are "consistent", the warp error is not
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(frame.reshape(-1, 3)).reshape(frame.shape)
    assert vm.cdc([frame, shuffled]) == pytest.approx(0.0, abs=1e-12)
    # disjoint histograms: the bound ln 2
    black = np.zeros((8, 8, 3), np.uint8)
    white = np.full((8, 8, 3), 255, np.uint8)
    assert vm.cdc([black, white]) == pytest.approx(math.log(2))
    # half the pixels change from 0 to 255: per channel JS([1, 0], [1/2, 1/2]); symmetric
    half = black.copy()
    half[:4] = 255
    value = vm.cdc([black, half])
    assert value == pytest.approx(vm.cdc([half, black]))
    p, q = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    m = (p + q) / 2
    expected = 0.5 * (1.0 * math.log(1.0 / m[0])) + 0.5 * (
        0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])
    )
    assert value == pytest.approx(expected)


def test_cdc_gaps_average_and_match_scipy() -> None:
    from scipy.stats import entropy

    frames = [texture(40, 50, seed=s) for s in range(6)]
    hists = [vm.channel_histograms(f) for f in frames]

    def reference(gap: int) -> float:
        # TCVC's compute_JS_bgr: per channel, mean over t of scipy JS; then mean of channels
        per_channel = []
        for c in range(3):
            js = []
            for t in range(len(frames) - gap):
                p, q = hists[t][c], hists[t + gap][c]
                m = (p + q) / 2
                js.append(0.5 * entropy(p, m) + 0.5 * entropy(q, m))
            per_channel.append(np.mean(js))
        return float(np.mean(per_channel))

    assert vm.cdc(frames) == pytest.approx(reference(1))
    assert vm.cdc(frames, gaps=(1, 2, 4)) == pytest.approx(
        (reference(1) + reference(2) + reference(4)) / 3
    )
    assert math.isnan(vm.cdc(frames[:1]))


def test_cdc_leaves_out_pairs_across_cuts() -> None:
    shot_a = [texture(30, 40, seed=0)] * 3
    shot_b = [255 - texture(30, 40, seed=0)] * 3
    frames = shot_a + shot_b
    assert vm.cdc(frames) > 0  # the jump at the cut counts without cuts
    assert vm.cdc(frames, cuts=[3]) == 0.0
    assert vm.cdc(frames, gaps=(1, 2, 4), cuts=[3]) == 0.0  # gap 4 has no pair within a shot
    assert vm.scene_cuts(frames) == [3]
