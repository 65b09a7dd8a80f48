"""bench/hints.py's hint sampling (Zhang et al. 2017's evaluation) on known images: the same
hints for the same seed, the right counts, each hint the mean color of its patch; and the hint
reproduction measure's gamut test."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from skimage.color import rgb2lab

from segcolor.router.hints import Hint, check_hints

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import hints as bh  # noqa: E402

RED, BLUE = (200, 30, 20), (40, 60, 190)


def stripes(height: int = 120, width: int = 160) -> np.ndarray:
    """Columns alternately RED and BLUE: every patch of even side holds as many of each."""
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:, 0::2], rgb[:, 1::2] = RED, BLUE
    return rgb


def test_same_seed_same_hints_and_nested_counts() -> None:
    rgb = stripes()
    first = bh.sample_hints(rgb, 10, bh.photo_rng("a.jpg", seed=0))
    assert first == bh.sample_hints(rgb, 10, bh.photo_rng("a.jpg", seed=0))
    assert first != bh.sample_hints(rgb, 10, bh.photo_rng("a.jpg", seed=1))
    assert first != bh.sample_hints(rgb, 10, bh.photo_rng("b.jpg", seed=0))
    for count in (0, 1, 5):
        assert len(bh.sample_hints(rgb, count, bh.photo_rng("a.jpg"))) == count
        # the first N of a photo's sequence: 5 hints are the first 5 of 10
        assert bh.sample_hints(rgb, count, bh.photo_rng("a.jpg")) == first[:count]


def test_hint_is_its_patch_mean_color_at_its_centre() -> None:
    rgb = stripes()
    expected = rgb2lab(np.array([[RED, BLUE]], np.uint8)).mean(axis=(0, 1))
    sampled = bh.sample_hints(rgb, 20, bh.photo_rng("a.jpg"), side=4)
    check_hints([s.hint for s in sampled], rgb.shape[:2])  # inside the photo, not too large
    for s in sampled:
        x0, y0, side = s.box
        assert side == 4 and 0 <= x0 <= 160 - 4 and 0 <= y0 <= 120 - 4
        assert s.hint.points == ((x0 + 1.5, y0 + 1.5),) and s.hint.size == 2.0
        a, b = s.hint.ab  # the mean of the two colors' Lab, through an 8-bit "#rrggbb"
        assert abs(a - expected[1]) < 1.0 and abs(b - expected[2]) < 1.0
    uniform = np.full((50, 70, 3), RED, np.uint8)
    assert bh.sample_hints(uniform, 1, bh.photo_rng("c.jpg"))[0].hint.color == "#c81e14"


def test_spots_are_gaussian_about_the_centre() -> None:
    height, width = 200, 300
    side = bh.patch_side((height, width))
    assert side == 5  # 6 px at 256: 6 * 200 / 256 = 4.7
    rgb = np.zeros((height, width, 3), np.uint8)
    boxes = np.array([s.box for s in bh.sample_hints(rgb, 2000, bh.photo_rng("d.jpg"))])
    for axis, extent in ((0, width), (1, height)):
        free = extent - side + 1
        assert abs(boxes[:, axis].mean() - free / 2) < 0.05 * free
        assert abs(boxes[:, axis].std() - free / 4) < 0.05 * free  # a little clipped


def test_hint_targets_flag_chroma_the_lightness_cannot_show() -> None:
    red = Hint(((10.0, 10.0),), "#c81e14", 3.0)  # RED
    own = float(rgb2lab(np.array([[RED]], np.uint8))[0, 0, 0])  # its own lightness, about 43
    for lightness, out_of_gamut in ((5.0, True), (own, False)):
        lab = np.zeros((20, 20, 3))
        lab[..., 0] = lightness
        (where, target, outside), *_ = bh.hint_targets([red], lab, bh.hint_owners([red], (20, 20)))
        assert outside is out_of_gamut and len(where) == 29  # the disc of radius 3
        output = np.broadcast_to(target[0], lab.shape).copy()  # the target itself
        rep = bh.reproduction([(where, target, outside)], output)
        assert max(rep.in_gamut + rep.out_of_gamut) < 1e-6


def test_later_hint_owns_the_overlap() -> None:
    first = Hint(((5.0, 5.0),), "#ff0000", 2.0)
    second = Hint(((6.0, 5.0),), "#0000ff", 2.0)
    owner = bh.hint_owners([first, second], (12, 12))
    assert owner[5, 6] == 1 and owner[5, 3] == 0 and owner[0, 0] == -1
