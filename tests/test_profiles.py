"""Color profiles: K-means, the embedding, names, `segcolor profiles fit/show` on constructed
photos of known color families, the profile classifier's training task, profile experts'
data, and profile-aware routing and inspection."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from segcolor.cli import main as cli
from segcolor.color.dcd import DominantColors, dcd_distance
from segcolor.commands import inspect as inspect_command
from segcolor.errors import ConfigError
from segcolor.experts import create_expert, load_expert, read_card, save_expert
from segcolor.pipeline import Pipeline
from segcolor.profiles import load_profiles
from segcolor.profiles.classifier import (
    MAX_BYTES_FP16,
    create_profile_classifier,
    fp16_bytes,
    load_classifier,
    predict_proba,
    save_classifier,
)
from segcolor.profiles.embedding import embed
from segcolor.profiles.kmeans import kmeans
from segcolor.profiles.naming import base_name, profile_names
from segcolor.profiles.warm_start import init_trunk_from_expert
from segcolor.router.gates import mix_weights
from segcolor.splits import is_held_out
from segcolor.train import engine
from segcolor.train.config import load_config, resumed_config
from segcolor.train.data import compute_ab_prior
from segcolor.train.expert import init_from
from segcolor.train.sources import data_split

from .test_pipeline import write_yaml

# Three color families of "photos": (top color, bottom color) in RGB
FAMILIES = {
    "sky": ((130, 175, 230), (50, 75, 120)),
    "forest": ((60, 120, 45), (25, 55, 20)),
    "desert": ((225, 150, 70), (150, 85, 40)),
}
EXPECTED = {"sky": "cold-blue", "forest": "green", "desert": "warm-orange"}
PER_FAMILY = 8


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 small photos: each family's two colors split at a random height, with noise."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for family, (top, bottom) in FAMILIES.items():
        for i in range(PER_FAMILY):
            split = rng.integers(12, 28)
            image = np.zeros((40, 48, 3))
            image[:split], image[split:] = top, bottom
            image += rng.normal(0, 3, image.shape)
            pixels = np.clip(image, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"{family}_{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def fitted(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "profiles.yaml"
    argv = ["profiles", "fit", str(photos), "--k", "3", "-o", str(out), "--workers", "0"]
    assert cli([*argv, "--val-fraction", "0.25", "--per-sheet", "6"]) == 0
    return out


def dcd(*colors: tuple[tuple[float, float, float], float]) -> DominantColors:
    lab = np.array([c for c, _ in colors], dtype=float)
    share = np.array([p for _, p in colors])
    return DominantColors(lab, share / share.sum(), np.zeros_like(lab), 1.0)


# ----------------------------------------------------------------------------- building blocks


def test_kmeans_finds_known_clusters_largest_first_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sizes = [30, 50, 20]
    x = np.concatenate(
        [c + rng.normal(0, 0.5, (n, 2)) for c, n in zip(centers, sizes, strict=True)]
    )
    result = kmeans(x, 3, seed=1)
    np.testing.assert_allclose(result.centers, centers[[1, 0, 2]], atol=0.3)  # by size
    assert np.bincount(result.labels).tolist() == [50, 30, 20]
    again = kmeans(x, 3, seed=1)
    assert (again.labels == result.labels).all() and again.inertia == result.inertia


def test_embedding_keeps_distance_growing_where_the_mpeg7_distance_saturates() -> None:
    orange = dcd(((60, 20, 60), 1.0))
    shifted = [dcd(((60, 20 + s, 60), 1.0)) for s in (10.0, 27.0, 45.0)]  # beyond Td: 27, 45
    mpeg7 = [dcd_distance(orange, d) for d in shifted]
    assert mpeg7[1] == pytest.approx(mpeg7[2]) == pytest.approx(math.sqrt(2))  # no match at all
    e = embed([orange, *shifted])
    np.testing.assert_allclose(e.sum(1), 1.0, atol=1e-5)
    gaps = [np.linalg.norm(e[0] - row) for row in e[1:]]
    assert gaps[0] < gaps[1] < gaps[2]  # still graded beyond Td


def test_names_follow_the_colors() -> None:
    assert base_name(dcd(((50, 1, 2), 0.7), ((80, -2, 0), 0.3))) == "gray"
    assert base_name(dcd(((60, -5, -40), 0.6), ((40, 0, 0), 0.4))) == "cold-blue"
    assert base_name(dcd(((60, 25, 55), 0.8), ((30, 5, 5), 0.2))) == "warm-orange"
    assert base_name(dcd(((45, -30, 40), 1.0))) == "green"
    assert base_name(dcd(((60, -8, 10), 1.0))) == "muted-green"
    dark, light = dcd(((30, -5, -40), 1.0)), dcd(((80, -5, -40), 1.0))
    assert profile_names([light, dark]) == ["light-cold-blue", "dark-cold-blue"]


def test_mix_weights_known_answers() -> None:
    probs = {"gray": 0.6, "blue": 0.25, "green": 0.1, "orange": 0.05}
    # every profile has a variant; 0.05 is below the threshold and gives its share away
    weights = mix_weights(probs, ("gray", "blue", "green", "orange"), 0.1)
    assert weights == pytest.approx({"gray": 0.6 / 0.95, "blue": 0.25 / 0.95, "green": 0.1 / 0.95})
    # profiles without a variant give their probability to the variants
    assert mix_weights(probs, ("gray", "blue"), 0.1) == pytest.approx(
        {"gray": 0.6 / 0.85, "blue": 0.25 / 0.85}
    )
    # the most likely variant always runs, even below the threshold
    assert mix_weights(probs, ("green", "orange"), 0.9) == {"green": 1.0}


def test_classifier_fits_the_budget_and_round_trips(tmp_path: Path) -> None:
    assert fp16_bytes(create_profile_classifier(8)) <= MAX_BYTES_FP16  # the default, 3 stages
    model = create_profile_classifier(3, stages=1).eval()
    card = {"profiles": [{"name": n} for n in ("a", "b", "c")], "input_size": 32}
    path = save_classifier(model, tmp_path / "c.safetensors", card)
    loaded = load_classifier(path)
    assert loaded.profiles == ["a", "b", "c"] and loaded.input_size == 32
    lightness = torch.rand(2, 1, 40, 56) * 100
    probs = predict_proba(loaded, lightness)
    assert probs.shape == (2, 3) and torch.allclose(probs.sum(1), torch.ones(2))
    np.testing.assert_allclose(probs, predict_proba(model, lightness), atol=2e-2)  # fp16 stored


def test_export_ships_a_classifier_run_as_is(tmp_path: Path) -> None:
    model = create_profile_classifier(3, stages=1).eval()
    card = {"profiles": [{"name": n} for n in ("a", "b", "c")], "input_size": 32}
    (tmp_path / "run").mkdir()
    save_classifier(model, tmp_path / "run" / "classifier.safetensors", card, half=False)
    out = tmp_path / "shipped.safetensors"
    assert cli(["export", str(tmp_path / "run"), "-o", str(out)]) == 0
    shipped = load_classifier(out)
    assert shipped.profiles == ["a", "b", "c"] and shipped.card["exported"]["dtype"] == "float16"
    assert out.stat().st_size < 0.6 * (tmp_path / "run" / "classifier.safetensors").stat().st_size
    lightness = torch.rand(1, 1, 40, 40) * 100
    np.testing.assert_allclose(
        predict_proba(shipped, lightness), predict_proba(model, lightness), atol=5e-2
    )  # fp16 weights of an untrained net


# ----------------------------------------------------------------------------- fit / show


def test_fit_finds_the_color_families(fitted: Path, photos: Path) -> None:
    profiles = load_profiles(fitted)
    assert sorted(profiles.names) == sorted(EXPECTED.values())
    for family, name in EXPECTED.items():
        members = profiles.profile(name).members
        assert sorted(members) == sorted(p.name for p in photos.glob(f"{family}_*.png"))
        held = sum(is_held_out(photos / m, 0.25) for m in members)
        assert profiles.profile(name).held_out == held
    assert sum(p.held_out for p in profiles.profiles) == profiles.settings["fit"]["held_out"] > 0
    centroid = profiles.profile("green").centroid
    assert centroid.percents.sum() == pytest.approx(1.0, abs=1e-3)
    for profile in profiles.profiles:  # a contact sheet per profile, next to the YAML
        sheet = fitted.parent / profile.sheet
        assert sheet.is_file() and Image.open(sheet).width > 100
    assert len(list((fitted.parent / "profiles_sheets").glob("*.png"))) == 3


def test_fit_is_deterministic_given_the_seed(fitted: Path, photos: Path, tmp_path: Path) -> None:
    again = tmp_path / "profiles.yaml"
    argv = ["profiles", "fit", str(photos), "--k", "3", "-o", str(again), "--workers", "0"]
    assert cli([*argv, "--val-fraction", "0.25", "--per-sheet", "6"]) == 0
    strip = [line for line in fitted.read_text().splitlines() if "sheet:" not in line]
    assert [line for line in again.read_text().splitlines() if "sheet:" not in line] == strip


def test_fit_checks_its_outputs_before_fitting(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--sheets or -o where a folder cannot be: a one-line error at once, not after the fit."""
    small = tmp_path / "small.png"
    small.write_bytes(b"a photo")
    out = tmp_path / "prof3.yaml"
    argv = ["profiles", "fit", str(photos), "--k", "2", "-o", str(out), "--workers", "0"]
    for sheets, bad in ((small, small), (small / "sheets", small)):
        assert cli([*argv, "--sheets", str(sheets)]) == 2
        err = capsys.readouterr().err
        assert err == f"segcolor: error: {bad}: a folder is needed here, but this is a file\n"
    assert cli([*argv[:-4], "-o", str(small / "p.yaml")]) == 2
    assert "small.png: a folder is needed here" in capsys.readouterr().err
    assert small.read_bytes() == b"a photo" and not out.exists()
    # the sheets inside the photos' folder would be fitted next time
    assert cli([*argv, "--sheets", str(photos / "sheets")]) == 2
    assert "the contact sheets would land among the photos of" in capsys.readouterr().err
    assert not (photos / "sheets").exists()


def test_fit_is_saved_before_the_sheets(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A contact sheet that cannot be written does not lose the fit."""
    from segcolor.errors import SegcolorError
    from segcolor.profiles import sheets

    def fail(path: Path, sheet: Image.Image) -> Path:
        raise SegcolorError("cannot write here (No space left on device)", path)

    monkeypatch.setattr(sheets, "write_sheet", fail)
    out = tmp_path / "prof.yaml"
    argv = ["profiles", "fit", str(photos), "--k", "3", "-o", str(out), "--workers", "0"]
    assert cli(argv) == 2
    assert "No space left on device" in capsys.readouterr().err
    profiles = load_profiles(out)
    assert len(profiles.profiles) == 3
    assert all(p.sheet.startswith("prof_sheets/") for p in profiles.profiles)


def test_show_prints_a_summary(fitted: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli(["profiles", "show", str(fitted)]) == 0
    out = capsys.readouterr().out
    assert "3 profiles of 24 photos" in out
    for name in EXPECTED.values():
        assert f"  {name} " in out


def test_bad_profiles_files_are_one_line_errors(fitted: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(fitted.read_text())
    data["profiles"][1]["members"].append(data["profiles"][0]["members"][0])
    (tmp_path / "twice.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="is a member of both"):
        load_profiles(tmp_path / "twice.yaml")
    (tmp_path / "other.yaml").write_text("format: something-else\n")
    with pytest.raises(ConfigError, match="not a profiles file"):
        load_profiles(tmp_path / "other.yaml")
    with pytest.raises(ConfigError, match="no profile named 'purple'"):
        load_profiles(fitted).profile("purple")


# ----------------------------------------------------------------------------- training


def train_config(folder: Path, photos: Path, **entries: object) -> Path:
    cfg = {
        "data": {"root": str(photos), "val_fraction": 0.25, "size": 32},
        "optim": {"lr": 3.0e-3},
        "train": {"epochs": 2, "batch_size": 8, "workers": 0, "seed": 0},
        **entries,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_classifier_trains_with_held_out_confusion_and_resumes(
    fitted: Path, photos: Path, tmp_path: Path
) -> None:
    config = train_config(
        tmp_path,
        photos,
        task="profile_classifier",
        profiles=str(fitted),
        model={"arch": "profile_resnet18", "stages": 1},
        loss={"kind": "cross_entropy"},
    )
    out = tmp_path / "run"
    assert cli(["train", str(config), "--out", str(out), "--epochs", "1"]) == 0
    assert cli(["train", str(config), "--out", str(out), "--resume", "--epochs", "2"]) == 0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    card = load_classifier(out / "classifier.safetensors").card
    names = [p["name"] for p in card["profiles"]]
    assert names == load_profiles(fitted).names and card["epochs_trained"] == 2
    assert '"/' not in json.dumps(card)  # portable: no machine paths
    confusion = np.array(card["held_out"]["val_confusion"])
    held = [p for p in photos.iterdir() if is_held_out(p, 0.25)]
    assert confusion.shape == (3, 3) and confusion.sum() == len(held)
    assert card["held_out"]["val_accuracy"] == pytest.approx(np.trace(confusion) / len(held))
    # the truth rows follow the profiles file
    labels = load_profiles(fitted).labels()
    truth = np.bincount([labels[p.name] for p in held], minlength=3)
    assert confusion.sum(1).tolist() == truth.tolist()


def test_profile_expert_trains_on_its_profile_with_its_own_color_prior(
    fitted: Path, photos: Path, tmp_path: Path
) -> None:
    blue = train_config(
        tmp_path,
        photos,
        profile={"file": str(fitted), "name": "cold-blue"},
        model={"arch": "resnet18_unet", "depth": 2, "decoder_channels": [8, 4]},
        loss={"kind": "rebalanced", "hist_images": 50},
    )
    split = data_split(load_config(blue))
    assert {f.name.split("_")[0] for f in split.train + split.val} == {"sky"}
    assert len(split.train) + len(split.val) == PER_FAMILY
    assert all(is_held_out(f, 0.25) for f in split.val)
    # the rare-color prior is counted on the profile's photos: blue for sky, orange for desert
    orange = load_config(blue, {})
    orange["profile"]["name"] = "warm-orange"
    from segcolor.color.bins import bin_centers

    centers = bin_centers().double()
    mean_b = {
        name: float(compute_ab_prior(data_split(cfg).train, 50) @ centers[:, 1])
        for name, cfg in (("blue", load_config(blue)), ("orange", orange))
    }
    assert mean_b["blue"] < -10 < 10 < mean_b["orange"]
    out = tmp_path / "expert"
    assert cli(["train", str(blue), "--out", str(out), "--epochs", "1"]) == 0
    card = read_card(out / "expert.safetensors")
    assert card["profile"] == {"file": str(fitted), "name": "cold-blue"}
    assert card["data"]["train_images"] == len(split.train)


def test_profile_keys_are_validated(fitted: Path, photos: Path, tmp_path: Path) -> None:
    cases = [
        ({"task": "profile_classifier", "loss": {"kind": "cross_entropy"}}, "needs `profiles:`"),
        ({"profiles": str(fitted)}, "is for task profile_classifier"),
        ({"profile": {"file": str(fitted)}}, "profile must be"),
        ({"task": "profile_classifier", "profiles": str(fitted)}, "loss.kind must be one of"),
    ]
    for entries, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_config(train_config(tmp_path, photos, **entries))
    missing = load_config(
        train_config(tmp_path, photos, profile={"file": "nope.yaml", "name": "x"})
    )
    with pytest.raises(ConfigError, match="profiles file nope.yaml not found"):
        data_split(missing)


# ----------------------------------------------------------------------------- routing


PROFILES = ("gray", "cold-blue", "green")
PROBS = (0.7, 0.2, 0.1)


@pytest.fixture(scope="module")
def variant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny experts (one per category, one per places profile) and a classifier that always
    says P = 0.7 / 0.2 / 0.1 (zero weights, log-probability biases)."""
    folder = tmp_path_factory.mktemp("variants")
    for i, name in enumerate(("people", "birds", "animals", *[f"places_{p}" for p in PROFILES])):
        torch.manual_seed(200 + i)
        save_expert(create_expert(decoder_channels=[32, 16, 8]), folder / f"{name}.safetensors")
    classifier = create_profile_classifier(3, stages=1)
    with torch.no_grad():
        classifier.fc.weight.zero_()
        classifier.fc.bias.copy_(torch.log(torch.tensor(PROBS)))
    card = {
        "profiles": [
            {"name": p, "colors": [{"hex": "#336699", "percent": 100.0}]} for p in PROFILES
        ],
        "input_size": 32,
    }
    save_classifier(classifier, folder / "places_profiles.safetensors", card)
    return folder


def profiled_yaml(folder: Path, variant_dir: Path, extra: str = "") -> Path:
    lines = [
        "segmenter: {name: test_thirds}",
        "working_size: 32",
        "fallback: places",
        "categories:",
    ]
    for name, classes in (("people", "person"), ("animals", "dog")):
        lines += [
            f"  {name}:",
            f"    classes: [{classes}]",
            f"    expert: {variant_dir / f'{name}.safetensors'}",
        ]
    lines += [
        "  places:",
        "    classes: [background]",
        "    expert:",
        f"      classifier: {variant_dir / 'places_profiles.safetensors'}",
        "      variants:",
    ]
    lines += [f"        {p}: {variant_dir / f'places_{p}.safetensors'}" for p in PROFILES]
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def test_profile_variants_are_mixed_by_the_classifier(variant_dir: Path, tmp_path: Path) -> None:
    path = profiled_yaml(tmp_path, variant_dir, "      min_probability: 0.15\n")
    pipeline = Pipeline.from_config(path, device="cpu")
    image = (np.random.default_rng(0).random((36, 60)) * 255).astype(np.uint8)
    rgb, routing = pipeline.colorize_routed(np.repeat(image[..., None], 3, 2))
    choice = routing.profiles["places"]
    assert choice.probabilities == pytest.approx(dict(zip(PROFILES, PROBS, strict=True)), abs=1e-3)
    assert choice.weights == pytest.approx({"gray": 0.7 / 0.9, "cold-blue": 0.2 / 0.9}, abs=1e-3)
    assert choice.chosen == "gray" and routing.mix("people") is None
    assert "(profile gray 70% + cold-blue 20%)" in routing.summary()
    assert routing.to_dict()["profiles"]["places"]["chosen_variant"] == "gray"
    # the places expert's ab is the probability-weighted mean of the variants that run
    l_norm = torch.rand(1, 1, 32, 32) * 2 - 1
    gray, blue, green = pipeline.experts["places"]
    w_gray, w_blue, w_green = routing.mix("places")
    assert w_green == 0.0 and w_gray + w_blue == pytest.approx(1.0)
    expected = (w_gray * gray(l_norm) + w_blue * blue(l_norm)) * 110.0
    mixed = pipeline.run_expert("places", l_norm, routing.mix("places"))
    assert torch.allclose(mixed, expected, atol=1e-4)
    assert rgb.shape == (36, 60, 3)
    # a pipeline without profile variants reports none
    plain = Pipeline.from_config(write_yaml(tmp_path / "plain", variant_dir_plain(variant_dir)))
    assert "profiles" not in plain.route(image).to_dict()


def variant_dir_plain(variant_dir: Path) -> Path:
    """Single-expert checkpoints named as write_yaml expects."""
    folder = variant_dir / "plain"
    folder.mkdir(exist_ok=True)
    for name in ("people", "birds", "animals"):
        (folder / f"{name}.safetensors").write_bytes(
            (variant_dir / f"{name}.safetensors").read_bytes()
        )
    (folder / "places.safetensors").write_bytes(
        (variant_dir / "places_gray.safetensors").read_bytes()
    )
    return folder


def test_bad_profile_variants_are_one_line_errors(variant_dir: Path, tmp_path: Path) -> None:
    good = profiled_yaml(tmp_path, variant_dir).read_text()
    cases = [
        (good.replace("        green:", "        gren:"), "did you mean 'green'"),
        (good.replace("      classifier:", "      clasifier:"), "unknown key"),
        (
            good.replace(str(variant_dir / "places_gray.safetensors"), "missing.safetensors"),
            "variant 'gray' missing.safetensors not found",
        ),
        (good + "      min_probability: 2\n", "min_probability must be"),
    ]
    for text, message in cases:
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            Pipeline.from_config(tmp_path / "bad.yaml", device="cpu")


def test_inspect_shows_profiles_variants_and_region_colors(
    variant_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    Image.fromarray(np.full((40, 60), 128, dtype=np.uint8)).save(tmp_path / "photo.png")
    path = profiled_yaml(tmp_path, variant_dir)
    parser = argparse.ArgumentParser()
    inspect_command.add_arguments(parser)
    out = tmp_path / "report"
    args = parser.parse_args([str(tmp_path / "photo.png"), "-o", str(out), "--pipeline", str(path)])
    assert inspect_command.run(args) == 0
    assert "places 33% (profile gray 70%)" in capsys.readouterr().out  # 0.2 < 0.3: not run
    report = json.loads((out / "routing.json").read_text())
    places = report["profiles"]["places"]
    assert places["chosen_variant"] == "gray"
    assert places["profile_probabilities"]["green"] == pytest.approx(0.1, abs=1e-3)
    assert places["profile_colors"]["gray"] == [{"hex": "#336699", "percent": 100.0}]
    expert = next(e for e in report["experts"] if e["category"] == "places")
    assert set(expert["variants"]) == set(PROFILES)
    for region in report["regions"]:
        shares = [c["percent"] for c in region["dominant_colors"]["colors"]]
        assert shares and math.isclose(sum(shares), 100.0, abs_tol=0.5)
    page = (out / "index.html").read_text()
    assert "Color profiles" in page and "gray (chosen)" in page and 'class="bar"' in page


def test_init_starts_from_another_experts_weights(photos: Path, tmp_path: Path) -> None:
    tiny = {"arch": "resnet18_unet", "depth": 2, "decoder_channels": [8, 4]}
    torch.manual_seed(5)
    start = create_expert(**{k: v for k, v in tiny.items() if k != "arch"})
    save_expert(start, tmp_path / "start.safetensors")
    config = train_config(
        tmp_path,
        photos,
        model={**tiny, "init": str(tmp_path / "start.safetensors")},
        optim={"lr": 1e-12},  # so the weights stay where they started
    )
    out = tmp_path / "finetuned"
    assert cli(["train", str(config), "--out", str(out), "--epochs", "1"]) == 0
    after = load_expert(out / "expert.safetensors").state_dict()
    key = "net.encoder.conv1.weight"
    assert torch.allclose(after[key], start.state_dict()[key], atol=1e-6)
    wrong = train_config(
        tmp_path,
        photos,
        model={"arch": "resnet18_unet", "init": str(tmp_path / "start.safetensors")},
    )
    with pytest.raises(ConfigError, match="model.init"):
        engine.main(wrong, {"out": str(tmp_path / "wrong")})


def test_init_puts_a_new_head_on_another_experts_trunk(tmp_path: Path) -> None:
    """A regression expert's trunk and decoder under a 313-bin classification head: all but
    the output layer is copied; a different decoder is still an error."""
    from segcolor.train.distributed import DistInfo

    tiny = {"depth": 2, "decoder_channels": [8, 4]}
    torch.manual_seed(5)
    start = create_expert(**tiny)
    save_expert(start, tmp_path / "start.safetensors")
    torch.manual_seed(6)
    target = create_expert(**tiny, head="classification")
    head = target.state_dict()["net.segmentation_head.0.weight"].clone()
    info = DistInfo()
    init_from(target, str(tmp_path / "start.safetensors"), "resnet18_unet", tiny, info)
    after, before = target.state_dict(), start.state_dict()
    assert torch.equal(after["net.encoder.conv1.weight"], before["net.encoder.conv1.weight"])
    assert torch.equal(after["net.segmentation_head.0.weight"], head)  # 313 outputs, kept
    other = create_expert(depth=2, decoder_channels=[16, 4], head="classification")
    with pytest.raises(ConfigError, match="model.init"):
        init_from(other, str(tmp_path / "start.safetensors"), "resnet18_unet", tiny, info)


def test_classifier_trunk_from_a_colorization_expert(tmp_path: Path) -> None:
    torch.manual_seed(6)
    expert = create_expert()  # the default arch: stem + layer1 + layer2
    save_expert(expert, tmp_path / "places.safetensors")
    model = create_profile_classifier(4)
    assert init_trunk_from_expert(model, tmp_path / "places.safetensors") == 60
    ours, theirs = model.state_dict(), expert.state_dict()
    assert torch.equal(ours["features.0.weight"], theirs["net.encoder.conv1.weight"])
    assert torch.equal(
        ours["features.5.1.conv2.weight"], theirs["net.encoder.layer2.1.conv2.weight"]
    )


def test_runs_saved_before_the_profile_keys_still_resume(photos: Path, tmp_path: Path) -> None:
    fresh = load_config(train_config(tmp_path, photos))
    saved = {k: v for k, v in fresh.items() if k not in ("task", "profile", "profiles")}
    cfg, ignored = resumed_config(saved, fresh, {}, tmp_path / "config.yaml")
    assert cfg["task"] == "expert" and cfg["profile"] is None and ignored == []


def test_video_keeps_a_shots_profile_steady(
    variant_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classifier changes its mind on one frame of a shot: the stabilized video keeps the
    variant (running mean of P(profile)); naive mode swaps; a cut restarts the mean; the mean
    survives a resume (it is in the saved state)."""
    from segcolor.video.stabilize import Stabilizer, StabilizerOptions

    from .test_video import pan_frames

    frames = pan_frames(4, seed=3) + [255 - f for f in pan_frames(2, seed=9)]
    says = [(0.8, 0.1, 0.1), (0.8, 0.1, 0.1), (0.1, 0.1, 0.8), (0.8, 0.1, 0.1)]
    says += [(0.1, 0.1, 0.8), (0.1, 0.1, 0.8)]  # the second shot: truly green
    chosen = {}
    steady_options = StabilizerOptions(profile_alpha=0.3)  # the default, 1, keeps each frame's
    for mode, options in (("naive", StabilizerOptions(enabled=False)), ("steady", steady_options)):
        pipeline = Pipeline.from_config(profiled_yaml(tmp_path, variant_dir), device="cpu")
        gate = pipeline.router.gates["places"]
        answers = iter(says)
        monkeypatch.setattr(
            gate,
            "choose",
            lambda _l, g=gate, a=answers: g.mix(dict(zip(PROFILES, next(a), strict=True))),
        )
        stabilizer = Stabilizer(pipeline, options)
        results = [stabilizer.process(f, colorize=False) for f in frames]
        assert [r.cut for r in results] == [True, False, False, False, True, False]
        chosen[mode] = [r.routing.profiles["places"].chosen for r in results]
        if mode == "steady":
            steady = results[2].routing.profiles["places"].probabilities
            assert steady["green"] == pytest.approx(0.1 + 0.3 * 0.7, abs=1e-6)  # profile_alpha
            state = stabilizer.state()
            assert state["profile_places"] == pytest.approx([0.1, 0.1, 0.8], abs=1e-6)  # shot 2
            resumed = Stabilizer(pipeline, steady_options)
            resumed.load_state(state)
            assert resumed.state()["profile_places"] == pytest.approx([0.1, 0.1, 0.8], abs=1e-6)
    assert chosen["naive"] == ["gray", "gray", "green", "gray", "green", "green"]
    assert chosen["steady"] == ["gray", "gray", "gray", "gray", "green", "green"]


def test_evaluation_mixes_profile_variants_as_the_pipeline_does(
    variant_dir: Path, tmp_path: Path
) -> None:
    """``expert:places`` in `segcolor evaluate` is the classifier's mix of the variants (0.7 /
    0.2 / 0.1 here, cold-blue and green kept at min_probability 0.15), not their plain mean."""
    from segcolor.color.lab import normalize_l
    from segcolor.evaluate.methods import Methods

    path = profiled_yaml(tmp_path, variant_dir, "      min_probability: 0.15\n")
    pipeline = Pipeline.from_config(path, device="cpu")
    image = (np.random.default_rng(1).random((36, 60)) * 255).astype(np.uint8)
    lab = pipeline.lab(np.repeat(image[..., None], 3, 2))
    out = Methods(pipeline, ["expert:places"]).run(lab, None)["expert:places"]
    l_norm = normalize_l(lab.l_small)
    mixed = pipeline.run_expert("places", l_norm, [0.7 / 0.9, 0.2 / 0.9, 0.0])
    torch.testing.assert_close(out, mixed, atol=0.02, rtol=0)  # Lab units; P is 0.7 +- 1e-3
    assert (out - pipeline.run_expert("places", l_norm)).abs().max() > 0.2  # != plain mean
