"""How a routing is shown: category colors over the grayscale photo, region borders, a legend
strip beneath, and each region's dominant colors in a result.

``segcolor inspect``, the studio and video timelines all draw routings this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from segcolor.color.dcd import dominant_colors_many
from segcolor.router.routing import Routing

# Well-separated defaults for the usual categories; others cycle through the rest.
KNOWN_COLORS = {
    "people": "#ff7f0e",
    "birds": "#17becf",
    "animals": "#d62728",
    "places": "#2ca02c",
    "vehicles": "#9467bd",
}
SPARE_COLORS = ["#e377c2", "#bcbd22", "#8c564b", "#1f77b4", "#7f7f7f", "#aec7e8", "#ffbb78"]
ALPHA = 0.45


def category_colors(
    categories: Sequence[str], overrides: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """``#rrggbb`` per category: the YAML's ``color``, else a fixed default, else a spare."""
    overrides = overrides or {}
    spare = iter(SPARE_COLORS * (len(categories) // len(SPARE_COLORS) + 1))
    out: dict[str, str] = {}
    for name in categories:
        out[name] = overrides.get(name) or KNOWN_COLORS.get(name) or next(spare)
    return out


def hex_rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def preview_size(height: int, width: int, limit: int) -> tuple[int, int]:
    scale = min(1.0, limit / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def region_colors(routing: Routing, colorized: np.ndarray, side: int = 256) -> list[dict]:
    """The result's dominant colors within each region (at most ``side`` px, for speed)."""
    if not routing.regions:
        return []
    height, width = colorized.shape[:2]
    size = preview_size(height, width, side)
    small = np.asarray(Image.fromarray(colorized).resize(size[::-1], Image.BILINEAR))
    labels = routing.category_map_at(size)
    sy, sx = size[0] / height, size[1] / width
    masks = []
    for region in routing.regions:
        x0, y0, x1, y1 = region.bbox
        mask = np.zeros(size, dtype=bool)
        rows = slice(int(y0 * sy), max(int(y0 * sy) + 1, int(np.ceil(y1 * sy))))
        cols = slice(int(x0 * sx), max(int(x0 * sx) + 1, int(np.ceil(x1 * sx))))
        mask[rows, cols] = labels[rows, cols] == routing.categories.index(region.category)
        masks.append(mask)
    return [d.to_dict() for d in dominant_colors_many([small] * len(masks), masks)]


def render_overlay(
    gray: np.ndarray,
    category_map: np.ndarray,
    categories: Sequence[str],
    colors: Mapping[str, str],
    legend: Sequence[tuple[str, str]],
) -> Image.Image:
    """Gray (H,W) uint8 + category map (H,W) -> RGB image with tinted regions, their borders,
    and a legend of ``(category, text)`` rows under the photo."""
    height, width = gray.shape
    palette = np.array([hex_rgb(colors[c]) for c in categories], dtype=np.float32)
    base = np.repeat(gray[..., None].astype(np.float32), 3, axis=2)
    tint = palette[category_map]
    out = base * (1 - ALPHA) + tint * ALPHA
    border = ndimage.morphological_gradient(category_map, size=(3, 3)) > 0
    out[border] = tint[border]
    photo = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")

    font_size = max(12, min(28, width // 40))
    font = ImageFont.load_default(size=font_size)
    row = int(font_size * 1.6)
    pad = font_size // 2
    room = max(1, width - 2 * pad - row)
    lines = [(name, _wrap(text, font, room)) for name, text in legend]  # long rows wrap
    total = sum(len(wrapped) for _, wrapped in lines)
    canvas = Image.new("RGB", (width, height + pad * 2 + row * total), "white")
    canvas.paste(photo, (0, 0))
    draw = ImageDraw.Draw(canvas)
    top = height + pad
    for name, wrapped in lines:
        box = (pad, top + row // 8, pad + row * 3 // 4, top + row * 7 // 8)
        draw.rectangle(box, fill=colors[name], outline="black")
        for text in wrapped:
            draw.text((pad + row, top + row // 2), text, fill="black", font=font, anchor="lm")
            top += row
    return canvas


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Split ``text`` at spaces into lines at most ``width`` pixels wide (a word longer than
    that keeps a line of its own)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]
