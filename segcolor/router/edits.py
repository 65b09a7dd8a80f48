"""Routing edits: a person's corrections to the router, as plain data (JSON).

Three kinds, applied in this order after the router has found its regions (and before it
spreads and normalises the weights), so the merge uses the corrected weights:

- ``reassign``: a region, by its index in ``Routing.regions`` of the *unedited* routing (what
  ``segcolor inspect`` lists and the studio shows), goes to another category;
- ``paint``: a category over a rough mask: a polygon in the photo's pixels, an RLE mask (COCO's
  uncompressed form: ``{"size": [h, w], "counts": [...]}``, column-major, starting with a run of
  0s) or a base64 PNG (non-zero = painted); masks of another size are stretched over the photo;
- ``profiles``: a profiled category's expert runs one variant only (``{"places": "cold-blue"}``).

And three that are not about routing but about the same photo, each knowing what no model
reading the gray photo can: ``vividness``, its chroma gain (the pipeline's ``vividness`` for this
photo only: a person who remembers a vivid scene, or a faded one); ``style`` ("faithful" or
"vivid", the pipeline's ``style`` for this photo only); and ``hints``, colors of points and
strokes ("this coat is red": ``segcolor.router.hints``), which go to the experts of their regions.

A file looks like::

    {"version": 1,
     "reassign": [{"region": 2, "category": "people"}],
     "paint": [{"category": "animals", "polygon": [[10, 10], [80, 12], [60, 90]]}],
     "profiles": {"places": "cold-blue"},
     "vividness": 1.3,
     "style": "vivid",
     "hints": [{"x": 120, "y": 64, "color": "#b02a20"}]}

Nothing here knows about the pipeline: arrays and names in, arrays out. Mistakes (an unknown
category, a region the photo does not have, a malformed mask) raise ``EditsError``, one line.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from segcolor.errors import EditsError
from segcolor.io.atomic import atomic_write
from segcolor.pipeline_config import style_problem, vividness_problem
from segcolor.router.hints import MAX_HINTS, Hint, parse_hints

VERSION = 1
_KEYS = {"version", "reassign", "paint", "profiles", "vividness", "style", "hints"}
_MAX_MASK_SIDE = 8192  # a rough mask needs no more; bounds what a JSON file can make us allocate
_MAX_POLYGON_POINTS = 10_000


@dataclass(frozen=True)
class Reassign:
    region: int
    category: str

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "category": self.category}


@dataclass(frozen=True)
class Paint:
    """A category over a mask; exactly one of ``polygon``, ``rle``, ``mask_png``."""

    category: str
    polygon: tuple[tuple[float, float], ...] | None = None  # (x, y) in the photo's pixels
    rle: dict[str, Any] | None = field(default=None, hash=False)
    mask_png: str | None = None  # base64

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"category": self.category}
        if self.polygon is not None:
            out["polygon"] = [[x, y] for x, y in self.polygon]
        if self.rle is not None:
            out["rle"] = self.rle
        if self.mask_png is not None:
            out["mask_png"] = self.mask_png
        return out

    def mask(self, shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        """Bool (h, w) at the working ``shape`` of a photo of ``size`` (H, W)."""
        height, width = shape
        if self.polygon is not None:
            sx, sy = width / size[1], height / size[0]
            canvas = Image.new("L", (width, height), 0)
            points = [(x * sx, y * sy) for x, y in self.polygon]
            ImageDraw.Draw(canvas).polygon(points, fill=1, outline=1)
            return np.asarray(canvas, dtype=bool)
        full = _decode_rle(self.rle) if self.rle is not None else _decode_png(self.mask_png or "")
        image = Image.fromarray(full.astype(np.uint8) * 255)
        return np.asarray(image.resize((width, height), Image.NEAREST)) > 127


@dataclass(frozen=True)
class RoutingEdits:
    reassign: tuple[Reassign, ...] = ()
    paint: tuple[Paint, ...] = ()
    profiles: Mapping[str, str] = field(default_factory=dict, hash=False)
    vividness: float | None = None  # None: the pipeline's
    style: str | None = None  # None: the pipeline's
    hints: tuple[Hint, ...] = ()

    @property
    def routes(self) -> bool:
        """Whether the edits change the routing (vividness, style and hints do not)."""
        return bool(self.reassign or self.paint or self.profiles)

    @property
    def empty(self) -> bool:
        return not self.routes and self.vividness is None and self.style is None and not self.hints

    @property
    def categories(self) -> set[str]:
        """Every category the edits name."""
        names = {r.category for r in self.reassign} | {p.category for p in self.paint}
        return names | set(self.profiles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "reassign": [r.to_dict() for r in self.reassign],
            "paint": [p.to_dict() for p in self.paint],
            "profiles": dict(self.profiles),
            **({"vividness": self.vividness} if self.vividness is not None else {}),
            **({"style": self.style} if self.style is not None else {}),
            **({"hints": [h.to_dict() for h in self.hints]} if self.hints else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_write(path) as tmp:
            tmp.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> RoutingEdits:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise EditsError(f"cannot read routing edits ({type(err).__name__})", path) from None
        try:
            return cls.from_json(text)
        except EditsError as err:
            raise EditsError(str(err), path) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> RoutingEdits:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            line = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise EditsError(f"routing edits are not valid JSON ({line})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> RoutingEdits:
        """Check the shape of the data (names are checked against a pipeline by ``check``)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise EditsError("routing edits must be a JSON object")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise EditsError(f"unknown key {unknown[0]!r} in routing edits (known: {_known()})")
        if data.get("version", VERSION) != VERSION:
            raise EditsError(
                f"routing edits version must be the number {VERSION}, got {data['version']!r}"
            )
        reassign = tuple(_reassign(i, r) for i, r in enumerate(_list(data, "reassign")))
        paint = tuple(_paint(i, p) for i, p in enumerate(_list(data, "paint")))
        profiles = data.get("profiles") or {}
        if not isinstance(profiles, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in profiles.items()
        ):
            raise EditsError('"profiles" must map a category to a variant name')
        vividness = data.get("vividness")
        problem = None if vividness is None else vividness_problem(vividness)
        if problem:
            raise EditsError(f'"vividness" {problem}')
        style = data.get("style")
        problem = None if style is None else style_problem(style)
        if problem:
            raise EditsError(f'"style" {problem}')
        return cls(
            reassign=reassign,
            paint=paint,
            profiles=dict(profiles),
            vividness=None if vividness is None else float(vividness),
            style=style,
            hints=parse_hints(data.get("hints")),
        )

    def check(
        self, categories: Sequence[str], variants: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Every named category exists; every pinned profile is a variant of that category."""
        variants = variants or {}
        for name in sorted(self.categories):
            if name not in categories:
                raise EditsError(
                    f"unknown category {name!r} in routing edits (known: {', '.join(categories)})"
                )
        for name, variant in self.profiles.items():
            if name not in variants:
                raise EditsError(f"category {name!r} has no profile variants to pin")
            if variant not in variants[name]:
                raise EditsError(
                    f"{name!r} has no profile variant {variant!r} "
                    f"(known: {', '.join(variants[name])})"
                )

    def with_reassign(self, region: int, category: str) -> RoutingEdits:
        """These edits with ``region`` (re)assigned to ``category`` (a later one replaces it)."""
        kept = tuple(r for r in self.reassign if r.region != region)
        return replace(self, reassign=kept + (Reassign(region, category),))

    def with_profile(self, category: str, variant: str | None) -> RoutingEdits:
        """These edits with ``category``'s variant pinned (None: the classifier decides)."""
        profiles = {k: v for k, v in self.profiles.items() if k != category}
        if variant is not None:
            profiles[category] = variant
        return replace(self, profiles=profiles)

    def with_hint(self, hint: Hint) -> RoutingEdits:
        """These edits with one more color hint (drawn over the earlier ones)."""
        if len(self.hints) >= MAX_HINTS:
            raise EditsError(f"too many hints: at most {MAX_HINTS}")
        return replace(self, hints=self.hints + (hint,))

    def without_hint(self, index: int) -> RoutingEdits:
        """These edits without hint ``index`` (the later ones move up by one)."""
        if not 0 <= index < len(self.hints):
            have = f"0-{len(self.hints) - 1}" if self.hints else "none"
            raise EditsError(
                f"no hint {index} in these edits (they have {len(self.hints)}: {have})"
            )
        return replace(self, hints=self.hints[:index] + self.hints[index + 1 :])

    def with_style(self, style: str | None) -> RoutingEdits:
        """These edits with the photo's own style (None: the pipeline's)."""
        problem = None if style is None else style_problem(style)
        if problem:
            raise EditsError(f'"style" {problem}')
        return replace(self, style=style)


def apply_edits(
    edits: RoutingEdits,
    weights: np.ndarray,
    labels: np.ndarray,
    region_map: np.ndarray,
    region_count: int,
    categories: Sequence[str],
    size: tuple[int, int],
) -> None:
    """Reassignments, then paint, in place: (K, h, w) ``weights`` become one-hot at the new
    category and ``labels`` (h, w) follow. ``region_map`` (h, w) holds each pixel's region index
    (-1: none) of the unedited routing, which has ``region_count`` regions; ``size`` is the
    photo's (H, W), the frame of polygons."""
    for edit in edits.reassign:
        if not 0 <= edit.region < region_count:
            have = f"0-{region_count - 1}" if region_count else "none"
            raise EditsError(
                f"no region {edit.region} in this photo (it has {region_count}: {have})"
            )
        _assign(weights, labels, region_map == edit.region, categories.index(edit.category))
    for paint in edits.paint:
        mask = paint.mask(labels.shape, size)
        _assign(weights, labels, mask, categories.index(paint.category))


def _assign(weights: np.ndarray, labels: np.ndarray, mask: np.ndarray, k: int) -> None:
    weights[:, mask] = 0.0
    weights[k, mask] = 1.0
    labels[mask] = k


def _known() -> str:
    return ", ".join(sorted(_KEYS))


def _list(data: dict, key: str) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise EditsError(f'"{key}" must be a list')
    return value


def _category(item: dict, where: str) -> str:
    name = item.get("category")
    if not isinstance(name, str) or not name:
        raise EditsError(f'{where}: "category" must be a category name')
    return name


def _reassign(index: int, item: Any) -> Reassign:
    where = f"reassign[{index}]"
    if not isinstance(item, dict) or set(item) - {"region", "category"}:
        raise EditsError(f'{where} must be {{"region": N, "category": NAME}}')
    region = item.get("region")
    if isinstance(region, bool) or not isinstance(region, int) or region < 0:
        raise EditsError(f'{where}: "region" must be a region index (an integer >= 0)')
    return Reassign(region, _category(item, where))


def _paint(index: int, item: Any) -> Paint:
    where = f"paint[{index}]"
    if not isinstance(item, dict):
        raise EditsError(f"{where} must be an object")
    shapes = [k for k in ("polygon", "rle", "mask_png") if k in item]
    if len(shapes) != 1 or set(item) - {"category", *shapes}:
        raise EditsError(f'{where} needs "category" and one of "polygon", "rle", "mask_png"')
    name = _category(item, where)
    if shapes[0] == "polygon":
        points = item["polygon"]
        ok = isinstance(points, list) and 3 <= len(points) <= _MAX_POLYGON_POINTS
        ok = ok and all(
            isinstance(p, list | tuple)
            and len(p) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
            for p in points
        )
        if not ok:
            raise EditsError(f'{where}: "polygon" must be 3 or more [x, y] points')
        return Paint(name, polygon=tuple((float(x), float(y)) for x, y in points))
    if shapes[0] == "rle":
        _decode_rle(item["rle"], where)  # checked now: a bad mask fails before any work
        return Paint(name, rle=item["rle"])
    _decode_png(item["mask_png"], where)
    return Paint(name, mask_png=item["mask_png"])


def _decode_rle(rle: Any, where: str = "paint") -> np.ndarray:
    """COCO's uncompressed RLE -> bool (h, w)."""
    bad = EditsError(f'{where}: "rle" must be {{"size": [h, w], "counts": [n0, n1, ...]}}')
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise bad
    size, counts = rle["size"], rle["counts"]
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and 0 < v <= _MAX_MASK_SIDE for v in size)
        and isinstance(counts, list)
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts)
    ):
        raise bad
    height, width = size
    if sum(counts) != height * width:
        raise EditsError(f'{where}: "rle" counts sum to {sum(counts)}, not {height}*{width}')
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape(width, height).T


def _decode_png(text: Any, where: str = "paint") -> np.ndarray:
    if not isinstance(text, str):
        raise EditsError(f'{where}: "mask_png" must be a base64 PNG')
    try:
        data = base64.b64decode(text.split(",", 1)[-1], validate=True)  # data: URLs too
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or max(image.size) > _MAX_MASK_SIDE:
                raise ValueError("not a PNG of at most 8192 px a side")
            return np.asarray(image.convert("L")) > 0
    except UnidentifiedImageError:  # its message names PIL's in-memory buffer, not the user's
        raise EditsError(f'{where}: "mask_png" is not a base64 PNG (not an image)') from None
    except (ValueError, OSError, SyntaxError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise EditsError(f'{where}: "mask_png" is not a base64 PNG ({reason})') from None
