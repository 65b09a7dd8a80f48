"""Spreading color hints past their pixels (segcolor.merge.spread) on known images."""

from __future__ import annotations

import numpy as np
import torch

from segcolor.merge.spread import SpreadOptions, spread_hints

H, W = 40, 60


def one_hint(y: int, x: int, color=(40.0, -20.0)) -> tuple[np.ndarray, np.ndarray]:
    masks = np.zeros((1, H, W), dtype=bool)
    masks[0, y - 1 : y + 2, x - 1 : x + 2] = True
    return masks, np.array([color], dtype=np.float32)


def test_a_hint_spreads_its_residual_and_fades_far_away():
    ab = torch.zeros(1, 2, H, W)
    light = torch.full((1, 1, H, W), 50.0)
    masks, colors = one_hint(20, 10)
    out = spread_hints(ab, light, masks, colors, options=SpreadOptions(space=0.1, reach=0.05))
    near, far = out[0, :, 20, 14], out[0, :, 20, 58]
    assert torch.allclose(near, torch.tensor([40.0, -20.0]), atol=6.0)  # most of the way
    assert far.abs().max() < 1.0  # 48 px away: sigma 4 px, nothing reaches
    assert torch.equal(out[0, :, 20, 10], ab[0, :, 20, 10])  # the hint's own pixels: as given


def test_lightness_edges_and_other_regions_stop_a_hint():
    ab = torch.zeros(1, 2, H, W)
    light = torch.full((1, 1, H, W), 50.0)
    light[..., 30:] = 90.0  # a bright right half
    masks, colors = one_hint(20, 27)
    wide = SpreadOptions(space=0.5, lightness=10.0, reach=0.05)
    out = spread_hints(ab, light, masks, colors, options=wide)
    assert out[0, 0, 20, 25] > 30 and abs(float(out[0, 0, 20, 33])) < 1.0
    regions = torch.zeros(2, H, W)
    regions[0, :, :30], regions[1, :, 30:] = 1.0, 1.0
    flat = torch.full((1, 1, H, W), 50.0)
    out = spread_hints(ab, flat, masks, colors, regions, wide)
    assert out[0, 0, 20, 25] > 30 and abs(float(out[0, 0, 20, 33])) < 1e-3


def test_a_hint_the_answer_already_follows_changes_nothing():
    ab = torch.zeros(1, 2, H, W)
    ab[0, 0], ab[0, 1] = 40.0, -20.0  # the experts already carried the hint's color
    light = torch.full((1, 1, H, W), 50.0)
    masks, colors = one_hint(20, 10)
    out = spread_hints(ab, light, masks, colors)
    assert torch.allclose(out, ab, atol=1e-4)
    assert torch.equal(spread_hints(ab, light, masks[:0], colors[:0]), ab)  # no hints
    assert torch.equal(spread_hints(ab, light, masks, colors, options=SpreadOptions(space=0)), ab)
