"""Color hints: "this coat is red". Points and strokes in the photo's pixels, each with an sRGB
color whose chroma (Lab a, b) is given to the experts at the photo's own lightness.

In the edits file (``RoutingEdits.hints``)::

    "hints": [{"x": 120, "y": 64, "color": "#b02a20"},
              {"points": [[10, 10], [40, 12]], "color": "#3050a0", "width": 6}]

A point covers a disc of ``radius`` photo pixels (default: ``DEFAULT_RADIUS`` working pixels),
a stroke a polyline ``width`` pixels wide. ``hint_map`` draws them at the working resolution as
the experts read them (Zhang et al. 2017): the hint's normalised a, b and a mask channel, zero
where there is no hint; where hints overlap, the later one wins. The router hands each expert the
part inside its crop, so a hint colors its own region and the feathered merge keeps it there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from segcolor.color.lab import AB_SCALE, rgb_to_lab
from segcolor.errors import EditsError

MAX_HINTS = 500
MAX_STROKE_POINTS = 2_000
DEFAULT_RADIUS = 2.0  # working pixels: a 5-px dot at the working size, whatever the photo's size
MAX_EXTENT = 0.25  # a point's radius or a stroke's width, at most this share of the short side
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class Hint:
    """One point (one entry in ``points``, a disc) or stroke (several: a polyline)."""

    points: tuple[tuple[float, float], ...]  # (x, y) photo pixels
    color: str  # "#rrggbb"
    size: float | None = None  # a point's radius or a stroke's width (photo pixels); None: default

    @property
    def is_point(self) -> bool:
        return len(self.points) == 1

    def to_dict(self) -> dict[str, Any]:
        if self.is_point:
            x, y = self.points[0]
            out: dict[str, Any] = {"x": x, "y": y, "color": self.color}
            return out | ({"radius": self.size} if self.size is not None else {})
        out = {"points": [list(p) for p in self.points], "color": self.color}
        return out | ({"width": self.size} if self.size is not None else {})

    @property
    def ab(self) -> tuple[float, float]:
        """The color's Lab a, b."""
        rgb = torch.tensor([int(self.color[i : i + 2], 16) / 255.0 for i in (1, 3, 5)])
        lab = rgb_to_lab(rgb.view(1, 3, 1, 1).double())[0, :, 0, 0]
        return float(lab[1]), float(lab[2])


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EditsError(f"{what} must be a number, got {value!r}")
    return float(value)


def parse_hint(index: int, raw: Any) -> Hint:
    """One hint from the edits file's data; a malformed one is a one-line ``EditsError``."""
    where = f"hints[{index}]"
    if not isinstance(raw, dict):
        raise EditsError(f"{where} must be an object with a color and x, y or points")
    color = raw.get("color")
    if not isinstance(color, str) or not _COLOR.match(color):
        raise EditsError(f'{where}.color must be an sRGB color like "#b02a20", got {color!r}')
    if "points" in raw:
        unknown = sorted(set(raw) - {"points", "color", "width"})
        points = raw["points"]
        if not isinstance(points, list) or not 1 <= len(points) <= MAX_STROKE_POINTS:
            raise EditsError(f"{where}.points must be a list of 1 to {MAX_STROKE_POINTS} [x, y]")
        pairs = []
        for j, point in enumerate(points):
            if not isinstance(point, (list, tuple)) or len(point) != 2:
                raise EditsError(f"{where}.points[{j}] must be [x, y], got {point!r}")
            at = f"{where}.points[{j}]"
            pairs.append((_number(point[0], at), _number(point[1], at)))
        size_key = "width"
    else:
        unknown = sorted(set(raw) - {"x", "y", "color", "radius"})
        if "x" not in raw or "y" not in raw:
            raise EditsError(f"{where} needs x and y (a point) or points (a stroke)")
        pairs = [(_number(raw["x"], f"{where}.x"), _number(raw["y"], f"{where}.y"))]
        size_key = "radius"
    if unknown:
        raise EditsError(f"unknown key {unknown[0]!r} in {where}")
    size = raw.get(size_key)
    if size is not None:
        size = _number(size, f"{where}.{size_key}")
        if size <= 0:
            raise EditsError(f"{where}.{size_key} must be above 0, got {size!r}")
        if size_key == "width" and len(pairs) == 1:
            size /= 2  # a stroke of one point is a dot as wide: it is kept as a point's radius
    return Hint(tuple(pairs), color.lower(), size)


def parse_hints(raw: Any) -> tuple[Hint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise EditsError('"hints" must be a list of points and strokes')
    if len(raw) > MAX_HINTS:
        raise EditsError(f"too many hints: {len(raw)} (at most {MAX_HINTS})")
    return tuple(parse_hint(i, h) for i, h in enumerate(raw))


def check_hints(hints: Sequence[Hint], photo_size: tuple[int, int]) -> None:
    """Every hint lies in the photo (``photo_size`` (H, W)) and is not larger than a quarter of
    its short side."""
    height, width = photo_size
    limit = MAX_EXTENT * min(height, width)
    for i, hint in enumerate(hints):
        for x, y in hint.points:
            if not (0 <= x < width and 0 <= y < height):
                raise EditsError(
                    f"hints[{i}] at ({x:g}, {y:g}) is outside the {width}x{height} photo"
                )
        if hint.size is not None and hint.size > limit:
            what = "radius" if hint.is_point else "width"
            raise EditsError(
                f"hints[{i}].{what} {hint.size:g} is too large for a {width}x{height} photo "
                f"(at most {limit:g} px)"
            )


def hint_masks(
    hints: Sequence[Hint], photo_size: tuple[int, int], working_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each hint's pixels at the working size, (N,h,w) bool, and its Lab a, b, (N,2)."""
    check_hints(hints, photo_size)
    height, width = working_size
    scale = height / photo_size[0], width / photo_size[1]
    masks = np.zeros((len(hints), height, width), dtype=bool)
    for i, hint in enumerate(hints):
        layer = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(layer)
        # pixel centres: photo (x, y) lands at ((x + 0.5) * s - 0.5) working pixels
        pts = [((x + 0.5) * scale[1] - 0.5, (y + 0.5) * scale[0] - 0.5) for x, y in hint.points]
        size = hint.size * min(scale) if hint.size is not None else None
        if hint.is_point:
            r = max(size if size is not None else DEFAULT_RADIUS, 0.5)
            (x, y) = pts[0]
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        else:
            w = max(size if size is not None else 2 * DEFAULT_RADIUS, 1.0)
            draw.line(pts, fill=255, width=max(1, round(w)), joint="curve")
            r = w / 2
            for x, y in (pts[0], pts[-1]):  # round caps
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        covered = np.asarray(layer) > 127
        if not covered.any():  # a hint thinner than a working pixel still marks its pixel
            x, y = pts[0]
            covered[min(max(round(y), 0), height - 1), min(max(round(x), 0), width - 1)] = True
        masks[i] = covered
    colors = np.array([h.ab for h in hints], dtype=np.float32).reshape(len(hints), 2)
    return masks, colors


def hint_map(
    hints: Sequence[Hint],
    photo_size: tuple[int, int],
    working_size: tuple[int, int],
    device: torch.device | str = "cpu",
) -> torch.Tensor | None:
    """(1,3,h,w) hints at the working size: normalised a, b and a mask; None without hints.
    Where hints overlap, the later one wins."""
    if not hints:
        return None
    masks, colors = hint_masks(hints, photo_size, working_size)
    out = np.zeros((3, *working_size), dtype=np.float32)
    for covered, (a, b) in zip(masks, colors, strict=True):
        out[0][covered], out[1][covered] = a / AB_SCALE, b / AB_SCALE
        out[2][covered] = 1.0
    return torch.from_numpy(out)[None].to(device)


def default_radius(photo_size: tuple[int, int], working_size: tuple[int, int]) -> float:
    """A point's radius in photo pixels when it gives none (``DEFAULT_RADIUS`` working pixels;
    a stroke's default width is twice this)."""
    scale = min(working_size[0] / photo_size[0], working_size[1] / photo_size[1])
    return DEFAULT_RADIUS / scale


def contrast(color: str) -> str:
    """Black or white, whichever stands out against ``color`` ("#rrggbb")."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def draw_hints(
    image: Image.Image,
    hints: Sequence[Hint],
    photo_size: tuple[int, int],
    working_size: tuple[int, int],
    *,
    numbered: bool = True,
) -> None:
    """Each hint as it was placed, in its color with a contrasting outline, on ``image`` in
    place: the photo at any scale, top-left aligned (a legend under it is left alone); each
    marker is at least a few pixels wide, and ``numbered`` labels it with its index."""
    if not hints:
        return
    scale = image.width / photo_size[1]
    fallback = default_radius(photo_size, working_size)
    draw = ImageDraw.Draw(image)
    for i, hint in enumerate(hints):
        edge = contrast(hint.color)
        pts = [((x + 0.5) * scale, (y + 0.5) * scale) for x, y in hint.points]
        if hint.is_point:
            r = max((hint.size if hint.size is not None else fallback) * scale, 4.0)
            (x, y) = pts[0]
            draw.ellipse((x - r, y - r, x + r, y + r), fill=hint.color, outline=edge, width=2)
        else:
            width = hint.size if hint.size is not None else 2 * fallback
            w = max(round(width * scale), 3)
            draw.line(pts, fill=edge, width=w + 4, joint="curve")
            draw.line(pts, fill=hint.color, width=w, joint="curve")
            r = w / 2
        if numbered:
            x, y = pts[0]
            draw.text(
                (x + r + 2, y),
                str(i),
                fill=hint.color,
                anchor="lm",
                stroke_width=2,
                stroke_fill=edge,
            )
