"""The colorizations compared in one run, all from the same converted photo.

``gray`` (ab = 0), ``general`` (one model for every category), ``expert:<name>`` (one category's
expert on the whole photo; profile variants mixed by their classifier, as in the pipeline),
``merged`` (the routed pipeline's real output) and ``oracle`` (the experts composited by the
ground-truth mask, feathered exactly as the routed merge is: what merging would give with a
perfect router). Each expert runs once per photo on the whole image;
the experts-alone rows and the oracle are built from those outputs. Every method answers in the
pipeline's style and vividness; in the vivid style, whose color choice pools over the region an
expert colors, the oracle runs each expert again with its mask region as that region.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from segcolor.color.lab import normalize_l
from segcolor.errors import SegcolorError
from segcolor.merge import composite, feather_sigma, full_patches
from segcolor.pipeline import LabImage, Pipeline
from segcolor.router.routing import Routing

from .datasets import IGNORE, REGIONS

BASELINES = ("gray", "general", "experts", "merged", "oracle")
DEFAULT_BASELINES = ",".join(BASELINES)


def parse_methods(spec: str, experts: Sequence[str]) -> list[str]:
    """``gray,general,experts,merged,oracle`` (``experts`` = every ``expert:<name>``; single
    ones may be named) -> method names in table order."""
    wanted: set[str] = set()
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if token == "experts":
            wanted.update(f"expert:{e}" for e in experts)
        elif token.startswith("expert:"):
            if token[len("expert:") :] not in experts:
                raise SegcolorError(
                    f"--baselines: {token}: the pipeline has no such expert "
                    f"(it has {', '.join(experts)})"
                )
            wanted.add(token)
        elif token in BASELINES:
            wanted.add(token)
        else:
            raise SegcolorError(
                f"--baselines: unknown method {token!r} (choose from "
                f"{', '.join(BASELINES)}, or expert:<name> with <name> in {', '.join(experts)})"
            )
    if not wanted:
        raise SegcolorError("--baselines: no methods given")
    order = ["gray", "general", *(f"expert:{e}" for e in experts), "merged", "oracle"]
    return [m for m in order if m in wanted]


class Methods:
    """Runs the chosen methods on one converted photo; returns each one's ab (1,2,h,w)."""

    def __init__(
        self, pipeline: Pipeline, names: Sequence[str], general: Pipeline | None = None
    ) -> None:
        if not pipeline.routed or pipeline.router is None:
            raise SegcolorError("evaluation needs a routed pipeline (a YAML with a segmenter)")
        if "general" in names and general is None:
            raise SegcolorError("the general baseline needs a general model checkpoint")
        if general is not None and general.working_size != pipeline.working_size:
            raise ValueError("the general model must run at the pipeline's working size")
        if general is not None and general.vividness != pipeline.vividness:
            raise ValueError("the general model must answer at the pipeline's vividness")
        if general is not None and general.style != pipeline.style:
            raise ValueError("the general model must answer in the pipeline's style")
        self.pipeline = pipeline
        self.general = general
        self.names = list(names)
        self.experts = list(pipeline.experts)  # expert index = channel in the oracle's weights
        router = pipeline.router
        self._expert_of_code = {
            code: self.experts.index(router.expert_of.get(name, router.fallback))
            for code, name in REGIONS.items()
        }
        self._expert_of_code[IGNORE] = self.experts.index(router.expert_of[router.fallback])
        self.last_routing: str = ""  # the merged output's routing summary, for per-photo rows

    @torch.inference_mode()
    def run(self, lab: LabImage, mask: np.ndarray | None) -> dict[str, torch.Tensor]:
        """ab of every method that applies (``oracle`` only with a mask)."""
        l_norm = normalize_l(lab.l_small)
        cache: dict[str, torch.Tensor] = {}
        # one segmenter pass per photo: its routing for the merge, its semantic features for
        # every model that takes them (the general model too, so the comparison is fair)
        routing = self.pipeline.route_lab(lab) if set(self.names) - {"gray"} else None
        features = routing.feature_grid if routing is not None else None

        # the vivid style chooses a color per region: an expert alone colors the whole photo
        whole = torch.ones_like(l_norm) if self.pipeline.style == "vivid" else None

        def expert(name: str, region: torch.Tensor | None = None) -> torch.Tensor:
            """The expert on the whole photo; ``region`` (1,1,h,w): where its answer is used,
            for the vivid style's per-region choice (None: the whole photo)."""
            key = name if region is None else f"{name} in its region"
            if key not in cache:
                mix = self._mix(name, lab, routing)
                # in the pipeline's style and at its vividness, as the merge answers
                ab = self.pipeline.run_expert(
                    name,
                    l_norm,
                    mix,
                    features,
                    region=whole if region is None else region,
                    style=self.pipeline.style,
                )
                cache[key] = self.pipeline.vivid(ab)
            return cache[key]

        out: dict[str, torch.Tensor] = {}
        for method in self.names:
            if method == "gray":
                out[method] = torch.zeros_like(l_norm).expand(-1, 2, -1, -1)
            elif method == "general":
                assert self.general is not None
                out[method] = self.general.predict_ab(lab, features)
            elif method.startswith("expert:"):
                out[method] = expert(method[len("expert:") :])
            elif method == "merged":
                assert routing is not None
                self.last_routing = routing.summary()
                out[method] = self.pipeline.merge_routed(lab, routing)[0]
            elif method == "oracle" and mask is not None:
                out[method] = self.oracle(lab, mask, expert)
        return out

    def _mix(self, name: str, lab: LabImage, routing: Routing | None) -> list[float] | None:
        """A profiled expert's variants mixed by its classifier, as the pipeline mixes them
        (so ``expert:places`` and the oracle color like the merge would); None otherwise."""
        gate = self.pipeline.router.gates.get(name) if self.pipeline.router else None
        if gate is None:
            return None
        if routing is not None and name in routing.profiles:
            return routing.profiles[name].mix()
        features = routing.features if routing is not None else None
        return gate.choose(lab.l_small.float(), features).mix()

    def oracle_weights(self, mask: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """(E,h,w) weights from the mask: each category's pixels to its expert, ignored ones to
        the fallback's; downsized like the lightness (area-weighted), so they stay soft."""
        index = np.zeros(mask.shape, dtype=np.int64)
        for code, expert in self._expert_of_code.items():
            index[mask == code] = expert
        hard = F.one_hot(torch.from_numpy(index), len(self.experts)).permute(2, 0, 1).float()
        if tuple(hard.shape[-2:]) != tuple(size):
            hard = F.interpolate(
                hard[None], size=size, mode="bilinear", antialias=True, align_corners=False
            )[0]
        return hard / hard.sum(0, keepdim=True).clamp_min(1e-6)

    def oracle(self, lab: LabImage, mask: np.ndarray, expert) -> torch.Tensor:
        """The experts' whole-image ab composited by the mask, with the routed merge's
        feathering (sigma) and crop-edge ramp."""
        size = tuple(lab.l_small.shape[-2:])
        weights = self.oracle_weights(mask, size).to(lab.l_small.device)
        present = [k for k in range(len(self.experts)) if bool(weights[k].any())]
        abs_full = torch.zeros(len(self.experts), 2, *size, device=weights.device)
        vivid = self.pipeline.style == "vivid"  # its color choice pools over the mask region
        for k in present:
            region = weights[k][None, None] if vivid else None
            abs_full[k] = expert(self.experts[k], region)[0].to(weights.dtype)
        patches = [p for p in full_patches(abs_full) if p.expert in present]
        sigma = feather_sigma(self.pipeline.merge.feather, size)
        ab, _ = composite(weights, patches, sigma, ramp=self.pipeline.margin(size) / 2)
        return ab[None]
