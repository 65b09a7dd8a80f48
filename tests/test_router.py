"""Pipeline YAML validation and the router on constructed class-probability maps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from segcolor.errors import ConfigError
from segcolor.pipeline_config import (
    CategorySpec,
    RouterOptions,
    load_pipeline_config,
    parse_pipeline_config,
)
from segcolor.router.router import Router

REPO = Path(__file__).resolve().parents[1]
VOC = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]  # fmt: skip


# --------------------------------------------------------------------------- YAML


def write(folder: Path, text: str, checkpoints=("people", "animals", "places")) -> Path:
    (folder / "ckpt").mkdir(exist_ok=True)
    for name in checkpoints:
        (folder / "ckpt" / f"{name}.safetensors").write_bytes(b"x")  # existence is checked
    path = folder / "pipeline.yaml"
    path.write_text(text)
    return path


GOOD = """\
categories:
  people: {classes: [person], expert: ckpt/people.safetensors}
  animals: {classes: [cat, dog], expert: ckpt/animals.safetensors}
  places: {classes: [background], expert: ckpt/places.safetensors}
"""


def test_shipped_config_maps_voc_classes(tmp_path: Path) -> None:
    # the template points at the shipped experts; here at stand-ins in tmp_path/experts
    text = (
        (REPO / "configs" / "pipeline.yaml").read_text().replace("../segcolor/weights/", "experts/")
    )
    (tmp_path / "experts").mkdir()
    for name in ("people", "birds", "animals", "places"):
        (tmp_path / "experts" / f"{name}.safetensors").write_bytes(b"x")
    for profile in ("gray", "cold-blue", "warm-orange", "green"):
        (tmp_path / "experts" / f"places_{profile}.safetensors").write_bytes(b"x")
    classifier = "places_classifier.safetensors"  # its card names the profiles: a real one
    shutil.copy(REPO / "segcolor" / "weights" / classifier, tmp_path / "experts" / classifier)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    config = load_pipeline_config(path)
    owner = dict(zip(VOC, (config.names[i] for i in config.class_to_category(VOC)), strict=True))
    assert owner["person"] == "people" and owner["bird"] == "birds"
    assert {owner[c] for c in ("cat", "dog", "horse", "sheep", "cow")} == {"animals"}
    assert {owner[c] for c in ("background", "car", "chair", "sofa", "train")} == {"places"}
    assert config.category("people").checkpoints == (tmp_path / "experts/people.safetensors",)
    assert config.working_size == 256 and config.fallback == "places"
    assert config.segmenter_head is None  # the gray head is opt-in
    # a new category is a YAML entry and a checkpoint, no code
    (tmp_path / "experts" / "vehicles.safetensors").write_bytes(b"x")
    path.write_text(
        text.replace(
            "categories:\n",
            "categories:\n  vehicles:\n    classes: [car, "
            "bus, train, boat, aeroplane, motorbike, bicycle]\n    expert: "
            "experts/vehicles.safetensors\n",
        )
    )
    config = load_pipeline_config(path)
    assert config.names[config.class_to_category(VOC)[VOC.index("bus")]] == "vehicles"


def test_paths_relative_to_the_yaml_or_absolute(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere.safetensors"
    absolute.write_bytes(b"x")
    path = write(tmp_path, GOOD.replace("ckpt/people.safetensors", str(absolute)))
    config = load_pipeline_config(path)
    assert config.category("people").checkpoints == (absolute,)
    assert config.category("places").checkpoints == (tmp_path / "ckpt/places.safetensors",)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            GOOD.replace("[cat, dog]", "[cat, person]"),
            "duplicate mapping: class 'person' is mapped to both 'people' and 'animals'",
        ),
        (GOOD.replace("[cat, dog]", "[dog, dog]"), "class 'dog' is mapped twice in 'animals'"),
        (
            GOOD + "  people: {classes: [person], expert: ckpt/people.safetensors}\n",
            "duplicate key 'people' at line 5 (first at line 2)",
        ),
        (
            GOOD.replace("ckpt/animals.safetensors", "ckpt/nope.safetensors"),
            "category 'animals': expert checkpoint ckpt/nope.safetensors not found",
        ),
        (GOOD + "rooter: {}\n", "unknown key rooter"),
        (GOOD + "router: {min_ares: 1}\n", "unknown key router.min_ares"),
        (GOOD + "merge: {feathr: 1}\n", "did you mean merge.feather?"),
        (
            GOOD.replace("{classes: [person],", "{clases: [person],"),
            "unknown key categories.people.clases",
        ),
        (GOOD + "fallback: sky\n", "fallback category 'sky' is not defined"),
        (
            GOOD.replace(", expert: ckpt/places.safetensors", ""),
            "fallback category 'places' needs an expert",
        ),
        (GOOD + "router: {min_area: 150}\n", "router.min_area must be a number in [0, 100]"),
        (GOOD + "router: {tta: maybe}\n", "router.tta must be true, false"),
        (GOOD + "working_size: big\n", "working_size must be an integer"),
        (GOOD + "vividness: 0\n", "vividness must be a number above 0 and at most 3"),
        (GOOD + "vividness: 3.5\n", "vividness must be a number above 0 and at most 3"),
        (GOOD + "vividness: vivid\n", "vividness must be a number"),
        (GOOD + "vividness: true\n", "vividness must be a number"),
        ("categories: [people]\n", "`categories:` must map category names"),
        (GOOD + "  bad name: {}\n", "category name 'bad name' must start with a letter"),
        (GOOD + "categories: {}\n", "duplicate key 'categories'"),
        ("categories:\n  people: {classes: [person]\n", "malformed YAML"),
    ],
)
def test_config_errors_are_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_pipeline_config(path)
    message = str(err.value)
    assert "\n" not in message and fragment in message, message
    assert str(path) in message


def test_a_folder_or_a_missing_file_as_config_is_one_line(tmp_path: Path) -> None:
    for path, fragment in ((tmp_path, "is a folder; give the config's YAML file"),
                           (tmp_path / "nope.yaml", "config file not found")):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            load_pipeline_config(path)
        assert str(err.value) == f"{path}: {fragment}"


def test_unknown_class_is_checked_against_the_segmenter(tmp_path: Path) -> None:
    config = load_pipeline_config(write(tmp_path, GOOD.replace("[cat, dog]", "[cat, dgo]")))
    with pytest.raises(ConfigError) as err:
        config.check_classes(VOC)
    message = str(err.value)
    assert "\n" not in message and "unknown class 'dgo' in category 'animals'" in message
    assert "did you mean 'dog'?" in message and str(tmp_path) in message


def test_tta_options_pass_through(tmp_path: Path) -> None:
    config = parse_pipeline_config(
        {
            "categories": {"places": {"expert": str(write(tmp_path, ""))}},
            "router": {"tta": {"scales": [1.0, 0.5], "flip": False}},
        }
    )
    assert config.router.tta == {"scales": [1.0, 0.5], "flip": False}


# --------------------------------------------------------------------------- router

SPECS = [
    CategorySpec("people", ("person",), (Path("p"),)),
    CategorySpec("birds", ("bird",), (Path("b"),)),
    CategorySpec("animals", ("cat", "dog", "horse", "sheep", "cow"), (Path("a"),)),
    CategorySpec("places", ("background",), (Path("pl"),)),
]


def router(**options) -> Router:
    return Router(None, SPECS, VOC, "places", RouterOptions(**options))


def probs_from(classes: np.ndarray, confidence: float = 0.9) -> torch.Tensor:
    """(H,W) class ids -> (C,H,W) probabilities with ``confidence`` on the given class."""
    rest = (1.0 - confidence) / (len(VOC) - 1)
    out = np.full((len(VOC), *classes.shape), rest, dtype=np.float32)
    np.put_along_axis(out, classes[None], confidence, axis=0)
    return torch.from_numpy(out)


def halves(height: int = 40, width: int = 60) -> np.ndarray:
    classes = np.full((height, width), VOC.index("person"))
    classes[:, width // 2 :] = VOC.index("dog")
    return classes


def test_known_answer_people_left_animals_right() -> None:
    routing = router().route_probs(probs_from(halves()))
    people, animals = routing.categories.index("people"), routing.categories.index("animals")
    assert (routing.category_map[:, :30] == people).all()
    assert (routing.category_map[:, 30:] == animals).all()
    weights = routing.weights
    assert set(weights) == {"people", "animals"}
    assert np.allclose(weights["people"] + weights["animals"], 1.0, atol=1e-6)
    assert (weights["people"][:, :25] > 0.9).all() and (weights["animals"][:, 35:] > 0.9).all()
    regions = {r.category: r for r in routing.regions}
    assert regions["people"].bbox == (0, 0, 30, 40) and regions["animals"].bbox == (30, 0, 60, 40)
    assert regions["people"].classes == ("person",) and regions["animals"].classes == ("dog",)
    assert regions["people"].area == pytest.approx(50.0)
    assert regions["people"].confidence == pytest.approx(0.9, abs=1e-3)
    assert routing.summary() == "people 50% (person), animals 50% (dog)"


def test_weights_sum_to_one_on_random_probabilities() -> None:
    logits = torch.randn(len(VOC), 24, 32) * 3
    routing = router(min_area=0.0, min_confidence=0.0).route_probs(logits.softmax(0))
    total = sum(routing.weights.values())
    assert np.allclose(total, 1.0, atol=1e-5)
    assert all((w >= 0).all() for w in routing.weights.values())


def test_results_scale_to_the_input_size() -> None:
    routing = router().route_probs(probs_from(halves(20, 30)), size=(80, 120))
    assert routing.category_map.shape == (80, 120)
    assert routing.weights["people"].shape == (80, 120)
    assert {r.category: r.bbox for r in routing.regions}["animals"] == (60, 0, 120, 80)


def test_tiny_regions_go_to_the_fallback() -> None:
    classes = np.zeros((50, 50), dtype=int)
    classes[10:12, 10:12] = VOC.index("dog")  # 0.16 % of the image
    classes[30:45, 30:45] = VOC.index("person")  # 9 %
    routing = router(min_area=0.5).route_probs(probs_from(classes))
    assert {r.category for r in routing.regions} == {"people", "places"}
    assert "animals" not in routing.weights  # its expert does not run
    assert routing.category_map[11, 11] == routing.categories.index("places")
    kept = router(min_area=0.1).route_probs(probs_from(classes))
    assert "animals" in {r.category for r in kept.regions}


def test_unsure_regions_go_to_the_fallback() -> None:
    classes = np.zeros((40, 40), dtype=int)
    classes[:, 20:] = VOC.index("dog")
    unsure = probs_from(classes, confidence=0.9)
    unsure[:, :, 20:] = probs_from(classes, confidence=0.3)[:, :, 20:]  # dog wins at 0.3
    routing = router(min_confidence=0.5).route_probs(unsure)
    assert routing.experts == ["places"] and routing.summary() == "places 100%"
    assert np.allclose(routing.weights["places"], 1.0)


def test_nothing_detected_is_all_fallback() -> None:
    routing = router().route_probs(probs_from(np.zeros((16, 16), dtype=int)))
    assert routing.experts == ["places"]
    assert [r.category for r in routing.regions] == ["places"]
    assert routing.regions[0].area == pytest.approx(100.0)
    assert np.allclose(routing.weights["places"], 1.0)


def test_unlisted_classes_go_to_the_fallback() -> None:
    classes = np.full((20, 20), VOC.index("sofa"))
    routing = router().route_probs(probs_from(classes))
    assert routing.experts == ["places"]
    assert routing.regions[0].classes == ("sofa",)
    assert routing.summary() == "places 100% (sofa)"


def test_soft_weight_stays_near_its_regions() -> None:
    classes = np.zeros((40, 100), dtype=int)
    classes[:, :20] = VOC.index("person")
    probs = probs_from(classes, confidence=0.7)  # person keeps 1.5 % of the mass everywhere
    routing = router(spread=0.1).route_probs(probs)  # reach: 4 px beyond the region
    people = routing.weights["people"]
    assert (people[:, 25:] == 0).all() and (people[:, 20:24] > 0).all()
    assert np.allclose(people + routing.weights["places"], 1.0, atol=1e-6)


def test_router_runs_the_segmenter_with_tta() -> None:
    calls: list[tuple[int, int]] = []

    class Fixed(torch.nn.Module):
        classes = VOC

        def predict_proba(self, x: torch.Tensor, tta=False) -> torch.Tensor:
            calls.append(tta)
            return probs_from(halves(*x.shape[-2:]))[None]

    spec_router = Router(Fixed(), SPECS, VOC, "places", RouterOptions(tta={"flip": True}))
    routing = spec_router.route(torch.rand(1, 3, 20, 30), size=(40, 60))
    assert calls == [{"flip": True}]
    assert routing.size == (40, 60) and routing.category_map.shape == (40, 60)


def test_regions_json_ready() -> None:
    import json

    routing = router().route_probs(probs_from(halves()))
    data = json.loads(json.dumps(routing.to_dict()))
    assert [r["category"] for r in data["regions"]] == ["people", "animals"]
    assert data["regions"][0]["bbox_xyxy"] == [0, 0, 30, 40]
    assert {e["category"] for e in data["experts"]} == {"people", "animals"}


def test_template_config_is_the_shipped_pipeline() -> None:
    """configs/pipeline.yaml (the template users copy) describes what Pipeline.default() runs."""
    template = load_pipeline_config(REPO / "configs" / "pipeline.yaml")
    shipped = load_pipeline_config(REPO / "segcolor" / "weights" / "pipeline.yaml")

    def described(config):
        return [
            (
                c.name,
                c.classes,
                [p.resolve() for p in c.checkpoints],
                c.variants,
                c.classifier.resolve() if c.classifier else None,
                c.min_probability,
            )
            for c in config.categories
        ]

    assert described(template) == described(shipped)  # same classes and the same checkpoints
    assert (template.router, template.merge) == (shipped.router, shipped.merge)
    assert (template.working_size, template.fallback) == (shipped.working_size, shipped.fallback)
    assert template.vividness == shipped.vividness == 1.0
    assert template.style == shipped.style == "faithful"
    assert (template.vivid, template.hint_spread) == (shipped.vivid, shipped.hint_spread)
