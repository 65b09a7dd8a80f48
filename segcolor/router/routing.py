"""A routing: which expert colors which pixels of one image, and the regions behind it.

Everything is kept at the working resolution; ``Routing`` resizes to the input's size only when
asked, so colorizing a 40 MP photo never allocates full-size weight maps. ``Router``
(``router.py``) makes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segcolor.feature_grid import features_on_grid
from segcolor.router.edits import RoutingEdits
from segcolor.router.gates import ProfileChoice

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive


@dataclass(frozen=True)
class Region:
    """One connected region of the category map."""

    category: str
    expert: str  # the category whose expert colors it (itself, or the fallback)
    classes: tuple[str, ...]  # segmenter classes found in it, most frequent first
    area: float  # % of the image
    bbox: Box  # in input pixels
    confidence: float  # mean P(category) over the region, as the segmenter said

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "expert": self.expert,
            "classes": list(self.classes),
            "area_percent": round(self.area, 2),
            "bbox_xyxy": list(self.bbox),
            "confidence": round(self.confidence, 3),
        }


@dataclass
class Routing:
    """Which expert colors which pixels of one image.

    ``category_map`` and ``weights`` are at the input's size; ``*_small`` fields are the
    working-resolution originals that the pipeline uses.
    """

    categories: list[str]
    experts: list[str]  # experts that run, in category order
    regions: list[Region]
    size: tuple[int, int]  # input (H, W)
    fallback: str
    category_weights_small: torch.Tensor = field(repr=False)  # (K,h,w), sums to 1 per pixel
    expert_weights_small: torch.Tensor = field(repr=False)  # (E,h,w), sums to 1 per pixel
    category_map_small: np.ndarray = field(repr=False)  # (h,w) int
    expert_boxes_small: dict[str, list[Box]] = field(repr=False)  # every component, working px
    shares: dict[str, float] = field(default_factory=dict)  # % of the image per category
    classes_found: dict[str, list[str]] = field(default_factory=dict)
    profiles: dict[str, ProfileChoice] = field(default_factory=dict)  # expert -> variant mix
    # the segmenter's semantic features (1,F,gh,gw) on its own grid spanning the working image
    features: torch.Tensor | None = field(default=None, repr=False)
    # (h,w) index into ``regions`` of each working pixel (-1: background crumbs, not listed)
    region_map_small: np.ndarray | None = field(default=None, repr=False)
    edits: RoutingEdits | None = field(default=None, repr=False)  # applied, if any
    # with edits: the unedited routing's boxes per expert; see ``box_groups``
    base_boxes_small: dict[str, list[Box]] | None = field(default=None, repr=False)

    def box_groups(self, expert: str) -> list[list[Box]]:
        """``expert``'s boxes in groups whose crops are planned apart: all of them, or with
        edits the unedited routing's boxes (kept even where edits took their region away) and
        then the boxes edits made, so regions the edits left alone get the very crops, and
        colors, they had before."""
        boxes = self.expert_boxes_small[expert]
        if self.base_boxes_small is None:
            return [boxes]
        base = self.base_boxes_small.get(expert, [])
        return [group for group in (base, [b for b in boxes if b not in base]) if group]

    def region_at(self, x: float, y: float) -> int | None:
        """The index in ``regions`` of the region under input pixel (x, y), or None."""
        if self.region_map_small is None:
            return None
        height, width = self.working_size
        row = min(height - 1, max(0, int(y * height / self.size[0])))
        col = min(width - 1, max(0, int(x * width / self.size[1])))
        index = int(self.region_map_small[row, col])
        return index if index >= 0 else None

    @cached_property
    def feature_grid(self) -> torch.Tensor | None:
        """``features`` at the experts' stride-8 cells of the working image (1,F,h/8,w/8)."""
        if self.features is None:
            return None
        return features_on_grid(self.features, self.working_size)

    def mix(self, expert: str) -> list[float] | None:
        """Weights of ``expert``'s checkpoints (profile variants), or None: their plain mean."""
        choice = self.profiles.get(expert)
        return None if choice is None else choice.mix()

    @property
    def working_size(self) -> tuple[int, int]:
        return tuple(self.category_map_small.shape)  # type: ignore[return-value]

    def _upsample(self, maps: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        size = tuple(size or self.size)
        if tuple(maps.shape[-2:]) == size:
            return maps
        return F.interpolate(maps[None], size=size, mode="bilinear", align_corners=False)[0]

    def category_map_at(self, size: tuple[int, int]) -> np.ndarray:
        """The category map at any (H, W), e.g. a preview size smaller than the photo."""
        if tuple(self.category_map_small.shape) == tuple(size):
            return self.category_map_small
        return self._upsample(self.category_weights_small, size).argmax(0).numpy().astype(np.int32)

    @cached_property
    def category_map(self) -> np.ndarray:
        """(H, W) index into ``categories``: the arg-max of the soft weights, at input size."""
        return self.category_map_at(self.size)

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        """Expert name -> (H, W) soft weight at input size; they sum to 1 at every pixel."""
        full = self._upsample(self.expert_weights_small).numpy()
        return {name: full[i] for i, name in enumerate(self.experts)}

    def summary(self) -> str:
        """``people 23% (person), animals 11% (dog), places 66%``: categories in config order,
        the fallback ("everything else") last."""
        parts = []
        order = [c for c in self.categories if c != self.fallback] + [self.fallback]
        for name in order:
            share = self.shares.get(name, 0.0)
            if share <= 0:
                continue
            text = f"{name} {share:.0f}%" if share >= 0.5 else f"{name} <1%"
            found = [c for c in self.classes_found.get(name, []) if c != "background"]
            if name in self.profiles:
                found.append(self.profiles[name].summary())
            parts.append(f"{text} ({', '.join(found)})" if found else text)
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        weights_small = self.expert_weights_small
        return {
            "size": {"height": self.size[0], "width": self.size[1]},
            "working_size": {"height": self.working_size[0], "width": self.working_size[1]},
            "categories": self.categories,
            "fallback": self.fallback,
            "summary": self.summary(),
            "shares_percent": {k: round(v, 2) for k, v in self.shares.items()},
            "experts": [
                {
                    "category": name,
                    "mean_weight": round(float(weights_small[i].mean()), 4),
                    "boxes_working_xyxy": [list(b) for b in self.expert_boxes_small[name]],
                }
                for i, name in enumerate(self.experts)
            ],
            "regions": [r.to_dict() for r in self.regions],
            **({"edits": self.edits.to_dict()} if self.edits is not None else {}),
            **(
                {"profiles": {name: c.to_dict() for name, c in self.profiles.items()}}
                if self.profiles
                else {}
            ),
        }
