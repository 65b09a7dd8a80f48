"""Color hints (segcolor/router/hints.py) in routing edits: points and strokes drawn at the
working size where the experts read them (known areas and positions, Lab a, b / 110), one-line
errors for every malformed hint, round trips through the edits file; and, with hand-set
``resnet18_unet_hints`` experts that copy a hint's a, b to their output (and answer gray
elsewhere), a hint through the routed pipeline: it colors its pixels with its own region's
expert, and re-running reruns only the experts whose crops hold it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segcolor.color.lab import AB_SCALE, rgb_to_lab
from segcolor.errors import EditsError
from segcolor.experts import Expert, create_expert, save_expert
from segcolor.pipeline import Pipeline
from segcolor.router.edits import RoutingEdits
from segcolor.router.hints import (
    DEFAULT_RADIUS,
    MAX_HINTS,
    Hint,
    check_hints,
    default_radius,
    draw_hints,
    hint_map,
    parse_hints,
)

from .test_pipeline import CATEGORIES, write_yaml
from .test_routing_edits import DOG, PERSON, subjects_photo

PHOTO = (480, 640)  # (H, W)
WORKING = (256, 341)  # the working size of a 480x640 photo at working_size 256
SCALE = min(WORKING[0] / PHOTO[0], WORKING[1] / PHOTO[1])
RED = "#b02a20"
BLUE = "#3050a0"
# each category's expert copies a hint's a, b times this gain: which expert answered shows
GAINS = {"people": 1.0, "birds": 1.0, "animals": 1.0, "places": 0.5}


def lab_ab(color: str) -> tuple[float, float]:
    rgb = torch.tensor([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)], dtype=torch.float64)
    lab = rgb_to_lab(rgb.view(1, 3, 1, 1))[0, :, 0, 0]
    return float(lab[1]), float(lab[2])


def working_xy(x: float, y: float) -> tuple[float, float]:
    """Where photo pixel (x, y)'s centre lands at the working size."""
    return (x + 0.5) * WORKING[1] / PHOTO[1] - 0.5, (y + 0.5) * WORKING[0] / PHOTO[0] - 0.5


# ----------------------------------------------------------------------------- hand-set experts


def hint_copier(gain: float = 1.0, seed: int = 0) -> Expert:
    """A ``resnet18_unet_hints`` expert whose answer is known: ``gain`` times the hint's a, b
    on the hint's pixels, 0 (gray) everywhere else, whatever the photo. The decoder's last
    block answers 0 (its last batch norm is zeroed), ``hints.late`` writes the hint's a, b into
    feature channels 0 and 1, and the output head's centre tap copies them out."""
    torch.manual_seed(seed)
    expert = create_expert("resnet18_unet_hints", feature_channels=0, decoder_channels=[16, 8, 8])
    with torch.no_grad():
        last = expert.net.decoder.blocks[-1].conv2[1]
        last.weight.zero_()
        last.bias.zero_()
        late = expert.hints.late.weight
        late.zero_()
        late[0, 0, 1, 1] = late[1, 1, 1, 1] = 1.0
        head = expert.net.segmentation_head[0]
        head.weight.zero_()
        head.bias.zero_()
        head.weight[0, 0, 1, 1] = head.weight[1, 1, 1, 1] = gain
    return expert


def make_hint_experts(folder: Path) -> Path:
    """One hand-set hint copier per category (``GAINS``), saved as checkpoints."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(CATEGORIES):
        card = {"name": name, "category": name}
        save_expert(hint_copier(GAINS[name], seed=i), folder / f"{name}.safetensors", card)
    return folder


def hint_yaml(folder: Path, expert_dir: Path, spread: bool = False) -> Path:
    """The person-and-dog pipeline of test_routing_edits with the hint copiers; hints do not
    spread past what the experts answer unless ``spread`` (segcolor.merge.spread)."""
    extra = "" if spread else "hint_spread: {space: 0}\n"
    return write_yaml(folder, expert_dir, segmenter="test_subjects", working_size=128, extra=extra)


def count_forward_calls(pipeline: Pipeline) -> list[str]:
    """Wrap every expert's forward; the returned list gets a category name per call."""
    calls: list[str] = []
    for name, models in pipeline.experts.items():
        for model in models:
            original = model.forward
            model.forward = lambda *a, _n=name, _f=original, **k: calls.append(_n) or _f(*a, **k)
    return calls


def centre(box: tuple[float, ...], shape: tuple[int, int]) -> tuple[float, float]:
    height, width = shape
    return (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height


@pytest.fixture(scope="module")
def hint_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    experts = make_hint_experts(tmp_path_factory.mktemp("hint-experts"))
    return Pipeline.from_config(hint_yaml(tmp_path_factory.mktemp("hints"), experts), device="cpu")


# ----------------------------------------------------------------------------- the hint map


def test_a_point_is_a_disc_of_its_radius_at_the_working_size() -> None:
    (hint,) = parse_hints([{"x": 300, "y": 200, "color": RED, "radius": 30}])
    mask = hint_map([hint], PHOTO, WORKING)[0, 2].numpy() > 0
    x, y = working_xy(300, 200)
    assert mask[round(y), round(x)]  # covers its centre pixel
    r = 30 * SCALE  # photo pixels scale to working pixels
    assert math.pi * r**2 * 0.95 < mask.sum() < math.pi * (r + 0.5) ** 2 * 1.05
    rows, cols = np.nonzero(mask)
    assert abs(cols.mean() - x) < 1.0 and abs(rows.mean() - y) < 1.0
    assert np.hypot(cols - x, rows - y).max() < r + 1.5
    # without a radius: DEFAULT_RADIUS working pixels, whatever the photo's size
    (dot,) = parse_hints([{"x": 300, "y": 200, "color": RED}])
    small = hint_map([dot], PHOTO, WORKING)[0, 2].numpy() > 0
    assert small[round(y), round(x)]
    assert math.pi * (DEFAULT_RADIUS - 0.5) ** 2 < small.sum() < math.pi * (DEFAULT_RADIUS + 1) ** 2
    assert default_radius(PHOTO, WORKING) == pytest.approx(DEFAULT_RADIUS / SCALE)
    # a tiny point still marks the pixel it is on
    (tiny,) = parse_hints([{"x": 300, "y": 200, "color": RED, "radius": 0.1}])
    one = hint_map([tiny], PHOTO, WORKING)[0, 2].numpy() > 0
    assert 1 <= one.sum() <= 4 and one[round(y), round(x)]


def test_a_stroke_covers_its_segment() -> None:
    raw = {"points": [[100, 100], [400, 100], [400, 300]], "color": BLUE, "width": 20}
    mask = hint_map(parse_hints([raw]), PHOTO, WORKING)[0, 2].numpy() > 0
    w = 20 * SCALE
    for (xa, ya), (xb, yb) in (((100, 100), (400, 100)), ((400, 100), (400, 300))):
        for t in np.linspace(0, 1, 50):
            x, y = working_xy(xa + t * (xb - xa), ya + t * (yb - ya))
            assert mask[round(y), round(x)], (x, y)
    length = (300 + 200) * SCALE
    assert 0.9 < mask.sum() / (length * w + math.pi * w**2 / 4) < 1.15
    # nothing farther than half its width (and a pixel) from the polyline
    rows, cols = np.nonzero(mask)
    x0, y0 = working_xy(100, 100)
    x1, y1 = working_xy(400, 100)
    _, y2 = working_xy(400, 300)
    d_top = np.where(cols < x0, np.hypot(cols - x0, rows - y0), np.abs(rows - y0))
    d_top = np.where(cols > x1, np.hypot(cols - x1, rows - y0), d_top)
    d_side = np.where(rows > y2, np.hypot(cols - x1, rows - y2), np.abs(cols - x1))
    d_side = np.where(rows < y1, np.inf, d_side)
    assert np.minimum(d_top, d_side).max() < w / 2 + 1.5


def test_hint_channels_are_the_colors_lab_ab_over_110_and_later_hints_win() -> None:
    hints = parse_hints(
        [
            {"x": 300, "y": 200, "color": RED, "radius": 30},
            {"x": 330, "y": 200, "color": BLUE, "radius": 30},  # overlaps the red one
        ]
    )
    assert AB_SCALE == 110
    maps = hint_map(hints, PHOTO, WORKING)
    assert maps.shape == (1, 3, *WORKING) and maps.dtype == torch.float32
    a, b, mask = maps[0].numpy()
    red, blue = lab_ab(RED), lab_ab(BLUE)
    assert hints[0].ab == pytest.approx(red, abs=1e-4)
    xr, yr = working_xy(290, 200)  # the red disc only
    xo, yo = working_xy(315, 200)  # both: the later (blue) wins
    xb, yb = working_xy(345, 200)  # the blue disc only
    for (x, y), (ea, eb) in (((xr, yr), red), ((xo, yo), blue), ((xb, yb), blue)):
        assert mask[round(y), round(x)] == 1
        assert a[round(y), round(x)] == pytest.approx(ea / 110, abs=1e-5)
        assert b[round(y), round(x)] == pytest.approx(eb / 110, abs=1e-5)
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert not a[mask == 0].any() and not b[mask == 0].any()  # zero where there is no hint
    assert hint_map((), PHOTO, WORKING) is None


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([{"x": 10, "y": 10, "color": "red"}], 'hints[0].color must be an sRGB color like "#'),
        ([{"x": 10, "y": 10, "color": "#12345"}], "hints[0].color must be an sRGB color"),
        ([{"x": 10, "y": 10, "color": "#gg0000"}], "hints[0].color must be an sRGB color"),
        ([{"x": 10, "y": 10}], "hints[0].color must be an sRGB color"),
        ([{"x": 10, "y": 10, "color": RED, "colour": RED}], "unknown key 'colour' in hints[0]"),
        ([{"x": 10, "y": 10, "color": RED, "width": 3}], "unknown key 'width' in hints[0]"),
        ([{"points": [[1, 2]], "color": RED, "radius": 3}], "unknown key 'radius' in hints[0]"),
        ([{"x": "10", "y": 10, "color": RED}], "hints[0].x must be a number, got '10'"),
        ([{"x": 10, "y": None, "color": RED}], "hints[0].y must be a number, got None"),
        ([{"x": True, "y": 10, "color": RED}], "hints[0].x must be a number, got True"),
        ([{"x": float("nan"), "y": 1, "color": RED}], "hints[0].x must be a number"),
        ([{"y": 10, "color": RED}], "hints[0] needs x and y (a point) or points (a stroke)"),
        ([{"points": [[1, "a"]], "color": RED}], "hints[0].points[0] must be a number"),
        ([{"points": [[1, 2, 3]], "color": RED}], "hints[0].points[0] must be [x, y]"),
        ([{"points": [], "color": RED}], "hints[0].points must be a list of 1 to 2000 [x, y]"),
        ([{"x": 1, "y": 1, "color": RED, "radius": 0}], "hints[0].radius must be above 0"),
        ([{"x": 1, "y": 1, "color": RED, "radius": "big"}], "hints[0].radius must be a number"),
        ([[1, 2]], "hints[0] must be an object with a color and x, y or points"),
        ({"x": 1}, '"hints" must be a list of points and strokes'),
        ([{"x": 1, "y": 1, "color": RED}] * (MAX_HINTS + 1), "too many hints: 501 (at most 500)"),
    ],
)
def test_malformed_hints_are_one_line_edits_errors(raw, fragment: str) -> None:
    with pytest.raises(EditsError) as caught:
        parse_hints(raw)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(EditsError, match="hints"):  # the same through an edits file
        RoutingEdits.from_dict({"version": 1, "hints": raw})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"x": 640, "y": 10, "color": RED}, "hints[0] at (640, 10) is outside the 640x480 photo"),
        ({"x": -0.5, "y": 10, "color": RED}, "at (-0.5, 10) is outside the 640x480 photo"),
        ({"x": 10, "y": 480, "color": RED}, "at (10, 480) is outside the 640x480 photo"),
        ({"points": [[10, 10], [700, 10]], "color": RED}, "at (700, 10) is outside"),
        (
            {"x": 10, "y": 10, "color": RED, "radius": 121},
            "hints[0].radius 121 is too large for a 640x480 photo (at most 120 px)",
        ),
        (
            {"points": [[10, 10], [20, 10]], "color": RED, "width": 200},
            "hints[0].width 200 is too large for a 640x480 photo (at most 120 px)",
        ),
    ],
)
def test_hints_that_do_not_fit_the_photo_are_one_line_errors(raw: dict, fragment: str) -> None:
    hints = parse_hints([raw])  # well formed: only the photo can tell
    for call in (lambda: check_hints(hints, PHOTO), lambda: hint_map(hints, PHOTO, WORKING)):
        with pytest.raises(EditsError) as caught:
            call()
        assert fragment in str(caught.value) and "\n" not in str(caught.value)
    check_hints(parse_hints([{"x": 639.9, "y": 479, "color": RED, "radius": 120}]), PHOTO)


def test_a_bad_style_is_a_one_line_error() -> None:
    with pytest.raises(EditsError, match=r'^"style" must be one of faithful, vivid, got \'bold\'$'):
        RoutingEdits.from_dict({"style": "bold"})
    with pytest.raises(EditsError, match="must be one of faithful, vivid"):
        RoutingEdits().with_style("loud")


# ----------------------------------------------------------------------------- the edits file


def test_version_1_files_without_hints_still_load() -> None:
    old = '{"version": 1, "reassign": [{"region": 2, "category": "people"}], "paint": [], ' + (
        '"profiles": {}, "vividness": 1.3}'
    )
    edits = RoutingEdits.from_json(old)
    assert edits.hints == () and edits.style is None and edits.vividness == 1.3
    assert edits.to_dict() == json.loads(old)  # nothing added on the way out
    assert RoutingEdits.from_json('{"version": 1}').empty


def test_hints_and_style_round_trip(tmp_path: Path) -> None:
    data = {
        "version": 1,
        "reassign": [{"region": 1, "category": "people"}],
        "paint": [],
        "profiles": {},
        "style": "vivid",
        "hints": [
            {"x": 120, "y": 64.5, "color": RED},
            {"x": 12, "y": 6, "color": "#00ff7f", "radius": 9},
            {"points": [[10, 10], [40, 12], [41, 30]], "color": BLUE, "width": 6},
            {"points": [[5, 5], [6, 6]], "color": BLUE},
        ],
    }
    edits = RoutingEdits.from_dict(data)
    assert edits.style == "vivid" and len(edits.hints) == 4
    assert [h.is_point for h in edits.hints] == [True, True, False, False]
    assert edits.hints[2] == Hint(((10, 10), (40, 12), (41, 30)), BLUE, 6.0)
    assert edits.to_dict() == data
    assert RoutingEdits.from_json(edits.to_json()) == edits
    assert RoutingEdits.load(edits.save(tmp_path / "edits.json")) == edits
    # colors are kept lower case; a one-point stroke is a dot as wide as the stroke
    upper = RoutingEdits.from_dict(
        {"hints": [{"points": [[3, 4]], "color": "#B02A20", "width": 8}]}
    )
    assert upper.hints[0].to_dict() == {"x": 3.0, "y": 4.0, "color": RED, "radius": 4.0}
    assert not upper.routes and not upper.empty


def test_with_hint_without_hint_and_with_style() -> None:
    a, b = parse_hints([{"x": 1, "y": 2, "color": RED}, {"x": 3, "y": 4, "color": BLUE}])
    edits = RoutingEdits().with_hint(a).with_hint(b).with_style("vivid")
    assert edits.hints == (a, b) and edits.style == "vivid"
    assert edits.without_hint(0).hints == (b,) and edits.without_hint(1).hints == (a,)
    assert edits.with_style(None).style is None and edits.with_style(None).hints == (a, b)
    with pytest.raises(EditsError, match=r"^no hint 2 in these edits \(they have 2: 0-1\)$"):
        edits.without_hint(2)
    full = RoutingEdits(hints=(a,) * MAX_HINTS)
    with pytest.raises(EditsError, match="too many hints"):
        full.with_hint(b)


# ----------------------------------------------------------------------------- through the pipeline


def test_hand_set_expert_copies_the_hint_and_is_gray_elsewhere() -> None:
    expert = hint_copier(gain=1.0).eval()
    assert expert.takes_hints and expert.has_bins
    l_norm = torch.rand(1, 1, 40, 56) * 2 - 1
    hints = hint_map(
        parse_hints([{"x": 20, "y": 12, "color": RED, "radius": 3}]), (40, 56), (40, 56)
    )
    with torch.no_grad():
        plain = expert(l_norm)
        hinted = expert(l_norm, hints=hints)
    assert not plain.abs().max()  # gray, whatever the photo
    mask = hints[0, 2] > 0
    assert torch.allclose(hinted[0][:, mask], hints[0, :2][:, mask])
    assert not hinted[0][:, ~mask].abs().max()


def test_a_hint_colors_its_region_through_its_own_expert_and_reruns_only_its_crops(
    hint_pipeline: Pipeline,
) -> None:
    photo = subjects_photo()
    lab = hint_pipeline.lab(photo)
    cache: dict = {}
    calls = count_forward_calls(hint_pipeline)
    plain = hint_pipeline.run(lab, None, cache=cache)
    assert sorted(calls) == ["animals", "people", "places"]
    assert not plain.ab.abs().max()  # no hint: gray everywhere

    x, y = centre(DOG, photo.shape)
    edits = RoutingEdits.from_dict({"hints": [{"x": x, "y": y, "color": RED, "radius": 4}]})
    calls.clear()
    hinted = hint_pipeline.run(lab, edits, cache=cache)
    # the dog's crop holds the hint, and the background's (it spans the photo); the people's
    # does not: its expert is not run again
    (box,) = plain.routing.expert_boxes_small["places"]  # working px = photo px here
    assert box[0] <= x < box[2] and box[1] <= y < box[3]
    assert set(calls) == {"animals", "places"}
    # on the hint: the animals expert's answer (gain 1), not the background's (gain 0.5)
    ab = hinted.ab[0]
    ea, eb = lab_ab(RED)
    assert ab[0, round(y), round(x)].item() == pytest.approx(ea, abs=0.5)
    assert ab[1, round(y), round(x)].item() == pytest.approx(eb, abs=0.5)
    chroma = ab.norm(dim=0)
    assert (chroma > 1).sum() < 4 * math.pi * 5**2  # the hint's pixels and the merge's feather
    px, py = centre(PERSON, photo.shape)
    assert chroma[round(py) - 10 : round(py) + 10, round(px) - 10 : round(px) + 10].max() == 0
    # and the same edits from scratch (no cache) give the same colors
    assert torch.equal(hint_pipeline.run(lab, edits).ab, hinted.ab)
    # a hint in the background: the places expert's answer, half as saturated
    edits = RoutingEdits.from_dict({"hints": [{"x": 100, "y": 20, "color": RED, "radius": 4}]})
    ab = hint_pipeline.run(lab, edits, cache=cache).ab[0]
    assert ab[0, 20, 100].item() == pytest.approx(ea / 2, abs=0.5)


def test_hints_are_drawn_in_their_color_with_an_outline() -> None:
    image = Image.new("RGB", (320, 240), "#808080")
    hints = parse_hints(
        [
            {"x": 100, "y": 100, "color": RED, "radius": 10},
            {"points": [[200, 50], [300, 50]], "color": "#f0f0f0", "width": 10},
        ]
    )
    draw_hints(image, hints, (480, 640), (256, 341), numbered=False)  # drawn at half size
    pixels = np.asarray(image)
    assert tuple(pixels[50, 50]) == (0xB0, 0x2A, 0x20)  # the point's centre, at (100, 100) / 2
    assert tuple(pixels[25, 125]) == (0xF0, 0xF0, 0xF0)  # along the stroke
    assert tuple(pixels[21, 125]) == tuple(pixels[29, 125]) == (0, 0, 0)  # light: dark outline
    assert tuple(pixels[50, 54]) == tuple(pixels[50, 46]) == (255, 255, 255)  # dark: light
    assert tuple(pixels[200, 300]) == (128, 128, 128)  # elsewhere untouched


def test_a_hint_spreads_over_its_region_and_not_into_another(tmp_path) -> None:
    """With spreading on, the dog's hint colors more of the dog than its own disc, and the
    person's pixels stay gray."""
    experts = make_hint_experts(tmp_path / "experts")
    pipeline = Pipeline.from_config(hint_yaml(tmp_path, experts, spread=True), device="cpu")
    photo = subjects_photo()
    x, y = centre(DOG, photo.shape)
    edits = RoutingEdits.from_dict({"hints": [{"x": x, "y": y, "color": RED, "radius": 4}]})
    spread = pipeline.run(photo, edits).ab[0].norm(dim=0)
    off = Pipeline.from_config(hint_yaml(tmp_path / "off", experts), device="cpu")
    local = off.run(photo, edits).ab[0].norm(dim=0)
    assert (spread > 5).sum() > 2 * (local > 5).sum()
    px, py = centre(PERSON, photo.shape)
    assert spread[round(py) - 10 : round(py) + 10, round(px) - 10 : round(px) + 10].max() < 0.5
