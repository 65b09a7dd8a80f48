"""Experts that take color hints and have the vivid style's 313-bin head: the zero-initialised
start, Zhang-style hint sampling, the joint loss, and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from segcolor.cli import main as cli
from segcolor.errors import ConfigError
from segcolor.experts import create_expert, load_expert, save_expert
from segcolor.train import expert as expert_task
from segcolor.train.config import load_config
from segcolor.train.distributed import DistInfo
from segcolor.train.expert import init_from
from segcolor.train.hints import HintSampler, sample_hints
from segcolor.train.run import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"depth": 3, "decoder_channels": [16, 8, 8], "feature_channels": 0}


@pytest.fixture(scope="module")
def photos(training_photos: Path) -> Path:
    return training_photos


def config(folder: Path, photos: Path, **extra) -> Path:
    cfg = {
        "name": "hinted",
        "data": {"root": str(photos), "val_fraction": 0.25, "size": 32, "max_images": 24},
        "model": {"arch": "resnet18_unet_hints", **SMALL},
        "loss": {"kind": "l2", "bins_weight": 1.0, "hist_images": 8},
        "optim": {"lr": 3.0e-3},
        "train": {"epochs": 2, "batch_size": 8, "workers": 0, "seed": 0},
        **extra,
    }
    path = folder / "hinted.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_sampled_hints_reveal_the_patch_mean_and_some_samples_get_none():
    torch.manual_seed(0)
    target = torch.rand(64, 2, 24, 24) - 0.5
    hints = sample_hints(target, torch.Generator().manual_seed(1), {"none": 0.5})
    mask = hints[:, 2]
    empty = (mask.flatten(1).sum(1) == 0).float().mean().item()
    assert 0.25 < empty < 0.75  # about half the samples have no hint
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert bool((hints[:, :2][mask[:, None].expand(-1, 2, -1, -1) == 0] == 0).all())
    # a lone 1-px patch reveals exactly its own pixel's ab
    one = sample_hints(target[:1], torch.Generator().manual_seed(3), {"none": 0.0, "max_patch": 1})
    ys, xs = torch.nonzero(one[0, 2], as_tuple=True)
    assert len(ys) >= 1
    assert torch.allclose(one[0, :2, ys, xs], target[0, :, ys, xs])


def test_hint_sampler_depends_on_seed_and_epoch_only():
    target = torch.rand(8, 2, 16, 16)
    a, b = HintSampler(None, seed=0), HintSampler(None, seed=0)
    a(target)  # drawing in epoch 0 does not change what epoch 1 draws
    a.set_epoch(1), b.set_epoch(1)
    assert torch.equal(a(target), b(target))
    b.set_epoch(2)
    assert not torch.equal(HintSampler(None, 0)(target), b(target))


def test_a_hint_expert_started_from_a_plain_one_answers_as_it_did(tmp_path):
    plain = create_expert("resnet18_unet_semantic", depth=3, decoder_channels=[16, 8, 8]).eval()
    path = save_expert(plain, tmp_path / "plain.safetensors", {"name": "plain"})
    hinted = create_expert("resnet18_unet_hints", depth=3, decoder_channels=[16, 8, 8])
    init_from(hinted, str(path), "resnet18_unet_hints", {}, DistInfo())
    hinted.eval()
    l_norm, feats = torch.rand(2, 1, 40, 48), torch.rand(2, 256, 5, 6)
    hints = torch.zeros(2, 3, 40, 48)
    hints[:, :2, 10:14, 10:14], hints[:, 2, 10:14, 10:14] = 0.4, 1.0
    with torch.no_grad():
        reference = plain(l_norm, feats)
        assert torch.allclose(hinted(l_norm, feats), reference, atol=1e-6)
        assert torch.allclose(hinted(l_norm, feats, hints), reference, atol=1e-6)
        # the vivid style is another answer, from the (untrained) bins head
        assert not torch.allclose(hinted(l_norm, feats, style="vivid"), reference, atol=1e-3)


def test_a_model_without_the_bins_head_cannot_train_it(tmp_path, photos, capsys):
    path = config(tmp_path, photos, model={"arch": "resnet18_unet", "depth": 2,
                                           "decoder_channels": [16, 8]})  # fmt: skip
    assert cli(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loss.bins_weight needs an expert with the 313-bin head" in err


@pytest.mark.parametrize(
    ("hints", "message"),
    [({"nonee": 0.5}, "unknown key data.hints.nonee"), ({"p": 0}, "data.hints.p must be > 0")],
)
def test_bad_hint_options_are_config_errors(tmp_path, photos, hints, message):
    path = config(tmp_path, photos)
    cfg = yaml.safe_load(path.read_text())
    cfg["data"]["hints"] = hints
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_training_learns_hints_and_the_bins_head_and_resumes_exactly(tmp_path, photos, monkeypatch):
    path = config(tmp_path, photos)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert cli(["train", str(path), "--out", str(straight)]) == 0
    reference = load_file(straight / "expert.safetensors")
    expert = load_expert(straight / "expert.safetensors")
    assert expert.takes_hints and expert.has_bins
    assert reference["hints.late.weight"].abs().sum() > 0  # the zero init has learned
    assert reference["hints.early.weight"].abs().sum() > 0

    steps = load_checkpoint(straight / "checkpoint.pt")["data"]["train_images"] // 8
    real_step, calls = expert_task.train_step, []

    def step_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == steps + 1:  # the first step of epoch 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(expert_task, "train_step", step_then_stop)
    assert cli(["train", str(path), "--out", str(killed)]) == 130
    monkeypatch.setattr(expert_task, "train_step", real_step)
    assert cli(["train", str(path), "--out", str(killed), "--resume"]) == 0
    resumed = load_file(killed / "expert.safetensors")
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
    lines = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]


def test_grafted_modules_train_alone_and_the_rest_stays_exactly(tmp_path, photos):
    """Stage 5b: an expert without hints gains a sibling's hint inputs and bins head, and only
    those train: every other weight and batch-norm statistic is the plain expert's, bit for bit."""
    donor = create_expert("resnet18_unet_hints", **SMALL)
    for param in donor.hints.parameters():
        torch.nn.init.normal_(param, std=0.01)
    donor_path = save_expert(donor, tmp_path / "donor.safetensors", {"name": "donor"})
    plain = create_expert("resnet18_unet", depth=3, decoder_channels=[16, 8, 8])
    plain_path = save_expert(plain, tmp_path / "plain.safetensors", {"name": "plain"})
    model = {
        "arch": "resnet18_unet_hints",
        **SMALL,
        "init": str(plain_path),
        "graft": {"from": str(donor_path), "modules": ["hints", "bins"]},
        "trainable": ["hints", "bins"],
    }
    path = config(tmp_path, photos, model=model)
    out = tmp_path / "run"
    assert cli(["train", str(path), "--out", str(out)]) == 0
    trained = load_file(out / "expert.safetensors")
    before, grafted = plain.state_dict(), donor.state_dict()
    for key, value in trained.items():
        if key.startswith(("hints.", "bins.")):
            if key.endswith("weight") and "hints" in key:
                assert not torch.equal(value, grafted[key]), key  # it trained
        else:
            assert torch.equal(value, before[key]), key  # weights and running statistics
