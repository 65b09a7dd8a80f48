"""Merge: feathered compositing hides seams, crops plan and run like whole-image runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segcolor.experts import create_expert
from segcolor.merge import (
    Patch,
    boundary_jump,
    composite,
    edge_window,
    expand_box,
    feather,
    full_patches,
    gaussian_blur,
    interior_gradient,
    merge_boxes,
    one_hot,
    plan_crops,
    run_on_crops,
)


def two_experts(height: int = 48, width: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Two experts that disagree (one reddish, one bluish, each with a little texture) and a
    left/right hard label map."""
    torch.manual_seed(0)
    texture = F.interpolate(torch.randn(1, 2, 6, 8), size=(height, width), mode="bilinear")[0]
    a = torch.tensor([40.0, 20.0]).view(2, 1, 1) + 3 * texture
    b = torch.tensor([-10.0, -40.0]).view(2, 1, 1) - 3 * texture
    labels = torch.zeros(height, width, dtype=torch.long)
    labels[:, width // 2 :] = 1
    return torch.stack([a, b]), labels


def test_feathered_weights_sum_to_one() -> None:
    _, labels = two_experts()
    soft = feather(one_hot(labels, 2), sigma=3.0)
    assert torch.allclose(soft.sum(0), torch.ones_like(soft[0]), atol=1e-5)
    assert soft.min() >= 0
    assert soft[0, :, 5].min() > 0.999 and soft[0, :, 31].max() < 0.8 and soft[0, :, 31].min() > 0.5


def test_feathering_hides_the_seam() -> None:
    abs_full, labels = two_experts()
    hard, _ = composite(one_hot(labels, 2), full_patches(abs_full), sigma=0.0)
    soft, used = composite(one_hot(labels, 2), full_patches(abs_full), sigma=3.0)
    hard_jump, soft_jump = boundary_jump(hard, labels), boundary_jump(soft, labels)
    assert hard_jump > 50  # the full difference between the experts, in one pixel step
    assert soft_jump < hard_jump / 4  # about jump / (sigma * sqrt(2 pi)) per pixel
    wider, _ = composite(one_hot(labels, 2), full_patches(abs_full), sigma=6.0)
    assert boundary_jump(wider, labels) < soft_jump
    assert torch.allclose(used.sum(0), torch.ones(48, 64), atol=1e-5)


def test_equals_the_single_expert_where_its_weight_is_one() -> None:
    abs_full, labels = two_experts()
    ab, _ = composite(one_hot(labels, 2), full_patches(abs_full), sigma=2.0)
    assert torch.allclose(ab[:, :, :20], abs_full[0][:, :, :20], atol=1e-4)
    assert torch.allclose(ab[:, :, 44:], abs_full[1][:, :, 44:], atol=1e-4)
    everywhere, _ = composite(torch.ones(1, 48, 64), full_patches(abs_full[:1]), sigma=4.0)
    assert torch.allclose(everywhere, abs_full[0], atol=1e-5)


def test_pixels_outside_an_experts_patches_get_none_of_its_weight() -> None:
    abs_full, _ = two_experts()
    weights = torch.full((2, 48, 64), 0.5)
    patches = [
        Patch(0, (0, 0, 64, 48), abs_full[0]),
        Patch(1, (0, 0, 32, 48), abs_full[1][..., :32]),
    ]
    ab, used = composite(weights, patches)
    assert torch.allclose(ab[:, :, 32:], abs_full[0][:, :, 32:], atol=1e-5)
    assert (used[1, :, 32:] == 0).all()
    assert torch.allclose(ab[:, :, :32], abs_full[:, :, :, :32].mean(0), atol=1e-4)


def test_gaussian_blur_keeps_constants_and_mass() -> None:
    maps = torch.rand(3, 20, 30)
    assert torch.allclose(gaussian_blur(torch.ones(2, 9, 9), 2.5), torch.ones(2, 9, 9), atol=1e-5)
    assert gaussian_blur(maps, 0) is maps
    assert gaussian_blur(maps, 1.5).mean().item() == pytest.approx(maps.mean().item(), abs=0.02)


def test_seam_measure_of_a_step() -> None:
    ab = torch.zeros(2, 4, 6)
    ab[0, :, 3:] = 10.0
    labels = torch.zeros(4, 6, dtype=torch.long)
    labels[:, 3:] = 1
    assert boundary_jump(ab, labels) == pytest.approx(10.0)
    assert interior_gradient(ab, labels) == 0.0


# --------------------------------------------------------------------------- crops


def test_expand_box_snaps_to_the_grid_and_clips() -> None:
    assert expand_box((20, 30, 40, 50), 5, (100, 100), 8) == (8, 24, 48, 56)
    assert expand_box((2, 3, 98, 97), 10, (100, 100), 8) == (0, 0, 100, 100)


def test_merge_boxes_joins_overlaps_only() -> None:
    assert merge_boxes([(0, 0, 10, 10), (5, 0, 15, 10)]) == [(0, 0, 15, 10)]
    assert merge_boxes([(0, 0, 10, 10), (50, 50, 60, 60)]) == [(0, 0, 10, 10), (50, 50, 60, 60)]


def test_plan_crops_batches_similar_boxes() -> None:
    boxes = [(8, 8, 24, 24), (64, 64, 82, 80)]  # two small regions far apart
    batches = plan_crops(boxes, (128, 128), margin=8, multiple=8)
    assert len(batches) == 1 and len(batches[0]) == 2  # one forward pass
    sizes = {(b[2] - b[0], b[3] - b[1]) for b in batches[0]}
    assert len(sizes) == 1
    for crop, box in zip(batches[0], boxes, strict=True):
        assert crop[0] % 8 == 0 and crop[1] % 8 == 0
        assert crop[0] <= box[0] - 8 and crop[2] >= box[2] + 8
    big_and_small = plan_crops([(0, 0, 100, 100), (110, 110, 112, 112)], (128, 128), 4, 8)
    assert [len(b) for b in big_and_small] == [1, 1]  # growing the small one would waste work
    overlapping = plan_crops([(0, 0, 40, 40), (20, 12, 60, 50)], (128, 128), 4, 8)
    assert overlapping == [[(0, 0, 64, 56)]]  # one crop: their union costs less than both
    assert plan_crops([], (10, 10), 4) == []


def test_edge_window_trusts_image_borders_not_cuts() -> None:
    window = edge_window((0, 0, 20, 10), (10, 40), ramp=4.0)
    assert window[:, 0].min() == 1.0  # left edge is the image's border
    assert window[5, -1] < 0.2 and window[5, 10] == 1.0  # right edge is a cut


def test_cropped_expert_matches_the_whole_image_run() -> None:
    torch.manual_seed(0)
    expert = create_expert(decoder_channels=[32, 16, 8]).eval()
    image = F.interpolate(torch.rand(1, 1, 12, 12) * 2 - 1, size=(128, 128), mode="bilinear")
    box = (48, 40, 80, 88)
    with torch.inference_mode():
        full = expert(image)[0]
        errors = []
        for margin in (8, 32, 48):
            batches = plan_crops([box], (128, 128), margin, expert.size_multiple)
            (patch,) = run_on_crops(expert, image, batches)
            x0, y0, x1, y1 = patch.box
            inside = patch.ab[:, box[1] - y0 : box[3] - y0, box[0] - x0 : box[2] - x0]
            errors.append((inside - full[:, box[1] : box[3], box[0] : box[2]]).abs().mean())
    # normalised ab: 0.01 is about one Lab unit; the margin is what makes the crop faithful
    assert errors[0] > errors[1] > errors[2]
    assert errors[1] < 0.02 and errors[2] < 0.005


def test_overlapping_crops_prefer_their_middles() -> None:
    full = torch.arange(40.0).repeat(2, 10, 1)  # (2,10,40)
    wrong = full.clone()
    wrong[..., 14:20] += 100.0  # the right rim of the left crop is off
    patches = [Patch(0, (0, 0, 20, 10), wrong[..., :20]), Patch(0, (10, 0, 40, 10), full[..., 10:])]
    ab, _ = composite(torch.ones(1, 10, 40), patches, ramp=6.0)
    error = (ab - full)[0, 0, 14:20]  # plain averaging would be off by 50 throughout
    assert (error[1:] < error[:-1]).all() and error[-1] < 10 and error[3] < 40
