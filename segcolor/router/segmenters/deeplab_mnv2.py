"""DeepLabV3-MobileNetV2 (PASCAL VOC), a float PyTorch port of Google's quantised TFLite model.

The public ``deeplabv3_mnv2_pascal_quant.tflite`` (github.com/google-coral/test_data, Apache-2.0)
is the only pretrained person/bird/animal segmenter we can obtain offline, so it is rebuilt from
torchvision's MobileNetV2 (its plain-torch copy, ``segcolor.nets.mobilenetv2``) following the
layer spec shipped with the weights (DEEPLAB_SPEC.md in the shared weights folder): output stride 16
(features[14] depthwise stride 1, features[15..17] depthwise dilation 2), no features[18],
BN folded into conv biases, a two-branch head [image pooling, 1×1 aspp0] with ReLU, and
align_corners=True bilinear resizes. The dequantised weights are converted once and cached as
safetensors in the user cache dir.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from segcolor.errors import CheckpointError, SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.nets import assign_weights, build_empty
from segcolor.nets.mobilenetv2 import mobilenet_v2_features
from segcolor.router.segmenters.base import Segmenter
from segcolor.router.segmenters.registry import register_segmenter
from segcolor.router.tflite_reader import TfliteModel
from segcolor.router.weights import cache_dir, resolve_weights

PASCAL_VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]  # fmt: skip
SOURCE = "https://github.com/google-coral/test_data (Apache-2.0)"
# Bump when the conversion changes so stale caches are rebuilt.
_FORMAT = "segcolor-deeplabv3-mnv2/1"


@dataclass(frozen=True)
class Variant:
    """One public TFLite file and the width multiplier of the MobileNetV2 inside it."""

    name: str
    tflite: str
    sha256: str
    width_mult: float


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "deeplabv3_mnv2_voc",
            "deeplabv3_mnv2_pascal_quant.tflite",
            "350af47fd346ea6d74b58833a351f583ba860e9806ec5bd292ff8d8f1f249398",
            1.0,
        ),
        Variant(
            "deeplabv3_mnv2_dm05_voc",
            "deeplabv3_mnv2_dm05_pascal_quant.tflite",
            "0470d2a782aa54eeeb99d32e7b6b3fb7722905c7c4f5d26bd957ec861366d48b",
            0.5,
        ),
    )
}


class TfSameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow SAME padding computed from the actual input size.

    Used for the stride-2 convs, where TF pads (0, 1) at even sizes but (1, 1) at odd ones; a
    fixed PyTorch ``padding=1`` is only right for the latter.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for n, k, s, d in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
            reversed(self.dilation), strict=True,
        ):  # fmt: skip
            total = max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        return self._conv_forward(F.pad(x, pads), self.weight, self.bias)


def _fold_bn(module: nn.Module) -> None:
    """BN is folded into the TFLite weights: BatchNorm2d → Identity, every conv gets a bias,
    stride-2 convs get TF SAME padding."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        elif isinstance(child, nn.Conv2d):
            cls = TfSameConv2d if max(child.stride) > 1 else nn.Conv2d
            setattr(module, name, cls(
                child.in_channels, child.out_channels, child.kernel_size, child.stride,
                0 if cls is TfSameConv2d else child.padding, child.dilation, child.groups,
                bias=True,
            ))  # fmt: skip
        else:
            _fold_bn(child)


def mobilenet_v2_os16(width_mult: float = 1.0) -> nn.Sequential:
    """torchvision MobileNetV2 ``features[:18]`` edited to DeepLab's output stride 16.

    ``round_nearest=1`` reproduces TF-slim's channel counts for depth multipliers < 1 (e.g. 12
    channels at 0.5 where torchvision would round to 16); at 1.0 it changes nothing.
    """
    features = mobilenet_v2_features(width_mult, round_nearest=1)[:18]
    features[14].conv[1][0].stride = (1, 1)
    for i in (15, 16, 17):
        dw = features[i].conv[1][0]
        dw.dilation, dw.padding = (2, 2), (2, 2)
    _fold_bn(features)
    return features


def odd_size(size: float) -> int:
    """Nearest size of the form 16k+1: there the four stride-2 convs see odd inputs, as in the
    513×513 the model was trained and quantised at, and the 1-pixel corner alignment of
    align_corners=True resizes maps exactly onto the output-stride-16 grid."""
    return 16 * max(1, round((size - 1) / 16)) + 1


class DeepLabV3MobileNetV2(Segmenter):
    """DeepLabV3 with a MobileNetV2 backbone and the two-branch ASPP of the TFLite model.

    ``forward`` resizes the input to ``working_size`` (513: the size the model was trained and
    quantised for) with align_corners=True bilinear, normalises it like the TFLite uint8 input
    ((pixel − 128)/128) and resizes the output-stride-16 logits straight back to the input size.
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        num_classes: int = 21,
        classes: list[str] | None = None,
        working_size: int = 513,
        keep_aspect: bool = False,
    ) -> None:
        super().__init__(classes or PASCAL_VOC_CLASSES[:num_classes])
        self.working_size = working_size
        self.keep_aspect = keep_aspect
        self.features = mobilenet_v2_os16(width_mult)
        c = self.features[-1].out_channels
        self.aspp0 = nn.Conv2d(c, 256, 1)
        self.image_pooling = nn.Conv2d(c, 256, 1)
        self.concat_projection = nn.Conv2d(512, 256, 1)
        self.logits = nn.Conv2d(256, len(self.classes), 1)

    feature_channels = 256  # the ASPP projection: the last layer before the class logits

    def net(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input (B,3,h,w) in [−1, 1) → logits at output stride 16."""
        return self.net_features(x)[0]

    def net_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised input → (logits, ASPP features), both at output stride 16."""
        feat = self.features(x)
        pooled = F.relu(self.image_pooling(feat.mean((2, 3), keepdim=True)))
        aspp = F.relu(self.aspp0(feat))
        y = F.relu(self.concat_projection(torch.cat([pooled.expand_as(aspp), aspp], 1)))
        logits = self.logits(y)
        if self.gray_head is not None:
            logits = logits + self.gray_head(y)
        return logits, y

    def working_hw(self, h: int, w: int, scale: float = 1.0) -> tuple[int, int]:
        """Size the network runs at for an h×w input: square (the TFLite model's own input) or,
        with ``keep_aspect``, the long side at the working size."""
        side = (self.working_size - 1) * scale + 1
        if not self.keep_aspect:
            return odd_size(side), odd_size(side)
        r = (side - 1) / (max(h, w) - 1 or 1)
        return odd_size((h - 1) * r + 1), odd_size((w - 1) * r + 1)

    def forward_scaled(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        """Logits at the input size with the working size scaled by ``scale`` (rounded to the
        nearest 16k+1)."""
        h, w = x.shape[-2:]
        size = self.working_hw(h, w, scale)
        if size != (h, w):
            down = size[0] < h or size[1] < w
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True, antialias=down)
        logits = self.net(x * (255 / 128) - 1)
        return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_scaled(x, 1.0)

    def net_input(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] at any size -> the network's input: resized to the working size and
        normalised like the TFLite uint8 input."""
        h, w = x.shape[-2:]
        size = self.working_hw(h, w)
        if size != (h, w):
            down = size[0] < h or size[1] < w
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True, antialias=down)
        return x * (255 / 128) - 1

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at the input size and the ASPP features on the network's own grid (which
        spans the input corner to corner, as align_corners=True resizes do)."""
        logits, features = self.net_features(self.net_input(x))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return logits, features

    def grid_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits without the gray head, features), both on the network's grid."""
        features = self.net_features(self.net_input(x))[1]
        return self.class_logits(features), features

    def class_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The pretrained classifier alone (no gray head) on grid features."""
        return self.logits(features)

    def conv_names(self) -> list[str]:
        """Conv modules in TFLite op order (the order of the weight table of the spec)."""
        convs = [n for n, m in self.features.named_modules() if isinstance(m, nn.Conv2d)]
        return [f"features.{n}" for n in convs] + [
            "aspp0", "image_pooling", "concat_projection", "logits",
        ]  # fmt: skip

    @classmethod
    def from_pretrained(cls, weights: str | Path | None = None, **kwargs: Any) -> Segmenter:
        return _load_variant(VARIANTS["deeplabv3_mnv2_voc"], weights, **kwargs)


@register_segmenter("deeplabv3_mnv2_voc")
def deeplabv3_mnv2_voc(weights: str | Path | None = None, **kwargs: Any) -> DeepLabV3MobileNetV2:
    """Full-width model (mIoU ≈ 0.64 on grayscale COCO person/bird/animal)."""
    return _load_variant(VARIANTS["deeplabv3_mnv2_voc"], weights, **kwargs)


@register_segmenter("deeplabv3_mnv2_dm05_voc")
def deeplabv3_mnv2_dm05_voc(
    weights: str | Path | None = None, **kwargs: Any
) -> DeepLabV3MobileNetV2:
    """Half-width model: about 3× fewer weights, a few points of mIoU less."""
    return _load_variant(VARIANTS["deeplabv3_mnv2_dm05_voc"], weights, **kwargs)


def _tf_scope(module: str) -> str:
    """Expected TF name prefix of a torchvision-path conv, to check the op-order mapping."""
    head = {"aspp0": "aspp0/", "image_pooling": "image_pooling/", "logits": "logits/semantic/"}
    if module in head or module == "concat_projection":
        return head.get(module, "concat_projection/")
    parts = module.split(".")
    k = int(parts[1])
    if k == 0:
        return "MobilenetV2/Conv/"
    block = "MobilenetV2/expanded_conv" + ("" if k == 1 else f"_{k - 1}")
    role = ["depthwise", "project"] if k == 1 else ["expand", "depthwise", "project"]
    return f"{block}/{role[int(parts[3])]}/"


def convert_tflite(path: str | Path, model: DeepLabV3MobileNetV2) -> dict[str, torch.Tensor]:
    """Dequantise the TFLite convs and map them, in op order, onto ``model``'s conv modules."""
    tfl = TfliteModel(path)
    ops = [op for op in tfl.ops if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    names = model.conv_names()
    if len(ops) != len(names):
        raise CheckpointError(f"expected {len(names)} convolutions, found {len(ops)}", path)
    expected = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for op, name in zip(ops, names, strict=True):
        w_idx, b_idx = op.inputs[1], op.inputs[2]
        if not tfl.tensor_names[w_idx].startswith(_tf_scope(name)):
            raise CheckpointError(f"op {op.index} is {tfl.tensor_names[w_idx]!r}, not {name}", path)
        w = tfl.tensor(w_idx)
        # CONV_2D is OHWI; DEPTHWISE_CONV_2D is [1, kh, kw, C] with depth multiplier 1.
        perm = (3, 0, 1, 2) if op.name == "DEPTHWISE_CONV_2D" else (0, 3, 1, 2)
        out[f"{name}.weight"] = torch.from_numpy(w.transpose(perm).copy())
        out[f"{name}.bias"] = torch.from_numpy(tfl.tensor(b_idx))
    for key, value in out.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"{key}: shape {tuple(value.shape)} in file, "
                                  f"{tuple(expected[key].shape)} in model", path)  # fmt: skip
    return out


def _cached_state(path: Path, sha256: str) -> dict[str, torch.Tensor] | None:
    """The cached conversion if it was made from this exact TFLite file by this code."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("source_sha256") != sha256 or meta.get("format") != _FORMAT:
            return None
        return load_file(str(path))
    except (OSError, SafetensorError):
        return None


def _load_variant(
    variant: Variant, weights: str | Path | None = None, **kwargs: Any
) -> DeepLabV3MobileNetV2:
    """Build ``variant`` and load its weights: an explicit ``.safetensors`` is used as is;
    otherwise the cached conversion (checked against the pinned TFLite sha256), else the TFLite
    file is resolved, converted and the conversion cached. The model is built empty (no random
    init): every weight is loaded."""
    model = build_empty(DeepLabV3MobileNetV2, width_mult=variant.width_mult, **kwargs)
    if weights is not None and str(weights).endswith(".safetensors"):
        assign_weights(model, load_file(str(weights)))
        return model
    tfl_path = None
    if weights is not None:  # an explicit path must exist and match even if a cache does
        tfl_path = resolve_weights(variant.tflite, variant.sha256, weights, SOURCE)
    cache = cache_dir() / f"{variant.name}.safetensors"
    state = _cached_state(cache, variant.sha256) if cache.is_file() else None
    if state is None:
        tfl_path = tfl_path or resolve_weights(variant.tflite, variant.sha256, None, SOURCE)
        state = convert_tflite(tfl_path, model)
        meta = {"format": _FORMAT, "source": variant.tflite, "source_sha256": variant.sha256}
        try:  # a temp file beside it, then os.replace: no process sees a half-written cache
            with atomic_write(cache) as tmp:
                save_file(state, str(tmp), metadata=meta)
        except (OSError, SegcolorError) as err:  # atomic_write's SegcolorError: cannot write
            warnings.warn(f"could not cache converted weights in {cache}: {err}", stacklevel=2)
    assign_weights(model, state)
    return model
