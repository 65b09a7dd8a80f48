"""Training as the router routes: semantic features, the routed cache, weighted losses, and
feature-taking experts in the pipeline. A fake segmenter gives known classes and features."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from segcolor.cli import main as cli
from segcolor.errors import ConfigError, SegcolorError
from segcolor.experts import create_expert, load_expert, save_expert
from segcolor.feature_grid import crop_features, features_on_grid, sample_features
from segcolor.pipeline import Pipeline
from segcolor.router.segmenters import register_segmenter
from segcolor.train import cache as cache_module
from segcolor.train import expert as expert_task
from segcolor.train.cache import build_cache
from segcolor.train.config import load_config
from segcolor.train.losses import PixelLoss, RareColorLoss
from segcolor.train.routed import RoutedPhotos, routed_split
from segcolor.train.run import load_checkpoint

from .conftest import color_image
from .test_pipeline import VOC, FakeSegmenter

FEATURES = 8


class FeatureSegmenter(FakeSegmenter):
    """``FakeSegmenter``'s class maps plus features: the class one-hot (first 8 classes
    folded) on a coarse grid, so features say where the person and the dog are."""

    feature_channels = FEATURES

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(x)
        grid = torch.nn.functional.adaptive_avg_pool2d(logits / 8.0, (5, 7))
        folded = torch.zeros(x.shape[0], FEATURES, 5, 7)
        for c in range(len(VOC)):
            folded[:, c % FEATURES] += grid[:, c]
        return logits, folded


register_segmenter("test_features_halves")(lambda weights=None: FeatureSegmenter("halves"))


def semantic_expert(seed: int = 0, **cfg):
    torch.manual_seed(seed)
    return create_expert(
        "resnet18_unet_semantic", feature_channels=FEATURES, decoder_channels=[16, 8, 8], **cfg
    )


# ----------------------------------------------------------------------------- features


def test_features_are_sampled_at_cell_centres():
    # a map linear in x and y over a 9 x 17 grid spanning a 40 x 80 image corner to corner
    ys, xs = torch.meshgrid(torch.linspace(0, 39, 9), torch.linspace(0, 79, 17), indexing="ij")
    feats = torch.stack([ys, xs])[None]
    grid = features_on_grid(feats, (40, 80))
    assert grid.shape == (1, 2, 5, 10)
    centres_y = torch.arange(5) * 8 + 3.5
    centres_x = torch.arange(10) * 8 + 3.5
    assert torch.allclose(grid[0, 0, :, 0], centres_y, atol=1e-4)
    assert torch.allclose(grid[0, 1, 0, :], centres_x, atol=1e-4)
    # a crop whose corner is on the grid takes exactly the cells under it
    assert torch.equal(crop_features(grid, (16, 8, 48, 40)), grid[..., 1:5, 2:6])
    # arbitrary positions: the same bilinear sampling
    some = sample_features(feats, (40, 80), torch.tensor([0.0, 39.0]), torch.tensor([79.0]))
    assert torch.allclose(some[0, :, :, 0], torch.tensor([[0.0, 39.0], [79.0, 79.0]]))


def test_semantic_expert_uses_features_and_runs_without_them():
    expert = semantic_expert().eval()
    assert expert.uses_features and expert.feature_channels == FEATURES
    light = torch.rand(2, 1, 36, 44)
    feats = torch.randn(2, FEATURES, 5, 6)
    with torch.no_grad():
        with_feats = expert(light, feats)
        other = expert(light, feats * -1.0)
        without = expert(light)
    assert with_feats.shape == without.shape == (2, 2, 36, 44)
    assert not torch.allclose(with_feats, other)  # the features change the colors
    with pytest.raises(ValueError, match="features of shape"):
        expert(light, torch.randn(2, FEATURES + 1, 5, 6))
    plain = create_expert("resnet18_unet", decoder_channels=[16, 8, 8]).eval()
    assert not plain.uses_features
    with torch.no_grad():  # an expert without fusion ignores features
        assert torch.equal(plain(light, feats), plain(light))


def test_weighted_losses_ignore_pixels_of_weight_zero():
    target = torch.zeros(1, 2, 4, 4)
    raw = torch.zeros(1, 2, 4, 4)
    raw[..., :, 2:] = 1.0  # wrong on the right half only
    weight = torch.zeros(1, 1, 4, 4)
    weight[..., :, :2] = 1.0
    assert PixelLoss("l2")(raw, target, weight).item() == 0.0
    assert PixelLoss("l2")(raw, target).item() == pytest.approx(0.5)
    weight[..., :, 2:] = 1.0
    assert PixelLoss("l2")(raw, target, weight).item() == pytest.approx(0.5)
    uniform = RareColorLoss(torch.full((313,), 1 / 313))
    assert uniform(raw, target, weight).item() == pytest.approx(0.5, rel=1e-5)


# ----------------------------------------------------------------------------- cache


@pytest.fixture()
def photo_folders(tmp_path: Path) -> list[Path]:
    folders = [tmp_path / "people", tmp_path / "places"]
    for f, folder in enumerate(folders):
        folder.mkdir()
        for i in range(6):
            image = color_image(40 + 4 * i, 56, seed=10 * f + i)
            Image.fromarray(image).save(folder / f"{folder.name}_{i}.png")
    (folders[1] / "broken.png").write_bytes(b"not a png")
    return folders


def semantic_pipeline(folder: Path, segmenter: str, categories: dict[str, str]) -> Path:
    """``folder/pipeline.yaml`` (working size 32, fallback places) with an untrained
    ``semantic_expert`` per category in ``folder/experts``; ``categories``: name -> classes."""
    experts = folder / "experts"
    experts.mkdir()
    lines = []
    for name, classes in categories.items():
        save_expert(semantic_expert(), experts / f"{name}.safetensors", {"name": name})
        lines.append(f"  {name}: {{classes: [{classes}], expert: experts/{name}.safetensors}}\n")
    path = folder / "pipeline.yaml"
    path.write_text(
        f"segmenter: {{name: {segmenter}}}\nworking_size: 32\nfallback: places\n"
        "categories:\n" + "".join(lines)
    )
    return path


@pytest.fixture()
def pipeline_yaml(tmp_path: Path) -> Path:
    return semantic_pipeline(
        tmp_path,
        "test_features_halves",
        {"people": "person", "animals": "cat, dog, horse, sheep, cow", "places": "background"},
    )


def test_cache_routes_each_photo_once_and_is_reused(photo_folders, pipeline_yaml, tmp_path):
    cache = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    assert len(cache) == 13 and cache.ok.sum() == 12 and not cache.ok[6]  # broken.png
    assert cache.categories == ["people", "animals", "places"]
    images, weights = cache.array("images"), cache.array("weights")
    assert images.shape == (13, 16, 16, 3) and images.dtype == np.uint8
    assert weights.shape == (13, 3, 4, 4) and cache.array("features").shape == (13, 8, 2, 2)
    # the fake router puts a person on the left half and a dog on the right half
    people, animals = weights[0, 0].astype(float) / 255, weights[0, 1].astype(float) / 255
    assert people[:, 0].mean() > 0.9 and animals[:, -1].mean() > 0.9
    assert np.allclose(weights[cache.ok].sum(1), 255, atol=3)  # soft weights sum to 1
    assert cache.mean_weights()[0, 0] == pytest.approx(0.5, abs=0.1)
    # the same folders again: the cache is reused, not rebuilt
    again = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    assert again.root == cache.root
    # touched files (a copy, a re-sync: new mtimes, same bytes) keep the cache
    for folder in photo_folders:
        for f in folder.iterdir():
            os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    touched = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    assert touched.root == cache.root
    # a changed photo changes the key
    Image.fromarray(color_image(30, 30, seed=99)).save(photo_folders[0] / "people_0.png")
    changed = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    assert changed.root != cache.root


def test_cache_build_resumes_after_an_interruption(
    photo_folders, pipeline_yaml, tmp_path, monkeypatch
):
    straight = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "a")
    monkeypatch.setattr(cache_module, "_SAVE_EVERY", 4)
    real, calls = cache_module.center_square, []

    def stop_at_nine(*args):
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(cache_module, "center_square", stop_at_nine)
    with pytest.raises(KeyboardInterrupt):
        build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "b")
    partial = next((tmp_path / "b").iterdir())
    assert json.loads((partial / "progress.json").read_text())["done"] == 8
    monkeypatch.setattr(cache_module, "center_square", real)
    resumed = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "b")
    for name in ("images", "weights", "features"):
        assert np.array_equal(resumed.array(name), straight.array(name)), name
    assert resumed.index["mean_weights"] == straight.index["mean_weights"]


def test_routed_split_and_samples(photo_folders, pipeline_yaml, tmp_path):
    cache = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    split = routed_split(cache, 0.3, "people")
    assert sorted(split.train + split.val) == np.flatnonzero(cache.ok).tolist()
    assert split.summary()["train_images_per_folder"].keys() <= {"people", "places"}
    data = RoutedPhotos(split, split.train, crop=8, train=True, seed=1, context_weight=0.2)
    a, b = data[(3, 0)], data[(3, 0)]
    assert all(torch.equal(a[k], b[k]) for k in a)  # a pure function of (seed, epoch, index)
    assert a["rgb"].shape == (3, 8, 8) and a["features"].shape == (FEATURES, 1, 1)
    assert a["weight"].min() >= 0.2 - 1e-6 and a["weight"].max() <= 1.0 + 1e-6
    val = RoutedPhotos(split, split.val, crop=16, train=False, context_weight=0.2)[0]
    left, right = val["weight"][0, :, :4].mean(), val["weight"][0, :, -4:].mean()
    assert left > 0.9 and right < 0.3  # people pixels count fully, the dog's as context
    general = routed_split(cache, 0.3, None)
    whole = RoutedPhotos(general, general.val, crop=16, train=False)[0]
    assert torch.equal(whole["weight"], torch.ones(1, 16, 16))


def test_max_images_samples_every_folder_stably(photo_folders, pipeline_yaml, tmp_path):
    """A cap on a multi-folder cache is a stable hash-picked subset, not the first folder's
    photos (the cache lists people's six before places')."""
    cache = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    capped = routed_split(cache, 0.0, None, max_images=6)
    chosen = sorted(capped.train + capped.val)
    assert len(chosen) == 6 and chosen == sorted(routed_split(cache, 0.0, None, max_images=6).train)
    folders = {Path(cache.files[i]).parent.name for i in chosen}
    assert folders == {"people", "places"}, folders
    assert set(chosen) <= set(np.flatnonzero(cache.ok).tolist())


def routed_config(tmp_path: Path, folders: list[Path], pipeline: Path, **train) -> Path:
    cfg = {
        "name": "people",
        "data": {
            "root": [str(f) for f in folders],
            "size": 16,
            "val_fraction": 0.3,
            "routing": {
                "pipeline": str(pipeline),
                "cache_size": 16,
                "cache_dir": str(tmp_path / "cache"),
            },
        },
        "model": {
            "arch": "resnet18_unet_semantic",
            "feature_channels": FEATURES,
            "decoder_channels": [16, 8, 8],
        },
        "loss": {"kind": "rebalanced", "hist_images": 8},
        "optim": {"lr": 3e-3},
        "train": {"epochs": 4, "batch_size": 4, "workers": 0, "seed": 0, **train},
    }
    path = tmp_path / "routed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_routed_training_lowers_the_loss_and_resumes_exactly(
    photo_folders, pipeline_yaml, tmp_path, monkeypatch
):
    torch.set_num_threads(1)
    config = routed_config(tmp_path, photo_folders, pipeline_yaml)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli(["train", str(config), "--out", str(straight)]) == 0
    history = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    expert = load_expert(straight / "expert.safetensors")
    assert expert.uses_features and expert.card["data"]["routing"] == "people"
    real_step, calls = expert_task.train_step, []

    def stop_in_epoch_three(*args, **kwargs):  # Ctrl-C in the middle of epoch 3
        calls.append(1)
        if len(calls) == 2 * steps + 1:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    steps = load_checkpoint(straight / "checkpoint.pt")["data"]["train_images"] // 4
    monkeypatch.setattr(expert_task, "train_step", stop_in_epoch_three)
    assert cli(["train", str(config), "--out", str(resumed)]) == 130
    assert load_checkpoint(resumed / "checkpoint.pt")["epoch"] == 2
    monkeypatch.setattr(expert_task, "train_step", real_step)
    assert cli(["train", str(config), "--out", str(resumed), "--resume"]) == 0
    a, b = load_file(straight / "expert.safetensors"), load_file(resumed / "expert.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_set_overrides_any_key(photo_folders, pipeline_yaml, tmp_path):
    config = routed_config(tmp_path, photo_folders, pipeline_yaml)
    out = tmp_path / "set"
    args = ["--set", "train.epochs=1", "--set", "data.routing.category=all", "--out", str(out)]
    assert cli(["train", str(config), *args]) == 0
    assert load_expert(out / "expert.safetensors").card["data"]["routing"] == "all pixels"
    assert cli(["train", str(config), "--set", "train.epochs"]) == 2  # one-line error


# ----------------------------------------------------------------------------- pipeline


def test_pipeline_hands_features_to_experts_on_crops(pipeline_yaml):
    pipeline = Pipeline.from_config(pipeline_yaml, device="cpu")
    image = color_image(40, 64)
    lab = pipeline.lab(image)
    routing = pipeline.route_lab(lab)
    assert routing.feature_grid is not None and routing.feature_grid.shape == (1, FEATURES, 4, 7)
    ab, _ = pipeline.merge_routed(lab, routing)
    routing.features = None  # the same photo without semantic input: other colors
    routing.__dict__.pop("feature_grid", None)
    ab_without, _ = pipeline.merge_routed(lab, routing)
    assert ab.shape == ab_without.shape == (1, 2, 32, 51)
    assert not torch.allclose(ab, ab_without)
    assert pipeline.colorize(image).shape == (40, 64, 3)


def test_prior_all_gives_an_expert_the_general_models_color_weights(
    photo_folders, pipeline_yaml, tmp_path
):
    config = routed_config(tmp_path, photo_folders, pipeline_yaml)
    priors = {}
    for name, sets in (
        ("own", []),
        ("all", ["--set", "loss.prior=all"]),
        ("general", ["--set", "data.routing.category=all"]),
    ):
        out = tmp_path / name
        argv = ["train", str(config), "--set", "train.epochs=1", *sets, "--out", str(out)]
        assert cli(argv) == 0
        priors[name] = load_checkpoint(out / "checkpoint.pt")["ab_prior"]
    assert torch.equal(priors["all"], priors["general"])
    assert not torch.equal(priors["own"], priors["general"])  # people pixels only
    bad = tmp_path / "plain.yaml"
    bad.write_text("data: {root: x}\nloss: {prior: all}\n")
    assert cli(["train", str(bad)]) == 2


GREEN, BLUE = (40, 160, 50), (40, 70, 190)  # green is much lighter than blue in gray


def green_blue_halves(folder: Path, count: int) -> Path:
    """``count`` photos green|blue, blue|green, ... (p00.png, p01.png, ...)."""
    folder.mkdir()
    for i in range(count):
        left, right = (GREEN, BLUE) if i % 2 == 0 else (BLUE, GREEN)
        image = np.zeros((24, 32, 3), dtype=np.uint8)
        image[:, :16], image[:, 16:] = left, right
        Image.fromarray(image).save(folder / f"p{i:02d}.png")
    return folder


def green_blue_profiles(path: Path) -> Path:
    """A profiles file with two one-color profiles, blue (index 0) and green (1)."""
    from segcolor.color.dcd import dominant_colors
    from segcolor.profiles.store import Profile, ProfileSet

    flat = {c: dominant_colors(np.full((8, 8, 3), c, dtype=np.uint8)) for c in (GREEN, BLUE)}
    return ProfileSet(
        [Profile("blue", flat[BLUE], []), Profile("green", flat[GREEN], [])], "photos"
    ).save(path)


def test_profile_variants_can_train_on_the_photos_own_colors(pipeline_yaml, tmp_path):
    """``profile_from: colors``: a variant's photos are those whose routed pixels have its
    palette (read from the color photo), not the classifier's guess from the grayscale."""
    from segcolor.train.routed import color_profiles

    # the fake router: a person on the left half, a dog on the right
    folder = green_blue_halves(tmp_path / "photos", 8)
    profiles = green_blue_profiles(tmp_path / "profiles.yaml")
    cache = build_cache([folder], pipeline_yaml, size=16, cache_root=tmp_path / "c")

    people = color_profiles(cache, profiles, "people")
    assert people.tolist() == [1, 0] * 4  # the left half's color: green, blue, green, ...
    assert color_profiles(cache, profiles, "animals").tolist() == [0, 1] * 4  # right half
    assert len(list(cache.root.glob("color_profiles-*.npy"))) == 2  # kept, keyed by category

    split = routed_split(
        cache, 0.0, "people", "green", profile_from="colors", profiles_file=profiles
    )
    assert sorted(split.train) == [0, 2, 4, 6]
    sample = RoutedPhotos(split, split.train, crop=16, train=False, context_weight=0.0)[0]
    assert sample["weight"][0, :, :4].mean() > 0.9  # its person pixels count fully
    with pytest.raises(SegcolorError, match="not one of"):
        routed_split(cache, 0.0, "people", "red", profile_from="colors", profiles_file=profiles)


def test_profile_from_colors_needs_a_profiles_file(photo_folders, pipeline_yaml, tmp_path):
    path = routed_config(tmp_path, photo_folders, pipeline_yaml)
    cfg = yaml.safe_load(path.read_text())
    cfg["data"]["routing"].update(category="people", profile="green", profile_from="colors")
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="needs data.routing.profiles"):
        load_config(path)
    cfg["data"]["routing"]["profile_from"] = "guess"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="classifier or colors"):
        load_config(path)


def test_scale_jitter_resizes_windows_of_the_cached_square(photo_folders, pipeline_yaml, tmp_path):
    import torch.nn.functional as F

    cache = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    split = routed_split(cache, 0.3, "people")
    jitter = RoutedPhotos(split, split.train, crop=8, train=True, seed=1, crop_scale=(0.5, 1.0))
    assert jitter.windows == [8, 16]
    samples = [jitter[(epoch, 0)] for epoch in range(12)]
    for a in samples:
        assert a["rgb"].shape == (3, 8, 8) and a["features"].shape == (FEATURES, 1, 1)
        assert a["rgb"].min() >= 0.0 and a["rgb"].max() <= 1.0
        assert a["weight"].shape == (1, 8, 8)
    assert all(torch.equal(jitter[(5, 0)][k], samples[5][k]) for k in samples[5])
    # the whole square, resized: the photo's every pixel squeezed into the crop
    whole = RoutedPhotos(split, split.train, crop=8, train=True, seed=1, crop_scale=(1.0, 1.0))
    image = torch.from_numpy(np.array(cache.array("images")[split.train[0]]))
    image = image.permute(2, 0, 1).float()[None] / 255
    small = F.interpolate(image, size=(8, 8), mode="bilinear", antialias=True)[0]
    got = whole[(0, 0)]["rgb"]
    assert torch.allclose(got, small, atol=1e-6) or torch.allclose(got, small.flip(-1), atol=1e-6)
    # without crop_scale the stream of crops is the one it always was
    plain = RoutedPhotos(split, split.train, crop=8, train=True, seed=1)
    assert plain.windows == [8]


def test_photo_balance_counts_every_photo_once(photo_folders, pipeline_yaml, tmp_path):
    cache = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    split = routed_split(cache, 0.3, "people")
    pixel = RoutedPhotos(split, split.train, crop=8, train=True, seed=1, crop_scale=(0.5, 1.0))
    photo = RoutedPhotos(
        split, split.train, crop=8, train=True, seed=1, crop_scale=(0.5, 1.0), balance="photo"
    )
    totals = []
    for index in range(len(split.train)):
        a, b = pixel[(2, index)], photo[(2, index)]
        assert torch.equal(a["rgb"], b["rgb"])  # the same crop: only the weights change
        assert b["weight"].mean().item() == pytest.approx(1.0, abs=1e-5)
        assert torch.allclose(b["weight"] * a["weight"].mean(), a["weight"], atol=1e-6)
        totals.append(a["weight"].sum().item())
    assert max(totals) > 1.5 * min(totals)  # per pixel, photos counted unequally: now equal
    general = routed_split(cache, 0.3, None)
    whole = RoutedPhotos(general, general.val, crop=16, train=False, balance="photo")[0]
    assert torch.equal(whole["weight"], torch.ones(1, 16, 16))  # a general model: no change


def test_balance_must_be_pixel_or_photo(photo_folders, pipeline_yaml, tmp_path):
    path = routed_config(tmp_path, photo_folders, pipeline_yaml)
    cfg = yaml.safe_load(path.read_text())
    cfg["data"]["routing"]["balance"] = "photo"
    path.write_text(yaml.safe_dump(cfg))
    assert load_config(path)["data"]["routing"]["balance"] == "photo"
    cfg["data"]["routing"]["balance"] = "region"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="data.routing.balance must be one of pixel, photo"):
        load_config(path)


def test_zoom_out_puts_the_square_in_a_larger_window_weighted_zero(
    photo_folders, pipeline_yaml, tmp_path
):
    cache = build_cache(photo_folders, pipeline_yaml, size=16, cache_root=tmp_path / "c")
    split = routed_split(cache, 0.3, None)  # every photo pixel weighs 1: the rim shows as 0
    out = RoutedPhotos(split, split.train, crop=8, train=True, seed=1, crop_scale=(1.5, 1.5))
    assert out.windows == [24]  # 16 px square in a 24 px window, resized to the 8 px crop
    for epoch in range(6):
        sample = out[(epoch, 0)]
        assert sample["rgb"].shape == (3, 8, 8) and sample["features"].shape == (FEATURES, 1, 1)
        assert sample["rgb"].min() >= 0.0 and sample["rgb"].max() <= 1.0
        weight = sample["weight"]
        assert weight.min() == 0.0 and weight.max() == pytest.approx(1.0)
        assert 0.25 < weight.mean().item() < 0.75  # the square is (16/24)^2 = 44 % of it
    mixed = RoutedPhotos(split, split.train, crop=8, train=True, seed=1, crop_scale=(0.5, 1.5))
    assert mixed.windows == [8, 16, 24]
