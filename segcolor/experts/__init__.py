"""Category-specific colorization experts: normalised L in, normalised ab out."""

from segcolor.experts import resnet_unet as _resnet_unet  # noqa: F401  (registers the archs)
from segcolor.experts.base import Expert
from segcolor.experts.checkpoint import export_expert, load_expert, read_card, save_expert
from segcolor.experts.registry import create_expert, default_cfg, list_experts, register_expert

__all__ = [
    "Expert",
    "create_expert",
    "export_expert",
    "default_cfg",
    "list_experts",
    "load_expert",
    "read_card",
    "register_expert",
    "save_expert",
]
