"""Start a profile classifier's trunk from a colorization expert's encoder (training only).

Apart from ``classifier``, so the router, which loads classifiers, does not import the experts.
"""

from __future__ import annotations

from pathlib import Path

from segcolor.errors import ConfigError
from segcolor.experts import load_expert
from segcolor.profiles.classifier import ProfileClassifier


def init_trunk_from_expert(model: ProfileClassifier, path: str | Path) -> int:
    """Start the trunk from a colorization expert's ResNet-18 encoder (stem and stages).

    Colorization is a self-supervised pretext task whose features predict color (Zhang et al.
    2016): the expert learned from the photos' own colors, so the classifier starts from a trunk
    that already sees sky, foliage and sand. Returns the number of tensors copied.
    """
    encoder = {
        k.removeprefix("net.encoder."): v
        for k, v in load_expert(path).state_dict().items()
        if k.startswith("net.encoder.")
    }
    own = model.state_dict()
    copied = {}
    for key, value in encoder.items():
        block, _, rest = key.partition(".")
        index = {"conv1": 0, "bn1": 1}.get(block)
        if index is None and block.startswith("layer"):
            index = 3 + int(block.removeprefix("layer"))
        target = f"features.{index}.{rest}"
        if index is not None and target in own and own[target].shape == value.shape:
            copied[target] = value
    if not copied:
        raise ConfigError(f"no ResNet-18 encoder weights to start from in {path}")
    model.load_state_dict(copied, strict=False)
    return len(copied)
