"""The plain-torch networks match the torchvision / smp ones they replace (names, outputs, init),
load every checkpoint unchanged, and keep torchvision out of ``segcolor colorize``."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from segcolor.experts import create_expert, list_experts, load_expert
from segcolor.experts.resnet_unet import BinsHead, HintInputs, SemanticFusion
from segcolor.nets import assign_weights, build_empty
from segcolor.nets.mobilenetv2 import mobilenet_v2_features
from segcolor.nets.resnet import ResNet18
from segcolor.nets.unet import Unet
from segcolor.pipeline import SHIPPED_DIR
from segcolor.profiles.classifier import (
    create_profile_classifier,
    is_classifier_checkpoint,
    load_classifier,
)
from segcolor.router.segmenters.deeplab_mnv2 import (
    DeepLabV3MobileNetV2,
    _fold_bn,
    mobilenet_v2_os16,
)
from segcolor.router.weights import cache_dir

# the experts and the classifier (the router's gray head has its own tests: test_gray_head.py)
SHIPPED = sorted(p for p in SHIPPED_DIR.glob("*.safetensors") if p.stem != "gray_head")


def _smp_unet(depth: int, decoder_channels: list[int], classes: int) -> torch.nn.Module:
    """The experts' network as it was built before: smp's U-Net, unused stages deleted."""
    smp = pytest.importorskip("segmentation_models_pytorch")
    net = smp.Unet(
        encoder_name="resnet18",
        encoder_weights=None,
        encoder_depth=depth,
        decoder_channels=tuple(decoder_channels),
        in_channels=1,
        classes=classes,
    )
    for unused in ("layer1", "layer2", "layer3", "layer4")[depth - 1 :]:
        delattr(net.encoder, unused)
    return net


def _assert_same_state(ours: torch.nn.Module, theirs: torch.nn.Module, skip: str = "-") -> None:
    mine = ours.state_dict()
    ref = {k: v for k, v in theirs.state_dict().items() if not k.startswith(skip)}
    assert list(mine) == list(ref)
    for key, value in ref.items():
        assert torch.equal(mine[key], value), key


@pytest.mark.parametrize("arch", list_experts())
@pytest.mark.parametrize("head", ["regression", "classification"])
def test_expert_matches_smp_built_expert(arch: str, head: str) -> None:
    """Same seed -> same weights and RNG state after; same weights -> identical outputs, in
    training (BN statistics) and eval mode, with and without semantic features."""
    torch.manual_seed(3)
    ours = create_expert(arch, head=head)
    after_ours = torch.rand(4)
    cfg = ours.arch_config
    torch.manual_seed(3)
    theirs = copy.deepcopy(ours)
    theirs.net = _smp_unet(cfg["depth"], cfg["decoder_channels"], ours.out_channels)
    if ours.fusion is not None:  # built after the U-Net: it draws after smp's init
        width = cfg.get("feature_width", 64)
        trunk = ours.net.encoder.out_channels[3]
        theirs.fusion = SemanticFusion(cfg["feature_channels"], width, trunk)
    if ours.hints is not None:  # then the hint inputs and the bins head, in that order
        theirs.hints = HintInputs(cfg["decoder_channels"][-1])
    if ours.bins is not None:
        theirs.bins = BinsHead(cfg["decoder_channels"][ours.bins_level])
    assert torch.equal(torch.rand(4), after_ours)
    _assert_same_state(ours, theirs)

    l_norm = torch.rand(2, 1, 37, 45) * 2 - 1
    features = torch.randn(2, ours.feature_channels, 5, 6) if ours.uses_features else None
    for training, feats in [(True, features), (False, features), (False, None)]:
        ours.train(training)
        theirs.train(training)
        with torch.no_grad():
            assert torch.equal(ours(l_norm, feats), theirs(l_norm, feats))
    _assert_same_state(ours, theirs)  # the BN running statistics moved alike


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_unet_matches_smp_at_other_depths(depth: int) -> None:
    channels = [128, 64, 32, 16][-depth:]
    torch.manual_seed(5)
    ours = Unet(depth, channels, in_channels=1, classes=3)
    torch.manual_seed(5)
    theirs = _smp_unet(depth, channels, 3)
    _assert_same_state(ours, theirs)
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), theirs.eval()(x))


def test_resnet18_matches_torchvision() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(7)
    theirs = torchvision.models.resnet18(weights=None).eval()
    after_theirs = torch.rand(4)
    torch.manual_seed(7)
    ours = ResNet18().eval()
    assert torch.equal(torch.rand(4), after_theirs)  # the dropped classifier's draws included
    _assert_same_state(ours, theirs, skip="fc.")

    def trunk(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))

    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        assert torch.equal(trunk(ours, x), trunk(theirs, x))


def test_profile_classifier_init_matches_the_torchvision_build() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(9)
    ours = create_profile_classifier(4, stages=3)
    torch.manual_seed(9)
    resnet = torchvision.models.resnet18(weights=None)
    resnet.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    torch.nn.init.kaiming_normal_(resnet.conv1.weight, mode="fan_out", nonlinearity="relu")
    features = torch.nn.Sequential(
        resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2,
        resnet.layer3,
    )  # fmt: skip
    fc = torch.nn.Linear(256, 4)
    _assert_same_state(ours.features, features)
    _assert_same_state(ours.fc, fc)


@pytest.mark.parametrize("width_mult", [1.0, 0.5])
@pytest.mark.parametrize("round_nearest", [8, 1])
def test_mobilenet_v2_features_match_torchvision(width_mult: float, round_nearest: int) -> None:
    torchvision = pytest.importorskip("torchvision")
    theirs = torchvision.models.mobilenet_v2(
        weights=None, width_mult=width_mult, round_nearest=round_nearest
    ).features.eval()
    ours = mobilenet_v2_features(width_mult, round_nearest).eval()
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 3, 67, 71)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


@pytest.mark.parametrize("width_mult", [1.0, 0.5])
def test_deeplab_trunk_matches_the_torchvision_build(width_mult: float) -> None:
    """The output-stride-16, BN-folded trunk, as it was built from torchvision's model."""
    torchvision = pytest.importorskip("torchvision")
    features = torchvision.models.mobilenet_v2(
        weights=None, width_mult=width_mult, round_nearest=1
    ).features[:18]
    features[14].conv[1][0].stride = (1, 1)
    for i in (15, 16, 17):
        dw = features[i].conv[1][0]
        dw.dilation, dw.padding = (2, 2), (2, 2)
    _fold_bn(features)
    ours = mobilenet_v2_os16(width_mult)
    assert repr(ours) == repr(features)
    ours.load_state_dict(features.state_dict())
    x = torch.randn(1, 3, 65, 81)
    with torch.no_grad():
        assert torch.equal(ours(x), features(x))


def test_build_empty_allocates_and_draws_nothing() -> None:
    state = torch.get_rng_state()
    expert = build_empty(create_expert, "resnet18_unet_semantic")
    assert torch.equal(torch.get_rng_state(), state)
    assert all(t.is_meta for t in expert.state_dict().values())


def test_assign_weights_casts_and_is_strict() -> None:
    source = create_expert()
    half = {k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}
    loaded = assign_weights(build_empty(create_expert), half)
    for key, value in loaded.state_dict().items():
        assert value.dtype == source.state_dict()[key].dtype
        assert torch.equal(value, half[key].to(value.dtype))
    assert all(p.requires_grad for p in loaded.parameters())
    del half["net.segmentation_head.0.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        assign_weights(build_empty(create_expert), half)


def test_assign_weights_refuses_to_leave_tensors_empty() -> None:
    class WithScratch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scratch", torch.zeros(2), persistent=False)

    with pytest.raises(RuntimeError, match="scratch"):
        assign_weights(build_empty(WithScratch), {})


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoints_load_unchanged(path: Path) -> None:
    """Built empty and assigned = built, randomly initialised and copied into (the old way)."""
    state = load_file(str(path))
    if is_classifier_checkpoint(path):
        model = load_classifier(path)
        copied = copy.deepcopy(model)
        x = torch.rand(1, 1, 96, 128) * 2 - 1
    else:
        model = load_expert(path)
        copied = create_expert(model.arch, **model.arch_config).eval()
        x = torch.rand(1, 1, 40, 56) * 2 - 1
    copied.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    for key, value in model.state_dict().items():
        assert not value.is_meta and value.dtype == copied.state_dict()[key].dtype, key
        assert torch.equal(value, state[key].to(value.dtype)), key
    with torch.no_grad():
        assert torch.equal(model(x), copied(x))


def test_cached_segmenter_conversion_loads_unchanged() -> None:
    cached = cache_dir() / "deeplabv3_mnv2_voc.safetensors"
    if not cached.is_file():
        pytest.skip(f"no cached segmenter conversion at {cached}")
    from segcolor.router.segmenters import create_segmenter

    model = create_segmenter("deeplabv3_mnv2_voc", weights=cached)
    copied = DeepLabV3MobileNetV2().eval()
    copied.load_state_dict(load_file(str(cached)))
    x = torch.rand(1, 3, 60, 90)
    with torch.no_grad():
        assert torch.equal(model(x), copied(x))


def test_colorize_path_imports_no_torchvision() -> None:
    """What ``segcolor colorize`` imports and builds leaves out torchvision, timm, smp and
    torch._dynamo (1.2 s of start-up: torchvision imports torch._dynamo, sympy and triton)."""
    code = f"""
import sys
import segcolor.cli, segcolor.commands.colorize, segcolor.pipeline
from segcolor.experts import create_expert, load_expert
from segcolor.nets import build_empty
from segcolor.profiles.classifier import load_classifier
from segcolor.router.segmenters.deeplab_mnv2 import DeepLabV3MobileNetV2
create_expert("resnet18_unet_semantic")
build_empty(DeepLabV3MobileNetV2)
for path in {[str(p) for p in SHIPPED]!r}:
    (load_classifier if "classifier" in path else load_expert)(path)
heavy = ("torchvision", "timm", "segmentation_models_pytorch", "torch._dynamo", "sympy")
print(sorted(m for m in heavy if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
