"""``Pipeline``: the models of one colorizer and the stages a photo walks through.

    read (``lab``) -> segment (``segment``) -> route (``route_semantics``) -> predict
    (``predict``: the experts on their regions' crops, composited) -> render (``to_rgb``)

``run`` walks them once, with optional ``StageHooks`` between stages; ``colorize`` and the
commands are ``run`` with defaults. The input's own full-resolution lightness is kept; only ab is
predicted, at a bounded working resolution, then upsampled and joined with L, so memory stays
bounded for any input size and the output's L equals the input's. With a router
(``from_config``) only the experts of categories present run, each on the boxes of its regions
plus a context margin; with a single expert (``from_expert``) every pixel uses that expert.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from segcolor.color.lab import AB_SCALE, lab_to_rgb, normalize_l
from segcolor.color.recombine import recombine_bands
from segcolor.color.vivid import VividOptions
from segcolor.device import preferred_memory_format, select_device
from segcolor.errors import ConfigError, SegcolorError, WeightsNotFoundError
from segcolor.experts import Expert, load_expert
from segcolor.feature_grid import FEATURE_STRIDE, features_on_grid
from segcolor.merge import Patch, composite, feather_sigma, plan_crops, run_on_crops
from segcolor.merge.spread import SpreadOptions, spread_hints
from segcolor.pipeline.lab_image import LabImage, as_float_rgb, to_uint8
from segcolor.pipeline.stages import Colorized, Semantics, StageHooks
from segcolor.pipeline_config import (
    DEFAULT_SEGMENTER,
    DEFAULT_STYLE,
    DEFAULT_VIVIDNESS,
    DEFAULT_WORKING_SIZE,
    MergeOptions,
    PipelineConfig,
    load_pipeline_config,
    style_problem,
)
from segcolor.router.edits import RoutingEdits
from segcolor.router.hints import hint_map, hint_masks
from segcolor.router.router import Router
from segcolor.router.routing import Routing
from segcolor.router.segmenters import create_segmenter

# expert's ab over one batch of crops, keyed by (expert, variant mix, boxes): reused when a
# photo is re-routed by hand and that expert's crops did not change (``segcolor serve``)
PatchCache = dict[tuple, torch.Tensor]

SHIPPED_DIR = Path(__file__).parent.parent / "weights"  # experts trained by the project, fp16
DEFAULT_PIPELINE = SHIPPED_DIR / "pipeline.yaml"
GENERAL_EXPERT = SHIPPED_DIR / "general.safetensors"  # one model for all categories

log = logging.getLogger(__name__)


@dataclass
class Analysis:
    """Everything ``segcolor inspect`` shows about one photo (arrays at the input's size)."""

    routing: Routing
    gray: np.ndarray  # (H,W) uint8, what the pipeline saw (the input's lightness)
    colorized: np.ndarray  # (H,W,3) uint8, the pipeline's result
    expert_images: dict[str, np.ndarray] = field(default_factory=dict)  # each expert alone
    merge_weights: dict[str, np.ndarray] = field(default_factory=dict)  # weights used, (h,w)


class Pipeline:
    """Colorize photos: route each region to its category's expert, or use a single expert."""

    def __init__(
        self,
        expert: Expert | None = None,
        device: torch.device | str | None = None,
        working_size: int = DEFAULT_WORKING_SIZE,
        *,
        router: Router | None = None,
        experts: Mapping[str, Expert | Sequence[Expert]] | None = None,
        merge: MergeOptions | None = None,
        config: PipelineConfig | None = None,
        feature_source: torch.nn.Module | None = None,
        vividness: float = DEFAULT_VIVIDNESS,
        style: str = DEFAULT_STYLE,
        vivid: VividOptions | None = None,
    ) -> None:
        if (expert is None) == (router is None):
            raise ValueError("give either one expert, or a router and its experts")
        problem = style_problem(style)
        if problem:
            raise ConfigError(f"style {problem}")
        # faithful: the experts' regression; vivid: colors chosen per region from their
        # 313-bin heads (segcolor.color.vivid); experts without that head answer faithfully
        self.style = style
        self.vivid_options = vivid or (config.vivid if config is not None else VividOptions())
        # how color hints spread past their pixels, after the merge (segcolor.merge.spread)
        self.spread_options = SpreadOptions(**(config.hint_spread if config is not None else {}))
        self.device = select_device(device)
        self.working_size = working_size
        # a chroma gain on every answer: colors the user finds muted (or loud) without
        # retraining; it trades PSNR for colorfulness (README, "Vividness")
        self.vividness = vividness
        self._memory_format = preferred_memory_format(self.device)
        self.expert = self._prepare(expert) if expert is not None else None
        self.router = router
        # a single expert trained with the router's semantic features gets them from here
        self.feature_source = feature_source
        if feature_source is not None:
            feature_source.to(self.device).eval()
        self.merge = merge or MergeOptions()
        self.config = config  # the YAML it was built from, if any
        self.experts: dict[str, list[Expert]] = {}
        for name, models in (experts or {}).items():
            group = [models] if isinstance(models, Expert) else list(models)
            self.experts[name] = [self._prepare(m) for m in group]
        if router is not None:
            if router.segmenter is not None:
                router.segmenter.to(self.device).eval()
            missing = sorted(set(router.expert_of.values()) - set(self.experts))
            if missing:
                raise ConfigError(f"no expert loaded for category {missing[0]!r}")

    def _prepare(self, expert: Expert) -> Expert:
        return expert.to(self.device, memory_format=self._memory_format).eval()

    @classmethod
    def from_expert(
        cls,
        path: str | Path,
        device: torch.device | str | None = None,
        working_size: int = DEFAULT_WORKING_SIZE,
        *,
        features: bool = True,
        vividness: float = DEFAULT_VIVIDNESS,
        style: str = DEFAULT_STYLE,
    ) -> Pipeline:
        """One expert for every pixel. An expert that takes the router's semantic features gets
        them from the default segmenter; without its weights (or with ``features=False``) it
        runs without them (warned), coloring less well."""
        expert = load_expert(path)
        source = None
        if expert.uses_features and features:
            try:
                source = create_segmenter(DEFAULT_SEGMENTER)
            except WeightsNotFoundError as err:
                log.warning(
                    "segcolor: warning: no segmenter, so %s runs without its semantic features "
                    "(colors are poorer): %s",
                    Path(path).name,
                    err,
                )
        return cls(
            expert,
            device=device,
            working_size=working_size,
            feature_source=source,
            vividness=vividness,
            style=style,
        )

    @classmethod
    def from_config(
        cls,
        path: str | Path,
        device: torch.device | str | None = None,
        working_size: int | None = None,
        vividness: float | None = None,
        style: str | None = None,
    ) -> Pipeline:
        """Build the routed pipeline a YAML describes (``configs/pipeline.yaml`` documents it);
        ``working_size``, ``vividness`` and ``style`` None keep the YAML's."""
        config = load_pipeline_config(path)
        segmenter = create_segmenter(
            config.segmenter, weights=config.segmenter_weights, gray_head=config.segmenter_head
        )
        router = Router.from_config(config, segmenter)
        experts = {
            spec.name: [load_expert(p) for p in spec.checkpoints]
            for spec in config.categories
            if spec.has_expert and spec.name in router.expert_of.values()
        }
        return cls(
            device=device,
            working_size=working_size or config.working_size,
            router=router,
            experts=experts,
            merge=config.merge,
            config=config,
            vividness=config.vividness if vividness is None else vividness,
            style=config.style if style is None else style,
        )

    @classmethod
    def default(
        cls,
        device: torch.device | str | None = None,
        working_size: int | None = None,
        *,
        require_router: bool = False,
        vividness: float | None = None,
        style: str | None = None,
    ) -> Pipeline:
        """The shipped pipeline: the segmenter routes regions to the shipped experts.

        The segmenter ships in the package; an install without it (or whose copy fails its
        sha256) logs a one-line warning and colors every pixel with the shipped general model
        instead, unless
        ``require_router`` (``segcolor inspect``, which is about routing) asks for the error.
        """
        if not DEFAULT_PIPELINE.is_file():
            raise SegcolorError(
                "this install has no shipped experts (segcolor/weights/pipeline.yaml is missing): "
                "reinstall segcolor, or pass --pipeline YAML / --expert CKPT",
                DEFAULT_PIPELINE,
            )
        try:
            return cls.from_config(
                DEFAULT_PIPELINE,
                device=device,
                working_size=working_size,
                vividness=vividness,
                style=style,
            )
        except WeightsNotFoundError as err:
            if require_router:
                raise
            log.warning(
                "segcolor: warning: no segmenter, so no routing: every region gets the general "
                "model, without semantic features (%s)",
                err,
            )
            config = load_pipeline_config(DEFAULT_PIPELINE)
            return cls.from_expert(
                GENERAL_EXPERT,
                device=device,
                working_size=working_size or config.working_size,
                features=False,
                vividness=config.vividness if vividness is None else vividness,
                style=config.style if style is None else style,
            )

    @classmethod
    def load(
        cls,
        config: str | Path | None = None,
        expert: str | Path | None = None,
        *,
        device: torch.device | str | None = None,
        working_size: int | None = None,
        require_router: bool = False,
        vividness: float | None = None,
        style: str | None = None,
    ) -> Pipeline:
        """The pipeline a command line names: a YAML, else one expert, else the shipped one
        (``require_router``: see ``default``). ``working_size``, ``vividness`` and ``style``
        None keep the YAML's."""
        if config:
            return cls.from_config(
                config, device=device, working_size=working_size, vividness=vividness, style=style
            )
        if expert:
            size = working_size or DEFAULT_WORKING_SIZE
            gain = DEFAULT_VIVIDNESS if vividness is None else vividness
            return cls.from_expert(
                expert,
                device=device,
                working_size=size,
                vividness=gain,
                style=style or DEFAULT_STYLE,
            )
        return cls.default(
            device, working_size, require_router=require_router, vividness=vividness, style=style
        )

    @property
    def routed(self) -> bool:
        return self.router is not None

    def lab(self, image: np.ndarray) -> LabImage:
        """The photo converted to Lab once (accepts what ``colorize`` accepts)."""
        return LabImage.from_rgb(as_float_rgb(image), self.working_size, self.device)

    # ------------------------------------------------------------------ routing

    @staticmethod
    def gray_rgb(lab: LabImage) -> torch.Tensor:
        """The working-resolution lightness as gray RGB (1,3,h,w): what the segmenter sees."""
        zeros = torch.zeros_like(lab.l_small)
        return lab_to_rgb(torch.cat([lab.l_small, zeros, zeros], dim=1))

    @torch.inference_mode()
    def class_probs(self, lab: LabImage) -> torch.Tensor:
        """The segmenter's class probabilities (1,C,h,w) at the working resolution.

        With ``route_probs`` this splits ``route_lab`` in two, so a caller (video) can smooth
        the probabilities before they become regions.
        """
        if self.router is None or self.router.segmenter is None:
            raise SegcolorError("this pipeline has a single expert and no segmenter")
        return self.router.segmenter.predict_proba(self.gray_rgb(lab), tta=self.router.options.tta)

    @torch.inference_mode()
    def segment(self, lab: LabImage) -> Semantics:
        """The segment stage: class probabilities and the segmenter's features from one pass
        (features None when the router does not use them)."""
        if self.router is None or self.router.segmenter is None:
            raise SegcolorError("this pipeline has a single expert and no segmenter")
        if not self.router.has_features:
            return Semantics(self.class_probs(lab), None)
        probs, features = self.router.segmenter.predict_proba_features(
            self.gray_rgb(lab), tta=self.router.options.tta
        )
        return Semantics(probs, features)

    @torch.inference_mode()
    def route_probs(
        self,
        lab: LabImage,
        probs: torch.Tensor,
        features: torch.Tensor | None = None,
        edits: RoutingEdits | None = None,
    ) -> Routing:
        """Routing of a converted photo from (possibly smoothed) class probabilities."""
        if self.router is None:
            raise SegcolorError("this pipeline has a single expert and no router")
        gray = self.gray_rgb(lab)
        return self.router.route_probs(
            probs, size=lab.size, gray=gray, edits=edits, features=features
        )

    def route_semantics(
        self, lab: LabImage, semantics: Semantics, edits: RoutingEdits | None = None
    ) -> Routing:
        """The route stage: regions, experts and weights from what the segmenter said."""
        return self.route_probs(lab, semantics.probs, semantics.features, edits)

    def _check_edits(self, edits: RoutingEdits | None) -> None:
        if edits is not None and edits.routes and self.router is None:
            raise SegcolorError("routing edits need a routed pipeline (one expert has no routing)")

    @torch.inference_mode()
    def route_lab(self, lab: LabImage, edits: RoutingEdits | None = None) -> Routing:
        """Routing of a converted photo; the segmenter sees its lightness as gray RGB.
        ``edits``: corrections by hand (``segcolor.router.edits``)."""
        if self.router is None:
            raise SegcolorError("this pipeline has a single expert and no router to inspect")
        return self.router.route(self.gray_rgb(lab), size=lab.size, edits=edits)

    def route(self, image: np.ndarray, edits: RoutingEdits | None = None) -> Routing:
        """Which expert colors which pixels: ``.categories``, ``.category_map``, ``.weights``
        (per expert, at the input's size) and ``.regions``."""
        return self.route_lab(self.lab(image), edits)

    # ------------------------------------------------------------------ colorization

    def margin(self, size: tuple[int, int]) -> int:
        """Context around each region's box. An expert's weight reaches ``spread`` beyond its
        regions and feathering adds about 3 sigma, so crops at least that much larger cut no
        visible weight; ``merge.margin`` adds context so the crop's colors match a full run."""
        assert self.router is not None
        sigma = feather_sigma(self.merge.feather, size)
        reach = self.router.options.spread * min(size)
        return max(self.merge.margin, math.ceil(reach + 3.0 * sigma))

    def run_expert(
        self,
        name: str,
        l_norm: torch.Tensor,
        mix: Sequence[float] | None = None,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
        region: torch.Tensor | None = None,
        style: str = DEFAULT_STYLE,
    ) -> torch.Tensor:
        """A category's expert (several checkpoints: the mean of their ab) -> ab in Lab units.

        ``mix`` weights the checkpoints instead (profile variants: ``Routing.mix(name)``);
        checkpoints of weight 0 are not run. ``features``: the router's, on the stride-8 grid
        of ``l_norm`` (``Routing.feature_grid``), for experts that take them. ``hints``
        (B,3,h,w): color hints, for experts that take them; ``style``: faithful or vivid, whose
        color choice pools over ``region`` (B,1,h,w: where this expert's answer is used).
        """
        models = self.experts[name]

        def answer(model: Expert) -> torch.Tensor:
            return model(l_norm, features, hints, style, region, self.vivid_options)

        weights = [1.0] * len(models) if mix is None else list(mix)
        used = [(m, w) for m, w in zip(models, weights, strict=True) if w > 0]
        total = answer(used[0][0]) * used[0][1]
        for model, weight in used[1:]:
            total = total + answer(model) * weight
        return total * (AB_SCALE / sum(w for _, w in used))

    def expert_patches(
        self, lab: LabImage, routing: Routing, cache: PatchCache | None = None
    ) -> list[Patch]:
        """Each present expert's ab over the boxes of its regions (plus margin), batched.

        ``cache`` (one per photo) keeps each batch's ab by expert, variant mix and boxes, so a
        photo re-routed by hand reruns only the experts whose crops changed; a cached batch is
        the same tensor a fresh run gives (same crops, same batch)."""
        l_norm = normalize_l(lab.l_small)
        size = tuple(l_norm.shape[-2:])
        margin = self.margin(size)
        style = self.style_for(routing.edits)
        hints = self.hints_for(lab, routing.edits)
        regions = routing.expert_weights_small.to(self.device) if style == "vivid" else None
        patches: list[Patch] = []
        for index, name in enumerate(routing.experts):
            multiple = max(m.size_multiple for m in self.experts[name])
            batches = [
                batch
                for group in routing.box_groups(name)
                for batch in plan_crops(group, size, margin, multiple)
            ]
            mix = routing.mix(name)
            region = None if regions is None else regions[index][None, None]
            for batch in batches:
                key = (name, None if mix is None else tuple(mix), tuple(batch), style)
                key += (_hints_key(hints, batch),)
                if cache is not None and key in cache:
                    patches += [
                        Patch(index, box, ab) for box, ab in zip(batch, cache[key], strict=True)
                    ]
                    continue
                ran = run_on_crops(
                    lambda x, f=None, name=name, mix=mix, **maps: self.run_expert(
                        name, x, mix, f, style=style, **maps
                    ),
                    l_norm,
                    [batch],
                    index,
                    features=routing.feature_grid,
                    stride=FEATURE_STRIDE,
                    maps={"hints": hints, "region": region},
                )
                if cache is not None:
                    cache[key] = torch.stack([p.ab for p in ran])
                patches += ran
        return patches

    @torch.inference_mode()
    def merge_routed(
        self, lab: LabImage, routing: Routing, cache: PatchCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ab (1,2,h,w) in Lab units and the weights used (E,h,w); ``cache``: see
        ``expert_patches``."""
        patches = self.expert_patches(lab, routing, cache)
        weights = routing.expert_weights_small.to(self.device)
        size = tuple(weights.shape[-2:])
        sigma = feather_sigma(self.merge.feather, size)
        ab, used = composite(weights, patches, sigma, ramp=self.margin(size) / 2)
        ab = self.vivid(ab[None], routing.edits)
        return self.spread(lab, ab, routing.edits, weights), used

    def style_for(self, edits: RoutingEdits | None = None) -> str:
        """The style a photo gets: its own if its edits give one, else the pipeline's."""
        if edits is not None and edits.style is not None:
            return edits.style
        return self.style

    def hints_for(self, lab: LabImage, edits: RoutingEdits | None) -> torch.Tensor | None:
        """The edits' color hints at the working size (1,3,h,w), or None."""
        if edits is None or not edits.hints:
            return None
        return hint_map(edits.hints, lab.size, tuple(lab.l_small.shape[-2:]), self.device)

    def spread(
        self,
        lab: LabImage,
        ab: torch.Tensor,
        edits: RoutingEdits | None,
        regions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ab with the edits' color hints spread over what looks like the same thing (near,
        of a similar lightness, in the same region: ``regions``, the routing weights)."""
        if edits is None or not edits.hints:
            return ab
        masks, colors = hint_masks(edits.hints, lab.size, tuple(lab.l_small.shape[-2:]))
        return spread_hints(ab, lab.l_small, masks, colors, regions, self.spread_options)

    def vividness_for(self, edits: RoutingEdits | None = None) -> float:
        """The chroma gain a photo gets: its own if its edits give one, else the pipeline's."""
        if edits is not None and edits.vividness is not None:
            return edits.vividness
        return self.vividness

    def vivid(self, ab: torch.Tensor, edits: RoutingEdits | None = None) -> torch.Tensor:
        """The answer at ``vividness_for(edits)`` (colors leaving the gamut are mapped back to
        it when joined with L)."""
        gain = self.vividness_for(edits)
        return ab if gain == 1.0 else ab * gain

    @torch.inference_mode()
    def single_features(self, lab: LabImage) -> torch.Tensor | None:
        """A single feature-taking expert's semantic input, from ``feature_source``."""
        if self.feature_source is None:
            return None
        _, features = self.feature_source.forward_features(self.gray_rgb(lab))
        return features_on_grid(features, tuple(lab.l_small.shape[-2:]))

    @torch.inference_mode()
    def predict_ab(
        self,
        lab: LabImage,
        features: torch.Tensor | None = None,
        edits: RoutingEdits | None = None,
    ) -> torch.Tensor:
        """ab (1,2,h,w) at the working resolution, in Lab units. ``features`` (a single
        expert): the router's grid features when the caller already has them. ``edits``:
        routing corrections (routed pipelines only)."""
        self._check_edits(edits)
        if self.router is None:
            assert self.expert is not None
            if features is None and self.expert.uses_features:
                features = self.single_features(lab)
            hints, style = self.hints_for(lab, edits), self.style_for(edits)
            ab = self.expert(
                normalize_l(lab.l_small), features, hints, style, None, self.vivid_options
            )
            return self.spread(lab, self.vivid(ab * AB_SCALE, edits), edits)
        return self.merge_routed(lab, self.route_lab(lab, edits))[0]

    @torch.inference_mode()
    def predict(
        self,
        lab: LabImage,
        routing: Routing | None = None,
        cache: PatchCache | None = None,
        edits: RoutingEdits | None = None,
    ) -> torch.Tensor:
        """The predict stage: ab (1,2,h,w) at the working resolution, in Lab units, at the
        pipeline's (or the routing's edits') vividness and style: the routed experts
        composited, or the single expert (``edits``: its hints, style and vividness).
        ``cache``: see ``expert_patches``."""
        if self.router is None:
            return self.predict_ab(lab, edits=edits)
        if routing is None:
            raise SegcolorError("a routed pipeline predicts from a routing")
        return self.merge_routed(lab, routing, cache)[0]

    @torch.inference_mode()
    def run(
        self,
        photo: np.ndarray | LabImage,
        edits: RoutingEdits | None = None,
        hooks: StageHooks | None = None,
        *,
        semantics: Semantics | None = None,
        cache: PatchCache | None = None,
        predict: bool = True,
        render: bool = True,
        dtype: type = np.float32,
    ) -> Colorized:
        """Walk a photo (decoded pixels, or already read) down every stage once.

        ``hooks`` adjust what flows between stages (video); ``semantics`` skips the segmenter
        when the caller already has its answer (the studio re-routing a photo);
        ``predict=False`` stops after routing (timelines), ``render=False`` before the
        full-resolution RGB; ``dtype``: see ``to_rgb``.
        """
        self._check_edits(edits)
        hooks = hooks or StageHooks()
        lab = photo if isinstance(photo, LabImage) else self.lab(photo)
        routing = None
        if self.router is not None:
            semantics = hooks.on_semantics(lab, semantics or self.segment(lab))
            routing = hooks.on_routing(lab, self.route_semantics(lab, semantics, edits))
        if not predict:
            return Colorized(lab, semantics, routing, None, None)
        ab = hooks.on_colors(lab, self.predict(lab, routing, cache, edits))
        rgb = self.to_rgb(lab, ab, dtype) if render else None
        return Colorized(lab, semantics, routing, ab, rgb)

    @torch.inference_mode()
    def colorize_float(self, rgb: np.ndarray) -> np.ndarray:
        """Float RGB (H,W,3) in [0,1] -> colorized float RGB of the same size."""
        lab = LabImage.from_rgb(rgb, self.working_size, self.device)
        return self._to_rgb(lab, self.predict_ab(lab))

    @torch.inference_mode()
    def colorize_routed(
        self, rgb: np.ndarray, dtype: type = np.float32, edits: RoutingEdits | None = None
    ) -> tuple[np.ndarray, Routing]:
        """Like ``colorize_float``, also returning the routing it used (routed pipelines);
        ``dtype`` np.uint8 returns what ``colorize`` returns."""
        lab = LabImage.from_rgb(rgb, self.working_size, self.device)
        result = self.run(lab, edits, dtype=dtype)
        assert result.rgb is not None and result.routing is not None
        return result.rgb, result.routing

    @staticmethod
    def to_rgb(lab: LabImage, ab: torch.Tensor, dtype: type = np.float32) -> np.ndarray:
        """Working-resolution ab (1,2,h,w) joined with the full-resolution L -> RGB (H,W,3):
        float32 in [0,1], or uint8 rounded as ``to_uint8`` rounds. Done a band of rows at a
        time: memory beyond the output grows with the band, not the photo."""
        out = np.empty((*lab.size, 3), dtype=dtype)
        return recombine_bands(lab.lightness_rows, ab, out, lab.band_pixels)

    @staticmethod
    def _to_rgb(lab: LabImage, ab: torch.Tensor) -> np.ndarray:
        return Pipeline.to_rgb(lab, ab)

    @torch.inference_mode()
    def colorize(self, image: np.ndarray, edits: RoutingEdits | None = None) -> np.ndarray:
        """H x W x 3 (or H x W gray) uint8/uint16/float RGB in -> H x W x 3 uint8 RGB out, with
        no full-size float copy (a 24 MP scan needs about its input and output in memory).
        ``edits``: routing corrections by hand (``segcolor.router.edits``)."""
        lab = LabImage.from_rgb(image, self.working_size, self.device)
        rgb = self.run(lab, edits, dtype=np.uint8).rgb
        assert rgb is not None
        return rgb

    @torch.inference_mode()
    def analyze(
        self, image: np.ndarray, expert_images: bool = True, edits: RoutingEdits | None = None
    ) -> Analysis:
        """Routing, result, and (for inspection) each used expert's colorization of the whole
        photo and the weights the merge used; ``edits`` as in ``colorize``."""
        lab = self.lab(image)
        routing = self.route_lab(lab, edits)
        ab, used = self.merge_routed(lab, routing)
        zeros = torch.zeros_like(lab.lightness)
        gray = lab_to_rgb(torch.cat([lab.lightness, zeros, zeros], dim=1))[0, 0]
        analysis = Analysis(
            routing=routing,
            gray=to_uint8(gray.float().cpu().numpy()),
            colorized=to_uint8(self._to_rgb(lab, ab)),
        )
        l_norm = normalize_l(lab.l_small)
        hints, style = self.hints_for(lab, routing.edits), self.style_for(routing.edits)
        for index, name in enumerate(routing.experts):
            analysis.merge_weights[name] = used[index].float().cpu().numpy()
            if expert_images:  # the expert over the whole photo, with the hints and style
                region = used[index][None, None] if style == "vivid" else None
                alone = self.run_expert(
                    name, l_norm, routing.mix(name), routing.feature_grid, hints, region, style
                )
                analysis.expert_images[name] = to_uint8(
                    self._to_rgb(lab, self.vivid(alone, routing.edits))
                )
        return analysis


def _hints_key(hints: torch.Tensor | None, batch: Sequence[tuple[int, int, int, int]]) -> bytes:
    """What of ``hints`` lies in a batch's crops (part of the patch cache's key): a new hint
    reruns only the experts whose crops hold it."""
    if hints is None:
        return b""
    parts = [hints[..., y0:y1, x0:x1] for x0, y0, x1, y1 in batch]
    if not any(bool(p[:, 2].any()) for p in parts):
        return b""
    return b"".join(p.cpu().numpy().tobytes() for p in parts)
