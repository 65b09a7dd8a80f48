"""The vivid style's color choice (segcolor.color.vivid) on known distributions."""

from __future__ import annotations

import torch

from segcolor.color.bins import bin_centers, nearest_bin
from segcolor.color.vivid import VividOptions, vivid_ab


def peaked(bins: list[int], weights: list[float], size: int = 8) -> torch.Tensor:
    """(1,313,size,size) logits: the same mixture of the given bins in every pixel."""
    logits = torch.full((1, 313, size, size), -30.0)
    for b, w in zip(bins, weights, strict=True):
        logits[0, b] = torch.log(torch.tensor(w))
    return logits


def bin_of(a: float, b: float) -> int:
    return int(nearest_bin(torch.tensor([a, b]).view(1, 2, 1, 1))[0, 0, 0])


RED, BLUE = bin_of(60.0, 40.0), bin_of(10.0, -50.0)


def test_a_sure_head_moves_the_mean_to_its_color():
    ab = torch.zeros(1, 2, 32, 32)  # the faithful answer: gray (the mean)
    out = vivid_ab(ab, peaked([RED], [1.0]), VividOptions(temperature=0.38, region_prior=0.0))
    assert torch.allclose(out[0, :, 16, 16], bin_centers()[RED], atol=1e-3)


def test_low_temperature_picks_the_likelier_color_and_t1_is_the_mean():
    ab = torch.zeros(1, 2, 32, 32)
    logits = peaked([RED, BLUE], [0.6, 0.4])
    mean = 0.6 * bin_centers()[RED] + 0.4 * bin_centers()[BLUE]
    out = vivid_ab(ab, logits, VividOptions(temperature=1.0, region_prior=0.0))
    assert torch.allclose(out[0, :, 16, 16], mean, atol=1e-3)
    sharp = vivid_ab(ab, logits, VividOptions(temperature=0.1, region_prior=0.0))
    # (0.6 / 0.4) ** 10 = 58: blue keeps 1.7 % of the weight, 1.7 units of the 100 between them
    assert torch.dist(sharp[0, :, 16, 16], bin_centers()[RED]) < 2.5


def test_the_region_prior_makes_one_choice_for_the_whole_region():
    """Left half slightly prefers red, right half slightly prefers blue, the region as a whole
    prefers red: per pixel the halves differ; with the region prior both become red."""
    ab = torch.zeros(1, 2, 32, 32)
    logits = peaked([RED, BLUE], [0.5, 0.5])
    logits[0, RED, :, :4] = torch.log(torch.tensor(0.75))
    logits[0, BLUE, :, :4] = torch.log(torch.tensor(0.25))
    logits[0, RED, :, 4:] = torch.log(torch.tensor(0.45))
    logits[0, BLUE, :, 4:] = torch.log(torch.tensor(0.55))
    region = torch.ones(1, 1, 32, 32)
    low = VividOptions(temperature=0.2, region_prior=0.0)
    apart = vivid_ab(ab, logits, low, region)
    assert apart[0, 1, 16, 2] > 20 and apart[0, 1, 16, 28] < -20  # red b > 0, blue b < 0
    together = vivid_ab(ab, logits, VividOptions(temperature=0.2, region_prior=1.0), region)
    assert together[0, 1, 16, 2] > 20 and together[0, 1, 16, 28] > 0


def test_fine_detail_stays_the_faithful_answers_and_hints_keep_it():
    ab = torch.zeros(1, 2, 32, 32)
    ab[0, 0, ::2] = 8.0  # stripes finer than the head's stride 4
    out = vivid_ab(ab, peaked([RED], [1.0]), VividOptions(region_prior=0.0))
    stripes = out[0, 0, 0::2] - out[0, 0, 1::2]
    assert torch.allclose(stripes[2:-2, 4:-4], torch.full_like(stripes[2:-2, 4:-4], 8.0), atol=0.5)
    mask = torch.zeros(1, 1, 32, 32)
    mask[0, 0, 14:18, 14:18] = 1.0
    kept = vivid_ab(ab, peaked([RED], [1.0]), VividOptions(region_prior=0.0), hint_mask=mask)
    assert torch.equal(kept[0, :, 16, 16], ab[0, :, 16, 16])
