"""`segcolor train` user mistakes: one line, exit status 2, and nothing trained or written."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from segcolor.cli import main as cli
from segcolor.train.run import load_checkpoint

from .conftest import color_image

TINY = {
    "name": "tiny",
    "data": {"val_fraction": 0.25, "size": 32},
    "model": {"arch": "resnet18_unet", "depth": 2, "decoder_channels": [16, 8]},
    "loss": {"kind": "l2"},
    "train": {"epochs": 1, "batch_size": 4, "workers": 0},
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for i in range(8):
        Image.fromarray(color_image(40, 52, seed=i)).save(root / f"{i}.png")
    return root


def write_config(path: Path, photos: Path, **top: object) -> Path:
    path.write_text(yaml.safe_dump({**TINY, "data": {**TINY["data"], "root": str(photos)}, **top}))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, photos) -> Path:
    """A finished one-epoch run (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("finished")
    assert train(write_config(folder / "c.yaml", photos), "--out", folder / "run") == 0
    return folder / "run"


def train(*args: object) -> int:
    return cli(["train", *map(str, args)])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("segcolor: error: "), err
    return err


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nokey.x=1", "--set nokey.x: unknown key nokey (allowed:"),
        ("train.epochz=3", "--set train.epochz: unknown key train.epochz (allowed:"),
        ("data=5", "--set data: 'data' must be a mapping, not int"),
        ("optim.lr=[", "--set 'optim.lr=[': not valid YAML"),
        ("train.epochs=many", "train.epochs must be an integer, not 'many'"),
    ],
)
def test_set_overrides_are_checked_like_the_yaml(tmp_path, photos, capsys, item, message):
    config = write_config(tmp_path / "c.yaml", photos)
    assert train(config, "--out", tmp_path / "run", "--set", item) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_an_unreadable_checkpoint_is_one_line(tmp_path, photos, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_text("junk\n")
    config = write_config(tmp_path / "c.yaml", photos)
    assert train(config, "--out", tmp_path / "run", "--resume") == 2
    assert "checkpoint.pt: not a readable training checkpoint" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("model.arch=resnet18_unet_deep", "model.arch 'resnet18_unet', not 'resnet18_unet_deep'"),
        ("model.depth=3", "model.depth 2, not 3"),
    ],
)
def test_resume_with_another_model_is_refused(tmp_path, photos, finished, capsys, item, message):
    out = shutil.copytree(finished, tmp_path / "run")
    config = write_config(tmp_path / "c.yaml", photos)
    assert train(config, "--out", out, "--resume", "--epochs", 2, "--set", item) == 2
    err = one_line_error(capsys)
    assert message in err and "cannot be resumed with another model" in err
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1


def test_resume_of_a_finished_run_says_so(tmp_path, photos, finished, caplog):
    caplog.set_level(logging.INFO)
    out = shutil.copytree(finished, tmp_path / "run")
    assert train(write_config(tmp_path / "c.yaml", photos), "--out", out, "--resume") == 0
    assert "the run is already complete (1/1 epochs)" in caplog.text
    assert "training tiny" not in caplog.text  # nothing started
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1


def test_every_config_is_checked_before_the_first_trains(
    tmp_path, photos, finished, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    a = write_config(tmp_path / "a.yaml", photos)  # out: runs/tiny
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [1, 2\n")
    same = write_config(tmp_path / "same.yaml", photos)
    done = write_config(tmp_path / "done.yaml", photos, out=str(finished))
    for configs, message in [
        ((a, bad), "bad.yaml: malformed YAML at line"),
        ((a, a), "a.yaml: given twice"),
        ((a, same), f"same.yaml: writes to {Path('runs/tiny')}, as {a} does"),
        ((a, done), "already holds a training run"),
    ]:
        assert train(*configs) == 2
        assert message in one_line_error(capsys)
        assert not (tmp_path / "runs").exists()  # a.yaml did not train
