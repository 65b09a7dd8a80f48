"""`segcolor train`: config handling, data, a real (tiny) training run, exact resume, DDP."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from segcolor.cli import main as cli
from segcolor.config import deep_merge
from segcolor.errors import ConfigError
from segcolor.experts import load_expert
from segcolor.train import expert as expert_task
from segcolor.train.config import load_config
from segcolor.train.data import ImageFolderRGB, boost_saturation, split_folder
from segcolor.train.run import load_checkpoint

from .conftest import REPO, color_image

TINY = {
    "name": "tiny",
    "category": "birds",
    "data": {"val_fraction": 0.25, "size": 32, "max_images": 32},
    "model": {"arch": "resnet18_unet", "depth": 2, "decoder_channels": [16, 8]},
    "loss": {"kind": "rebalanced", "hist_images": 16},
    "optim": {"lr": 3.0e-3},
    "train": {"epochs": 2, "batch_size": 8, "workers": 0, "seed": 0},
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos(training_photos: Path) -> Path:
    return training_photos


def write_config(folder: Path, data_root: Path, **changes) -> Path:
    cfg = deep_merge(TINY, changes)
    cfg["data"]["root"] = str(data_root)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train(*args: object) -> int:
    return cli(["train", *map(str, args)])


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- config


def test_yaml_overrides_defaults_and_flags_override_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {root: photos, size: 96}\noptim: {lr: 1e-3}\ntrain: {epochs: 5}\n")
    cfg = load_config(path, {"train.epochs": 2, "train.batch_size": 4})
    assert cfg["data"]["size"] == 96 and cfg["data"]["val_fraction"] == 0.1  # YAML, default
    assert cfg["train"]["epochs"] == 2 and cfg["train"]["batch_size"] == 4  # flags win
    assert cfg["optim"]["lr"] == 1e-3  # YAML 1.1 reads 1e-3 as a string; coerced
    assert cfg["name"] == "c" and cfg["category"] == "c" and cfg["out"] == str(Path("runs/c"))


def test_shipped_recipes_share_one_budget():
    """The four experts and the general model differ only in their data (a fair comparison)."""
    general = load_config(REPO / "configs" / "experts" / "general.yaml")
    assert general["data"]["root"] == "data/train"
    for category in ("people", "birds", "animals", "places"):
        cfg = load_config(REPO / "configs" / "experts" / f"{category}.yaml")
        assert cfg["category"] == category and cfg["out"] == str(Path("runs") / category)
        assert cfg["data"]["root"] == f"data/train/{category}"
        for section in ("model", "loss", "optim", "train"):
            assert cfg[section] == general[section], section
        assert cfg["data"]["size"] == general["data"]["size"] >= 64
        assert cfg["data"]["val_fraction"] == general["data"]["val_fraction"] > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: [1, 2\n", "malformed YAML at line"),
        ("epochs: 3\n", "unknown key epochs (allowed: category, data,"),
        ("data:\n  root: x\n  sise: 64\n", "unknown key data.sise (allowed: hints, max_images,"),
        ("data: {root: x}\ntrain: banana\n", "'train' must be a mapping"),
        ("data: {root: x}\ntrain: {epochs: many}\n", "train.epochs must be an integer"),
        ("data: {root: x}\ndata_: 1\n", "; did you mean data?"),
        ("data: {root: x, val_fraction: 1.5}\n", "data.val_fraction must be >= 0.0 and <= 0.9"),
        ("data: {root: x}\noptim: {scheduler: linear}\n", "optim.scheduler must be one of"),
        ("data: {root: x}\nloss: {kind: classification}\n", "model.head 'classification'"),
        ("train: {epochs: 1}\n", "data.root is not set"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="^" + str(path).replace("\\", "\\\\")):
        load_config(path)
    assert train(path, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_missing_and_empty_data_folders_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    for root, message in [
        (tmp_path / "nowhere", "data folder not found"),
        ("no/such/folder", "data folder no/such/folder not found"),
        (tmp_path / "empty", "no images in the data folder"),
    ]:
        config = write_config(tmp_path, root)
        assert train(config, "--out", tmp_path / "out") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()  # nothing written for a run that cannot start


# ----------------------------------------------------------------------------- data


def test_split_is_stable_when_photos_are_added(tmp_path):
    for i in range(200):
        (tmp_path / f"{i:03d}.jpg").touch()  # the split never opens the files
    before = split_folder(tmp_path, 0.2)
    assert 20 <= len(before.val) <= 60 and len(before.train) + len(before.val) == 200
    for i in range(200, 260):
        (tmp_path / f"{i:03d}.png").touch()
    after = split_folder(tmp_path, 0.2)
    assert set(before.val) <= set(after.val) and set(before.train) <= set(after.train)
    capped = split_folder(tmp_path, 0.2, max_images=50)
    assert len(capped.train) + len(capped.val) == 50
    assert split_folder(tmp_path, 0.2, max_images=50) == capped


def test_augmentation_is_a_function_of_seed_epoch_and_index(photos):
    files = split_folder(photos, 0.25, max_images=4).train
    data = ImageFolderRGB(files, 32, train=True, seed=0)
    sample = data[(0, 1)]
    assert sample.shape == (3, 32, 32) and sample.dtype == torch.float32
    assert sample.min() >= 0.0 and sample.max() <= 1.0
    assert torch.equal(sample, data[(0, 1)])
    assert not torch.equal(sample, data[(1, 1)])
    assert not torch.equal(sample, ImageFolderRGB(files, 32, train=True, seed=1)[(0, 1)])
    val = ImageFolderRGB(files, 32, train=False)
    assert torch.equal(val[0], val[0])


def test_saturation_boost_scales_chroma_keeps_hue_and_range():
    ab = torch.tensor([[10.0, -20.0], [100.0, 50.0]]).T.reshape(1, 2, 1, 2)
    boosted = boost_saturation(ab, 0.2)
    assert torch.allclose(boosted[..., 0], ab[..., 0] * 1.2)
    assert boosted.abs().max() <= 110 and boosted[0, 0, 0, 1] == 110  # capped ...
    assert torch.allclose(boosted[0, 1, 0, 1] / boosted[0, 0, 0, 1], torch.tensor(0.5))  # hue
    assert torch.equal(boost_saturation(ab, 0.0), ab)


def test_unreadable_images_are_skipped_with_a_warning(tmp_path, caplog):
    Image.fromarray(color_image(20, 24, seed=1)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(color_image(20, 24, seed=2)).save(tmp_path / "c.png")
    a, b, c = sorted(tmp_path.glob("*.png"))
    data = ImageFolderRGB([a, b, c], 16, train=True)
    with caplog.at_level(logging.WARNING):
        sample = data[(0, 1)]
        data[(1, 1)]
    # b is replaced by the next readable image, augmented as sample 1 would have been
    assert torch.equal(sample, ImageFolderRGB([a, c, c], 16, train=True)[(0, 1)])
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 1 and "b.png" in warnings[0]


# ----------------------------------------------------------------------------- training


def test_training_lowers_the_loss_and_exports_an_expert(tmp_path, photos):
    config = write_config(tmp_path, photos, train={"epochs": 6})
    out = tmp_path / "run"
    assert train(config, "--out", out) == 0
    history = metrics(out)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"], history
    assert all(math.isfinite(r["val_loss"]) and 5 < r["val_psnr"] < 60 for r in history)
    expert = load_expert(out / "expert.safetensors")
    card = expert.card
    assert card["name"] == "tiny" and card["category"] == "birds" and card["profile"] is None
    assert card["data"]["train_images"] + card["data"]["val_images"] == 32
    assert card["training"]["train"]["epochs"] == 6 and len(card["metrics"]) == 6
    assert (out / "best.safetensors").is_file() and (out / "config.yaml").is_file()
    checkpoint = load_checkpoint(out / "checkpoint.pt")  # torch.load(weights_only=True)
    assert checkpoint["epoch"] == 6 and checkpoint["ab_prior"].shape == (313,)
    assert checkpoint["best"]["epoch"] == min(history, key=lambda r: r["val_loss"])["epoch"]


def test_resume_gives_exactly_the_weights_of_an_uninterrupted_run(
    tmp_path, photos, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.INFO)
    config = write_config(tmp_path, photos)
    straight, extended, killed = tmp_path / "straight", tmp_path / "extended", tmp_path / "killed"
    assert train(config, "--out", straight) == 0
    reference = load_file(straight / "expert.safetensors")

    # refuses to overwrite a finished run
    capsys.readouterr()
    assert train(config, "--out", straight) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err

    # 1 epoch, then --resume with --epochs 2 (--resume without a checkpoint starts afresh)
    assert train(config, "--out", extended, "--epochs", 1, "--resume") == 0
    assert "no checkpoint" in caplog.text
    assert train(config, "--out", extended, "--resume", "--epochs", 2) == 0

    # killed in the middle of epoch 2 (with DataLoader workers this time), then resumed
    steps = load_checkpoint(straight / "checkpoint.pt")["data"]["train_images"] // 8
    real_step, calls = expert_task.train_step, []

    def step_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == steps + 2:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(expert_task, "train_step", step_then_stop)
    capsys.readouterr()
    assert train(config, "--out", killed, "--workers", 2) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted in epoch 2" in err and "--resume" in err
    assert load_checkpoint(killed / "checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(expert_task, "train_step", real_step)
    (tmp_path / "edited").mkdir()
    edited = write_config(tmp_path / "edited", photos, optim={"lr": 1.0})
    assert train(edited, "--out", killed, "--resume") == 0  # a resumed run keeps its config
    assert "ignoring the changes to optim.lr" in caplog.text

    # extending a finished run continues it (its schedule was for 1 epoch, so it is not the
    # 2-epoch run: the cosine decays every step over the total)
    assert [r["epoch"] for r in metrics(extended)] == [1, 2]
    for out in (killed,):
        weights = load_file(out / "expert.safetensors")
        assert weights.keys() == reference.keys()
        assert all(torch.equal(weights[k], reference[k]) for k in reference), out
        assert [r["train_loss"] for r in metrics(out)] == [
            r["train_loss"] for r in metrics(straight)
        ]


def test_two_runs_cannot_write_to_one_folder(tmp_path, photos, capsys):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert train(write_config(tmp_path, photos), "--out", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another training run" in err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX processes")
def test_kill_9_then_immediate_resume_continues(tmp_path, photos):
    """kill -9 leaves the data-loader workers orphaned; they must not keep the folder locked,
    so an immediate --resume continues from the last finished epoch."""
    config = write_config(tmp_path, photos, train={"epochs": 500, "workers": 2})
    out = tmp_path / "run"
    command = [sys.executable, "-m", "segcolor", "train", str(config), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(command, stderr=subprocess.DEVNULL, env=env) as proc:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.1)
        time.sleep(0.5)  # into the next epoch: its workers are running
        proc.kill()  # SIGKILL to the trainer alone; its workers live on for a while
        proc.wait()
    done = load_checkpoint(out / "checkpoint.pt")["epoch"]
    assert train(config, "--out", out, "--resume", "--epochs", done + 1) == 0
    assert [r["epoch"] for r in metrics(out)] == list(range(1, done + 2))


def test_a_live_run_keeps_its_lock(tmp_path, photos, capsys):
    """The lock names its owner; while that process lives, a second run is refused."""
    out = tmp_path / "run"
    out.mkdir()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as sleeper:
        try:
            code = (
                "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
                "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, sys.argv[2].encode()); "
                "print('locked', flush=True); time.sleep(60)"
            )
            owner = f"{sleeper.pid} {socket.gethostname()}\n"
            with subprocess.Popen(
                [sys.executable, "-c", code, str(out / ".lock"), owner],
                stdout=subprocess.PIPE,
                text=True,
            ) as holder:
                assert holder.stdout.readline().strip() == "locked"
                assert train(write_config(tmp_path, photos), "--out", out) == 2
                err = capsys.readouterr().err
                assert "another training run (pid" in err and err.count("\n") == 1
                # the owner it names dies, the lock is still held (an orphan): taken over
                sleeper.kill()
                sleeper.wait()
                config = write_config(tmp_path, photos, train={"epochs": 1})
                assert train(config, "--out", out) == 0
                holder.kill()
        finally:
            sleeper.kill()


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def test_sigterm_stops_cleanly_and_resume_continues(tmp_path, photos):
    config = write_config(tmp_path, photos, train={"epochs": 500, "workers": 2})
    out = tmp_path / "run"
    command = [sys.executable, "-m", "segcolor", "train", str(config), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    ) as proc:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)  # as a job scheduler does: workers get it too
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert "interrupted in epoch" in last and "rerun with --resume" in last
    done = load_checkpoint(out / "checkpoint.pt")["epoch"]
    assert train(config, "--out", out, "--resume", "--epochs", done + 1) == 0
    assert [r["epoch"] for r in metrics(out)] == list(range(1, done + 2))


def test_stop_just_after_the_checkpoint_is_written_reports_it_saved(
    tmp_path, photos, monkeypatch, capsys
):
    """SIGTERM landing between the checkpoint's write and the loop's bookkeeping (a race CI hit)
    still says the epoch is saved, and the run resumes from it."""
    from segcolor.train import loop

    real_save = loop.save_state

    def save_then_stop(path, state):
        real_save(path, state)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(loop, "save_state", save_then_stop)
    config = write_config(tmp_path, photos, train={"epochs": 3})
    out = tmp_path / "run"
    assert train(config, "--out", out) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the checkpoint of epoch 1" in last and "rerun with --resume" in last
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(loop, "save_state", real_save)
    assert train(config, "--out", out, "--resume", "--epochs", 2) == 0
    assert [r["epoch"] for r in metrics(out)] == [1, 2]


def test_ddp_on_two_cpu_processes(tmp_path, photos):
    config = write_config(tmp_path, photos, train={"epochs": 1})
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "segcolor",
        "train",
        str(config),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "x 2 processes" in log and log.count("epoch 1/1") == 1  # rank 0 alone reports
    (record,) = metrics(out)
    assert math.isfinite(record["train_loss"]) and math.isfinite(record["val_psnr"])
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    assert load_expert(out / "expert.safetensors").card["data"]["train_images"] > 0
