"""Colorize a shot so it stays steady: smooth what the segmenter sees and what the experts say.

Per frame, at the pipeline's working resolution:

1. scene cut? (``scenes``): then everything below starts afresh. A repeated frame (telecine
   duplicate, freeze) reuses the previous colors as they are;
2. motion from the previous frame and a per-pixel trust (``flow``);
3. class probabilities and the segmenter's features that every expert reads: the previous
   running means, moved along the flow, blended with this frame's (``routing_alpha`` and
   ``feature_alpha`` of the new one where the flow is trusted, all of it where not), so a
   region keeps its expert unless the picture really changes. The features matter most: their
   image-pooling branch is one vector for the whole frame, moved by any change anywhere in it,
   and measured on five real clips they carried 76 % of the frame-by-frame flicker
   (experiments/flicker_sources.py); a profiled expert's
   P(profile | frame) can be a running mean too (``profile_alpha`` of the new frame's; by
   default each frame's own: the carried colors already keep a variant swap from flickering);
4. the routed experts' ab, blended the same way with the previous result moved along the flow
   (``color_alpha``).

A pixel the flow cannot explain (occlusion, new content, a missed cut) takes the fresh
prediction, so smoothing never drags colors across moving edges. With ``enabled=False`` each
frame is colorized on its own (the naive mode), for comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from segcolor.pipeline import LabImage, Pipeline, Semantics, StageHooks
from segcolor.router.routing import Routing
from segcolor.video.flow import PRESETS, FlowEstimator, Motion
from segcolor.video.scenes import DEFAULT_CUT_THRESHOLD, CutDetector, is_repeat

PROFILE_KEY = "profile_"  # state key prefix of an expert's running P(profile)
# A new frame's weight in the carried colors where motion is trusted, by style. Faithful's 0.3:
# measured on 12 synthetic clips (see StabilizerOptions). Vivid's chosen colors move more from
# frame to frame than faithful's means, and on the same clips carrying more of them was better
# on every measure: stabilized flicker 0.880 / 0.733 / 0.677 / 0.611 and dE00 13.57 / 13.54 /
# 13.53 / 13.51 at 0.3 / 0.15 / 0.1 / 0.05 (faithful at 0.3: 0.573; research log, round 4).
COLOR_ALPHA = {"faithful": 0.3, "vivid": 0.05}


@dataclass(frozen=True)
class StabilizerOptions:
    """How strongly frames are tied together (CLI flags of ``segcolor video`` set these)."""

    enabled: bool = True
    # Weights of a new frame where the flow is trusted. bench/video_stability.py, 12 synthetic
    # pan/zoom clips with the shipped experts (naive: flicker 1.88, dE00 14.46): routing / color
    # 0.3 / 0.15 gave flicker 0.60 and dE00 14.62; 0.5 / 0.3 gave 0.83 and 14.50 with P(profile)
    # averaged at 0.5 too, and 0.89 and 14.45 with P(profile) per frame (profile_alpha 1): the
    # carried colors already steady a variant swap, and averaging P(profile) cost accuracy.
    routing_alpha: float = 0.5  # class probabilities
    # the propagated ab; None: the style's (COLOR_ALPHA: vivid carries more, its chosen colors
    # move more between frames than faithful's means)
    color_alpha: float | None = None
    profile_alpha: float = 1.0  # a profiled expert's P(profile | frame); 1 = each frame's own
    # the segmenter's features the experts read; 0.1 measured best of 0.1/0.3 on real clips
    feature_alpha: float = 0.1
    cut_threshold: float = DEFAULT_CUT_THRESHOLD  # scene-cut score above which state resets
    flow_preset: str = "medium"  # DIS preset: ultrafast, fast, medium
    flow_tolerance: float = 1.0  # px of forward-backward disagreement where trust is 1/e
    lightness_tolerance: float = 2.5  # L units of motion-compensated change where trust is 1/e

    def __post_init__(self) -> None:
        for name in ("routing_alpha", "color_alpha", "profile_alpha", "feature_alpha"):
            value = getattr(self, name)
            if value is None and name == "color_alpha":
                continue
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if not 0.0 < self.cut_threshold <= 1.0:  # cut scores lie in [0, 1]; 1 never cuts
            raise ValueError(f"cut_threshold must be in (0, 1], got {self.cut_threshold}")
        if self.flow_preset not in PRESETS:
            raise ValueError(f"flow_preset must be one of {', '.join(PRESETS)}")
        if self.flow_tolerance <= 0 or self.lightness_tolerance <= 0:
            raise ValueError("flow and lightness tolerances must be positive")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def color_weight(self, style: str) -> float:
        """The weight of a new frame's colors where motion is trusted, for ``style``."""
        return self.color_alpha if self.color_alpha is not None else COLOR_ALPHA[style]


@dataclass
class FrameResult:
    """One colorized frame and what produced it."""

    rgb: np.ndarray | None  # (H,W,3) float RGB in [0,1]; None when only routing was asked for
    ab: torch.Tensor | None  # (1,2,h,w) ab at the working resolution, Lab units
    routing: Routing | None  # None for a single-expert pipeline
    cut: bool  # this frame starts a new shot (always true for the first frame)
    cut_score: float
    trust: float  # mean trust in the previous frame (0 at a cut)
    repeat: bool = False  # a duplicate of the previous frame: its colors were reused


class Stabilizer:
    """Stateful, frame by frame; ``state``/``load_state`` let a run resume exactly."""

    def __init__(self, pipeline: Pipeline, options: StabilizerOptions | None = None) -> None:
        self.pipeline = pipeline
        self.options = options or StabilizerOptions()
        self.cuts = CutDetector(self.options.cut_threshold)
        self.flow = FlowEstimator(
            self.options.flow_preset, self.options.flow_tolerance, self.options.lightness_tolerance
        )
        self._lightness: np.ndarray | None = None  # previous frame's working-resolution L
        self._probs: torch.Tensor | None = None  # running class probabilities (1,C,h,w)
        self._ab: torch.Tensor | None = None  # previous result's ab (1,2,h,w)
        self._features: torch.Tensor | None = None  # running segmenter features (1,F,gh,gw)
        self._profiles: dict[str, np.ndarray] = {}  # expert -> running P(profile), gate order

    def reset(self) -> None:
        self.cuts.reset()
        self._lightness = self._probs = self._ab = self._features = None
        self._profiles = {}

    @torch.inference_mode()
    def process(self, frame: np.ndarray, colorize: bool = True) -> FrameResult:
        """Colorize the next frame (uint8 or float RGB, or gray). ``colorize=False`` only
        routes it (for timelines): the experts do not run and colors are not carried on."""
        lab = self.pipeline.lab(frame)
        lightness = lab.l_small[0, 0].float().cpu().numpy()
        cut = self.cuts.update(lightness)
        if not cut and self._can_repeat(colorize) and is_repeat(self._lightness, lightness):
            return self._repeat(lab, colorize)
        motion = None
        if self.options.enabled and not cut and self._lightness is not None:
            motion = self.flow.motion(self._lightness, lightness, self.pipeline.device)
        self._lightness = lightness
        result = self.pipeline.run(
            lab, hooks=_Steadying(self, motion), predict=colorize, render=colorize
        )
        return FrameResult(
            rgb=result.rgb,
            ab=result.ab,
            routing=result.routing,
            cut=cut,
            cut_score=self.cuts.score,
            trust=motion.mean_trust if motion is not None else 0.0,
        )

    def _can_repeat(self, colorize: bool) -> bool:
        if not self.options.enabled or self._lightness is None:
            return False
        if self.pipeline.routed and self._probs is None:
            return False
        return not colorize or self._ab is not None

    def _repeat(self, lab: LabImage, colorize: bool) -> FrameResult:
        """A duplicate frame keeps the previous colors (and routing): identical input, identical
        output, and neither segmenter nor experts run. The next frame is still compared with
        the frame those colors were made for, so a slow change cannot creep by unnoticed. Only
        saved state is used, so a resumed run repeats exactly as an uninterrupted one."""
        routing = self.pipeline.route_probs(lab, self._probs) if self.pipeline.routed else None
        if routing is not None:
            self._steady_profiles(routing, update=False)
        ab = self._ab if colorize else None
        rgb = Pipeline.to_rgb(lab, ab) if ab is not None else None
        return FrameResult(rgb, ab, routing, False, self.cuts.score, trust=1.0, repeat=True)

    def _steady_profiles(self, routing: Routing, update: bool, fresh: bool = False) -> None:
        """Replace each profiled expert's per-frame P(profile) by the shot's running mean (in
        place); ``fresh`` (a cut, the first frame) restarts it, ``update=False`` only reads it."""
        gates = self.pipeline.router.gates if self.pipeline.router is not None else {}
        for expert, choice in list(routing.profiles.items()):
            gate = gates[expert]
            now = np.array([choice.probabilities[p] for p in gate.profiles])
            mean = self._profiles.get(expert)
            if update:
                alpha = self.options.profile_alpha
                mean = now if fresh or mean is None else mean + alpha * (now - mean)
                self._profiles[expert] = mean
            elif mean is None:
                continue
            routing.profiles[expert] = gate.mix(
                dict(zip(gate.profiles, mean.tolist(), strict=True))
            )

    # ---------------------------------------------------------------- resume

    def state(self) -> dict[str, np.ndarray]:
        """Everything the next frame depends on, as arrays (saved at chunk boundaries)."""
        out = dict(self.cuts.state())
        if self._lightness is not None:
            out["lightness"] = self._lightness
        for name, value in (("probs", self._probs), ("ab", self._ab), ("features", self._features)):
            if value is not None:
                out[name] = value.float().cpu().numpy()
        for expert, mean in self._profiles.items():
            out[PROFILE_KEY + expert] = mean
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.reset()
        self.cuts.load_state(state)
        device = self.pipeline.device
        self._lightness = state.get("lightness")
        if "probs" in state:
            self._probs = torch.from_numpy(np.array(state["probs"])).to(device)
        if "ab" in state:
            self._ab = torch.from_numpy(np.array(state["ab"])).to(device)
        if "features" in state:
            self._features = torch.from_numpy(np.array(state["features"])).to(device)
        self._profiles = {
            key[len(PROFILE_KEY) :]: np.array(value)
            for key, value in state.items()
            if key.startswith(PROFILE_KEY)
        }


class _Steadying(StageHooks):
    """One frame's smoothing, slipped in between the pipeline's stages: class probabilities
    and colors blended with the previous frame's moved along ``motion`` (None: a cut or the
    first frame, nothing carried), a profiled expert's P(profile) replaced by the shot's
    running mean. The stabilizer's state is updated as the frame goes through."""

    def __init__(self, stabilizer: Stabilizer, motion: Motion | None) -> None:
        self.stabilizer = stabilizer
        self.options = stabilizer.options
        self.motion = motion

    def on_semantics(self, lab: LabImage, semantics: Semantics) -> Semantics:
        if not self.options.enabled:
            return semantics
        probs, carried, motion = semantics.probs, self.stabilizer._probs, self.motion
        if motion is not None and carried is not None:
            probs = _blend(motion.warp(carried), probs, motion, self.options.routing_alpha)
        self.stabilizer._probs = probs
        features, carried = semantics.features, self.stabilizer._features
        if features is not None:
            if motion is not None and carried is not None:
                on_grid = motion.resized(tuple(features.shape[-2:]))
                features = _blend(
                    on_grid.warp(carried), features, on_grid, self.options.feature_alpha
                )
            self.stabilizer._features = features
        return Semantics(probs, features)

    def on_routing(self, lab: LabImage, routing: Routing) -> Routing:
        if self.options.enabled:
            self.stabilizer._steady_profiles(routing, update=True, fresh=self.motion is None)
        return routing

    def on_colors(self, lab: LabImage, ab: torch.Tensor) -> torch.Tensor:
        if not self.options.enabled:
            return ab
        carried, motion = self.stabilizer._ab, self.motion
        if motion is not None and carried is not None:
            alpha = self.options.color_weight(self.stabilizer.pipeline.style)
            ab = _blend(motion.warp(carried), ab, motion, alpha)
        self.stabilizer._ab = ab
        return ab


def _blend(
    carried: torch.Tensor, fresh: torch.Tensor, motion: Motion, alpha: float
) -> torch.Tensor:
    """``alpha`` of the fresh value where the carried one is fully trusted, all of it where the
    flow cannot explain the pixel."""
    weight = 1.0 - (1.0 - alpha) * motion.trust.to(fresh.dtype)
    return carried.to(fresh.dtype) + weight * (fresh - carried.to(fresh.dtype))
