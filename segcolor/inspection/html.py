"""One self-contained HTML page: images inlined as base64 data URIs, inline CSS, no script.

It has to open anywhere (mailed, copied off a server), so nothing refers to another file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

PREVIEW_SIDE = 900  # long side of inlined images: sharp on screen, page stays a few MB

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #222; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 1.1em; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.summary { font-size: 1.05em; margin: 0 0 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 16px;
        align-items: start; }
figure { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
figure img { display: block; width: 100%; height: auto; image-rendering: auto; }
figcaption { font-size: 0.85em; color: #555; margin-top: 6px; }
table { border-collapse: collapse; background: #fff; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border: 1px solid #333;
          vertical-align: -0.1em; margin-right: 6px; }
.bar { display: inline-flex; width: 160px; height: 1em; border: 1px solid #333;
       vertical-align: -0.15em; }
.bar span { display: block; height: 100%; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; font-size: 0.9em; }
dt { color: #555; }
dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
"""


def data_uri(image: Image.Image, max_side: int = PREVIEW_SIDE) -> str:
    """PNG data URI of ``image`` shrunk to ``max_side`` (never enlarged)."""
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(image: Image.Image, caption: str, alt: str) -> str:
    return (
        f'<figure><img src="{data_uri(image)}" alt="{html.escape(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _color_bar(rows: Sequence[Mapping[str, Any]]) -> str:
    """Dominant colors as one bar, each color as wide as its share (hex and % on hover)."""
    if not rows:
        return "-"
    esc = html.escape
    cells = "".join(
        f'<span style="background:{esc(str(r["hex"]))};width:{float(r["percent"]):.1f}%" '
        f'title="{esc(str(r["hex"]))} {float(r["percent"]):.0f}%"></span>'
        for r in rows
    )
    return f'<span class="bar">{cells}</span>'


def _profiles_section(
    profiles: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str]
) -> list[str]:
    """Per profiled expert: every profile's probability, its colors, and the variants mixed."""
    if not profiles:
        return []
    esc = html.escape
    parts = [
        "<h2>Color profiles</h2>",
        "<p>P(profile | photo) from the profile classifier (grayscale in), and the weight of each "
        "profile expert (variant) in the expert's colors.</p>",
        "<table><tr><th>expert</th><th>profile</th><th>probability</th><th>variant weight</th>"
        "<th>profile colors</th></tr>",
    ]
    for expert, entry in profiles.items():
        swatch = f'<span class="swatch" style="background:{esc(colors.get(expert, "#888"))}">'
        probs = entry.get("profile_probabilities", {})
        weights = entry.get("variant_weights", {})
        palette = entry.get("profile_colors", {})
        for name, p in sorted(probs.items(), key=lambda kv: -kv[1]):
            chosen = " (chosen)" if name == entry.get("chosen_variant") else ""
            bar = _color_bar(palette.get(name, []))  # the profile centroid's colors
            parts.append(
                f"<tr><td>{swatch}</span>{esc(expert)}</td><td>{esc(name)}{chosen}</td>"
                f'<td class="num">{p:.1%}</td><td class="num">{weights.get(name, 0.0):.2f}</td>'
                f"<td>{bar}</td></tr>"
            )
    parts.append("</table>")
    return parts


def _hints_section(hints: Sequence[Mapping[str, Any]], colors: Mapping[str, str]) -> list[str]:
    """The color hints of the routing edits, numbered as on the overlay."""
    if not hints:
        return []
    esc = html.escape
    parts = [
        "<h2>Color hints</h2>",
        "<p>Colors a person gave (routing edits), numbered as on the overlay: each hint's a, b "
        "go to the experts of the categories under it, at the photo's own lightness.</p>",
        "<table><tr><th>#</th><th>color</th><th>kind</th><th>where (photo px)</th>"
        "<th>size (px)</th><th>categories under it</th></tr>",
    ]
    for hint in hints:
        color = esc(str(hint["color"]))
        if hint["kind"] == "point":
            where = f"({float(hint['x']):g}, {float(hint['y']):g})"
        else:
            points = hint["points"]
            (x0, y0), (x1, y1) = points[0], points[-1]
            where = f"({x0:g}, {y0:g}) to ({x1:g}, {y1:g}), {len(points)} points"
        what = "radius" if hint["kind"] == "point" else "width"
        size = f"{what} {float(hint['size_px']):g}" + (
            " (default)" if hint.get("size_is_default") else ""
        )
        under = ", ".join(
            f'<span class="swatch" style="background:{esc(colors.get(c, "#888"))}"></span>{esc(c)}'
            for c in hint.get("categories", [])
        )
        parts.append(
            f'<tr><td class="num">{int(hint["index"])}</td><td><span class="swatch" '
            f'style="background:{color}"></span>{color}</td><td>{esc(str(hint["kind"]))}</td>'
            f"<td>{esc(where)}</td><td>{esc(size)}</td><td>{under or '-'}</td></tr>"
        )
    parts.append("</table>")
    return parts


def render_index(
    title: str,
    summary: str,
    main_images: Sequence[tuple[str, Image.Image, str]],
    expert_images: Sequence[tuple[str, Image.Image, Image.Image, str]],
    regions: Sequence[Mapping[str, Any]],
    colors: Mapping[str, str],
    settings: Mapping[str, Any],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    hints: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The page: photo / overlay / result, the color hints given (``write.hint_rows``), the
    color profiles of profiled experts, each expert alone with its weight map, the regions
    table (with each region's dominant colors) and the settings used. Captions are escaped
    here; pass plain text."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>segcolor inspect: {esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="summary">{esc(summary)}</p>',
        '<div class="grid">',
        *(_figure(img, esc(cap), alt) for alt, img, cap in main_images),
        "</div>",
        *_hints_section(hints, colors),
        *_profiles_section(profiles or {}, colors),
        "<h2>Experts</h2>",
        "<p>Each expert alone on the whole photo, and the weight it gets in the result "
        "(white = 1, black = 0).</p>",
    ]
    parts.append('<div class="grid">')
    for name, alone, weight, caption in expert_images:
        swatch = f'<span class="swatch" style="background:{esc(colors.get(name, "#888"))}"></span>'
        parts += [
            _figure(alone, swatch + esc(caption), f"{name} expert alone"),
            _figure(weight, swatch + esc(f"{name}: weight in the result"), f"{name} weights"),
        ]
    parts.append("</div>")
    parts += [
        "<h2>Regions</h2>",
        "<table><tr><th>category</th><th>expert</th><th>classes</th><th>area</th>"
        "<th>box (x0, y0, x1, y1)</th><th>confidence</th><th>dominant colors (result)</th>"
        "</tr>",
    ]
    for region in regions:
        name = str(region["category"])
        swatch = f'<span class="swatch" style="background:{esc(colors.get(name, "#888"))}"></span>'
        parts.append(
            f"<tr><td>{swatch}{esc(name)}</td><td>{esc(str(region['expert']))}</td>"
            f"<td>{esc(', '.join(region['classes']) or '-')}</td>"
            f'<td class="num">{region["area_percent"]:.1f}%</td>'
            f"<td>{esc(', '.join(map(str, region['bbox_xyxy'])))}</td>"
            f'<td class="num">{region["confidence"]:.2f}</td>'
            f"<td>{_color_bar(region.get('dominant_colors', {}).get('colors', []))}</td></tr>"
        )
    parts.append("</table>")
    parts.append("<h2>Settings</h2><dl>")
    for key, value in settings.items():
        parts.append(f"<dt>{esc(str(key))}</dt><dd>{esc(str(value))}</dd>")
    parts += ["</dl>", "</body></html>", ""]
    return "\n".join(parts)
