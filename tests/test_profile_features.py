"""The features profile classifier: pooling, checkpoints, training from the routed cache, the
variants' P(profile) computed from it, and the router's gate reading the segmenter's features.
A fake segmenter whose features are each cell's gray level makes the profiles learnable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from segcolor.cli import main as cli
from segcolor.errors import ConfigError
from segcolor.pipeline_config import load_pipeline_config
from segcolor.profiles.classifier import (
    FeatureProfileClassifier,
    create_profile_classifier,
    load_classifier,
    pool_features,
    predict_proba,
    save_classifier,
)
from segcolor.router.segmenters import register_segmenter
from segcolor.train.cache import build_cache, cache_key, file_list
from segcolor.train.config import load_config
from segcolor.train.routed import cached_profile_probabilities, routed_split

from .test_routed_training import (
    FEATURES,
    FeatureSegmenter,
    green_blue_halves,
    green_blue_profiles,
    semantic_pipeline,
)


class LightnessSegmenter(FeatureSegmenter):
    """Person on the left half, dog on the right; every feature channel is the cell's gray
    level, so pooled over a half, the features tell a light half from a dark one."""

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(x)
        gray = torch.nn.functional.adaptive_avg_pool2d(x.mean(1, keepdim=True), (4, 6))
        return logits, gray.expand(-1, FEATURES, -1, -1).contiguous()


register_segmenter("test_lightness_halves")(lambda weights=None: LightnessSegmenter("halves"))


def test_pooling_known_answers() -> None:
    features = torch.tensor([[1.0, 3.0], [5.0, 7.0]])[None, None].repeat(1, 2, 1, 1)
    left = torch.tensor([[1.0, 0.0], [1.0, 0.0]])[None, None]
    np.testing.assert_allclose(pool_features(features, left, 1e-6)[0], [3.0, 3.0], atol=1e-4)
    # no pixels of the category: the whole photo's mean, thanks to the context weight
    np.testing.assert_allclose(pool_features(features, 0 * left, 0.01)[0], [4.0, 4.0])
    # a weight map at a finer size is averaged onto the features' grid first
    fine = torch.nn.functional.interpolate(left, scale_factor=4, mode="nearest")
    np.testing.assert_allclose(pool_features(features, fine, 1e-6)[0], [3.0, 3.0], atol=1e-4)
    assert pool_features(features, None, 0.01)[0].tolist() == [4.0, 4.0]


def test_features_classifier_round_trips_with_its_statistics(tmp_path: Path) -> None:
    model = create_profile_classifier(3, arch="profile_features_linear", feature_channels=5)
    assert isinstance(model, FeatureProfileClassifier) and model.inputs == "features"
    with torch.no_grad():
        model.mean.uniform_(-1, 1)
        model.std.uniform_(0.5, 2)
        model.fc.weight.normal_()
    card = {"profiles": [{"name": n} for n in ("a", "b", "c")]}
    path = save_classifier(model, tmp_path / "c.safetensors", card)
    loaded = load_classifier(path)
    assert isinstance(loaded, FeatureProfileClassifier) and loaded.profiles == ["a", "b", "c"]
    features, weight = torch.randn(2, 5, 3, 4), torch.rand(2, 1, 12, 16)
    probs = predict_proba(loaded, features=features, weight=weight)
    assert probs.shape == (2, 3) and torch.allclose(probs.sum(1), torch.ones(2))
    np.testing.assert_allclose(
        probs, predict_proba(model, features=features, weight=weight), atol=2e-2
    )
    with pytest.raises(ValueError, match="features"):
        predict_proba(loaded, lightness=torch.rand(1, 1, 8, 8) * 100)
    with pytest.raises(ConfigError, match="context > 0"):
        create_profile_classifier(3, arch="profile_features_linear", context=0.0)


@pytest.fixture()
def two_color_photos(tmp_path: Path) -> tuple[Path, Path, Path]:
    """16 photos green|blue or blue|green, a pipeline whose places category (with a profile
    classifier to be trained) colors the dog half, and a green/blue profiles file."""
    folder = green_blue_halves(tmp_path / "photos", 16)
    profiles = green_blue_profiles(tmp_path / "profiles.yaml")
    pipeline = semantic_pipeline(
        tmp_path, "test_lightness_halves", {"people": "person", "places": "dog, background"}
    )
    return folder, pipeline, profiles


def classifier_config(tmp_path: Path, folder: Path, pipeline: Path, profiles: Path) -> Path:
    cfg = {
        "name": "places_classifier",
        "category": "places",
        "task": "profile_classifier",
        "profiles": str(profiles),
        "data": {
            "root": [str(folder)],
            "val_fraction": 0.3,
            "routing": {
                "pipeline": str(pipeline),
                "cache_size": 16,
                "cache_dir": str(tmp_path / "cache"),
            },
        },
        "model": {"arch": "profile_features_linear"},
        "loss": {"kind": "cross_entropy"},
        "optim": {"weight_decay": 1e-3},
        "out": str(tmp_path / "run"),
    }
    path = tmp_path / "classifier.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_classifier_learns_the_profiles_from_the_cache_and_weights_the_variants(
    two_color_photos, tmp_path
) -> None:
    folder, pipeline, profiles = two_color_photos
    assert cli(["train", str(classifier_config(tmp_path, folder, pipeline, profiles))]) == 0
    classifier = load_classifier(tmp_path / "run" / "classifier.safetensors")
    card = classifier.card
    assert card["held_out"]["val_accuracy"] == 1.0 and card["profiles"][0]["name"] == "blue"
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert record["val_loss"] < 0.5 * record["val_loss_prior"]  # far better than frequencies
    cache = build_cache([folder], pipeline, size=16, cache_root=tmp_path / "cache")
    probabilities = cached_profile_probabilities(cache, classifier, "places")
    # the dog (places) half is blue in even photos, green in odd ones
    assert probabilities.argmax(1).tolist() == [0, 1] * 8
    assert probabilities.max(1).min() > 0.9

    split = routed_split(cache, 0.0, "places", "green", min_weight=0.3, classifier=classifier)
    assert sorted(split.train) == list(range(1, 16, 2))  # the variant gets its photos
    assert split.profile_weight is not None
    np.testing.assert_allclose(split.profile_weight, probabilities[:, 1], rtol=1e-6)


def test_router_gate_reads_the_segmenters_features(two_color_photos, tmp_path) -> None:
    from segcolor.io.images import load_image
    from segcolor.pipeline import Pipeline

    folder, pipeline, profiles = two_color_photos
    assert cli(["train", str(classifier_config(tmp_path, folder, pipeline, profiles))]) == 0
    experts = tmp_path / "experts"
    for name in ("blue", "green"):
        (experts / f"places_{name}.safetensors").write_bytes(
            (experts / "places.safetensors").read_bytes()
        )
    text = pipeline.read_text().replace(
        "places: {classes: [dog, background], expert: experts/places.safetensors}",
        "places:\n    classes: [dog, background]\n    expert:\n"
        f"      classifier: {tmp_path / 'run' / 'classifier.safetensors'}\n"
        "      variants: {blue: experts/places_blue.safetensors, "
        "green: experts/places_green.safetensors}\n",
    )
    pipeline.write_text(text)
    colorizer = Pipeline.from_config(pipeline)
    for index, expected in ((0, "blue"), (1, "green")):
        lab = colorizer.lab(load_image(folder / f"p{index:02d}.png").rgb)
        routing = colorizer.route_lab(lab)
        assert routing.profiles["places"].chosen == expected
    gate = colorizer.router.gates["places"]
    assert gate.reads_features
    with pytest.raises(ValueError, match="reads the segmenter's features"):
        gate.choose(torch.rand(1, 1, 8, 8) * 100)


def test_a_features_classifier_does_not_key_the_cache(two_color_photos, tmp_path) -> None:
    """Its P(profile) is computed from the cached features, so retraining it must not throw
    away the cache; a lightness classifier's is stored in the cache, so it keys it."""
    folder, pipeline, profiles = two_color_photos
    card = {"profiles": [{"name": "a"}, {"name": "b"}]}
    for seed in (0, 1):
        torch.manual_seed(seed)
        features = create_profile_classifier(
            2, arch="profile_features_linear", feature_channels=FEATURES
        )
        save_classifier(features, tmp_path / f"f{seed}.safetensors", card)
        lightness = create_profile_classifier(2, stages=1)
        save_classifier(lightness, tmp_path / f"l{seed}.safetensors", card)
    files = file_list([folder])

    def key(classifier: str) -> str:
        variant = tmp_path / f"v_{classifier}.yaml"
        variant.write_text(
            pipeline.read_text().replace(
                "places: {classes: [dog, background], expert: experts/places.safetensors}",
                "places:\n    classes: [dog, background]\n    expert:\n"
                f"      classifier: {tmp_path / classifier}\n"
                "      variants: {a: experts/places.safetensors, b: experts/people.safetensors}\n",
            )
        )
        return cache_key(files, load_pipeline_config(variant), 16)

    assert key("f0.safetensors") == key("f1.safetensors")
    assert key("l0.safetensors") != key("l1.safetensors")


def test_features_classifier_configs_are_validated(two_color_photos, tmp_path) -> None:
    folder, pipeline, profiles = two_color_photos
    path = classifier_config(tmp_path, folder, pipeline, profiles)
    cfg = yaml.safe_load(path.read_text())
    cfg["data"]["routing"] = None
    cfg["data"]["root"] = str(folder)
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="needs data.routing"):
        load_config(path)
    cfg = yaml.safe_load(classifier_config(tmp_path, folder, pipeline, profiles).read_text())
    cfg["data"]["routing"]["classifier"] = ""
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="data.routing.classifier"):
        load_config(path)
