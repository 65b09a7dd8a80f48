"""Merge: composite per-expert ab by soft weights, run experts on crops, measure seams.

Takes plain tensors and boxes, so it depends on nothing upstream (router, pipeline).
"""

from segcolor.merge.composite import (
    Patch,
    composite,
    edge_window,
    feather,
    feather_sigma,
    full_patches,
    gaussian_blur,
    normalize,
    one_hot,
)
from segcolor.merge.crops import Box, expand_box, merge_boxes, plan_crops
from segcolor.merge.runner import run_on_crops
from segcolor.merge.seams import boundary_jump, interior_gradient

__all__ = [
    "Box",
    "Patch",
    "boundary_jump",
    "composite",
    "edge_window",
    "expand_box",
    "feather",
    "feather_sigma",
    "full_patches",
    "gaussian_blur",
    "interior_gradient",
    "merge_boxes",
    "normalize",
    "one_hot",
    "plan_crops",
    "run_on_crops",
]
