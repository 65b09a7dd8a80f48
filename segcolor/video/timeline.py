"""The routing timeline of a video: which category holds what share of each frame, and cuts.

``segcolor inspect VIDEO -o DIR`` writes ``timeline.json`` (one row per frame) and
``timeline.png``, a stacked area chart drawn with Pillow. Only the segmenter and router run
(routing smoothed as ``segcolor video`` smooths it), not the experts, so it is quick.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from segcolor.errors import SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.pipeline import Pipeline
from segcolor.router.overlay import category_colors
from segcolor.video.io import VideoReader
from segcolor.video.stabilize import Stabilizer, StabilizerOptions

PLOT_HEIGHT = 240
MIN_WIDTH, MAX_WIDTH = 640, 1600


@dataclass
class Timeline:
    """Per-frame category shares (% of the frame) of one video."""

    source: str
    fps: float
    size: tuple[int, int]  # width, height
    categories: list[str]
    fallback: str  # drawn on top: "everything else"
    colors: dict[str, str]
    shares: list[dict[str, float]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot
    stabilized: bool = True

    def to_dict(self) -> dict:
        means = {
            c: round(float(np.mean([s.get(c, 0.0) for s in self.shares])), 2)
            for c in self.categories
        }
        return {
            "video": self.source,
            "fps": self.fps,
            "size": {"width": self.size[0], "height": self.size[1]},
            "frames": len(self.shares),
            "stabilized_routing": self.stabilized,
            "categories": self.categories,
            "fallback": self.fallback,
            "colors": self.colors,
            "mean_share_percent": means,
            "cuts": self.cuts,
            "shares_percent": [
                {"frame": i, **{c: round(s.get(c, 0.0), 2) for c in self.categories}}
                for i, s in enumerate(self.shares)
            ],
        }


def build_timeline(
    pipeline: Pipeline,
    source: str | Path,
    options: StabilizerOptions | None = None,
    fps: float | None = None,
    progress: bool = True,
) -> Timeline:
    """Route every frame of ``source`` (streamed: memory of one frame)."""
    if not pipeline.routed:
        raise SegcolorError("a routing timeline needs a routed pipeline (--pipeline YAML)")
    options = options or StabilizerOptions()
    reader = VideoReader(source, fps=fps)
    info = reader.info
    assert pipeline.router is not None
    overrides = {}
    if pipeline.config is not None:
        overrides = {c.name: c.color for c in pipeline.config.categories}
    categories = list(pipeline.router.categories)
    timeline = Timeline(
        source=str(source),
        fps=float(info.fps),
        size=(info.width, info.height),
        categories=categories,
        fallback=pipeline.router.fallback,
        colors=category_colors(categories, overrides),
        stabilized=options.enabled,
    )
    stabilizer = Stabilizer(pipeline, options)
    bar = tqdm(
        total=info.frames, unit="frame", desc="timeline", disable=not progress, file=sys.stderr
    )
    with bar:
        for index, frame in enumerate(reader.frames()):
            result = stabilizer.process(frame, colorize=False)
            assert result.routing is not None
            timeline.shares.append(dict(result.routing.shares))
            if result.cut and index > 0:
                timeline.cuts.append(index)
            bar.update(1)
    return timeline


def render_timeline(timeline: Timeline) -> Image.Image:
    """Stacked shares over time (fallback on top), cuts as dashed lines, a legend below."""
    frames = len(timeline.shares)
    width = int(np.clip(frames * 4, MIN_WIDTH, MAX_WIDTH))
    font = ImageFont.load_default(size=13)
    left, right, top, bottom = 48, 16, 28, 34
    order = [c for c in timeline.categories if c != timeline.fallback] + [timeline.fallback]
    legend_rows = (len(order) + 3) // 4
    canvas = Image.new("RGB", (width + left + right, top + PLOT_HEIGHT + bottom + 22 * legend_rows))
    canvas.paste("white", (0, 0, *canvas.size))
    draw = ImageDraw.Draw(canvas)
    title = f"{Path(timeline.source).name}: category share per frame ({frames} frames)"
    draw.text((left, 8), title, fill="black", font=font)

    plot = _stack(timeline, order, width)
    canvas.paste(Image.fromarray(plot), (left, top))
    draw.rectangle((left - 1, top - 1, left + width, top + PLOT_HEIGHT), outline="black")
    for pct in (0, 25, 50, 75, 100):
        y = top + PLOT_HEIGHT - round(pct / 100 * PLOT_HEIGHT)
        draw.line((left - 4, y, left - 1, y), fill="black")
        draw.text((left - 6, y), f"{pct}%", fill="black", font=font, anchor="rm")
    _time_axis(draw, timeline, width, left, top + PLOT_HEIGHT, font)
    for cut in timeline.cuts:
        x = left + round(cut / max(frames, 1) * width)
        for y in range(top, top + PLOT_HEIGHT, 8):
            draw.line((x, y, x, min(y + 4, top + PLOT_HEIGHT)), fill="black", width=2)
    means = timeline.to_dict()["mean_share_percent"]
    for i, name in enumerate(order):
        x = left + (i % 4) * (width // 4)
        y = top + PLOT_HEIGHT + bottom + 22 * (i // 4)
        draw.rectangle((x, y + 2, x + 14, y + 16), fill=timeline.colors[name], outline="black")
        text = f"{name} {means[name]:.1f}%"
        draw.text((x + 20, y + 9), text, fill="black", font=font, anchor="lm")
    return canvas


def _stack(timeline: Timeline, order: list[str], width: int) -> np.ndarray:
    """(PLOT_HEIGHT, width, 3) uint8: each column shows the frame under it, stacked."""
    frames = len(timeline.shares)
    plot = np.full((PLOT_HEIGHT, width, 3), 255, dtype=np.uint8)
    if frames == 0:
        return plot
    palette = {c: np.array(_rgb(timeline.colors[c]), dtype=np.uint8) for c in order}
    for x in range(width):
        shares = timeline.shares[min(frames - 1, x * frames // width)]
        total = sum(shares.get(c, 0.0) for c in order) or 1.0
        bottom = PLOT_HEIGHT
        for name in order:
            height = round(shares.get(name, 0.0) / total * PLOT_HEIGHT)
            if height > 0:
                plot[max(0, bottom - height) : bottom, x] = palette[name]
                bottom -= height
    return plot


def _time_axis(
    draw: ImageDraw.ImageDraw,
    timeline: Timeline,
    width: int,
    left: int,
    y: int,
    font: ImageFont.ImageFont,
) -> None:
    frames = len(timeline.shares)
    seconds = frames / timeline.fps if timeline.fps else 0.0
    steps = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
    step = next((s for s in steps if seconds / s <= 10), 1200)
    t = 0.0
    while t <= seconds + 1e-9 and seconds > 0:
        x = left + round(t / seconds * width)
        draw.line((x, y, x, y + 4), fill="black")
        label = f"{t:g} s" if t < 60 else f"{int(t // 60)}:{int(t % 60):02d}"
        draw.text((x, y + 6), label, fill="black", font=font, anchor="mt")
        t += step


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def write_timeline(timeline: Timeline, out_dir: str | Path) -> dict[str, Path]:
    """``timeline.json`` and ``timeline.png`` in ``out_dir`` (written atomically)."""
    out_dir = Path(out_dir)
    files = {"json": out_dir / "timeline.json", "png": out_dir / "timeline.png"}
    with atomic_write(files["json"]) as tmp:
        tmp.write_text(json.dumps(timeline.to_dict(), indent=2) + "\n", encoding="utf-8")
    with atomic_write(files["png"]) as tmp:
        render_timeline(timeline).save(tmp, format="PNG")
    return files
