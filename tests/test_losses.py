"""Training losses on constructed inputs with known answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from segcolor.color.bins import (
    NUM_BINS,
    ab_histogram,
    bin_centers,
    nearest_bin,
    rare_color_weights,
    soft_encode,
    zhang_rebalance_weights,
)
from segcolor.color.lab import denormalize_ab, normalize_ab, rgb_to_lab
from segcolor.train.losses import (
    ClassificationLoss,
    RareColorLoss,
    create_loss,
    needs_prior,
    smooth_prior,
)

UNIFORM = torch.full((NUM_BINS,), 1.0 / NUM_BINS, dtype=torch.float64)


def two_color_target(height: int = 4, width: int = 8) -> tuple[torch.Tensor, int, int]:
    """Normalised ab: left half one bin center, right half another; returns both bin indices."""
    centers = bin_centers()
    common, rare = 150, 20  # two in-gamut bins
    ab = torch.empty(1, 2, height, width)
    ab[..., : width // 2] = centers[common].view(1, 2, 1, 1)
    ab[..., width // 2 :] = centers[rare].view(1, 2, 1, 1)
    return normalize_ab(ab), common, rare


def skewed_prior(common: int, rare: int) -> torch.Tensor:
    prior = torch.full((NUM_BINS,), 1e-4, dtype=torch.float64)
    prior[common], prior[rare] = 0.9, 0.001
    return prior / prior.sum()


def test_nearest_bin_agrees_with_a_brute_force_search_in_and_out_of_gamut():
    torch.manual_seed(1)
    in_gamut = rgb_to_lab(torch.rand(3, 3, 16, 16))[:, 1:]
    anywhere = torch.rand(3, 2, 16, 16) * 280 - 140  # includes points far outside the 313
    for ab in (in_gamut, anywhere):
        brute_force = torch.cdist(ab.permute(0, 2, 3, 1), bin_centers()).argmin(dim=-1)
        assert torch.equal(nearest_bin(ab), brute_force)


def test_ab_histogram_counts_every_pixel_in_its_bin():
    ab = bin_centers()[[7, 7, 42]].T.reshape(1, 2, 1, 3)
    counts = ab_histogram(ab)
    assert counts.sum() == 3 and counts[7] == 2 and counts[42] == 1


def test_smooth_prior_is_a_positive_distribution_peaked_where_the_counts_are():
    counts = torch.zeros(NUM_BINS, dtype=torch.float64)
    counts[100] = 50
    prior = smooth_prior(counts)
    assert prior.sum().item() == pytest.approx(1.0)
    assert (prior > 0).all() and prior.argmax() == 100


def test_rare_color_weights_favour_rare_bins_and_average_to_one():
    prior = skewed_prior(150, 20)
    weights = rare_color_weights(prior)
    assert weights[20] > 10 * weights[150]
    assert (prior * weights).sum().item() == pytest.approx(1.0)


def test_plain_losses_have_known_values():
    raw, target = torch.zeros(1, 2, 3, 3), torch.full((1, 2, 3, 3), 0.5)
    assert create_loss({"kind": "l2"})(raw, target).item() == pytest.approx(0.25)
    assert create_loss({"kind": "l1"})(raw, target).item() == pytest.approx(0.5)


def test_rebalanced_loss_is_plain_l2_for_a_uniform_prior():
    torch.manual_seed(0)
    raw, target = torch.randn(2, 2, 8, 8) * 0.3, torch.randn(2, 2, 8, 8) * 0.3
    loss = create_loss({"kind": "rebalanced", "l2_weight": 0.65}, UNIFORM)
    assert loss(raw, target).item() == pytest.approx(F.mse_loss(raw, target).item(), rel=1e-5)


def test_rebalanced_loss_punishes_errors_on_rare_colors_more():
    target, common, rare = two_color_target()
    loss = RareColorLoss(skewed_prior(common, rare), l2_weight=0.65)
    wrong_on_common, wrong_on_rare = target.clone(), target.clone()
    wrong_on_common[..., :4] += 0.1
    wrong_on_rare[..., 4:] += 0.1
    plain = F.mse_loss(wrong_on_common, target).item()
    assert plain == pytest.approx(F.mse_loss(wrong_on_rare, target).item())
    assert loss(wrong_on_rare, target) > 3 * loss(wrong_on_common, target)
    assert loss(target, target).item() == 0.0


def test_rebalanced_loss_blends_plain_and_weighted_terms():
    target, common, rare = two_color_target()
    prior = skewed_prior(common, rare)
    raw = target + 0.05
    plain = F.mse_loss(raw, target).item()
    assert RareColorLoss(prior, l2_weight=1.0)(raw, target).item() == pytest.approx(plain)
    weighted = RareColorLoss(prior, l2_weight=0.0)(raw, target).item()
    blend = RareColorLoss(prior, l2_weight=0.65)(raw, target).item()
    assert blend == pytest.approx(0.65 * plain + 0.35 * weighted, rel=1e-5)


def test_classification_loss_is_minimal_at_the_target_distribution():
    torch.manual_seed(0)
    target = normalize_ab(rgb_to_lab(torch.rand(1, 3, 4, 4))[:, 1:])
    soft = soft_encode(denormalize_ab(target))
    ideal = torch.log(soft + 1e-12)
    loss = ClassificationLoss(UNIFORM)
    best = loss(ideal, target).item()
    entropy = -(soft * torch.log(soft + 1e-12)).sum(dim=1).mean().item()
    assert best == pytest.approx(entropy, abs=1e-4)  # uniform prior: weights are all 1
    for noise in (0.1, 1.0):
        assert loss(ideal + noise * torch.randn_like(ideal), target).item() > best
    uniform_logits = torch.zeros_like(ideal)
    assert loss(uniform_logits, target).item() == pytest.approx(math.log(NUM_BINS), abs=1e-4)


def test_classification_loss_weights_rare_pixels_by_zhang_rebalancing():
    target, common, rare = two_color_target()
    prior = skewed_prior(common, rare)
    logits = torch.zeros(1, NUM_BINS, 4, 8)  # the same cross-entropy at every pixel
    weights = zhang_rebalance_weights(prior, lam=0.5)
    expected = math.log(NUM_BINS) * (weights[common] + weights[rare]).item() / 2
    assert ClassificationLoss(prior, lam=0.5)(logits, target).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_loss_factory_checks_its_inputs():
    assert needs_prior("rebalanced") and needs_prior("classification") and not needs_prior("l2")
    with pytest.raises(ValueError, match="unknown loss kind"):
        create_loss({"kind": "huber"})
    with pytest.raises(ValueError, match="needs the training set's ab prior"):
        create_loss({"kind": "rebalanced"})
    assert isinstance(
        create_loss({"kind": "classification", "lam": 0.5}, UNIFORM), ClassificationLoss
    )
