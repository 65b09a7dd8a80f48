"""Routing edits (segcolor/router/edits.py): a region reassigned, a category painted over a
polygon / RLE / PNG mask, a profile variant pinned; only the edited region's colors change; the
edits are JSON, checked with one-line errors, and replay through `segcolor colorize --routing`."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segcolor.cli import main
from segcolor.errors import SegcolorError
from segcolor.pipeline import Pipeline
from segcolor.router.edits import EditsError, RoutingEdits
from segcolor.router.segmenters import register_segmenter

from .conftest import color_image
from .test_pipeline import VOC, FakeSegmenter, make_experts, write_yaml
from .test_profiles import PROFILES, profiled_yaml, variant_dir  # noqa: F401 (a fixture)

PERSON = (0.08, 0.15, 0.30, 0.85)  # x0, y0, x1, y1 as fractions of the image
DOG = (0.62, 0.45, 0.90, 0.90)


class SubjectsSegmenter(FakeSegmenter):
    """A person on the left and a dog on the right, apart, on background."""

    def __init__(self) -> None:
        super().__init__("subjects")

    def class_map(self, height: int, width: int) -> torch.Tensor:
        cls = torch.zeros(height, width, dtype=torch.long)
        for name, (x0, y0, x1, y1) in (("person", PERSON), ("dog", DOG)):
            rows = slice(round(y0 * height), round(y1 * height))
            cols = slice(round(x0 * width), round(x1 * width))
            cls[rows, cols] = VOC.index(name)
        return cls


register_segmenter("test_subjects")(lambda weights=None: SubjectsSegmenter())


def subjects_photo(height: int = 128, width: int = 192) -> np.ndarray:
    """A gray photo (H, W) uint8 with texture everywhere."""
    return np.asarray(Image.fromarray(color_image(height, width, seed=3)).convert("L"))


def subjects_yaml(folder: Path, expert_dir: Path) -> Path:
    return write_yaml(folder, expert_dir, segmenter="test_subjects", working_size=128)


def far_from(box: tuple[float, ...], shape: tuple[int, int], distance: int) -> np.ndarray:
    """Bool (H, W): pixels more than ``distance`` px outside the fractional ``box``."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width]
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    dx = np.maximum(np.maximum(x0 - x, x - x1), 0)
    dy = np.maximum(np.maximum(y0 - y, y - y1), 0)
    return np.maximum(dx, dy) > distance


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_experts(tmp_path_factory.mktemp("experts"))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, expert_dir: Path) -> Pipeline:
    path = subjects_yaml(tmp_path_factory.mktemp("subjects"), expert_dir)
    return Pipeline.from_config(path, device="cpu")


def region_of(routing, category: str) -> int:
    return next(i for i, r in enumerate(routing.regions) if r.category == category)


def test_reassigning_a_region_changes_only_its_colors(pipeline: Pipeline) -> None:
    photo = subjects_photo()
    routing = pipeline.route(photo)
    assert [r.category for r in routing.regions] == ["people", "animals", "places"]
    dog = region_of(routing, "animals")
    edits = RoutingEdits.from_dict({"reassign": [{"region": dog, "category": "people"}]})
    edited = pipeline.route(photo, edits)
    assert "animals" not in edited.experts and "animals" not in edited.shares
    assert [r.category for r in edited.regions] == ["people", "people", "places"]
    assert edited.to_dict()["edits"]["reassign"] == [{"region": dog, "category": "people"}]
    # the region map points every pixel of a listed region at it
    x0, y0, x1, y1 = routing.regions[dog].bbox
    assert routing.region_at((x0 + x1) / 2, (y0 + y1) / 2) == dog

    before = pipeline.colorize(photo)
    after = pipeline.colorize(photo, edits)
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 0
    height, width = photo.shape
    x0, y0, x1, y1 = (round(f * s) for f, s in zip(DOG, (width, height) * 2, strict=True))
    inside = np.zeros(photo.shape, dtype=bool)
    inside[y0 + 4 : y1 - 4, x0 + 4 : x1 - 4] = True
    assert changed[inside].mean() > 0.9
    far = far_from(DOG, photo.shape, 24)  # margin + feathering of this 128 px working size
    assert not changed[far].any()
    assert changed[~far].mean() > 0.3


def test_paint_by_polygon_rle_and_png_agree(pipeline: Pipeline) -> None:
    photo = subjects_photo()
    height, width = photo.shape
    x0, y0, x1, y1 = 20, 100, 60, 120  # a patch of background at the bottom left
    polygon = {"category": "animals", "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    flat = mask.T.ravel()  # column-major, runs starting with 0s
    edges = np.flatnonzero(np.diff(flat.astype(int))) + 1
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    rle = {"category": "animals", "rle": {"size": [height, width], "counts": counts}}
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
    png = {"category": "animals", "mask_png": base64.b64encode(buffer.getvalue()).decode()}
    maps = []
    for paint in (polygon, rle, png):
        edits = RoutingEdits.from_json(json.dumps({"paint": [paint]}))
        routing = pipeline.route(photo, edits)
        assert len([r for r in routing.regions if r.category == "animals"]) == 2
        maps.append(routing.category_map_small)
    assert (np.abs(maps[0] - maps[1]) > 0).mean() < 0.01  # a polygon's edge may differ by a px
    assert np.array_equal(maps[1], maps[2])
    painted = maps[1] == pipeline.router.categories.index("animals")
    assert painted[104:116, 24:56].all()


def test_a_profile_variant_can_be_pinned(variant_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    pipeline = Pipeline.from_config(profiled_yaml(tmp_path, variant_dir), device="cpu")
    image = (np.random.default_rng(0).random((36, 60)) * 255).astype(np.uint8)
    assert pipeline.route(image).profiles["places"].chosen == "gray"
    edits = RoutingEdits.from_dict({"profiles": {"places": "green"}})
    routing = pipeline.route(image, edits)
    assert routing.mix("places") == [0.0, 0.0, 1.0]
    assert routing.profiles["places"].probabilities["gray"] == pytest.approx(0.7, abs=1e-3)
    pinned = pipeline.colorize(image, edits)
    assert not np.array_equal(pinned, pipeline.colorize(image))
    with pytest.raises(EditsError, match="'places' has no profile variant 'blue'"):
        pipeline.route(image, RoutingEdits.from_dict({"profiles": {"places": "blue"}}))
    with pytest.raises(EditsError, match="'people' has no profile variants"):
        pipeline.route(image, RoutingEdits.from_dict({"profiles": {"people": "gray"}}))
    assert PROFILES[2] == "green"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1, 2]", "must be a JSON object"),
        ("{", "not valid JSON"),
        ('{"reasign": []}', "unknown key 'reasign'"),
        ('{"version": 2}', "version must be the number 1, got 2"),
        ('{"version": "1"}', "version must be the number 1, got '1'"),
        ('{"reassign": [{"region": -1, "category": "people"}]}', "integer >= 0"),
        ('{"reassign": [{"region": 0}]}', '"category" must be a category name'),
        ('{"paint": [{"category": "people"}]}', 'one of "polygon", "rle", "mask_png"'),
        ('{"paint": [{"category": "people", "polygon": [[0, 0]]}]}', "3 or more"),
        (
            '{"paint": [{"category": "people", "mask_png": "bm90IGEgcG5n"}]}',
            'paint[0]: "mask_png" is not a base64 PNG (not an image)',  # no buffer's repr
        ),
        (
            '{"paint": [{"category": "people", "rle": {"size": [2, 2], "counts": [1, 1]}}]}',
            "counts sum to 2, not 2*2",
        ),
        ('{"profiles": ["gray"]}', "must map a category"),
        ('{"vividness": 0}', '"vividness" must be a number above 0 and at most 3, got 0'),
        ('{"vividness": "1.2"}', '"vividness" must be a number'),
    ],
)
def test_malformed_edits_are_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(EditsError) as err:
        RoutingEdits.from_json(text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_edits_that_do_not_fit_the_photo_or_pipeline(pipeline: Pipeline) -> None:
    photo = subjects_photo()

    def edits(region: int, category: str) -> RoutingEdits:
        return RoutingEdits.from_dict({"reassign": [{"region": region, "category": category}]})

    with pytest.raises(EditsError, match=r"no region 9 in this photo \(it has 3: 0-2\)"):
        pipeline.route(photo, edits(9, "people"))
    with pytest.raises(EditsError, match="unknown category 'cars'"):
        pipeline.route(photo, edits(0, "cars"))


def test_cached_expert_patches_give_the_same_result(pipeline: Pipeline) -> None:
    lab = pipeline.lab(subjects_photo())
    routing = pipeline.route_lab(lab)
    cache: dict = {}
    first = pipeline.merge_routed(lab, routing, cache)[0]
    assert len(cache) == 3  # people, animals, places: one batch each
    edits = RoutingEdits.from_dict({"reassign": [{"region": 1, "category": "people"}]})
    edited = pipeline.route_lab(lab, edits)
    calls = []
    original = pipeline.run_expert
    pipeline.run_expert = lambda name, *a, **k: calls.append(name) or original(name, *a, **k)
    try:
        cached = pipeline.merge_routed(lab, edited, cache)[0]
    finally:
        del pipeline.run_expert
    assert calls == ["people"]  # only the expert whose crops changed ran
    assert torch.equal(cached, pipeline.merge_routed(lab, edited)[0])
    assert torch.equal(pipeline.merge_routed(lab, routing, cache)[0], first)


def test_a_photos_vividness_scales_only_its_colors(pipeline: Pipeline, tmp_path: Path) -> None:
    """An edit of vividness alone leaves the routing as it was and scales the merged ab (and the
    experts' images of inspect) exactly; it round-trips through the edits file and keeps its
    value when regions are reassigned; without it the file is as before (no key)."""
    lab = pipeline.lab(subjects_photo())
    plain = pipeline.route_lab(lab)
    edits = RoutingEdits.from_dict({"vividness": 1.6})
    assert not edits.routes and not edits.empty
    routed = pipeline.route_lab(lab, edits)
    assert torch.equal(routed.expert_weights_small, plain.expert_weights_small)
    ab_plain, ab_vivid = pipeline.merge_routed(lab, plain)[0], pipeline.merge_routed(lab, routed)[0]
    assert torch.allclose(ab_vivid, 1.6 * ab_plain, atol=1e-5)
    both = edits.with_reassign(1, "people").with_profile("places", None)
    assert both.vividness == 1.6 and both.routes
    assert RoutingEdits.load(both.save(tmp_path / "e.json")) == both
    assert "vividness" not in RoutingEdits().to_dict()
    analysis = pipeline.analyze(subjects_photo(), edits=edits)
    plain_analysis = pipeline.analyze(subjects_photo())
    gain = [
        np.hypot(*skimage_ab(a.expert_images["people"])).mean() for a in (plain_analysis, analysis)
    ]
    assert gain[1] > gain[0]


def skimage_ab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb)
    return lab[..., 1], lab[..., 2]


def test_cli_replays_edits(tmp_path: Path, pipeline: Pipeline, expert_dir: Path) -> None:
    photo = subjects_photo()
    Image.fromarray(photo).save(tmp_path / "photo.png")
    edits = RoutingEdits.from_dict({"reassign": [{"region": 1, "category": "people"}]})
    edits_file = edits.save(tmp_path / "edits.json")
    assert RoutingEdits.load(edits_file) == edits
    yaml = subjects_yaml(tmp_path / "p", expert_dir)
    out = tmp_path / "out.png"
    argv = ["colorize", str(tmp_path / "photo.png"), "-o", str(out), "--pipeline", str(yaml)]
    assert main([*argv, "--routing", str(edits_file), "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), pipeline.colorize(photo, edits))
    # a folder batch (the manifest-keeping batch engine) applies the same edits to every photo
    single = tmp_path / "single.png"
    common = ["--pipeline", str(yaml), "--routing", str(edits_file), "--threads", "1"]
    assert main(["colorize", str(tmp_path / "photo.png"), "-o", str(single), *common]) == 0
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    argv_batch = ["colorize", str(folder), "-o", str(tmp_path / "batch"), *common]
    assert main(argv_batch) == 0
    assert (tmp_path / "batch" / "a.png").read_bytes() == single.read_bytes()
    (tmp_path / "bad.json").write_text('{"reassign": [{"region": 0, "category": "cars"}]}')
    assert main([*argv, "--routing", str(tmp_path / "bad.json")]) == 2
    with pytest.raises(SegcolorError, match="one expert has no routing"):
        Pipeline.from_expert(expert_dir / "people.safetensors").colorize(photo, edits)
