"""The product's data flow: image -> read -> segment -> route -> predict -> render -> image.

``Pipeline`` (``core``) holds the models and runs the stages; ``LabImage`` (``lab_image``) is
what the read stage gives; ``stages`` has the other stages' result types and the hooks a caller
(video) uses to adjust what flows between them.
"""

from segcolor.pipeline.core import (
    DEFAULT_PIPELINE,
    GENERAL_EXPERT,
    SHIPPED_DIR,
    Analysis,
    PatchCache,
    Pipeline,
)
from segcolor.pipeline.lab_image import LabImage, as_float_rgb, to_uint8, working_shape
from segcolor.pipeline.stages import Colorized, Semantics, StageHooks

__all__ = [
    "DEFAULT_PIPELINE",
    "GENERAL_EXPERT",
    "SHIPPED_DIR",
    "Analysis",
    "Colorized",
    "LabImage",
    "PatchCache",
    "Pipeline",
    "Semantics",
    "StageHooks",
    "as_float_rgb",
    "to_uint8",
    "working_shape",
]
