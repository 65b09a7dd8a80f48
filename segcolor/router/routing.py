"""The router: per-pixel soft weights over experts, and the regions behind them.

Class probabilities are summed per category (P(category | pixel)); connected regions that are
too small or too unsure are handed to the fallback category, as is any category that ends up
with no region, so the only experts that run are those of categories actually present, and a
photo where nothing is found is colored by the fallback expert alone.

Everything is computed at the working resolution; ``Routing`` resizes to the input's size only
when asked, so colorizing a 40 MP photo never allocates full-size weight maps.

A category whose expert comes in color-profile variants has a ``ProfileGate``: its profile
classifier gives P(profile | photo) from the photo's lightness, and the variants are mixed by
those probabilities (``Routing.profiles``), while P(category | pixel) still decides where that
category's (mixed) expert colors. A category with a single expert is unaffected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from segcolor.color.lab import rgb_to_lab
from segcolor.feature_grid import features_on_grid
from segcolor.pipeline_config import CategorySpec, PipelineConfig, RouterOptions
from segcolor.profiles.classifier import load_classifier, predict_proba
from segcolor.router.edits import RoutingEdits, apply_edits

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity: a diagonal touch is the same region
_CLASS_SHARE = 0.02  # a class is "present" in a region if it is the arg-max on >= 2 % of it


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


def mix_weights(
    probabilities: Mapping[str, float], variants: Sequence[str], min_probability: float
) -> dict[str, float]:
    """Weights of a category's profile variants from P(profile | photo).

    Profiles without a variant give their probability to the others (renormalised); variants
    below ``min_probability`` after that are dropped (the most likely one always stays), so
    a clear-cut photo runs one variant and an ambiguous one blends the plausible few.
    """
    p = np.array([max(float(probabilities.get(v, 0.0)), 0.0) for v in variants])
    p = p / p.sum() if p.sum() > 0 else np.full(len(variants), 1.0 / len(variants))
    keep = (p >= min_probability) | (np.arange(len(p)) == p.argmax())
    p = np.where(keep, p, 0.0)
    p = p / p.sum()
    return {v: float(w) for v, w in zip(variants, p, strict=True) if w > 0}


@dataclass(frozen=True)
class ProfileChoice:
    """How one expert's profile variants are mixed for a photo."""

    expert: str  # the category whose expert has the variants
    probabilities: dict[str, float]  # P(profile | photo), every profile the classifier knows
    variants: tuple[str, ...]  # the expert's variants, in checkpoint order
    weights: dict[str, float]  # variant -> weight in the mix (those that run; sum 1)

    @property
    def chosen(self) -> str:
        """The variant with the largest weight."""
        return max(self.weights, key=self.weights.get)

    def mix(self) -> list[float]:
        """Weights in checkpoint order (0 for variants that do not run)."""
        return [self.weights.get(v, 0.0) for v in self.variants]

    def summary(self) -> str:
        """``profile cold-blue 72%`` (``+ green 20%`` for each other variant that runs)."""
        order = sorted(self.weights, key=lambda v: -self.probabilities.get(v, 0.0))
        return "profile " + " + ".join(f"{v} {self.probabilities.get(v, 0.0):.0%}" for v in order)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "chosen_variant": self.chosen,
            "variant_weights": {k: round(v, 4) for k, v in self.weights.items()},
        }


class ProfileGate:
    """A category's profile classifier and how its probabilities become variant weights."""

    def __init__(
        self,
        expert: str,
        classifier: torch.nn.Module,
        variants: Sequence[str],
        min_probability: float = 0.3,
    ) -> None:
        self.expert = expert
        self.classifier = classifier.eval()
        self.profiles: list[str] = list(classifier.profiles)
        self.variants = tuple(variants)
        self.min_probability = min_probability

    @classmethod
    def from_spec(cls, spec: CategorySpec) -> ProfileGate:
        assert spec.classifier is not None
        return cls(spec.name, load_classifier(spec.classifier), spec.variants, spec.min_probability)

    @property
    def reads_features(self) -> bool:
        """Whether the classifier reads the segmenter's features (else the photo's lightness)."""
        return getattr(self.classifier, "inputs", "lightness") == "features"

    @torch.inference_mode()
    def choose(
        self,
        lightness: torch.Tensor,
        features: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> ProfileChoice:
        """The mix of variants for a photo: its L (1,1,h,w) in [0, 100], or for a classifier
        that reads them, the segmenter's features (1,F,gh,gw) and the category's routing
        weight (1,1,h,w) to pool them over (None: the whole photo)."""
        if next(self.classifier.parameters()).device != lightness.device:
            self.classifier.to(lightness.device)  # follow the pipeline's device
        if self.reads_features and features is None:
            raise ValueError(
                f"the {self.expert} profile classifier reads the segmenter's features, and "
                "this segmenter gives none"
            )
        probs = predict_proba(self.classifier, lightness, features, weight)
        return self.mix(dict(zip(self.profiles, probs[0].float().cpu().tolist(), strict=True)))

    def mix(self, probabilities: Mapping[str, float]) -> ProfileChoice:
        """The mix of variants for given P(profile) (e.g. averaged over a video's frames)."""
        probabilities = {p: float(probabilities[p]) for p in self.profiles}
        return ProfileChoice(
            expert=self.expert,
            probabilities=probabilities,
            variants=self.variants,
            weights=mix_weights(probabilities, self.variants, self.min_probability),
        )


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
