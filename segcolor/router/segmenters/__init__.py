"""Semantic segmenters for the router: a common contract, a registry and the built-in backends.

Importing this package registers the built-in backends.
"""

from segcolor.router.segmenters.base import Segmenter
from segcolor.router.segmenters.deeplab_mnv2 import DeepLabV3MobileNetV2
from segcolor.router.segmenters.registry import (
    create_segmenter,
    list_segmenters,
    register_segmenter,
)

__all__ = [
    "DeepLabV3MobileNetV2",
    "Segmenter",
    "create_segmenter",
    "list_segmenters",
    "register_segmenter",
]
