"""The router: segmenter probabilities -> per-pixel soft weights over experts, and regions.

Class probabilities are summed per category (P(category | pixel)); connected regions that are
too small or too unsure are handed to the fallback category, as is any category that ends up
with no region, so the only experts that run are those of categories actually present, and a
photo where nothing is found is colored by the fallback expert alone. Profiled categories mix
their variants by their ``ProfileGate`` (``gates.py``); hand edits (``edits.py``) change
regions' categories before the weights are spread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy import ndimage

from segcolor.color.lab import rgb_to_lab
from segcolor.pipeline_config import CategorySpec, PipelineConfig, RouterOptions
from segcolor.router.edits import RoutingEdits, apply_edits
from segcolor.router.gates import ProfileChoice, ProfileGate
from segcolor.router.routing import Box, Region, Routing

_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity: a diagonal touch is the same region
_CLASS_SHARE = 0.02  # a class is "present" in a region if it is the arg-max on >= 2 % of it


class Router:
    """Segmenter probabilities -> ``Routing``, following a pipeline config's categories."""

    def __init__(
        self,
        segmenter: torch.nn.Module | None,
        categories: Sequence[CategorySpec],
        classes: Sequence[str],
        fallback: str,
        options: RouterOptions | None = None,
        gates: Mapping[str, ProfileGate] | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.gates = dict(gates or {})  # expert category -> its profile gate
        self.specs = list(categories)
        self.categories = [c.name for c in self.specs]
        self.classes = list(classes)
        self.fallback = fallback
        self.options = options or RouterOptions()
        config = PipelineConfig(categories=tuple(self.specs), fallback=fallback)
        owner = config.class_to_category(self.classes)  # raises on unknown classes
        self.class_owner = np.asarray(owner)
        matrix = torch.zeros(len(self.categories), len(self.classes))
        matrix[owner, torch.arange(len(self.classes))] = 1.0
        self.matrix = matrix  # (K, C): sums class probabilities into category probabilities
        self.expert_of = {c.name: c.name if c.has_expert else fallback for c in self.specs}

    @classmethod
    def from_config(cls, config: PipelineConfig, segmenter: torch.nn.Module) -> Router:
        config.check_classes(segmenter.classes, config.segmenter)
        gates = {c.name: ProfileGate.from_spec(c) for c in config.categories if c.profiled}
        return cls(
            segmenter,
            config.categories,
            segmenter.classes,
            config.fallback,
            config.router,
            gates=gates,
        )

    @property
    def has_features(self) -> bool:
        return self.segmenter is not None and getattr(self.segmenter, "feature_channels", 0) > 0

    @property
    def variants(self) -> dict[str, tuple[str, ...]]:
        """Profiled category -> its variants (what routing edits may pin)."""
        return {name: gate.variants for name, gate in self.gates.items()}

    def check_edits(self, edits: RoutingEdits) -> None:
        """Raise ``EditsError`` (one line) for names these categories / variants lack."""
        edits.check(self.categories, self.variants)

    @torch.inference_mode()
    def route(
        self,
        rgb: torch.Tensor,
        size: tuple[int, int] | None = None,
        edits: RoutingEdits | None = None,
    ) -> Routing:
        """RGB (1,3,h,w) in [0,1] at the working resolution -> routing for an input of ``size``,
        with the segmenter's features when it gives them (one pass for both)."""
        if self.segmenter is None:
            raise RuntimeError("this router has no segmenter; use route_probs")
        if not self.has_features:
            probs = self.segmenter.predict_proba(rgb, tta=self.options.tta)
            return self.route_probs(probs, size, gray=rgb, edits=edits)
        probs, features = self.segmenter.predict_proba_features(rgb, tta=self.options.tta)
        return self.route_probs(probs, size, gray=rgb, edits=edits, features=features)

    @torch.inference_mode()
    def route_probs(
        self,
        probs: torch.Tensor,
        size: tuple[int, int] | None = None,
        gray: torch.Tensor | None = None,
        edits: RoutingEdits | None = None,
        features: torch.Tensor | None = None,
    ) -> Routing:
        """Class probabilities (1,C,h,w) or (C,h,w) -> routing (``size`` defaults to h, w).

        ``gray`` (the photo as gray RGB, (1,3,h,w)) lets profile gates mix their variants;
        without it a profiled expert's variants are averaged. ``features`` (the segmenter's,
        (1,F,gh,gw)) travel with the routing to the experts, and to profile gates that read
        them. ``edits`` (a person's corrections, ``segcolor.router.edits``) change
        regions' categories after the regions are found and before the weights are spread, so
        the merge follows them.
        """
        if edits is not None:
            self.check_edits(edits)
        probs = probs.detach().float().cpu()
        probs = probs[0] if probs.ndim == 4 else probs
        if probs.shape[0] != len(self.classes):
            raise ValueError(f"expected {len(self.classes)} class maps, got {probs.shape[0]}")
        height, width = probs.shape[-2:]
        size = size or (height, width)
        raw = torch.einsum("kc,chw->khw", self.matrix, probs).numpy()  # P(category | pixel)
        weights = raw.copy()
        labels = weights.argmax(0)
        fb = self.categories.index(self.fallback)
        self._suppress(weights, labels, fb)
        present = np.bincount(labels.ravel(), minlength=len(self.categories)) > 0
        base_boxes = None
        if edits is not None and edits.routes:
            base_boxes = defaultdict(list)
            listed = self._listed(labels, present, base_boxes)
            region_map = np.full(labels.shape, -1, dtype=np.int32)
            for index, (_, comps, i, slc, _) in enumerate(listed):
                region_map[slc][comps[slc] == i] = index
            before = labels.copy()
            apply_edits(edits, weights, labels, region_map, len(listed), self.categories, size)
            present = self._settle_edits(weights, before, labels, present, fb)
        for k in np.flatnonzero(~present):
            if k != fb:  # soft tails of a category with no region: not worth running its expert
                weights[fb] += weights[k]
        self._confine(weights, labels, present)
        routing = self._routing(probs, raw, weights, labels, present, size)
        routing.edits = edits
        routing.base_boxes_small = None if base_boxes is None else dict(base_boxes)
        routing.features = features
        if gray is not None and self.gates:
            self.choose_profiles(routing, gray)
        if edits is not None and edits.profiles:
            self.pin_profiles(routing, edits.profiles)
        return routing

    def choose_profiles(self, routing: Routing, gray: torch.Tensor) -> None:
        """Fill ``routing.profiles`` for the profiled experts that run (in place)."""
        gated = [e for e in routing.experts if e in self.gates]
        if not gated:
            return
        lightness = rgb_to_lab(gray.float())[:, :1]
        for expert in gated:
            gate = self.gates[expert]
            if gate.reads_features:  # pooled over the pixels this category colors
                weight = routing.category_weights_small[self.categories.index(expert)]
                choice = gate.choose(lightness, routing.features, weight[None, None])
            else:
                choice = gate.choose(lightness)
            routing.profiles[expert] = choice

    def pin_profiles(self, routing: Routing, pins: Mapping[str, str]) -> None:
        """Run only the pinned variant of each pinned expert that runs (in place); P(profile)
        is still reported as the classifier said (uniform without a photo)."""
        for expert, variant in pins.items():
            if expert not in routing.experts or expert not in self.gates:
                continue
            gate = self.gates[expert]
            choice = routing.profiles.get(expert)
            probabilities = (
                choice.probabilities
                if choice is not None
                else {p: 1.0 / len(gate.profiles) for p in gate.profiles}
            )
            routing.profiles[expert] = ProfileChoice(
                expert=expert,
                probabilities=dict(probabilities),
                variants=gate.variants,
                weights={variant: 1.0},
            )

    def _suppress(self, weights: np.ndarray, labels: np.ndarray, fb: int) -> None:
        """Regions below ``min_area`` % or ``min_confidence`` go to the fallback (in place)."""
        total = labels.size
        for k in range(len(self.categories)):
            if k == fb:
                continue
            comps, n = ndimage.label(labels == k, structure=_EIGHT)
            if n == 0:
                continue
            idx = np.arange(1, n + 1)
            area = ndimage.sum_labels(np.ones_like(comps), comps, idx) * 100.0 / total
            conf = ndimage.mean(weights[k], comps, idx)
            bad = idx[(area < self.options.min_area) | (conf < self.options.min_confidence)]
            if bad.size:
                mask = np.isin(comps, bad)
                weights[fb][mask] += weights[k][mask]
                weights[k][mask] = 0.0
                labels[mask] = fb

    def _settle_edits(
        self,
        weights: np.ndarray,
        before: np.ndarray,
        labels: np.ndarray,
        present: np.ndarray,
        fb: int,
    ) -> np.ndarray:
        """After edits changed ``before`` into ``labels``: soft tails far from the edits end as
        they would have without them, so those pixels keep their colors exactly. A category the
        edits removed keeps its tail only near its old regions (as ``_confine`` would have
        left it); one they added gives its tail beyond its new regions to the fallback (as an
        absent category does). Returns the categories now present."""
        now = np.bincount(labels.ravel(), minlength=len(self.categories)) > 0
        for k in np.flatnonzero(present & ~now):
            weights[k][~self._near(before == k)] = 0.0
        for k in np.flatnonzero(now & ~present):
            if k != fb:
                far = ~self._near(labels == k)
                weights[fb][far] += weights[k][far]
                weights[k][far] = 0.0
        return now

    def _near(self, inside: np.ndarray) -> np.ndarray:
        """Pixels within ``spread`` (a square neighbourhood) of ``inside``."""
        reach = int(round(self.options.spread * min(inside.shape)))
        if reach <= 0:
            return inside
        return ndimage.maximum_filter(inside, size=2 * reach + 1, mode="constant")

    def _confine(self, weights: np.ndarray, labels: np.ndarray, present: np.ndarray) -> None:
        """Keep each category's weight within ``spread`` (a square neighbourhood) of its own
        regions, then renormalise, in place: far-away soft tails would make an expert run on
        the whole photo for a few % of weight. A pixel's own category always keeps its weight,
        so sums stay > 0."""
        for k in range(len(self.categories)):
            if not present[k]:
                weights[k] = 0.0
                continue
            weights[k][~self._near(labels == k)] = 0.0
        weights /= np.maximum(weights.sum(0, keepdims=True), 1e-12)

    def _routing(
        self,
        probs: torch.Tensor,
        raw: np.ndarray,
        weights: np.ndarray,
        labels: np.ndarray,
        present: np.ndarray,
        size: tuple[int, int],
    ) -> Routing:
        height, width = labels.shape
        sy, sx = size[0] / height, size[1] / width
        class_map = probs.numpy().argmax(0)  # faster than torch over dim 0
        experts = [
            e
            for e in dict.fromkeys(self.expert_of[c] for c in self.categories)
            if present[[self.expert_of[c] == e for c in self.categories]].any()
        ]
        expert_weights = np.zeros((len(experts), height, width), dtype=np.float32)
        for k, name in enumerate(self.categories):
            if self.expert_of[name] in experts:
                expert_weights[experts.index(self.expert_of[name])] += weights[k]
        regions: list[Region] = []
        boxes: dict[str, list[Box]] = {e: [] for e in experts}
        shares: dict[str, float] = {}
        found: dict[str, list[str]] = {}
        for k, name in enumerate(self.categories):
            if not present[k]:
                continue
            shares[name] = float((labels == k).mean() * 100.0)
            found[name] = self._classes_in(class_map[labels == k], k)
        region_map = np.full(labels.shape, -1, dtype=np.int32)
        for k, comps, i, slc, area in self._listed(labels, present, boxes):
            name = self.categories[k]
            mask = comps[slc] == i
            box = (slc[1].start, slc[0].start, slc[1].stop, slc[0].stop)
            region_map[slc][mask] = len(regions)
            regions.append(Region(
                category=name,
                expert=self.expert_of[name],
                classes=tuple(self._classes_in(class_map[slc][mask], k)),
                area=area,
                bbox=_scale_box(box, sx, sy, size),
                confidence=float(raw[k][slc][mask].mean()),
            ))  # fmt: skip
        return Routing(
            categories=list(self.categories),
            experts=experts,
            regions=regions,
            size=(int(size[0]), int(size[1])),
            fallback=self.fallback,
            category_weights_small=torch.from_numpy(weights.astype(np.float32)),
            expert_weights_small=torch.from_numpy(expert_weights),
            category_map_small=labels.astype(np.int32),
            expert_boxes_small=boxes,
            shares=shares,
            classes_found=found,
            region_map_small=region_map,
        )

    def _listed(
        self,
        labels: np.ndarray,
        present: np.ndarray,
        boxes: dict[str, list[Box]] | None = None,
    ) -> list[tuple[int, np.ndarray, int, tuple[slice, slice], float]]:
        """The regions ``Routing.regions`` lists, in its order: (category index, component
        labels, component number, its slices, area %) per region. ``boxes`` (expert -> boxes)
        also gets every component's box, listed or not."""
        fb = self.categories.index(self.fallback)
        listed = []
        for k, name in enumerate(self.categories):
            if not present[k]:
                continue
            comps, _ = ndimage.label(labels == k, structure=_EIGHT)
            for i, slc in enumerate(ndimage.find_objects(comps), start=1):
                if boxes is not None:
                    box = (slc[1].start, slc[0].start, slc[1].stop, slc[0].stop)
                    boxes[self.expert_of[name]].append(box)
                area = float((comps[slc] == i).sum() * 100.0 / labels.size)
                if k == fb and area < self.options.min_area:
                    continue  # crumbs of background between subjects: colored, not listed
                listed.append((k, comps, i, slc, area))
        listed.sort(key=lambda entry: (entry[0], -entry[4]))  # stable: scan order within ties
        return listed

    def _classes_in(self, class_ids: np.ndarray, category: int) -> list[str]:
        """Classes of ``category`` that are the arg-max on a fair share of these pixels."""
        counts = np.bincount(class_ids.ravel(), minlength=len(self.classes))
        counts[self.class_owner != category] = 0
        keep = [
            c
            for c in np.argsort(-counts, kind="stable")
            if counts[c] > 0 and counts[c] >= _CLASS_SHARE * class_ids.size
        ]
        return [self.classes[c] for c in keep]


def _scale_box(box: Box, sx: float, sy: float, size: tuple[int, int]) -> Box:
    """A working-resolution box -> the input pixels it covers."""
    x0, y0, x1, y1 = box
    return (
        int(np.floor(x0 * sx)),
        int(np.floor(y0 * sy)),
        min(size[1], int(np.ceil(x1 * sx))),
        min(size[0], int(np.ceil(y1 * sy))),
    )
