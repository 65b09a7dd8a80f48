"""Spreading color hints past their pixels (segcolor.merge.spread) on known images: the
edge-aware diffusion (the default) and the joint bilateral kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcolor.errors import ConfigError
from segcolor.merge.spread import (
    MAX_SOLVE_PIXELS,
    METHODS,
    SpreadOptions,
    diffuse,
    spread_hints,
)
from segcolor.pipeline_config import SPREAD_METHODS, load_pipeline_config

from .conftest import REPO

H, W = 40, 60


def one_hint(y: int, x: int, color=(40.0, -20.0)) -> tuple[np.ndarray, np.ndarray]:
    masks = np.zeros((1, H, W), dtype=bool)
    masks[0, y - 1 : y + 2, x - 1 : x + 2] = True
    return masks, np.array([color], dtype=np.float32)


def test_bilateral_spreads_a_residual_and_fades_far_away():
    ab = torch.zeros(1, 2, H, W)
    light = torch.full((1, 1, H, W), 50.0)
    masks, colors = one_hint(20, 10)
    out = spread_hints(
        ab, light, masks, colors, options=SpreadOptions("bilateral", space=0.1, reach=0.05)
    )
    near, far = out[0, :, 20, 14], out[0, :, 20, 58]
    assert torch.allclose(near, torch.tensor([40.0, -20.0]), atol=6.0)  # most of the way
    assert far.abs().max() < 1.0  # 48 px away: sigma 4 px, nothing reaches
    assert torch.equal(out[0, :, 20, 10], ab[0, :, 20, 10])  # the hint's own pixels: as given


@pytest.mark.parametrize("method", METHODS)
def test_lightness_edges_and_other_regions_stop_a_hint(method):
    ab = torch.zeros(1, 2, H, W)
    light = torch.full((1, 1, H, W), 50.0)
    light[..., 30:] = 90.0  # a bright right half
    masks, colors = one_hint(20, 27)
    wide = (
        SpreadOptions(method, space=0.5, lightness=10.0, reach=0.05)
        if method == "bilateral"
        else SpreadOptions(method, space=0.5, lightness=3.0)
    )
    out = spread_hints(ab, light, masks, colors, options=wide)
    assert out[0, 0, 20, 25] > 30 and abs(float(out[0, 0, 20, 33])) < 1.0
    regions = torch.zeros(2, H, W)
    regions[0, :, :30], regions[1, :, 30:] = 1.0, 1.0
    flat = torch.full((1, 1, H, W), 50.0)
    out = spread_hints(ab, flat, masks, colors, regions, wide)
    assert out[0, 0, 20, 25] > 30 and abs(float(out[0, 0, 20, 33])) < 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_a_hint_the_answer_already_follows_changes_nothing(method):
    ab = torch.zeros(1, 2, H, W)
    ab[0, 0], ab[0, 1] = 40.0, -20.0  # the experts already carried the hint's color
    light = torch.full((1, 1, H, W), 50.0)
    masks, colors = one_hint(20, 10)
    out = spread_hints(ab, light, masks, colors, options=SpreadOptions(method))
    assert torch.allclose(out, ab, atol=1e-4)
    assert torch.equal(spread_hints(ab, light, masks[:0], colors[:0]), ab)  # no hints
    assert torch.equal(spread_hints(ab, light, masks, colors, options=SpreadOptions(space=0)), ab)


def test_diffusion_has_the_known_answers():
    """One hint on a flat photo: its value everywhere when nothing fades (space large), falling
    off with distance otherwise; two hints in one flat strip: the straight line between them."""
    light = np.full((5, 41), 50.0)
    covers = np.zeros((1, 5, 41), bool)
    covers[0, :, 0] = True
    far = diffuse(light, covers, np.array([[10.0]]), None, space=1e4, sigma=3.0)
    assert np.allclose(far, 10.0, atol=1e-3)
    near = diffuse(light, covers, np.array([[10.0]]), None, space=0.5, sigma=3.0)[0, 2]
    assert np.all(np.diff(near) < 0) and near[-1] < 0.01 * 10.0  # 40 px: 16 x the fading length
    two = np.zeros((2, 5, 41), bool)
    two[0, :, 0], two[1, :, 40] = True, True
    line = diffuse(light, two, np.array([[0.0], [8.0]]), None, space=1e4, sigma=3.0)[0, 2]
    assert np.allclose(line, np.linspace(0.0, 8.0, 41), atol=1e-3)


def test_edges_follow_a_shape_around_a_corner_and_stop_at_its_outline():
    """An L-shaped dark coat on a light wall: a hint at one end reaches the other end (around
    the corner, 50 px of steps away), and not the wall just beside the coat."""
    light = torch.full((1, 1, H, W), 80.0)
    light[..., 5:35, 5:11] = 30.0  # the vertical bar
    light[..., 29:35, 5:55] = 30.0  # the horizontal bar
    masks = np.zeros((1, H, W), bool)
    masks[0, 6:9, 6:9] = True
    colors = np.array([[50.0, 30.0]], dtype=np.float32)
    wide = SpreadOptions("edges", space=4.0, lightness=3.0)
    out = spread_hints(torch.zeros(1, 2, H, W), light, masks, colors, options=wide)
    assert out[0, 0, 32, 52] > 40  # the coat's far end
    assert abs(float(out[0, 0, 20, 14])) < 0.5  # the wall, 3 px beside the coat


def test_a_large_working_size_is_solved_coarser_and_keeps_its_edges():
    """Above MAX_SOLVE_PIXELS the solve runs on a coarser grid: the correction still stops at a
    lightness step (within the coarse pixel that holds it) and the hint's pixels keep the answer."""
    height, width = 400, 500
    assert height * width > MAX_SOLVE_PIXELS
    light = torch.full((1, 1, height, width), 40.0)
    light[..., 260:, :] = 90.0  # a bright lower third
    masks = np.zeros((1, height, width), bool)
    masks[0, 100:104, 100:104] = True
    ab = torch.zeros(1, 2, height, width)
    wide = SpreadOptions("edges", space=4.0, lightness=3.0)
    out = spread_hints(ab, light, masks, np.array([[30.0, 10.0]], np.float32), options=wide)
    assert out[0, 0, 100, 400] > 25 and abs(float(out[0, 0, 264, 100])) < 0.5
    assert torch.equal(out[0, :, 100:104, 100:104], ab[0, :, 100:104, 100:104])


def test_the_yaml_names_a_method_and_gets_a_one_line_error_for_another(tmp_path):
    assert SPREAD_METHODS == METHODS  # the config's copy of the merge's list
    with pytest.raises(ValueError, match="unknown spread method"):
        spread_hints(
            torch.zeros(1, 2, 4, 4),
            torch.zeros(1, 1, 4, 4),
            np.ones((1, 4, 4), bool),
            np.zeros((1, 2)),
            options=SpreadOptions("blur"),
        )
    path = tmp_path / "pipeline.yaml"
    path.write_text("hint_spread: {method: blur}\n")
    with pytest.raises(ConfigError, match="hint_spread.method must be one of edges, bilateral"):
        load_pipeline_config(path)
    path.write_text("hint_spread: {ring: 2.5}\n")
    with pytest.raises(ConfigError, match="hint_spread.ring must be a whole number"):
        load_pipeline_config(path)
    shipped = load_pipeline_config(REPO / "segcolor" / "weights" / "pipeline.yaml")
    assert SpreadOptions(**shipped.hint_spread) == SpreadOptions()  # the defaults are shipped
