"""The style (faithful | vivid) through the user-facing commands and the Python API.

Tiny random experts of the hints arch (``resnet18_unet_hints``: a 313-bin head, so the vivid
style has something to choose from) and a fake segmenter (bright pixels are a person) give
known answers: vivid differs from faithful, faithful is the default, and old experts without
the head answer the same in both styles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segcolor.batch.manifest import MANIFEST_NAME, read_rows
from segcolor.cli import main
from segcolor.errors import ConfigError
from segcolor.experts import create_expert, save_expert
from segcolor.pipeline import Pipeline
from segcolor.router.edits import RoutingEdits
from segcolor.router.segmenters import Segmenter, register_segmenter
from segcolor.video.runner import work_dir_for

from .conftest import color_image

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = ["background", "person", "dog"]


class BrightIsPerson(Segmenter):
    """Bright pixels are a person, the rest background: two regions, two experts."""

    def __init__(self) -> None:
        super().__init__(CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = x.mean(1, keepdim=True)
        person = (gray - 0.5) * 12.0
        return torch.cat([torch.zeros_like(gray), person, torch.full_like(gray, -9.0)], 1)


register_segmenter("test_style_bright")(lambda weights=None: BrightIsPerson())


def hint_expert(seed: int, feature_channels: int = 256) -> torch.nn.Module:
    """A random expert of the hints arch whose 313-bin head is sure of itself (sharper logits
    than the random init's), so the vivid choice moves the colors well past rounding."""
    torch.manual_seed(seed)
    expert = create_expert(
        "resnet18_unet_hints", decoder_channels=[32, 16, 8], feature_channels=feature_channels
    )
    with torch.no_grad():
        expert.bins.body[-1].weight.mul_(10.0)
    return expert


def write_pipeline(folder: Path, arch: str = "resnet18_unet_hints", extra: str = "") -> Path:
    """A pipeline YAML in ``folder`` routing to two tiny random experts of ``arch``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("people", "places")):
        if arch == "resnet18_unet_hints":
            expert = hint_expert(10 + i)
        else:
            torch.manual_seed(10 + i)
            expert = create_expert(arch, decoder_channels=[32, 16, 8])
        save_expert(expert, folder / f"{name}.safetensors", {"name": name, "category": name})
    path = folder / "pipeline.yaml"
    path.write_text(
        "segmenter: {name: test_style_bright}\nworking_size: 32\nfallback: places\n"
        "categories:\n"
        "  people: {classes: [person], expert: people.safetensors}\n"
        "  places: {classes: [background], expert: places.safetensors}\n" + extra
    )
    return path


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pipeline(tmp_path_factory.mktemp("hints"))


@pytest.fixture(scope="module")
def single_expert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hints-arch expert without semantic features: ``--expert`` needs no segmenter, so
    batch worker processes can load it too."""
    path = tmp_path_factory.mktemp("single") / "hints.safetensors"
    return save_expert(hint_expert(3, feature_channels=0), path, {"name": "hints"})


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "gray.png"
    Image.fromarray(color_image(36, 48)).convert("L").save(path)
    return path


def colorize(photo: Path, out: Path, *flags: object) -> bytes:
    assert main(["colorize", str(photo), "-o", str(out), *map(str, flags)]) == 0
    return np.asarray(Image.open(out).convert("RGB")).tobytes()


def gray_rgb(height: int = 36, width: int = 48) -> np.ndarray:
    return np.asarray(Image.fromarray(color_image(height, width)).convert("L").convert("RGB"))


# ---------------------------------------------------------------- CLI and API


def test_cli_vivid_differs_and_faithful_is_the_default(
    tmp_path: Path, pipeline_yaml: Path, single_expert: Path, photo: Path
) -> None:
    flags = ("--pipeline", pipeline_yaml)
    default = colorize(photo, tmp_path / "default.png", *flags)
    faithful = colorize(photo, tmp_path / "faithful.png", *flags, "--style", "faithful")
    vivid = colorize(photo, tmp_path / "vivid.png", *flags, "--style", "vivid")
    assert faithful == default
    assert vivid != faithful
    # the same through one expert (--expert), and the Python API gives the CLI's pixels
    single = ("--expert", single_expert)
    one = colorize(photo, tmp_path / "one.png", *single)
    one_vivid = colorize(photo, tmp_path / "one_vivid.png", *single, "--style", "vivid")
    assert one != one_vivid
    api = Pipeline.load(pipeline_yaml, device="cpu", style="vivid")
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    assert api.colorize(rgb).tobytes() == vivid


def test_api_style_and_the_yaml_default(tmp_path: Path, pipeline_yaml: Path) -> None:
    faithful = Pipeline.load(pipeline_yaml, device="cpu")
    vivid = Pipeline.load(pipeline_yaml, device="cpu", style="vivid")
    assert (faithful.style, vivid.style) == ("faithful", "vivid")
    assert Pipeline.from_config(pipeline_yaml, device="cpu", style="vivid").style == "vivid"
    image = gray_rgb()
    plain, chosen = faithful.colorize(image), vivid.colorize(image)
    assert not np.array_equal(plain, chosen)
    # a photo's edits choose its own style, whatever the pipeline's
    back = vivid.colorize(image, RoutingEdits.from_dict({"style": "faithful"}))
    assert np.array_equal(back, plain)

    # `style: vivid` in the YAML is picked up; --style / style= override it
    yaml = write_pipeline(tmp_path / "vivid", extra="style: vivid\n")
    assert Pipeline.load(yaml, device="cpu").style == "vivid"
    assert Pipeline.load(yaml, device="cpu", style="faithful").style == "faithful"
    out = tmp_path / "out"
    assert colorize_many(yaml, out, "default") == colorize_many(pipeline_yaml, out, "vivid")
    assert colorize_many(yaml, out, "faithful") == colorize_many(pipeline_yaml, out, "faithful")


def colorize_many(yaml: Path, out: Path, style: str) -> bytes:
    """The CLI's answer for ``gray_rgb()`` with ``--style style`` (``default``: no flag)."""
    out.mkdir(exist_ok=True)
    source = out / "in.png"
    Image.fromarray(gray_rgb()).save(source)
    flags = () if style == "default" else ("--style", style)
    return colorize(source, out / f"{yaml.parent.name}_{style}.png", "--pipeline", yaml, *flags)


def test_experts_without_the_bins_head_answer_the_same_in_both_styles(tmp_path: Path) -> None:
    yaml = write_pipeline(tmp_path, arch="resnet18_unet_semantic")
    image = gray_rgb()
    faithful = Pipeline.load(yaml, device="cpu").colorize(image)
    vivid = Pipeline.load(yaml, device="cpu", style="vivid").colorize(image)
    assert np.array_equal(faithful, vivid)


def test_the_shipped_pipeline_accepts_the_vivid_style() -> None:
    """Until experts with the 313-bin head ship, vivid is exactly the faithful answer."""
    pipeline = Pipeline.default(device="cpu", style="vivid")
    assert pipeline.style == "vivid" and Pipeline.default(device="cpu").style == "faithful"
    image = gray_rgb(40, 40)
    vivid = pipeline.colorize(image)
    faithful = pipeline.colorize(image, RoutingEdits.from_dict({"style": "faithful"}))
    experts = [m for models in pipeline.experts.values() for m in models]
    if pipeline.expert is not None:
        experts.append(pipeline.expert)
    if not any(m.has_bins for m in experts):
        assert np.array_equal(vivid, faithful)


def test_unknown_style_is_refused_by_the_yaml_and_the_api(
    tmp_path: Path, pipeline_yaml: Path, single_expert: Path
) -> None:
    yaml = write_pipeline(tmp_path, extra="style: loud\n")
    with pytest.raises(ConfigError, match="style must be one of faithful, vivid, got 'loud'"):
        Pipeline.load(yaml, device="cpu")
    with pytest.raises(ConfigError, match="style must be one of faithful, vivid, got 'bad'"):
        Pipeline.load(pipeline_yaml, device="cpu", style="bad")
    with pytest.raises(ConfigError, match="style must be one of"):
        Pipeline.load(expert=single_expert, device="cpu", style="bad")


def test_routing_edits_choose_the_vivid_style(
    tmp_path: Path, pipeline_yaml: Path, photo: Path
) -> None:
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"version": 1, "style": "vivid"}))
    flags = ("--pipeline", pipeline_yaml)
    vivid = colorize(photo, tmp_path / "vivid.png", *flags, "--style", "vivid")
    assert colorize(photo, tmp_path / "edited.png", *flags, "--routing", edits) == vivid
    # the edits' style wins over the pipeline's
    back = tmp_path / "back.json"
    back.write_text(json.dumps({"version": 1, "style": "faithful"}))
    faithful = colorize(photo, tmp_path / "faithful.png", *flags)
    assert colorize(photo, tmp_path / "b.png", *flags, "--style", "vivid", "--routing", back) == (
        faithful
    )


def test_inspect_colors_in_the_chosen_style(
    tmp_path: Path, pipeline_yaml: Path, photo: Path
) -> None:
    reports = {}
    for style in ("faithful", "vivid"):
        out = tmp_path / style
        args = ["inspect", str(photo), "-o", str(out), "--pipeline", str(pipeline_yaml)]
        assert main([*args, "--style", style]) == 0
        reports[style] = (out / "colorized.png").read_bytes()
    assert reports["faithful"] != reports["vivid"]


# ---------------------------------------------------------------- batches and video


def test_batch_workers_color_in_the_style_and_the_manifest_records_it(
    tmp_path: Path, single_expert: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        Image.fromarray(color_image(20, 24 + 4 * i, seed=i)).convert("L").save(source / f"{i}.png")

    def batch(out: str, *flags: object) -> int:
        args = ["colorize", str(source), "-o", str(tmp_path / out), "--expert", str(single_expert)]
        return main([*args, *map(str, flags)])

    def pixels(out: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((tmp_path / out).glob("*.png"))}

    assert batch("vivid", "--style", "vivid", "--jobs", 2) == 0
    assert batch("faithful") == 0
    vivid, faithful = pixels("vivid"), pixels("faithful")
    assert len(vivid) == 3 and all(vivid[name] != faithful[name] for name in vivid)
    rows = read_rows(tmp_path / "vivid" / MANIFEST_NAME)
    (start,) = [r for r in rows if r.get("event") == "start"]
    assert start["settings"]["style"] == "vivid"

    # a resumed batch never mixes styles: another style is refused, the same one skips all
    capsys.readouterr()
    assert batch("vivid", "--style", "faithful") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings (style vivid -> faithful)" in err
    assert batch("vivid", "--style", "vivid") == 0
    assert "3 of 3 images already done" in capsys.readouterr().err
    assert pixels("vivid") == vivid


def test_video_colors_in_the_style_and_its_work_folder_records_it(
    tmp_path: Path, pipeline_yaml: Path, capsys: pytest.CaptureFixture
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        image = Image.fromarray(np.roll(color_image(32, 40), 2 * i, axis=1)).convert("L")
        image.save(frames / f"f{i:03d}.png")
    common = ["--pipeline", str(pipeline_yaml), "--chunk-frames", "2", "--keep-work"]

    def video(out: str, *flags: str) -> int:
        return main(["video", str(frames), "-o", str(tmp_path / out), *common, *flags])

    assert video("vivid", "--style", "vivid") == 0
    assert video("faithful") == 0
    manifest = json.loads((work_dir_for(tmp_path / "vivid") / "run.json").read_text())
    assert manifest["style"] == "vivid"
    faithful = json.loads((work_dir_for(tmp_path / "faithful") / "run.json").read_text())
    assert faithful["style"] == "faithful" and faithful["fingerprint"] != manifest["fingerprint"]
    for name in (f"f{i:03d}.png" for i in range(4)):
        assert (tmp_path / "vivid" / name).read_bytes() != (
            tmp_path / "faithful" / name
        ).read_bytes()

    # resuming in another style would join faithful chunks to vivid ones: refused
    capsys.readouterr()
    assert video("vivid", "--style", "faithful") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds chunks of a different run" in err
    assert video("vivid", "--style", "vivid") == 0


@pytest.mark.slow
def test_ray_actors_color_in_the_style(tmp_path: Path, single_expert: Path) -> None:
    pytest.importorskip(
        "ray.data", reason="the 'ray' extra is not installed (pip install -e .[ray])"
    )
    source = tmp_path / "in"
    source.mkdir()
    for i in range(2):
        Image.fromarray(color_image(20, 24, seed=i)).convert("L").save(source / f"{i}.png")

    def batch(out: str, *flags: str) -> dict[str, bytes]:
        args = ["colorize", str(source), "-o", str(tmp_path / out), "--expert", str(single_expert)]
        assert main([*args, *flags]) == 0
        return {p.name: p.read_bytes() for p in sorted((tmp_path / out).glob("*.png"))}

    ray = batch("ray", "--style", "vivid", "--engine", "ray")
    assert len(ray) == 2 and ray == batch("local", "--style", "vivid")
    assert ray["0.png"] != batch("plain")["0.png"]
