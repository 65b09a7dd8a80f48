"""MPEG-7 Dominant Color Descriptor: known colors, shares and coherency on constructed images,
masked regions, and the dissimilarity's known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.color
import torch

from segcolor.color.dcd import (
    TD,
    DominantColors,
    dcd_distance,
    distance_matrix,
    dominant_colors,
    dominant_colors_many,
)
from segcolor.color.lab import lab_to_rgb

RED, BLUE, YELLOW = (200, 40, 40), (30, 120, 200), (240, 220, 60)


def stripes(widths: tuple[int, ...] = (25, 15, 10), height: int = 40, noise: float = 0.0):
    """Vertical stripes of RED, BLUE, YELLOW (then more colors), float RGB with optional noise."""
    palette = [RED, BLUE, YELLOW, (20, 150, 60), (250, 250, 250), (10, 10, 10)]
    columns = np.concatenate([np.full(w, i) for i, w in enumerate(widths)])
    rgb = np.array(palette, dtype=np.float64)[columns][None].repeat(height, 0) / 255.0
    rng = np.random.default_rng(0)
    return np.clip(rgb + rng.normal(0.0, noise / 255.0, rgb.shape), 0, 1).astype(np.float32)


def lab_of(rgb255: tuple[int, int, int]) -> np.ndarray:
    return skimage.color.rgb2lab(np.array([[rgb255]], dtype=np.float64) / 255.0)[0, 0]


def rgb_of_lab(lab: tuple[float, float, float]) -> np.ndarray:
    """A flat 8 x 8 float image of one Lab color (in gamut for the colors used here)."""
    tensor = torch.tensor(lab, dtype=torch.float64).view(3, 1, 1)
    return lab_to_rgb(tensor).permute(1, 2, 0).numpy().repeat(8, 0).repeat(8, 1)


@pytest.mark.parametrize("noise", [0.0, 2.0])
def test_three_flat_colors_give_their_colors_and_shares(noise: float) -> None:
    d = dominant_colors(stripes(noise=noise))
    assert len(d) == 3
    np.testing.assert_allclose(d.percents, [0.5, 0.3, 0.2], atol=0.02)
    assert d.percents.sum() == pytest.approx(1.0)
    for found, truth in zip(d.colors, (RED, BLUE, YELLOW), strict=True):
        assert skimage.color.deltaE_ciede2000(found, lab_of(truth)) < 2.0
    if noise == 0:
        np.testing.assert_allclose(d.variances, 0.0, atol=1e-6)
    else:
        assert (d.variances > 0).all()


def test_coherency_is_high_for_solid_patches_and_low_for_speckle() -> None:
    # stripes 25/15/10 wide: only the columns on either side of a border are incoherent
    # (1, 2 and 1 of them), so s = 0.5 * 24/25 + 0.3 * 13/15 + 0.2 * 9/10 = 0.92 exactly
    assert dominant_colors(stripes()).coherency == pytest.approx(0.92, abs=1e-6)
    rng = np.random.default_rng(1)
    speckle = np.array([RED, BLUE, YELLOW], dtype=np.uint8)[rng.integers(0, 3, (40, 50))]
    d = dominant_colors(speckle)
    assert len(d) == 3 and d.coherency < 0.05


def test_masked_region_and_soft_weights() -> None:
    image = stripes((20, 20, 20))  # red | blue | yellow, a third each
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[:, 10:40] = True  # half of the red stripe and all of the blue one
    d = dominant_colors(image, mask)
    np.testing.assert_allclose(d.percents, [2 / 3, 1 / 3], atol=0.02)
    assert skimage.color.deltaE_ciede2000(d.colors[0], lab_of(BLUE)) < 2
    soft = np.where(np.arange(60) < 20, 1.0, 0.25)[None].repeat(40, 0)  # red counts 4x
    np.testing.assert_allclose(
        dominant_colors(image, soft).percents, [4 / 6, 1 / 6, 1 / 6], atol=0.02
    )
    empty = dominant_colors(image, np.zeros(image.shape[:2]))
    assert len(empty) == 0 and empty.coherency == 0.0


def test_at_most_eight_colors_all_further_apart_than_td() -> None:
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (14, 3))
    image = palette[rng.integers(0, 14, (48, 48))].astype(np.uint8)
    d = dominant_colors(image)
    assert 1 <= len(d) <= 8 and d.percents.sum() == pytest.approx(1.0)
    gaps = np.linalg.norm(d.colors[:, None] - d.colors[None], axis=-1)[np.triu_indices(len(d), 1)]
    assert (gaps >= TD).all()
    assert list(d.percents) == sorted(d.percents, reverse=True)


def test_a_batch_of_different_sizes_equals_one_by_one() -> None:
    a, b = stripes(noise=2.0), stripes((7, 30), height=23, noise=2.0)
    many = dominant_colors_many([a, b])
    for alone, batched in zip((dominant_colors(a), dominant_colors(b)), many, strict=True):
        np.testing.assert_allclose(alone.colors, batched.colors, atol=1e-3)
        np.testing.assert_allclose(alone.percents, batched.percents, atol=1e-6)
        assert alone.coherency == pytest.approx(batched.coherency, abs=1e-6)


def test_identical_images_have_distance_zero() -> None:
    d1, d2 = dominant_colors(stripes(noise=2.0)), dominant_colors(stripes(noise=2.0))
    assert dcd_distance(d1, d2) == pytest.approx(0.0, abs=1e-6)
    assert dcd_distance(d1, d2, coherency=True) == pytest.approx(0.0, abs=1e-6)


def test_distance_grows_as_colors_move_apart() -> None:
    base = dominant_colors(rgb_of_lab((60.0, 0.0, 20.0)))
    shifts = [0.0, 3.0, 6.0, 10.0, 14.0, 15.5, 20.0, 40.0]
    distances = [dcd_distance(base, dominant_colors(rgb_of_lab((60.0, s, 20.0)))) for s in shifts]
    assert all(a < b for a, b in zip(distances[:6], distances[1:6], strict=False))  # up to Td
    # one color each, d < Td: D^2 = 2 - 2 (1 - d / 1.2 Td)  ->  D = sqrt(2 d / 19.2)
    for shift, dist in zip(shifts[:6], distances[:6], strict=True):
        assert dist == pytest.approx(math.sqrt(2 * shift / (1.2 * TD)), abs=2e-3)
    # beyond Td the colors no longer match at all: the largest distance, sqrt(2)
    assert distances[6] == pytest.approx(math.sqrt(2)) and distances[7] == pytest.approx(
        math.sqrt(2)
    )


def test_partial_match_known_value_and_matrix() -> None:
    def two(c1: tuple, c2: tuple) -> DominantColors:
        return DominantColors(
            np.array([c1, c2], float), np.array([0.5, 0.5]), np.zeros((2, 3)), 1.0
        )

    a = two((50, 0, 0), (50, 40, 40))
    b = two((50, 0, 0), (50, -40, -40))  # shares one color exactly, the other is far away
    assert dcd_distance(a, b) == pytest.approx(math.sqrt(0.5))  # 0.5 + 0.5 - 2 * 0.25
    c = DominantColors(np.array([[50.0, 0, 0]]), np.array([1.0]), np.zeros((1, 3)), 0.5)
    # coherency term (MPEG-7): D' = 0.3 |s1 - s2| D + 0.7 D
    plain = dcd_distance(a, c)
    assert dcd_distance(a, c, coherency=True) == pytest.approx(0.3 * 0.5 * plain + 0.7 * plain)
    matrix = distance_matrix([a, b, c])
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 0.0, atol=1e-7)
    assert matrix[0, 1] == pytest.approx(dcd_distance(a, b))


def test_dict_round_trip() -> None:
    d = dominant_colors(stripes(noise=2.0))
    back = DominantColors.from_dict(d.to_dict())
    np.testing.assert_allclose(back.colors, d.colors, atol=0.06)
    np.testing.assert_allclose(back.percents, d.percents, atol=1e-3)
    assert d.to_dict()["colors"][0]["hex"] == "#c82828"  # RED, most frequent first
