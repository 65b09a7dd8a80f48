"""Profile gates: a profiled category's classifier and how its P(profile | photo) becomes the
weights of the category's variant experts.

A category whose expert comes in color-profile variants has a ``ProfileGate``: its profile
classifier gives P(profile | photo) from the photo's lightness (or the segmenter's features), and
the variants are mixed by those probabilities (``Routing.profiles``), while P(category | pixel)
still decides where that category's (mixed) expert colors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from segcolor.pipeline_config import CategorySpec
from segcolor.profiles.classifier import load_classifier, predict_proba


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
