"""The routed pipeline end to end with a fake segmenter: sizes and L kept, only present experts
run (on crops), fallbacks, the Python API and `segcolor colorize --pipeline`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.color
import torch
from PIL import Image

from segcolor.cli import main
from segcolor.errors import ConfigError, SegcolorError
from segcolor.experts import create_expert, load_expert, save_expert
from segcolor.pipeline import Pipeline
from segcolor.pipeline import core as pipeline_module  # where Pipeline.default looks
from segcolor.router import weights as weights_mod
from segcolor.router.segmenters import Segmenter, register_segmenter

from .conftest import color_image

VOC = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]  # fmt: skip
CATEGORIES = {
    "people": ["person"],
    "birds": ["bird"],
    "animals": ["cat", "dog", "horse", "sheep", "cow"],
    "places": ["background"],
}


class FakeSegmenter(Segmenter):
    """Fixed class maps by image position, whatever the pixels: known answers for routing."""

    def __init__(self, pattern: str) -> None:
        super().__init__(VOC)
        self.pattern = pattern
        self.calls: list[tuple[int, int]] = []

    def class_map(self, height: int, width: int) -> torch.Tensor:
        cls = torch.zeros(height, width, dtype=torch.long)
        x = torch.arange(width)[None, :].expand(height, width)
        if self.pattern == "halves":  # person left, dog right
            cls[x < width // 2] = VOC.index("person")
            cls[x >= width // 2] = VOC.index("dog")
        elif self.pattern == "thirds":  # person | dog | background
            cls[x < width // 3] = VOC.index("person")
            cls[(x >= width // 3) & (x < 2 * width // 3)] = VOC.index("dog")
        elif self.pattern == "speck":  # background with a dog of a few pixels
            cls[height // 2 : height // 2 + 2, width // 2 : width // 2 + 2] = VOC.index("dog")
        elif self.pattern == "car":  # a car on the left, background elsewhere
            cls[x < width // 2] = VOC.index("car")
        return cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        self.calls.append((height, width))
        logits = torch.nn.functional.one_hot(self.class_map(height, width), len(VOC)) * 8.0
        return logits.permute(2, 0, 1)[None].expand(batch, -1, -1, -1).float()


for _pattern in ("halves", "thirds", "empty", "speck", "car"):
    register_segmenter(f"test_{_pattern}")(lambda weights=None, _p=_pattern: FakeSegmenter(_p))


def make_experts(folder: Path) -> Path:
    """Tiny random-init experts, one per category, each with different weights."""
    for i, name in enumerate(CATEGORIES):
        torch.manual_seed(100 + i)
        expert = create_expert(decoder_channels=[32, 16, 8])
        save_expert(expert, folder / f"{name}.safetensors", {"name": name, "category": name})
    return folder


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_experts(tmp_path_factory.mktemp("experts"))


def write_yaml(
    folder: Path,
    expert_dir: Path,
    segmenter: str = "test_halves",
    working_size: int = 32,
    extra: str = "",
    categories: dict[str, list[str]] | None = None,
) -> Path:
    """A pipeline YAML in ``folder`` using relative paths to copies of the experts."""
    (folder / "experts").mkdir(parents=True, exist_ok=True)
    lines = [
        f"segmenter: {{name: {segmenter}}}",
        f"working_size: {working_size}",
        "fallback: places",
        "categories:",
    ]
    for name, classes in (categories or CATEGORIES).items():
        ckpt = expert_dir / f"{name}.safetensors"
        lines += [f"  {name}:", f"    classes: [{', '.join(classes)}]"]
        if ckpt.is_file():
            target = folder / "experts" / ckpt.name
            if not target.exists():
                target.write_bytes(ckpt.read_bytes())
            lines.append(f"    expert: experts/{ckpt.name}")
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def lightness(rgb: np.ndarray) -> np.ndarray:
    return skimage.color.rgb2lab(rgb / 255.0)[..., 0]


def test_colorize_keeps_size_and_lightness(tmp_path: Path, expert_dir: Path) -> None:
    pipeline = Pipeline.from_config(write_yaml(tmp_path, expert_dir), device="cpu")
    gray = np.asarray(Image.fromarray(color_image(45, 70)).convert("L"))
    out = pipeline.colorize(gray)  # H x W grayscale accepted
    assert out.shape == (45, 70, 3) and out.dtype == np.uint8
    assert np.abs(lightness(out) - lightness(np.repeat(gray[..., None], 3, 2))).mean() < 1.0
    assert pipeline.colorize(color_image(45, 70)).shape == (45, 70, 3)


def test_route_api_at_input_size(tmp_path: Path, expert_dir: Path) -> None:
    pipeline = Pipeline.from_config(write_yaml(tmp_path, expert_dir), device="cpu")
    routing = pipeline.route(color_image(40, 60))  # working size 32: routed at 32 x 48
    assert routing.categories == ["people", "birds", "animals", "places"]
    assert routing.category_map.shape == (40, 60)
    people, animals = routing.categories.index("people"), routing.categories.index("animals")
    assert (routing.category_map[:, :28] == people).all()
    assert (routing.category_map[:, 32:] == animals).all()
    assert set(routing.weights) == {"people", "animals"}  # places has no region: not run
    total = sum(routing.weights.values())
    assert total.shape == (40, 60) and np.allclose(total, 1.0, atol=1e-5)
    assert {r.category for r in routing.regions} == {"people", "animals"}
    assert routing.summary() == "people 50% (person), animals 50% (dog)"


def test_only_present_experts_run_on_crops(tmp_path: Path, expert_dir: Path) -> None:
    path = write_yaml(
        tmp_path,
        expert_dir,
        segmenter="test_thirds",
        working_size=96,
        extra="merge: {margin: 8, feather: 0.01}\n",
    )
    pipeline = Pipeline.from_config(path, device="cpu")
    seen: dict[str, list[tuple[int, ...]]] = {}
    for name, models in pipeline.experts.items():
        models[0].register_forward_hook(
            lambda _m, args, _out, name=name: seen.setdefault(name, []).append(args[0].shape)
        )
    pipeline.colorize(color_image(96, 192))
    assert set(seen) == {"people", "animals", "places"}  # no bird, no bird expert
    for name in ("people", "animals", "places"):
        (shape,) = seen[name]  # one batched forward each
        assert shape[-1] < 192 * 0.6, (name, shape)  # a crop of about a third, not the image


def test_nothing_detected_uses_the_fallback_expert(tmp_path: Path, expert_dir: Path) -> None:
    pipeline = Pipeline.from_config(
        write_yaml(tmp_path, expert_dir, segmenter="test_empty"), device="cpu"
    )
    image = color_image(30, 40)
    routing = pipeline.route(image)
    assert routing.experts == ["places"] and routing.summary() == "places 100%"
    single = Pipeline(load_expert(expert_dir / "places.safetensors"), device="cpu", working_size=32)
    assert np.abs(pipeline.colorize(image).astype(int) - single.colorize(image)).max() <= 1


def test_category_without_expert_is_colored_by_fallback(tmp_path: Path, expert_dir: Path) -> None:
    categories = {**CATEGORIES, "vehicles": ["car", "bus", "train", "boat"]}  # no checkpoint
    path = write_yaml(tmp_path, expert_dir, segmenter="test_car", categories=categories)
    pipeline = Pipeline.from_config(path, device="cpu")
    routing = pipeline.route(color_image(32, 48))
    assert routing.summary() == "vehicles 50% (car), places 50%"
    assert routing.experts == ["places"]
    assert [r.expert for r in routing.regions if r.category == "vehicles"] == ["places"]


def test_several_checkpoints_are_averaged(tmp_path: Path, expert_dir: Path) -> None:
    path = write_yaml(tmp_path, expert_dir, segmenter="test_empty")
    text = path.read_text().replace(
        "expert: experts/places.safetensors",
        "expert: [experts/places.safetensors, experts/people.safetensors]",
    )
    path.write_text(text)
    pipeline = Pipeline.from_config(path, device="cpu")
    l_norm = torch.rand(1, 1, 16, 16) * 2 - 1
    a, b = pipeline.experts["places"]
    with torch.inference_mode():
        expected = (a(l_norm) + b(l_norm)) / 2 * 110.0
        assert torch.allclose(pipeline.run_expert("places", l_norm), expected, atol=1e-5)


def test_vividness_scales_the_answer_of_routed_and_single_pipelines(
    tmp_path: Path, expert_dir: Path
) -> None:
    """The gain multiplies the merged (or single) ab exactly, the YAML's value is kept unless
    the caller gives one, and joined with L the output's chroma grows (not exactly: the gamut)."""
    path = write_yaml(tmp_path, expert_dir, extra="vividness: 1.5\n")
    assert Pipeline.load(path, device="cpu").vividness == 1.5
    plain = Pipeline.load(path, device="cpu", vividness=1.0)
    vivid = Pipeline.load(path, device="cpu", vividness=2.0)
    lab = plain.lab(color_image(40, 56))
    routing = plain.route_lab(lab)
    ab_plain, weights_plain = plain.merge_routed(lab, routing)
    ab_vivid, weights_vivid = vivid.merge_routed(lab, routing)
    assert torch.allclose(ab_vivid, 2.0 * ab_plain, atol=1e-5)
    assert torch.equal(weights_vivid, weights_plain)  # the routing is not what changes

    single = expert_dir / "places.safetensors"
    one = Pipeline.load(expert=single, device="cpu")
    two = Pipeline.load(expert=single, device="cpu", vividness=0.5)
    assert one.vividness == 1.0
    assert torch.allclose(two.predict_ab(lab), 0.5 * one.predict_ab(lab), atol=1e-5)

    def chroma(rgb: np.ndarray) -> float:
        lab_out = skimage.color.rgb2lab(rgb)
        return float(np.hypot(lab_out[..., 1], lab_out[..., 2]).mean())

    image = color_image(40, 56)
    assert chroma(vivid.colorize(image)) > chroma(plain.colorize(image))
    assert np.abs(lightness(vivid.colorize(image)) - lightness(plain.colorize(image))).mean() < 2


def test_single_expert_pipeline_is_unchanged(expert_dir: Path) -> None:
    pipeline = Pipeline.from_expert(expert_dir / "places.safetensors", device="cpu")
    assert not pipeline.routed
    assert pipeline.colorize(color_image(20, 24)).shape == (20, 24, 3)
    with pytest.raises(SegcolorError, match="no router"):
        pipeline.route(color_image(20, 24))


def test_missing_shipped_experts_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_module, "DEFAULT_PIPELINE", tmp_path / "pipeline.yaml")
    with pytest.raises(SegcolorError) as err:
        Pipeline.default()
    assert "\n" not in str(err.value) and "no shipped experts" in str(err.value)


def test_config_errors_surface_before_any_work(tmp_path: Path, expert_dir: Path) -> None:
    path = write_yaml(tmp_path, expert_dir, categories={**CATEGORIES, "pets": ["dogg"]})
    with pytest.raises(ConfigError, match="unknown class 'dogg'.*did you mean 'dog'"):
        Pipeline.from_config(path)


# --------------------------------------------------------------------------- command line


def test_colorize_pipeline_show_routing(tmp_path: Path, expert_dir: Path, capsys) -> None:
    path = write_yaml(tmp_path, expert_dir)
    Image.fromarray(color_image(40, 60)).convert("L").save(tmp_path / "gray.png")
    code = main(
        [
            "colorize",
            str(tmp_path / "gray.png"),
            "-o",
            str(tmp_path / "out.png"),
            "--pipeline",
            str(path),
            "--show-routing",
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (
        captured.out.strip() == f"{tmp_path / 'gray.png'}: people 50% (person), animals 50% (dog)"
    )
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (40, 60, 3)


def test_show_routing_needs_a_pipeline(tmp_path: Path, expert_dir: Path, capsys) -> None:
    Image.fromarray(color_image(16, 16)).save(tmp_path / "a.png")
    code = main(
        [
            "colorize",
            str(tmp_path / "a.png"),
            "-o",
            str(tmp_path / "b.png"),
            "--expert",
            str(expert_dir / "places.safetensors"),
            "--show-routing",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "routed pipeline" in err[0]


def test_missing_segmenter_weights_is_one_line(
    tmp_path: Path, expert_dir: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGCOLOR_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("SEGCOLOR_CACHE_DIR", str(tmp_path / "no-cache"))
    monkeypatch.setattr(weights_mod, "PACKAGED_DIR", tmp_path / "no-package")
    path = write_yaml(tmp_path, expert_dir, segmenter="deeplabv3_mnv2_voc")
    Image.fromarray(color_image(16, 16)).save(tmp_path / "a.png")
    code = main(
        [
            "colorize",
            str(tmp_path / "a.png"),
            "-o",
            str(tmp_path / "b.png"),
            "--pipeline",
            str(path),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "deeplabv3_mnv2_pascal_quant.tflite not found" in err[0]
    assert not (tmp_path / "b.png").exists()
