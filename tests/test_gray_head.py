"""The gray head: a learned correction that lets a color-trained segmenter see gray photos.

A fake segmenter finds people only by their color (red), so on gray photos it finds nobody;
the photos are built so that red things are also bright, which a gray head can learn from the
gray features alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from segcolor.cli import main as cli
from segcolor.errors import CheckpointError, ConfigError
from segcolor.pipeline import Pipeline
from segcolor.pipeline_config import load_pipeline_config
from segcolor.router.segmenters import Segmenter, create_segmenter, register_segmenter
from segcolor.router.segmenters.deeplab_mnv2 import DeepLabV3MobileNetV2
from segcolor.router.segmenters.gray_head import GrayHead, load_gray_head
from segcolor.train import engine
from segcolor.train import gray_head as trainer
from segcolor.train.cache import routing_signature
from segcolor.train.run import CHECKPOINT, TrainingInterrupted

from .test_pipeline import VOC, make_experts, write_yaml

PERSON = VOC.index("person")


class RedPeopleSegmenter(Segmenter):
    """Features per cell of a 4x4 grid: (mean R - G, mean lightness, 1); its classifier calls
    a cell a person where it is red, which gray photos never are."""

    feature_channels = 3

    def __init__(self) -> None:
        super().__init__(VOC)
        self.classifier = nn.Conv2d(3, len(VOC), 1)
        with torch.no_grad():
            self.classifier.weight.zero_()
            self.classifier.bias.zero_()
            self.classifier.weight[PERSON, 0] = 30.0
            self.classifier.bias[PERSON] = -6.0

    def grid_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = F.adaptive_avg_pool2d(x, (4, 4))
        red = pooled[:, 0] - pooled[:, 1]
        features = torch.stack([red, pooled.mean(1), torch.ones_like(red)], 1)
        return self.class_logits(features), features

    def class_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, features = self.grid_outputs(x)
        if self.gray_head is not None:
            logits = logits + self.gray_head(features)
        return F.interpolate(logits, size=x.shape[-2:], mode="nearest"), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


register_segmenter("test_red_people")(lambda weights=None: RedPeopleSegmenter())


def red_person_photo(seed: int, size: int = 32) -> np.ndarray:
    """A dark gray scene with a bright red 'person' filling a quarter of it."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 40, dtype=np.uint8) + rng.integers(0, 10, (size, size, 1))
    half = size // 2
    y, x = rng.integers(0, 2, 2) * half
    image[y : y + half, x : x + half] = (250, 70, 60)
    return image.astype(np.uint8)


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        Image.fromarray(red_person_photo(i)).save(photos / f"p{i:02d}.png")
    experts = make_experts(tmp_path / "experts_src")
    pipeline = write_yaml(
        tmp_path / "pipe",
        experts,
        segmenter="test_red_people",
        categories={"people": ["person"], "places": ["background"]},
    )
    config = tmp_path / "gray_head.yaml"
    config.write_text(
        f"task: gray_head\npipeline: {pipeline}\nout: {tmp_path / 'run'}\n"
        f"data: {{root: {photos}, val_fraction: 0.0, per_folder: 40, check_every: 5,"
        f" cache_dir: {tmp_path / 'cache'}}}\n"
        "model: {hidden: 8}\noptim: {lr: 0.05}\ntrain: {epochs: 20, batch_size: 8}\n"
    )
    return {"config": config, "pipeline": pipeline, "run": tmp_path / "run", "tmp": tmp_path}


def test_untrained_head_changes_nothing_and_features_never_change():
    torch.manual_seed(0)
    seg = DeepLabV3MobileNetV2(width_mult=0.5, working_size=33).eval()
    x = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        plain, features = seg.forward_features(x)
        seg.attach_gray_head(GrayHead(seg.feature_channels, seg.classes, hidden=4))
        same, same_features = seg.forward_features(x)
        nn.init.normal_(seg.gray_head.body[-1].weight)
        moved, moved_features = seg.forward_features(x)
        base, grid_features = seg.grid_outputs(x)
    assert torch.equal(plain, same) and not torch.allclose(plain, moved)
    assert torch.equal(features, moved_features) and torch.equal(features, grid_features)
    assert base.shape[-2:] == features.shape[-2:] == (3, 3)  # 33 px at output stride 16


def test_head_file_round_trip_and_one_line_errors(tmp_path: Path):
    head = GrayHead(3, VOC, hidden=5)
    nn.init.normal_(head.body[-1].weight)
    path = tmp_path / "head.safetensors"
    save_file(head.state_dict(), str(path), head.metadata("test_red_people"))
    loaded = load_gray_head(path, "test_red_people", VOC)
    features = torch.randn(1, 3, 4, 4)
    assert torch.equal(loaded(features), head.eval()(features))
    with pytest.raises(CheckpointError, match="learned for segmenter 'test_red_people'"):
        load_gray_head(path, "deeplabv3_mnv2_voc", VOC)
    with pytest.raises(CheckpointError, match="not found"):
        load_gray_head(tmp_path / "missing.safetensors", "test_red_people", VOC)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint") as err:
        load_gray_head(tmp_path / "junk.safetensors", "test_red_people", VOC)
    assert "\n" not in str(err.value)
    save_file(head.state_dict(), str(tmp_path / "other.safetensors"), {"format": "x"})
    with pytest.raises(CheckpointError, match="not a segcolor gray head"):
        load_gray_head(tmp_path / "other.safetensors", "test_red_people", VOC)


def test_training_teaches_the_segmenter_to_find_people_in_gray(setup):
    assert cli(["train", str(setup["config"])]) == 0
    card = __import__("json").loads((setup["run"] / "gray_head.card.json").read_text())
    before, after = card["before"], card["after"]
    assert card["photos"] == {"learn": 32, "check": 8}
    assert before["iou_people"] == 0.0  # in gray, the color-trained classifier finds nobody
    assert after["iou_people"] > 0.9 and after["cross_entropy"] < before["cross_entropy"] - 1

    # a pipeline with the head finds the person in a gray photo; without it, nobody
    head = setup["run"] / "gray_head.safetensors"
    text = setup["pipeline"].read_text()
    with_head = setup["pipeline"].with_name("with_head.yaml")
    with_head.write_text(
        text.replace("{name: test_red_people}", f"{{name: test_red_people, head: {head}}}")
    )
    photo = red_person_photo(123)
    gray = np.repeat(np.asarray(Image.fromarray(photo).convert("L"))[..., None], 3, axis=-1)
    routed = Pipeline.from_config(with_head, device="cpu").route(gray)
    plain = Pipeline.from_config(setup["pipeline"], device="cpu").route(gray)
    assert [r.category for r in routed.regions].count("people") == 1
    assert "people" not in [r.category for r in plain.regions]
    # the training cache of the experts is keyed by the head: new labels, new cache
    assert routing_signature(load_pipeline_config(with_head)) != routing_signature(
        load_pipeline_config(setup["pipeline"])
    )


def test_resumed_training_equals_an_uninterrupted_one(setup, monkeypatch):
    full = engine.main(setup["config"], {"out": str(setup["tmp"] / "full")})
    start_epoch = trainer.GrayHeadTask.start_epoch

    def ctrl_c_in_epoch_10(task, epoch):
        if epoch == 9:
            raise KeyboardInterrupt
        return start_epoch(task, epoch)

    monkeypatch.setattr(trainer.GrayHeadTask, "start_epoch", ctrl_c_in_epoch_10)
    with pytest.raises(
        TrainingInterrupted, match="interrupted in epoch 10; the checkpoint of epoch 9"
    ):
        engine.main(setup["config"], {"out": str(setup["tmp"] / "part")})
    monkeypatch.setattr(trainer.GrayHeadTask, "start_epoch", start_epoch)
    resumed = engine.main(setup["config"], {"out": str(setup["tmp"] / "part")}, resume=True)
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in full]
    a = load_gray_head(setup["tmp"] / "full" / trainer.HEAD_FILE, "test_red_people", VOC)
    b = load_gray_head(setup["tmp"] / "part" / trainer.HEAD_FILE, "test_red_people", VOC)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    with pytest.raises(Exception, match="already holds a training run"):
        engine.main(setup["config"], {"out": str(setup["tmp"] / "full")})
    # a damaged checkpoint is a one-line error on resume, not an unpickler's traceback
    for junk, fragment in ((b"junk", "not a readable training checkpoint"), (None, "gray-head")):
        checkpoint = setup["tmp"] / "part" / CHECKPOINT
        if junk is None:
            torch.save({"epoch": 1}, checkpoint)
        else:
            checkpoint.write_bytes(junk)
        with pytest.raises(CheckpointError, match=fragment) as err:
            engine.main(setup["config"], {"out": str(setup["tmp"] / "part")}, resume=True)
        assert "\n" not in str(err.value)


def test_config_errors_are_one_line(setup, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: gray_head\ndata: {per_folder: 3}\n")
    with pytest.raises(ConfigError, match="data.root"):
        trainer.load_config(bad)
    bad.write_text("task: gray_head\ndata: {root: x, per_photo: 3}\n")
    with pytest.raises(ConfigError, match="per_photo"):
        trainer.load_config(bad)
    with pytest.raises(ConfigError, match="size"):  # an expert's flag, not a gray head's
        trainer.load_config(setup["config"], {"data.size": 64})
    with pytest.raises(ConfigError, match="segmenter.head"):
        text = (
            setup["pipeline"]
            .read_text()
            .replace(
                "{name: test_red_people}", "{name: test_red_people, head: nowhere.safetensors}"
            )
        )
        setup["pipeline"].write_text(text)
        load_pipeline_config(setup["pipeline"])


def test_a_head_for_another_segmenter_is_refused(tmp_path: Path):
    head = GrayHead(7, VOC, hidden=2)
    path = tmp_path / "h.safetensors"
    save_file(head.state_dict(), str(path), head.metadata("test_red_people"))
    with pytest.raises(ConfigError, match="reads 7 feature channels"):
        create_segmenter("test_red_people", gray_head=path)
