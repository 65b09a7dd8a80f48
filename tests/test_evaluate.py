"""`segcolor evaluate`: metrics with known answers, masks and photo selection, the oracle merge,
and the command end to end on tiny photos with tiny random experts and a fake segmenter."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from segcolor.cli import main
from segcolor.commands import evaluate as evaluate_command
from segcolor.commands.evaluate import BASELINES
from segcolor.errors import BadImageError, SegcolorError
from segcolor.evaluate import Comparison, GroundTruth, Methods, ab_auc, colorfulness
from segcolor.evaluate.datasets import find_photos, load_mask
from segcolor.evaluate.methods import DEFAULT_BASELINES, parse_methods
from segcolor.evaluate.metrics import AUC_MAX, PSNR_CAP
from segcolor.experts import create_expert, save_expert
from segcolor.paths import portable_path
from segcolor.pipeline import Pipeline
from segcolor.router.segmenters import Segmenter, register_segmenter
from segcolor.splits import is_held_out

from .conftest import color_image

CLASSES = ["background", "bird", "cat", "dog", "person"]
CATEGORIES = {"people": ["person"], "birds": ["bird"], "animals": ["cat", "dog"], "places": []}


class LeftPersonSegmenter(Segmenter):
    """A person on the left half, background elsewhere, whatever the pixels."""

    def __init__(self) -> None:
        super().__init__(CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        cls = torch.zeros(height, width, dtype=torch.long)
        cls[:, : width // 2] = CLASSES.index("person")
        logits = torch.nn.functional.one_hot(cls, len(CLASSES)).permute(2, 0, 1) * 8.0
        return logits[None].expand(batch, -1, -1, -1).float()


register_segmenter("evaluate_test_left_person")(lambda weights=None: LeftPersonSegmenter())


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random experts (different weights each) and a general model, and their YAML."""
    folder = tmp_path_factory.mktemp("pipeline")
    lines = ["segmenter: {name: evaluate_test_left_person}", "working_size: 32", "categories:"]
    for i, (name, classes) in enumerate([*CATEGORIES.items(), ("general", None)]):
        torch.manual_seed(200 + i)
        expert = create_expert(decoder_channels=[32, 16, 8])
        save_expert(expert, folder / f"{name}.safetensors", {"name": name, "category": name})
        if classes is not None:
            lines += [f"  {name}:", f"    classes: [{', '.join(classes)}]"]
            lines.append(f"    expert: {name}.safetensors")
    lines.append("fallback: places")
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def pipeline(pipeline_yaml: Path) -> Pipeline:
    return Pipeline.from_config(pipeline_yaml, device="cpu")


@pytest.fixture(scope="module")
def vivid_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random experts of the vivid arch (a 313-bin head) and a general one, and their
    YAML: the vivid style answers differently from the faithful one."""
    folder = tmp_path_factory.mktemp("vivid")
    lines = ["segmenter: {name: evaluate_test_left_person}", "working_size: 32", "categories:"]
    for i, (name, classes) in enumerate([*CATEGORIES.items(), ("general", None)]):
        torch.manual_seed(300 + i)
        expert = create_expert(
            "resnet18_unet_hints", depth=3, decoder_channels=[16, 8, 8], feature_channels=0
        )
        save_expert(expert, folder / f"{name}.safetensors", {"name": name, "category": name})
        if classes is not None:
            lines += [f"  {name}:", f"    classes: [{', '.join(classes)}]"]
            lines.append(f"    expert: {name}.safetensors")
    lines.append("fallback: places")
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------- metrics


def test_identical_images_score_perfectly() -> None:
    truth = GroundTruth.from_rgb(color_image(32, 40))
    m = Comparison(truth, truth.rgb).metrics()
    assert m["delta_e2000"] == 0.0 and m["delta_e_lt10"] == 1.0
    assert m["psnr_rgb"] == PSNR_CAP and m["psnr_ab"] == PSNR_CAP  # not inf: means stay finite
    assert m["ssim"] == pytest.approx(1.0)
    assert m["auc_ab"] == 1.0 and m["colorfulness_diff"] == 0.0
    assert m["pixels"] == 32 * 40


def test_whole_image_ssim_and_psnr_are_scikit_images() -> None:
    truth = GroundTruth.from_rgb(color_image(32, 40))
    output = color_image(32, 40, seed=5)
    m = Comparison(truth, output).metrics()
    expected = structural_similarity(
        truth.rgb, output, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    assert m["ssim"] == pytest.approx(expected, rel=1e-9)
    assert m["psnr_rgb"] == pytest.approx(peak_signal_noise_ratio(truth.rgb, output))


def test_psnr_is_finite_and_below_the_cap_for_a_small_difference() -> None:
    truth = GroundTruth.from_rgb(color_image(32, 40))
    output = truth.rgb.copy()
    output[0, 0, 0] ^= 1
    value = Comparison(truth, output).metrics()["psnr_rgb"]
    assert math.isfinite(value) and 60 < value < PSNR_CAP


def test_gray_images_have_no_colorfulness() -> None:
    gray = np.repeat(np.linspace(0, 255, 60).reshape(6, 10, 1), 3, axis=2)
    assert colorfulness(gray) == 0.0


def test_colorfulness_known_values() -> None:
    red = np.array([255.0, 0.0, 0.0])
    # uniform red: no spread; rg = 255, yb = 127.5 -> 0.3 * sqrt(255^2 + 127.5^2)
    assert colorfulness(np.tile(red, (4, 4, 1))) == pytest.approx(0.3 * 127.5 * math.sqrt(5))
    # half red, half black: rg and yb each have std = mean = half their red value
    half = np.zeros((4, 4, 3))
    half[:, :2] = red
    assert colorfulness(half) == pytest.approx(1.3 * 63.75 * math.sqrt(5))


@pytest.mark.parametrize("error", [0.0, 0.5, 1.0, 10.0, 37.2, 149.9, 150.0, 150.5, 400.0])
def test_auc_of_a_constant_error_is_the_share_of_thresholds_at_or_above_it(error: float) -> None:
    thresholds = np.arange(AUC_MAX + 1)
    assert ab_auc(np.full(50, error)) == pytest.approx(np.mean(thresholds >= error))


def test_auc_matches_the_cdf_curve() -> None:
    errors = np.random.default_rng(1).gamma(2.0, 15.0, size=500)
    curve = [np.mean(errors <= t) for t in range(AUC_MAX + 1)]
    assert ab_auc(errors) == pytest.approx(np.mean(curve))


def test_ab_histogram_divergence_known_cases() -> None:
    """The realism measure: 0 for the photos against themselves, ln 2 for disjoint colors,
    and worse for gray and for a chroma gain than for the photos' own colors."""
    from skimage.color import lab2rgb

    from segcolor.evaluate.metrics import ab_histogram, js_divergence

    photo = color_image(60, 80, seed=4)
    truth = GroundTruth.from_rgb(photo)
    own = ab_histogram(truth.lab)
    assert own.sum() == 60 * 80 and js_divergence(own, own) == 0.0
    assert js_divergence(own, own * 3) == 0.0  # normalised: the set's size does not count
    red, blue = np.zeros((22, 22)), np.zeros((22, 22))
    red[18, 12], blue[8, 2] = 5, 7
    assert js_divergence(red, blue) == pytest.approx(math.log(2))
    assert math.isnan(js_divergence(np.zeros((22, 22)), own))

    def rendered(gain: float) -> np.ndarray:
        lab = truth.lab.copy()
        lab[..., 1:] *= gain
        return ab_histogram(rgb2lab((lab2rgb(lab) * 255).round().astype(np.uint8)))

    same = js_divergence(rendered(1.0), own)
    gray, half, louder = (js_divergence(rendered(g), own) for g in (0.0, 0.5, 1.6))
    assert same < 0.01 < half < gray and louder > 0.01  # measured 0.000 / 0.49 / 0.69 / 0.34


def test_region_metrics_use_only_the_region() -> None:
    truth = GroundTruth.from_rgb(color_image(40, 64, seed=3))
    output = truth.rgb.copy()
    output[:, 32:] = 128  # right half wrong (gray), left half exact
    left = np.zeros((40, 64), dtype=bool)
    left[:, :16] = True  # farther from the change than SSIM's window reaches
    comparison = Comparison(truth, output)
    inside = comparison.metrics(left)
    assert inside["delta_e2000"] == 0.0 and inside["auc_ab"] == 1.0
    assert inside["psnr_rgb"] == PSNR_CAP and inside["ssim"] == pytest.approx(1.0)
    assert inside["colorfulness_diff"] == 0.0 and inside["pixels"] == left.sum()
    outside = comparison.metrics(~left)
    assert outside["delta_e2000"] > 5 and outside["auc_ab"] < 1
    whole = comparison.metrics()
    assert inside["delta_e2000"] < whole["delta_e2000"] < outside["delta_e2000"]


# ---------------------------------------------------------------------------- data


def _save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_photos_skip_masks_and_follow_held_out_and_limit(tmp_path: Path) -> None:
    for i in range(30):
        _save(tmp_path / f"p{i:02d}.png", color_image(12, 12, seed=i))
    _save(tmp_path / "p00_semantic.png", np.zeros((12, 12), np.uint8))
    refs = find_photos([tmp_path])
    assert len(refs) == 30 and all("_semantic" not in r.name for r in refs)
    assert refs[0].name == f"{tmp_path.name}/p00.png" and refs[0].dataset == tmp_path.name
    held = find_photos([tmp_path], held_out=0.3)
    assert {r.path for r in held} == {r.path for r in refs if is_held_out(r.path, 0.3)}
    some = find_photos([tmp_path], limit=7)
    assert len(some) == 7 and some == find_photos([tmp_path], limit=7)
    assert [r.name for r in some] == sorted(r.name for r in some)
    # --skip: the next photos of the same pseudo-random order, disjoint from the first pick
    others = find_photos([tmp_path], limit=10, skip=7)
    assert len(others) == 10 and not {r.path for r in others} & {r.path for r in some}
    assert {r.path for r in find_photos([tmp_path], limit=17)} == {r.path for r in some + others}
    assert len(find_photos([tmp_path], skip=25)) == 5


def test_mask_conventions(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    labels = np.array([[0, 1, 2, 3, 255]], dtype=np.uint8).repeat(2, axis=0)
    _save(tmp_path / "a_semantic.png", labels)
    assert np.array_equal(load_mask(photo, (2, 5)), labels)
    with pytest.raises(BadImageError, match="mask is 5x2 but the photo is 4x2"):
        load_mask(photo, (2, 4))
    _save(tmp_path / "b_semantic.png", np.full((2, 2), 7, np.uint8))
    with pytest.raises(BadImageError, match="mask value 7"):
        load_mask(tmp_path / "b.jpg", (2, 2))
    _save(tmp_path / "c_ade150.png", np.array([[0, 13, 127, 5]], dtype=np.uint8))
    assert load_mask(tmp_path / "c.jpg", (1, 4)).tolist() == [[255, 1, 3, 0]]
    assert load_mask(tmp_path / "d.jpg", (1, 4)) is None  # no mask: whole-image metrics only


# ---------------------------------------------------------------------------- methods


def test_baselines_expand_in_table_order() -> None:
    experts = ["people", "birds", "animals", "places"]
    assert BASELINES == DEFAULT_BASELINES
    names = parse_methods("oracle,merged,experts,gray", experts)
    assert names == ["gray", *(f"expert:{e}" for e in experts), "merged", "oracle"]
    assert parse_methods("expert:birds,general", experts) == ["general", "expert:birds"]
    with pytest.raises(SegcolorError, match="unknown method 'color'"):
        parse_methods("gray,color", experts)
    with pytest.raises(SegcolorError, match="no such expert"):
        parse_methods("expert:cars", experts)


def test_oracle_with_one_category_is_that_expert_alone(pipeline: Pipeline) -> None:
    methods = Methods(pipeline, ["expert:people", "expert:animals", "expert:places", "oracle"])
    lab = pipeline.lab(color_image(40, 56))
    people = methods.run(lab, np.ones((40, 56), np.uint8))
    assert torch.allclose(people["oracle"], people["expert:people"], atol=1e-5)
    ignored = methods.run(lab, np.full((40, 56), 255, np.uint8))  # ignore -> the fallback's
    assert torch.allclose(ignored["oracle"], ignored["expert:places"], atol=1e-5)
    assert not torch.allclose(people["expert:people"], people["expert:places"], atol=1e-3)


def test_oracle_follows_the_mask_away_from_its_edges(pipeline: Pipeline) -> None:
    methods = Methods(pipeline, ["expert:people", "expert:animals", "oracle"])
    lab = pipeline.lab(color_image(64, 64))
    mask = np.ones((64, 64), np.uint8)
    mask[:, 32:] = 3  # people left, animals right
    out = methods.run(lab, mask)
    oracle, people, animals = out["oracle"][0], out["expert:people"][0], out["expert:animals"][0]
    assert torch.allclose(oracle[:, :, :4], people[:, :, :4], atol=1e-3)
    assert torch.allclose(oracle[:, :, -4:], animals[:, :, -4:], atol=1e-3)


def test_merged_is_the_pipelines_own_output(pipeline: Pipeline) -> None:
    rgb = color_image(40, 56).astype(np.float32) / 255.0
    lab = pipeline.lab(rgb)
    merged = Methods(pipeline, ["merged"]).run(lab, None)["merged"]
    assert np.allclose(Pipeline.to_rgb(lab, merged), pipeline.colorize_float(rgb), atol=1e-6)


def test_every_method_answers_at_the_pipelines_vividness(
    pipeline: Pipeline, pipeline_yaml: Path
) -> None:
    """A pipeline configured more vivid is evaluated as it colors, and its experts alone, the
    oracle and the general model at the same gain: the comparison stays fair."""
    vivid = Pipeline.from_config(pipeline_yaml, device="cpu", vividness=2.0)
    general_path = pipeline_yaml.parent / "general.safetensors"
    general = Pipeline.from_expert(general_path, working_size=32, vividness=2.0)
    names = ["general", "expert:people", "merged", "oracle"]
    lab = pipeline.lab(color_image(40, 56))
    mask = np.ones((40, 56), np.uint8)
    plain = Methods(pipeline, names, Pipeline.from_expert(general_path, working_size=32))
    base, scaled = plain.run(lab, mask), Methods(vivid, names, general).run(lab, mask)
    for name in names:
        assert torch.allclose(scaled[name], 2.0 * base[name], atol=1e-4), name
    with pytest.raises(ValueError, match="vividness"):
        Methods(vivid, ["general"], Pipeline.from_expert(general_path, working_size=32))


def test_every_method_answers_in_the_pipelines_style(vivid_yaml: Path) -> None:
    """--style vivid: the merge, each expert alone (its region: the whole photo) and the oracle
    (each expert's region: its mask's) choose vivid colors; the general model must too."""
    faithful = Pipeline.from_config(vivid_yaml, device="cpu")
    vivid = Pipeline.from_config(vivid_yaml, device="cpu", style="vivid")
    assert faithful.style == "faithful" and vivid.style == "vivid"
    names = ["expert:people", "expert:places", "merged", "oracle"]
    lab = faithful.lab(color_image(40, 56))
    people = np.ones((40, 56), np.uint8)
    plain, chosen = (
        Methods(faithful, names).run(lab, people),
        Methods(vivid, names).run(lab, people),
    )
    for name in names:
        assert not torch.allclose(plain[name], chosen[name], atol=1e-3), name
    # everything routed to one expert: the oracle is that expert alone, in either style
    assert torch.allclose(chosen["oracle"], chosen["expert:people"], atol=1e-4)
    assert torch.allclose(plain["oracle"], plain["expert:people"], atol=1e-4)
    general_path = vivid_yaml.parent / "general.safetensors"
    general = Pipeline.from_expert(general_path, working_size=32, style="vivid")
    both = Methods(vivid, ["general"], general).run(lab, None)["general"]
    assert torch.allclose(both, general.predict_ab(lab))
    with pytest.raises(ValueError, match="style"):
        Methods(vivid, ["general"], Pipeline.from_expert(general_path, working_size=32))


# ---------------------------------------------------------------------------- the command


def _dataset(folder: Path) -> Path:
    """Two color photos with masks, one without, a black-and-white one and a broken file."""
    folder.mkdir()
    for i, (h, w) in enumerate([(40, 56), (48, 36), (30, 44)]):
        _save(folder / f"photo{i}.png", color_image(h, w, seed=i))
        if i < 2:
            mask = np.zeros((h, w), np.uint8)
            mask[: h // 2, : w // 2] = 1
            mask[h // 2 :, w // 2 :] = 3 if i == 0 else 2
            mask[0, 0] = 255
            _save(folder / f"photo{i}_semantic.png", mask)
    _save(folder / "gray.png", np.full((20, 20), 90, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_cli_end_to_end(
    tmp_path: Path, pipeline_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "photos")
    general = pipeline_yaml.parent / "general.safetensors"
    argv = ["evaluate", str(data), "--pipeline", str(pipeline_yaml), "--general", str(general)]
    argv += ["--device", "cpu", "--sheet", "2"]
    assert main([*argv, "-o", str(tmp_path / "out")]) == 1  # a broken file: skipped, flagged
    err = capsys.readouterr().err
    broken = [line for line in err.splitlines() if "broken.jpg" in line]
    assert len(broken) == 1 and broken[0].startswith("segcolor: error: ")
    assert "gray.png: black and white" in err and "evaluated 3 photos" in err

    out = tmp_path / "out"
    rows = _read_csv(out / "results.csv")
    assert list(rows[0]) == ["photo", "method", "region", "metric", "value"]
    methods = {r["method"] for r in rows}
    assert methods == {
        "gray", "general", "expert:people", "expert:birds", "expert:animals", "expert:places",
        "merged", "oracle", "truth",
    }  # fmt: skip
    photos = {r["photo"] for r in rows}
    assert photos == {f"photos/photo{i}.png" for i in range(3)}
    regions = {(r["photo"], r["region"]) for r in rows}
    assert ("photos/photo0.png", "animals") in regions and ("photos/photo1.png", "birds") in regions
    assert ("photos/photo2.png", "people") not in regions  # no mask, whole image only
    assert not any(r["method"] == "oracle" and r["photo"] == "photos/photo2.png" for r in rows)
    gray_cf = [r for r in rows if r["method"] == "gray" and r["metric"] == "colorfulness"]
    assert all(float(r["value"]) < 1.0 for r in gray_cf)

    report = (out / "results.md").read_text(encoding="utf-8")
    assert "## Whole images (3 photos" in report and "### people (2 photos" in report
    assert "| oracle | 2 |" in report and "| ground truth | 3 |" in report
    assert "## Color distribution over the set" in report
    spread = {(r["method"], r["region"]): float(r["ab_js_divergence"])
              for r in _read_csv(out / "distribution.csv")}  # fmt: skip
    assert spread[("gray", "image")] > spread[("merged", "image")] >= 0.0
    assert ("merged", "people") in spread and ("truth", "image") not in spread
    distribution = _read_csv(out / "distribution.csv")
    fwd = {r["method"]: float(r["fwd"]) for r in distribution if r["region"] == "image"}
    assert fwd["gray"] > 0.0 and all(math.isfinite(v) for v in fwd.values())  # oracle: 2 photos
    assert all(math.isnan(float(r["fwd"])) for r in distribution if r["region"] != "image")
    assert "| FWD ↓ |" in report and "Fréchet Wavelet Distance" in report
    per_photo = _read_csv(out / "per_photo.csv")
    assert len(per_photo) == 3 * 7 + 2  # 7 methods on 3 photos, the oracle on the 2 with masks
    assert "people" in next(r["routing"] for r in per_photo if r["method"] == "merged")
    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.ndim == 3 and sheet.shape[1] > 4 * 192  # gray | general | merged | truth

    # deterministic: a second run writes the same numbers
    main([*argv, "--quiet", "-o", str(tmp_path / "again")])
    assert (tmp_path / "again" / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_cli_subset_of_methods_and_missing_general(
    tmp_path: Path, pipeline_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _save(tmp_path / "one.png", color_image(24, 24))
    base = ["evaluate", str(photo), "-o", str(tmp_path / "out"), "--pipeline", str(pipeline_yaml)]
    missing = tmp_path / "nope.safetensors"
    assert main([*base, "--general", str(missing)]) == 2
    assert f"{missing}: general model not found" in capsys.readouterr().err
    assert main([*base, "--skip", "-1"]) == 2
    assert "--skip must be 0 or more, got -1" in capsys.readouterr().err
    assert main([*base, "--baselines", "gray,merged,oracle", "--sheet", "0", "--quiet"]) == 0
    assert "no photo has a category mask" in capsys.readouterr().err
    assert {r["method"] for r in _read_csv(tmp_path / "out" / "results.csv")} == {
        "gray", "merged", "truth",
    }  # fmt: skip
    assert not (tmp_path / "out" / "contact_sheet.png").exists()
    assert main([*base, "--baselines", "gray", "--sheet-photos", "one", "--quiet"]) == 0
    sheet = Image.open(tmp_path / "out" / "contact_sheet.png")
    assert sheet.width < 3 * 192  # gray | ground truth, one row


def test_cli_evaluates_the_style_asked_for(
    tmp_path: Path, vivid_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = three_photos(tmp_path / "ev")
    base = ["evaluate", str(data), "--pipeline", str(vivid_yaml), "--device", "cpu", "--quiet"]
    base += ["--baselines", "gray,merged", "--sheet", "0"]
    assert main([*base, "--style", "loud", "-o", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err == (
        "segcolor: error: --style must be one of faithful, vivid, got 'loud'\n"
    )
    assert not (tmp_path / "bad").exists()
    psnr = {}
    for style in ("faithful", "vivid"):
        out = tmp_path / style
        assert main([*base, "--style", style, "-o", str(out)]) == 0
        report = (out / "results.md").read_text(encoding="utf-8")
        assert f"--style {style}" in report and f"style {style}" in report
        rows = _read_csv(out / "per_photo.csv")
        psnr[style] = [r["psnr_rgb"] for r in rows if r["method"] == "merged"]
        gray = [r["psnr_rgb"] for r in rows if r["method"] == "gray"]
    assert psnr["faithful"] != psnr["vivid"] and len(gray) == 3


def test_bench_style_comparison_matches_vivids_colorfulness(
    tmp_path: Path, vivid_yaml: Path, pipeline_yaml: Path
) -> None:
    """bench/quality.py's styles: the gain found by bisection gives faithful vivid's mean CF,
    its answers are faithful's times the gain, and merged results keep one ground truth; with
    experts without the 313-bin head, vivid is faithful and the gain 1."""
    import sys

    from segcolor.evaluate import evaluate, find_photos
    from segcolor.evaluate.harness import IMAGE, TRUTH

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import quality

    refs = find_photos([three_photos(tmp_path / "ev")])

    def mean_cf(results, method: str) -> float:
        key = (method, IMAGE, "colorfulness")
        values = [r.value for r in results.records if (r.method, r.region, r.metric) == key]
        return float(np.mean(values))

    for yaml, chooses in ((vivid_yaml, True), (pipeline_yaml, False)):
        faithful = Pipeline.from_config(yaml, device="cpu")
        vivid = Pipeline.from_config(yaml, device="cpu", style="vivid")
        styles = quality.Styles(faithful, vivid)
        assert styles.chooses is chooses
        results = evaluate(refs, styles, progress=False)
        target = mean_cf(results, "vivid")
        gain = quality.matched_gain(styles.kept, target)
        if chooses:
            assert gain != 1.0 and mean_cf(results, "faithful") != pytest.approx(target, abs=0.5)
        else:
            assert gain == 1.0 and mean_cf(results, "faithful") == target
        truths = len([r for r in results.records if r.method == TRUTH])
        results.merge(evaluate(refs, quality.Gained(faithful, styles.kept, gain), progress=False))
        assert len([r for r in results.records if r.method == TRUTH]) == truths
        assert results.methods == ["gray", "faithful", "vivid", quality.MATCHED]
        assert mean_cf(results, quality.MATCHED) == pytest.approx(target, abs=0.05)
        assert math.isfinite(results.wavelet_distance(quality.MATCHED))
        with pytest.raises(ValueError, match="method"):
            results.merge(
                evaluate(refs, quality.Gained(faithful, styles.kept, 1.0), progress=False)
            )
    lab, ab = styles.kept[0]
    assert torch.equal(
        quality.Gained(faithful, styles.kept, 1.5).run(lab, None)[quality.MATCHED], ab * 1.5
    )


def test_recorded_command_holds_no_machine_paths(tmp_path, monkeypatch):
    """results.md's command: shared paths as $SEGCOLOR_SHARED_DIR/..., others relative to the
    working directory, so a results folder can be shared and the line retyped anywhere."""
    shared, work = tmp_path / "shared", tmp_path / "work"
    (shared / "data" / "my photos").mkdir(parents=True)
    work.mkdir()
    monkeypatch.setenv("SEGCOLOR_SHARED_DIR", str(shared))
    monkeypatch.chdir(work)
    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    args = parser.parse_args(
        [str(shared / "data" / "my photos"), "-o", str(work / "out" / "q"), "--threads", "1"]
    )
    line = evaluate_command.command_line(args)
    assert line == "segcolor evaluate $SEGCOLOR_SHARED_DIR/'data/my photos' -o out/q --threads 1"
    assert str(tmp_path) not in line
    assert portable_path("/elsewhere/x.yaml") == "/elsewhere/x.yaml"  # not ours to rewrite


def three_photos(folder: Path) -> Path:
    folder.mkdir()
    for i in range(3):
        _save(folder / f"p{i}.png", color_image(24, 32, seed=i))
    return folder


def test_cli_refuses_results_among_the_photos(
    tmp_path: Path, pipeline_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Results inside a DATA folder would be evaluated as photos next time: refused up front."""
    data = three_photos(tmp_path / "ev")
    base = ["evaluate", str(data), "--pipeline", str(pipeline_yaml), "--device", "cpu", "--quiet"]
    for out in (data, data / "results"):
        assert main([*base, "-o", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"segcolor: error: {out}: the results would be written among the photos of {data}; "
            "choose another -o\n"
        )
    assert sorted(p.name for p in data.iterdir()) == ["p0.png", "p1.png", "p2.png"]
    # a photo given as a file, where the contact sheet would go
    (tmp_path / "res").mkdir()
    sheet = _save(tmp_path / "res" / "contact_sheet.png", color_image(24, 32))
    before = sheet.read_bytes()
    argv = ["evaluate", str(sheet), "-o", str(sheet.parent), "--pipeline", str(pipeline_yaml)]
    assert main(argv) == 2
    assert "contact_sheet.png: output would overwrite an input" in capsys.readouterr().err
    assert sheet.read_bytes() == before
    # a results folder that cannot be made fails before the photos are colorized, in one line
    (tmp_path / "a_file").write_text("not a folder")
    assert main([*base, "-o", str(tmp_path / "a_file" / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot make the results folder" in err


def test_cli_names_what_left_no_photos_for_the_sheet_or_at_all(
    tmp_path: Path, pipeline_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = three_photos(tmp_path / "ev")
    base = ["evaluate", str(data), "-o", str(tmp_path / "out"), "--pipeline", str(pipeline_yaml)]
    base += ["--device", "cpu", "--quiet", "--baselines", "gray"]
    assert main([*base, "--sheet-photos", "p1, nope.jpg"]) == 2
    assert capsys.readouterr().err == (
        "segcolor: error: nope.jpg: --sheet-photos names a photo that is not among the 3 "
        "evaluated\n"
    )
    assert main([*base, "--skip", "10"]) == 2
    assert capsys.readouterr().err == (
        f"segcolor: error: --skip 10 left no photos (applied to each DATA: {data} has 3)\n"
    )
    assert main([*base, "--skip", "3", "--limit", "2"]) == 2
    assert "--skip 3 --limit 2 left no photos" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*base[:1], str(empty), *base[2:], "--skip", "1"]) == 2
    assert capsys.readouterr().err == f"segcolor: error: no photos found in {empty}\n"
