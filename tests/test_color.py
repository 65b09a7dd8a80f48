import numpy as np
import pytest
import skimage.color
import torch

from segcolor.color import denormalize_ab, denormalize_l, normalize_ab, normalize_l
from segcolor.color.bins import (
    NUM_BINS,
    annealed_mean,
    bin_centers,
    nearest_bin,
    rare_color_weights,
    soft_encode,
    zhang_rebalance_weights,
)
from segcolor.color.lab import fit_to_gamut, lab_to_rgb, rgb_to_lab
from segcolor.color.recombine import recombine


def _chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1)


def _hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


def test_rgb_to_lab_matches_skimage():
    rng = np.random.default_rng(1)
    rgb = rng.random((23, 31, 3))
    rgb[0, :3] = [[0, 0, 0], [1, 1, 1], [1, 0, 0]]
    ours = _hwc(rgb_to_lab(_chw(rgb)))
    np.testing.assert_allclose(ours, skimage.color.rgb2lab(rgb), atol=1e-3)


def test_lab_round_trip_and_matches_skimage_inverse():
    rng = np.random.default_rng(2)
    rgb = rng.random((17, 13, 3))
    lab = rgb_to_lab(_chw(rgb))
    back = _hwc(lab_to_rgb(lab))
    np.testing.assert_allclose(back, rgb, atol=1e-6)
    np.testing.assert_allclose(back, skimage.color.lab2rgb(_hwc(lab)), atol=1e-5)


def test_lab_works_batched_in_float32():
    rgb = torch.rand(4, 3, 8, 9)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape and lab.dtype == torch.float32
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=1e-4)


def test_normalisation_round_trips_and_ranges():
    lightness = torch.tensor([0.0, 50.0, 100.0])
    assert torch.allclose(normalize_l(lightness), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(denormalize_l(normalize_l(lightness)), lightness)
    ab = torch.tensor([-110.0, 0.0, 110.0])
    assert torch.allclose(denormalize_ab(normalize_ab(ab)), ab)
    assert normalize_ab(ab).abs().max() == 1.0


def test_fit_to_gamut_keeps_lightness_and_hue():
    torch.manual_seed(0)
    lab = torch.cat([torch.rand(1, 1, 20, 20) * 100, torch.randn(1, 2, 20, 20) * 90], dim=1)
    fitted = fit_to_gamut(lab)
    assert torch.equal(fitted[:, :1], lab[:, :1])
    # hue kept: fitted ab is a non-negative multiple of the original ab
    cross = fitted[:, 1] * lab[:, 2] - fitted[:, 2] * lab[:, 1]
    assert (cross.abs() / (lab[:, 1:].norm(dim=1) ** 2 + 1)).max() < 1e-5
    assert ((fitted[:, 1:] * lab[:, 1:]).sum(1) >= 0).all()
    relab = rgb_to_lab(lab_to_rgb(fitted))
    assert (relab[:, 0] - lab[:, 0]).abs().max() < 0.5


def test_recombine_upsamples_ab_and_keeps_full_resolution_lightness():
    lightness = torch.linspace(30, 80, 48 * 64).view(1, 1, 48, 64)
    ab = torch.zeros(1, 2, 12, 16)
    ab[:, 0] = 20.0
    rgb = recombine(lightness, ab)
    assert rgb.shape == (1, 3, 48, 64)
    lab = rgb_to_lab(rgb)
    assert (lab[:, 0] - lightness[:, 0]).abs().max() < 0.05
    assert (lab[:, 1] - 20.0).abs().max() < 0.1 and lab[:, 2].abs().max() < 0.1


def test_there_are_313_bins_on_a_grid_of_10():
    centers = bin_centers()
    assert centers.shape == (NUM_BINS, 2) == (313, 2)
    assert torch.all(centers % 10 == 0)
    assert centers[:, 0].min() == -90 and centers[:, 0].max() == 100
    # every in-gamut color lies within one grid cell of a bin center
    ab = rgb_to_lab(torch.rand(1, 3, 64, 64))[:, 1:]
    nearest = bin_centers()[nearest_bin(ab)].permute(0, 3, 1, 2)
    assert (nearest - ab).abs().max() <= 5.0 + 1e-4


def test_soft_encoding_is_a_distribution_peaked_at_the_nearest_bin():
    ab = torch.tensor([[-40.0, 10.0], [3.0, 3.0]]).T.reshape(1, 2, 1, 2)
    target = soft_encode(ab)
    assert torch.allclose(target.sum(1), torch.ones(1, 1, 2))
    assert torch.equal(target.argmax(1), nearest_bin(ab))
    assert ((target > 0).sum(1) == 5).all()


def test_annealed_mean_known_answers():
    centers = bin_centers()
    k = 100
    one_hot = torch.full((1, NUM_BINS, 1, 1), -1e4)
    one_hot[0, k] = 0.0
    assert torch.allclose(annealed_mean(one_hot)[0, :, 0, 0], centers[k])
    # two equally likely bins: the mean lies half way, at any temperature
    two = torch.full((1, NUM_BINS, 1, 1), -1e4)
    two[0, [3, 200]] = 0.0
    assert torch.allclose(annealed_mean(two, 0.38)[0, :, 0, 0], centers[[3, 200]].mean(0))
    # a lower temperature moves the estimate towards the mode
    logits = torch.randn(1, NUM_BINS, 1, 1)
    mode = centers[logits.argmax()]
    near_mode = (annealed_mean(logits, 0.05)[0, :, 0, 0] - mode).norm()
    assert near_mode < (annealed_mean(logits, 1.0)[0, :, 0, 0] - mode).norm()


@pytest.mark.parametrize("weights_fn", [rare_color_weights, zhang_rebalance_weights])
def test_rebalancing_weights_favour_rare_bins_and_average_to_one(weights_fn):
    prob = torch.full((NUM_BINS,), 1e-4, dtype=torch.float64)
    prob[0] = 0.5
    prob = prob / prob.sum()
    weights = weights_fn(prob)
    assert torch.isclose((prob * weights).sum(), torch.tensor(1.0, dtype=torch.float64))
    assert weights[1] > 5 * weights[0]
    uniform = torch.full((NUM_BINS,), 1.0 / NUM_BINS, dtype=torch.float64)
    assert torch.allclose(weights_fn(uniform), torch.ones(NUM_BINS, dtype=torch.float64))
