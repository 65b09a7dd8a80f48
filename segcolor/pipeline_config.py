"""The pipeline YAML's schema: segmenter classes -> categories -> expert checkpoints, options.

Adding a category (say ``vehicles`` fed by VOC car, bus, train...) is a YAML entry and a
checkpoint, never a code change, so everything a category needs lives here and is validated
up front with one-line ``ConfigError``s that name the file and the offending entry.

Checkpoint and weight paths are relative to the YAML's folder (or absolute). Segmenter classes
that no category lists go to the fallback category, which must have an expert: it colorizes
whatever the router is unsure about, so a photo with nothing detected still gets colored.

A category's ``expert`` is one checkpoint, a list (their colors are averaged), or color-profile
variants mixed by a profile classifier's P(profile | photo)::

    places:
      classes: [background]
      expert:
        classifier: profiles/places_classifier.safetensors
        variants: {gray: profiles/places_gray.safetensors, green: profiles/places_green.safetensors}
        min_probability: 0.3   # variants less likely than this are not run (the top one always is)

Every variant must be a profile the classifier predicts (read from its card); profiles without a
variant give their probability to the others.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segcolor.color.vivid import VividOptions
from segcolor.config import check_keys, load_yaml
from segcolor.errors import ConfigError
from segcolor.profiles.classifier import read_classifier_card

# the ways a color hint spreads past its pixels: segcolor.merge.spread.METHODS, repeated here
# because the config is checked below the merge layer (a test keeps the two equal)
SPREAD_METHODS = ("edges", "bilateral")

DEFAULT_SEGMENTER = "deeplabv3_mnv2_voc"
DEFAULT_WORKING_SIZE = 256
MIN_WORKING_SIZE = 16  # the same floor for the YAML key and --working-size
# chroma gain on the predicted ab: 1 is the models' own answer, the best trade measured between
# PSNR (best near 0.8) and the photos' colorfulness (closest near 1.3): README, "Vividness"
DEFAULT_VIVIDNESS = 1.0
MAX_VIVIDNESS = 3.0  # beyond this nearly every color is clipped to the sRGB gamut
# faithful: the experts' regression, the mean of the plausible colors (best PSNR, muted where
# unsure); vivid: a plausible color chosen per region from their 313-bin heads (README, "Styles")
STYLES = ("faithful", "vivid")
DEFAULT_STYLE = "faithful"
DEFAULT_FALLBACK = "places"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")  # category names end up in file names
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")

_TOP_KEYS = {
    "segmenter": None,
    "working_size": None,
    "vividness": None,
    "style": None,
    "vivid": None,
    "hint_spread": None,
    "categories": None,
    "fallback": None,
    "router": None,
    "merge": None,
}
_SEGMENTER_KEYS = {"name": None, "weights": None, "head": None}
_CATEGORY_KEYS = {"classes": None, "expert": None, "color": None}
_TTA_KEYS = {"scales": None, "flip": None}
_PROFILE_KEYS = {"classifier": None, "variants": None, "min_probability": None}
# 0.3 beat 0.1 on held-out places photos (bench/profile_experts.py): mixing unlikely variants
# averages their colors away
DEFAULT_MIN_PROBABILITY = 0.3


@dataclass(frozen=True)
class RouterOptions:
    """How the router turns class probabilities into regions and weights."""

    min_area: float = 0.5  # % of the image: smaller regions are spurious, given to the fallback
    min_confidence: float = 0.5  # a region's mean P(category) below this is given to the fallback
    spread: float = 0.02  # how far (fraction of the short side) a category's soft weight may
    # reach beyond its own regions; bounded so an expert's crop can hold all of its weight
    tta: bool | dict[str, Any] = False  # passed to ``Segmenter.predict_proba``


@dataclass(frozen=True)
class MergeOptions:
    """How expert outputs are composited."""

    feather: float = 0.02  # Gaussian sigma of the weight blur, as a fraction of the short side
    margin: int = 32  # context (working px) around each region's box when an expert runs on a crop


@dataclass(frozen=True)
class CategorySpec:
    """One category: the segmenter classes it collects and the expert(s) that color it."""

    name: str
    classes: tuple[str, ...] = ()
    checkpoints: tuple[Path, ...] = ()  # several: their ab are averaged; none: the fallback's
    color: str | None = None  # overlay color, ``#rrggbb``
    variants: tuple[str, ...] = ()  # profile variants: the profile of each checkpoint
    classifier: Path | None = None  # the profile classifier that weights the variants
    min_probability: float = DEFAULT_MIN_PROBABILITY  # variants below this are not run

    @property
    def has_expert(self) -> bool:
        return bool(self.checkpoints)

    @property
    def profiled(self) -> bool:
        """Whether the expert is profile variants mixed by a classifier."""
        return self.classifier is not None


@dataclass(frozen=True)
class PipelineConfig:
    """A validated pipeline YAML."""

    categories: tuple[CategorySpec, ...]
    fallback: str = DEFAULT_FALLBACK
    segmenter: str = DEFAULT_SEGMENTER
    segmenter_weights: Path | None = None
    segmenter_head: Path | None = None  # a gray-photo correction (router.segmenters.gray_head)
    working_size: int = DEFAULT_WORKING_SIZE
    vividness: float = DEFAULT_VIVIDNESS
    style: str = DEFAULT_STYLE
    vivid: VividOptions = field(default_factory=VividOptions)
    # how a color hint spreads beyond its pixels (segcolor.merge.spread.SpreadOptions' fields;
    # empty: its defaults)
    hint_spread: Mapping[str, float | int | str] = field(default_factory=dict, hash=False)
    router: RouterOptions = field(default_factory=RouterOptions)
    merge: MergeOptions = field(default_factory=MergeOptions)
    path: Path | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    def category(self, name: str) -> CategorySpec:
        for spec in self.categories:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def expert_of(self, name: str) -> str:
        """The category whose expert colors ``name``'s pixels (itself, or the fallback)."""
        return name if self.category(name).has_expert else self.fallback

    def check_classes(self, classes: Sequence[str], segmenter: str | None = None) -> None:
        """Every listed class must be one the segmenter predicts (typos would silently route
        nothing)."""
        known = set(classes)
        for spec in self.categories:
            for cls in spec.classes:
                if cls not in known:
                    close = difflib.get_close_matches(cls, classes, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ConfigError(
                        f"unknown class {cls!r} in category {spec.name!r} (segmenter "
                        f"{segmenter or self.segmenter} has: {', '.join(classes)}){hint}",
                        self.path,
                    )

    def class_to_category(self, classes: Sequence[str]) -> list[int]:
        """For each segmenter class, the index of its category (unlisted -> the fallback)."""
        self.check_classes(classes)
        owner = {cls: i for i, spec in enumerate(self.categories) for cls in spec.classes}
        fallback = self.names.index(self.fallback)
        return [owner.get(cls, fallback) for cls in classes]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} at line {line} (first at line {seen[key]})")
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_pipeline_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML; checkpoints must exist (they are not loaded here)."""
    path = Path(path)
    load_yaml(path)  # its error messages for missing/malformed files
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except ConfigError as err:
        raise ConfigError(str(err), path) from None
    return parse_pipeline_config(data, path=path)


def parse_pipeline_config(data: Mapping[str, Any], path: Path | None = None) -> PipelineConfig:
    """Validate an already-parsed mapping; relative paths resolve against ``path``'s folder."""
    where = path if path is not None else "pipeline config"
    base = path.resolve().parent if path is not None else Path.cwd()
    if not isinstance(data, Mapping):
        raise ConfigError("expected a mapping at the top level", where)
    check_keys(data, _TOP_KEYS, "", where)

    seg = data.get("segmenter") or {}
    if isinstance(seg, str):
        seg = {"name": seg}
    if not isinstance(seg, Mapping):
        raise ConfigError("segmenter: expected a name or a mapping with name/weights", where)
    check_keys(seg, _SEGMENTER_KEYS, "segmenter.", where)
    seg_name = seg.get("name") or DEFAULT_SEGMENTER
    if not isinstance(seg_name, str):
        raise ConfigError("segmenter.name must be a string", where)
    seg_weights = _path(seg.get("weights"), base, "segmenter.weights", where, must_exist=True)
    seg_head = _path(seg.get("head"), base, "segmenter.head", where, must_exist=True)

    working_size = data.get("working_size", DEFAULT_WORKING_SIZE)
    bad = isinstance(working_size, bool) or not isinstance(working_size, int)
    if bad or working_size < MIN_WORKING_SIZE:
        raise ConfigError(
            f"working_size must be an integer >= {MIN_WORKING_SIZE}, got {working_size!r}", where
        )

    vividness = data.get("vividness", DEFAULT_VIVIDNESS)
    problem = vividness_problem(vividness)
    if problem:
        raise ConfigError(f"vividness {problem}", where)
    style = data.get("style", DEFAULT_STYLE)
    problem = style_problem(style)
    if problem:
        raise ConfigError(f"style {problem}", where)
    vivid = _vivid_options(data.get("vivid") or {}, where)
    hint_spread = _hint_spread(data.get("hint_spread") or {}, where)

    categories = _categories(data.get("categories"), base, where)
    names = [c.name for c in categories]
    fallback = data.get("fallback", DEFAULT_FALLBACK)
    if fallback not in names:
        raise ConfigError(
            f"fallback category {fallback!r} is not defined (categories: {', '.join(names)}); "
            "set `fallback:` to the category that colors everything else",
            where,
        )
    if not categories[names.index(fallback)].has_expert:
        raise ConfigError(f"fallback category {fallback!r} needs an expert checkpoint", where)

    return PipelineConfig(
        categories=tuple(categories),
        fallback=fallback,
        segmenter=seg_name,
        segmenter_weights=seg_weights,
        segmenter_head=seg_head,
        working_size=working_size,
        vividness=float(vividness),
        style=style,
        vivid=vivid,
        hint_spread=hint_spread,
        router=_router_options(data.get("router") or {}, where),
        merge=_merge_options(data.get("merge") or {}, where),
        path=path,
    )


def _categories(raw: Any, base: Path, where: str | Path) -> list[CategorySpec]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("`categories:` must map category names to {classes, expert}", where)
    specs: list[CategorySpec] = []
    owner: dict[str, str] = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"category name {name!r} must start with a letter and use only letters, digits,"
                " '_' or '-'",
                where,
            )
        entry = entry or {}
        if not isinstance(entry, Mapping):
            raise ConfigError(f"category {name!r}: expected a mapping with classes/expert", where)
        check_keys(entry, _CATEGORY_KEYS, f"categories.{name}.", where)
        classes = entry.get("classes") or []
        if isinstance(classes, str):
            classes = [classes]
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ConfigError(f"category {name!r}: classes must be a list of class names", where)
        for cls in classes:
            if cls in owner:
                again = "twice in" if owner[cls] == name else f"to both {owner[cls]!r} and"
                raise ConfigError(
                    f"duplicate mapping: class {cls!r} is mapped {again} {name!r}", where
                )
            owner[cls] = name
        ckpts = entry.get("expert")
        profile: dict[str, Any] = {}
        if isinstance(ckpts, Mapping):
            profile = _profile_variants(name, ckpts, base, where)
            paths = profile.pop("checkpoints")
        else:
            ckpts = [] if ckpts is None else [ckpts] if isinstance(ckpts, str) else ckpts
            if not isinstance(ckpts, list) or not all(isinstance(c, str) for c in ckpts):
                raise ConfigError(
                    f"category {name!r}: expert must be a checkpoint path, a list, or "
                    "{classifier, variants} (profile variants)",
                    where,
                )
            paths = tuple(
                _path(c, base, f"category {name!r}: expert checkpoint", where, must_exist=True)
                for c in ckpts
            )
        color = entry.get("color")
        if color is not None and (not isinstance(color, str) or not _COLOR.match(color)):
            raise ConfigError(f"category {name!r}: color must look like '#ff8800'", where)
        specs.append(CategorySpec(name, tuple(classes), paths, color, **profile))  # type: ignore[arg-type]
    return specs


def _profile_variants(
    name: str, raw: Mapping[str, Any], base: Path, where: str | Path
) -> dict[str, Any]:
    """``expert: {classifier, variants, min_probability}`` -> CategorySpec fields."""
    prefix = f"categories.{name}.expert."
    check_keys(raw, _PROFILE_KEYS, prefix, where)
    what = f"category {name!r}: profile classifier"
    classifier = _path(raw.get("classifier"), base, what, where, must_exist=True)
    if classifier is None:
        raise ConfigError(
            f"category {name!r}: profile variants need `classifier:` (the checkpoint that "
            "predicts the profile, trained with task profile_classifier)",
            where,
        )
    variants = raw.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        raise ConfigError(
            f"category {name!r}: expert.variants must map profile names to checkpoints", where
        )
    known = [p["name"] for p in read_classifier_card(classifier).get("profiles", [])]
    paths = []
    for variant, ckpt in variants.items():
        if variant not in known:
            close = difflib.get_close_matches(str(variant), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"category {name!r}: variant {variant!r} is not a profile of {classifier.name} "
                f"(its profiles: {', '.join(known)}){hint}",
                where,
            )
        if not isinstance(ckpt, str):
            raise ConfigError(f"category {name!r}: variant {variant!r} must be a path", where)
        paths.append(
            _path(ckpt, base, f"category {name!r}: variant {variant!r}", where, must_exist=True)
        )
    min_probability = _number(raw, "min_probability", DEFAULT_MIN_PROBABILITY, 0, 1, where, prefix)
    return {
        "checkpoints": tuple(paths),
        "variants": tuple(variants),
        "classifier": classifier,
        "min_probability": float(min_probability),
    }


def style_problem(value: object) -> str | None:
    """What is wrong with a style name (the YAML key, --style and the edits file share the
    rule), or None."""
    if value not in STYLES:
        return f"must be one of {', '.join(STYLES)}, got {value!r}"
    return None


def _vivid_options(raw: Any, where: str | Path) -> VividOptions:
    """``vivid:`` {temperature, region_prior}: how the vivid style chooses its colors."""
    if not isinstance(raw, Mapping):
        raise ConfigError("vivid must be a mapping", where)
    unknown = set(raw) - {"temperature", "region_prior"}
    if unknown:
        raise ConfigError(f"unknown key vivid.{sorted(unknown)[0]}", where)
    defaults = VividOptions()
    values = {}
    for key, low, rule in (("temperature", 0.0, "above 0"), ("region_prior", -1.0, "at least 0")):
        value = raw.get(key, getattr(defaults, key))
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not (value > low if low == 0.0 else value >= 0) or value > 10:
            raise ConfigError(
                f"vivid.{key} must be a number {rule} and at most 10, got {value!r}", where
            )
        values[key] = float(value)
    return VividOptions(**values)


def _hint_spread(raw: Any, where: str | Path) -> dict[str, float | int | str]:
    """``hint_spread:`` {method, space, lightness, ring, reach}: a method of
    ``segcolor.merge.spread.METHODS``, numbers >= 0 (space 0: hints do not spread) and a ring
    of whole pixels."""
    if not isinstance(raw, Mapping):
        raise ConfigError("hint_spread must be a mapping", where)
    out: dict[str, float | int | str] = {}
    for key, value in raw.items():
        if key == "method":
            if value not in SPREAD_METHODS:
                raise ConfigError(
                    f"hint_spread.method must be one of {', '.join(SPREAD_METHODS)}, got {value!r}",
                    where,
                )
            out[key] = value
            continue
        if key == "ring":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
                raise ConfigError(
                    f"hint_spread.ring must be a whole number of pixels in [0, 64], got {value!r}",
                    where,
                )
            out[key] = value
            continue
        if key not in ("space", "lightness", "reach"):
            raise ConfigError(
                f"unknown key hint_spread.{key} (method, space, lightness, ring, reach)", where
            )
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not 0 <= value <= 100:
            raise ConfigError(
                f"hint_spread.{key} must be a number in [0, 100], got {value!r}", where
            )
        out[key] = float(value)
    return out


def vividness_problem(value: object) -> str | None:
    """What is wrong with a vividness (the YAML key and --vividness share the rule), or None."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value <= MAX_VIVIDNESS:  # NaN fails the comparison too
        return f"must be a number above 0 and at most {MAX_VIVIDNESS:g}, got {value!r}"
    return None


def _path(value: Any, base: Path, what: str, where: str | Path, must_exist: bool) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a path string", where)
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if must_exist and not path.exists():
        raise ConfigError(f"{what} {value} not found (looked for {path})", where)
    return path


def _number(
    section: Mapping[str, Any],
    key: str,
    default: float,
    low: float,
    high: float,
    where: str | Path,
    prefix: str,
    integer: bool = False,
) -> Any:
    value = section.get(key, default)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigError(
            f"{prefix}{key} must be {kind} in [{low:g}, {high:g}], got {value!r}", where
        )
    return value


def _router_options(raw: Any, where: str | Path) -> RouterOptions:
    if not isinstance(raw, Mapping):
        raise ConfigError("router: expected a mapping", where)
    defaults = RouterOptions()
    allowed = {"min_area": None, "min_confidence": None, "spread": None, "tta": None}
    check_keys(raw, allowed, "router.", where)
    tta = raw.get("tta", defaults.tta)
    if isinstance(tta, Mapping):
        check_keys(tta, _TTA_KEYS, "router.tta.", where)
        scales = tta.get("scales", [1.0])
        if (
            not isinstance(scales, list)
            or not scales
            or not all(isinstance(s, (int, float)) and s > 0 for s in scales)
        ):
            raise ConfigError("router.tta.scales must be a list of positive numbers", where)
        if not isinstance(tta.get("flip", True), bool):
            raise ConfigError("router.tta.flip must be true or false", where)
        tta = dict(tta)
    elif not isinstance(tta, bool):
        raise ConfigError("router.tta must be true, false or {scales: [...], flip: bool}", where)
    return RouterOptions(
        min_area=float(_number(raw, "min_area", defaults.min_area, 0, 100, where, "router.")),
        min_confidence=float(
            _number(raw, "min_confidence", defaults.min_confidence, 0, 1, where, "router.")
        ),
        spread=float(_number(raw, "spread", defaults.spread, 0, 0.5, where, "router.")),
        tta=tta,
    )


def _merge_options(raw: Any, where: str | Path) -> MergeOptions:
    if not isinstance(raw, Mapping):
        raise ConfigError("merge: expected a mapping", where)
    defaults = MergeOptions()
    check_keys(raw, {"feather": None, "margin": None}, "merge.", where)
    return MergeOptions(
        feather=float(_number(raw, "feather", defaults.feather, 0, 0.5, where, "merge.")),
        margin=int(_number(raw, "margin", defaults.margin, 0, 4096, where, "merge.", True)),
    )
