"""Profile classifiers: a grayscale photo -> P(profile), and their safetensors checkpoints.

Two kinds, told apart by ``inputs``:

- ``profile_features_linear`` (``inputs = "features"``): a linear layer on the router's
  segmenter features, pooled over the pixels the category colors. The router computes those
  features for every photo anyway, so it costs nothing at inference, and a pretrained semantic
  network knows far better than a small trunk trained on 3.5 k photos whether a background is
  sky, foliage or a sunset: on the routed training cache's held-out photos it reaches log-loss
  0.99 (accuracy 58 %) where the trunk below scores 1.29 (48 %), no better than the profiles'
  frequencies (1.28). Trained in seconds from the training cache
  (``segcolor.train.profile_features``). Not shipped: variants trained as it routes color
  worse than the shipped ones (README, "What the numbers say").
- ``profile_resnet18`` (``inputs = "lightness"``, shipped): a truncated ResNet-18 (one-channel
  stem + the first ``stages`` residual stages), global average pooling and a linear layer.
  Three stages (2.8 M parameters, 5.6 MB in fp16) fit the shipped-weights budget; the input is
  the expert's: normalised L, any size (pooling makes it size-agnostic). It needs no segmenter.

The card (profile names with their centroid colors, input size, metrics) travels inside the
``.safetensors`` file like an expert's, so the router needs nothing but the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from segcolor.color.lab import normalize_l
from segcolor.errors import CheckpointError, ConfigError
from segcolor.io.atomic import atomic_write
from segcolor.nets import assign_weights, build_empty
from segcolor.nets.loading import CARD_KEY, read_metadata
from segcolor.nets.resnet import ResNet18, conv_init_

FORMAT = "segcolor-profile-classifier/1"
ARCHS = ("profile_resnet18", "profile_features_linear")
MAX_BYTES_FP16 = 6_000_000  # the shipped-weights budget allows about this much per classifier


class ProfileClassifier(nn.Module):
    """Normalised L (B,1,H,W) -> profile logits (B,K)."""

    arch = "profile_resnet18"
    inputs = "lightness"

    def __init__(self, num_profiles: int, stages: int = 3, dropout: float = 0.2) -> None:
        super().__init__()
        if num_profiles < 1 or not 1 <= stages <= 4:
            raise ValueError(
                f"need num_profiles >= 1 and stages 1..4, got {num_profiles}, {stages}"
            )
        resnet = ResNet18()  # torchvision's resnet18, no ImageNet weights offline
        resnet.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        conv_init_(resnet.conv1.weight)
        layers = [resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool]
        layers += [getattr(resnet, f"layer{i}") for i in range(1, stages + 1)]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(64 * 2 ** (stages - 1), num_profiles)
        self.arch_config = {"num_profiles": num_profiles, "stages": stages, "dropout": dropout}
        self.card: dict[str, Any] = {}

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(self.features(l_norm), 1).flatten(1)
        return self.fc(self.dropout(pooled))

    @property
    def profiles(self) -> list[str]:
        """Profile names in logit order (from the card)."""
        return [p["name"] for p in self.card.get("profiles", [])]

    @property
    def input_size(self) -> int:
        """The short side the classifier was trained at: photos are resized to it."""
        return int(self.card.get("input_size", 128))


def pool_features(
    features: torch.Tensor, weight: torch.Tensor | None, context: float
) -> torch.Tensor:
    """Features (B,F,h,w) averaged over a category's pixels -> (B,F).

    ``weight`` (B,1,H,W), the category's routing weight at any size, is brought to the features'
    grid; every cell also counts ``context`` (so a photo with no pixels of the category falls
    back to its whole-photo mean instead of dividing by zero)."""
    if weight is None:
        return features.mean((2, 3))
    weight = F.adaptive_avg_pool2d(weight.to(features), features.shape[-2:]) + context
    return (features * weight).sum((2, 3)) / weight.sum((2, 3))


class FeatureProfileClassifier(nn.Module):
    """Segmenter features (B,F,h,w) pooled over the category's pixels -> profile logits (B,K).

    The pooled features are standardised with statistics of the training photos (buffers, so
    they travel in the checkpoint) and fed to one linear layer: a logistic regression."""

    arch = "profile_features_linear"
    inputs = "features"

    def __init__(self, num_profiles: int, feature_channels: int = 256, context: float = 0.01):
        super().__init__()
        if num_profiles < 1 or feature_channels < 1 or context <= 0:
            raise ValueError(
                f"need num_profiles >= 1, feature_channels >= 1 and context > 0, got "
                f"{num_profiles}, {feature_channels}, {context}"
            )
        self.register_buffer("mean", torch.zeros(feature_channels))
        self.register_buffer("std", torch.ones(feature_channels))
        self.fc = nn.Linear(feature_channels, num_profiles)
        self.context = context
        self.arch_config = {
            "num_profiles": num_profiles,
            "feature_channels": feature_channels,
            "context": context,
        }
        self.card: dict[str, Any] = {}

    def pool(self, features: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return pool_features(features.float(), weight, self.context)

    def logits_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc((pooled - self.mean) / self.std)

    def forward(self, features: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits_from_pooled(self.pool(features, weight))

    @property
    def profiles(self) -> list[str]:
        """Profile names in logit order (from the card)."""
        return [p["name"] for p in self.card.get("profiles", [])]


AnyProfileClassifier = ProfileClassifier | FeatureProfileClassifier


def create_profile_classifier(
    num_profiles: int, arch: str = "profile_resnet18", **cfg: Any
) -> AnyProfileClassifier:
    if arch not in ARCHS:
        raise ConfigError(
            f"unknown profile classifier arch {arch!r}; available: {', '.join(ARCHS)}"
        )
    try:
        if arch == FeatureProfileClassifier.arch:
            return FeatureProfileClassifier(num_profiles, **cfg)
        return ProfileClassifier(num_profiles, **cfg)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad options for {arch!r}: {err}") from None


def fp16_bytes(model: nn.Module) -> int:
    """Size of the weights stored in fp16 (what shipping costs)."""
    return sum(
        t.numel() * (2 if t.is_floating_point() else t.element_size())
        for t in model.state_dict().values()
    )


def save_classifier(
    model: AnyProfileClassifier, path: str | Path, card: dict[str, Any], half: bool = True
) -> Path:
    """Weights (fp16 by default: the shipped form) and card, atomically; a ``.card.json`` copy
    for people beside it."""
    path = Path(path)
    full = {"format": FORMAT, **card, "arch": model.arch, "arch_config": model.arch_config}
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata={CARD_KEY: json.dumps(full, sort_keys=True)})
    with atomic_write(path.with_suffix(".card.json")) as tmp:
        tmp.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return path


def read_classifier_card(path: str | Path) -> dict[str, Any]:
    """The card of a classifier checkpoint, without loading its weights."""
    path = Path(path)
    metadata = read_metadata(path, "profile classifier")
    card = json.loads(metadata.get(CARD_KEY, "{}"))
    if card.get("format") != FORMAT:
        raise CheckpointError(
            f"not a profile classifier (format {card.get('format')!r}, expected {FORMAT!r})", path
        )
    return card


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> AnyProfileClassifier:
    """Rebuild a classifier from its checkpoint alone (safetensors: no code runs on load; built
    empty, so no random init of weights the file replaces)."""
    card = read_classifier_card(path)
    model = build_empty(create_profile_classifier, arch=card["arch"], **card["arch_config"])
    try:
        assign_weights(model, load_file(str(path)))
    except RuntimeError as err:
        raise CheckpointError(f"weights do not match the card's arch ({err})", path) from None
    model.card = card
    return model.to(device).eval()


def is_classifier_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a profile classifier's checkpoint (rather than an expert's)."""
    try:
        read_classifier_card(path)
    except CheckpointError:
        return False
    return True


def export_classifier(source: str | Path, destination: str | Path, half: bool = True) -> Path:
    """A trained classifier as a file to ship: fp16 weights, its card (already free of machine
    paths: training writes it portable) marked as exported."""
    source, destination = Path(source), Path(destination)
    if destination.resolve() == source.resolve():
        raise CheckpointError("the export would overwrite its source; choose another -o", source)
    model = load_classifier(source)
    card = {k: v for k, v in model.card.items() if k not in ("format", "arch", "arch_config")}
    card["exported"] = {"from": source.name, "dtype": "float16" if half else "float32"}
    return save_classifier(model, destination, card, half=half)


@torch.inference_mode()
def predict_proba(
    model: AnyProfileClassifier,
    lightness: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """P(profile) (B,K) of photos, from what the classifier reads: L in [0, 100] (B,1,H,W) at
    any size (resized so the short side is the training size, as the classifier saw photos
    then), or the segmenter's features (B,F,h,w) with the category's routing weight (B,1,H,W)."""
    if isinstance(model, FeatureProfileClassifier):
        if features is None:
            raise ValueError("this profile classifier reads the segmenter's features; pass them")
        device = next(model.parameters()).device
        weight = None if weight is None else weight.to(device)
        return model(features.to(device), weight).softmax(1)
    if lightness is None:
        raise ValueError("this profile classifier reads the photo's lightness; pass it")
    height, width = lightness.shape[-2:]
    scale = model.input_size / min(height, width)
    size = (max(8, round(height * scale)), max(8, round(width * scale)))
    x = F.interpolate(
        lightness.float(), size=size, mode="bilinear", antialias=scale < 1, align_corners=False
    )
    device = next(model.parameters()).device
    return model(normalize_l(x).to(device)).softmax(1)
