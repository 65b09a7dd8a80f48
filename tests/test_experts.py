import json

import pytest
import torch
from safetensors.torch import save_file

from segcolor.errors import CheckpointError, ConfigError
from segcolor.experts import (
    Expert,
    create_expert,
    default_cfg,
    list_experts,
    load_expert,
    read_card,
    save_expert,
)
from segcolor.experts.checkpoint import CARD_KEY


def test_registry_lists_default_and_deep_archs():
    assert {"resnet18_unet", "resnet18_unet_deep"} <= set(list_experts())


@pytest.mark.parametrize("arch", list_experts())
@pytest.mark.parametrize("head", ["regression", "classification"])
@pytest.mark.parametrize("size", [(17, 23), (32, 32), (41, 9)])
def test_every_arch_maps_l_to_ab_at_any_size(arch, head, size):
    expert = create_expert(arch, head=head).eval()
    with torch.no_grad():
        out = expert(torch.rand(2, 1, *size) * 2 - 1)
    assert out.shape == (2, 2, *size)
    assert torch.isfinite(out).all()
    if head == "classification":  # annealed mean of bin centers stays inside the ab grid
        assert out.abs().max() <= 110 / 110


def test_default_expert_is_small_and_resnet18_based():
    expert = create_expert()
    params = sum(p.numel() for p in expert.parameters())
    assert params <= 2_000_000
    first_conv = expert.net.encoder.conv1
    assert first_conv.in_channels == 1 and first_conv.out_channels == 64
    assert hasattr(expert.net.encoder, "layer2") and not hasattr(expert.net.encoder, "layer3")
    deep = create_expert("resnet18_unet_deep")
    assert hasattr(deep.net.encoder, "layer4")


def test_classification_head_outputs_313_logits():
    expert = create_expert(head="classification")
    assert expert.forward_padded(torch.zeros(1, 1, 24, 24)).shape == (1, 313, 24, 24)


def test_create_expert_rejects_unknown_arch_and_options():
    with pytest.raises(ConfigError, match="unknown expert arch 'nope'"):
        create_expert("nope")
    with pytest.raises(ConfigError, match="bad options"):
        create_expert("resnet18_unet", colour="blue")
    with pytest.raises(ConfigError, match="depth must be 2..5"):
        create_expert("resnet18_unet", depth=7, decoder_channels=[8])
    with pytest.raises(ConfigError, match="semantic features join the trunk at depth 3"):
        create_expert("resnet18_unet_semantic", depth=2, decoder_channels=[16, 8])
    assert default_cfg("resnet18_unet")["depth"] == 3


@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_round_trip_rebuilds_from_the_file_alone(tmp_path, half):
    expert = create_expert(head="classification", decoder_channels=[64, 32, 16]).eval()
    path = save_expert(expert, tmp_path / "birds.safetensors", {"name": "birds"}, half=half)
    card = read_card(path)
    assert card["arch"] == "resnet18_unet" and card["name"] == "birds"
    assert card["arch_config"]["decoder_channels"] == [64, 32, 16]
    assert json.loads((tmp_path / "birds.card.json").read_text()) == card
    loaded = load_expert(path)
    assert isinstance(loaded, Expert) and loaded.head == "classification"
    x = torch.rand(1, 1, 20, 28) * 2 - 1
    with torch.no_grad():
        tol = 5e-2 if half else 1e-6
        torch.testing.assert_close(loaded(x), expert(x), atol=tol, rtol=0)


def test_half_checkpoint_is_half_the_size(tmp_path):
    expert = create_expert()
    full = save_expert(expert, tmp_path / "full.safetensors").stat().st_size
    half = save_expert(expert, tmp_path / "half.safetensors", half=True).stat().st_size
    assert half < 0.55 * full and half < 3_000_000


def test_bad_checkpoints_give_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_expert(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_expert(junk)
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(CheckpointError, match="no segcolor card"):
        load_expert(bare)
    # weights of one arch under the card of another
    mismatched = tmp_path / "mismatch.safetensors"
    state = create_expert().state_dict()
    card = {"format": "segcolor-expert/1", "arch": "resnet18_unet_deep", "arch_config": {}}
    save_file(dict(state), str(mismatched), metadata={CARD_KEY: json.dumps(card)})
    with pytest.raises(CheckpointError, match="do not match arch") as info:
        load_expert(mismatched)
    assert "\n" not in str(info.value)
