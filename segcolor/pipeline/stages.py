"""The stages' small result types, and the hooks a caller slips in between stages.

A photo walks down the stages once: read (``LabImage``) -> segment (``Semantics``) -> route
(``Routing``) -> predict (ab) -> render (RGB). ``Pipeline.run`` does the walk. A caller that
needs to adjust what flows between two stages — the video stabilizer smooths class
probabilities along the optical flow and carries colors from the previous frame — passes
``StageHooks`` instead of re-running the stages one by one itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from segcolor.pipeline.lab_image import LabImage
from segcolor.router.routing import Routing


@dataclass
class Semantics:
    """What the segmenter says of a photo, at the working resolution."""

    probs: torch.Tensor  # (1,C,h,w) class probabilities
    features: torch.Tensor | None  # (1,F,gh,gw) its last features; None if it gives none


@dataclass
class Colorized:
    """One photo through every stage."""

    lab: LabImage
    semantics: Semantics | None  # None for a single-expert pipeline
    routing: Routing | None  # None for a single-expert pipeline
    ab: torch.Tensor | None  # (1,2,h,w), working resolution, Lab units, after the hooks; None
    # when prediction was not asked
    rgb: np.ndarray | None  # (H,W,3) at the input's size; None when rendering was not asked


class StageHooks:
    """Identity by default: override a method to change what the next stage receives."""

    def on_semantics(self, lab: LabImage, semantics: Semantics) -> Semantics:
        return semantics

    def on_routing(self, lab: LabImage, routing: Routing) -> Routing:
        return routing

    def on_colors(self, lab: LabImage, ab: torch.Tensor) -> torch.Tensor:
        return ab
