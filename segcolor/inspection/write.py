"""Write everything ``segcolor inspect`` produces for one photo into a folder.

Files: ``routing.json`` (regions, experts and their weights, settings), ``overlay.png``
(categories over the grayscale, with a legend), ``expert_<category>.png`` (each used expert
alone), ``weights_<category>.png`` (its weight in the result), ``colorized.png`` (the result)
and ``index.html``, a single self-contained page showing all of it.

Each region also gets the dominant colors (MPEG-7 DCD) of the result within it, and a category
whose expert has color-profile variants shows P(profile | photo) and the variants mixed.

Given routing edits with color hints, the overlay shows each hint where it was placed (a dot or
a stroke in its color, outlined, numbered) and the page and routing.json list them with the
category each lies in: what the person asked for, beside what the experts made of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from segcolor.inspection.html import render_index
from segcolor.io.atomic import atomic_write
from segcolor.io.images import load_image
from segcolor.pipeline import Analysis, Pipeline
from segcolor.router.edits import RoutingEdits
from segcolor.router.hints import default_radius, draw_hints
from segcolor.router.overlay import category_colors, preview_size, region_colors, render_overlay
from segcolor.router.routing import Routing

OVERLAY_SIDE = 2048  # the overlay is for looking at: no need for 40 MP of it


def _save_png(path: Path, image: Image.Image) -> Path:
    with atomic_write(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def _settings(pipeline: Pipeline) -> dict[str, Any]:
    """What produced the report, flat and readable (also stored in routing.json)."""
    out: dict[str, Any] = {
        "device": str(pipeline.device),
        "working_size": pipeline.working_size,
        "vividness": pipeline.vividness,
        "style": pipeline.style,
    }
    config = pipeline.config
    if config is not None:
        out["pipeline"] = str(config.path) if config.path else "-"
        out["segmenter"] = config.segmenter
        out["fallback"] = config.fallback
        out["router"] = ", ".join(f"{k}={v}" for k, v in vars(config.router).items())
        out["merge"] = ", ".join(f"{k}={v}" for k, v in vars(config.merge).items())
        for spec in config.categories:
            out[f"expert {spec.name}"] = (
                ", ".join(str(p) for p in spec.checkpoints)
                or f"none (colored by {config.fallback})"
            )
            if spec.profiled:
                out[f"expert {spec.name}"] = "profile variants " + ", ".join(
                    f"{v}={p}" for v, p in zip(spec.variants, spec.checkpoints, strict=True)
                )
                out[f"profile classifier {spec.name}"] = (
                    f"{spec.classifier} (variants below {spec.min_probability:g} not run)"
                )
    return out


def profile_legend(routing: Routing) -> list[tuple[str, str]]:
    """One legend row per profiled expert: P(profile | photo) and the variants it runs."""
    rows = []
    for expert, choice in routing.profiles.items():
        ranked = sorted(choice.probabilities.items(), key=lambda kv: -kv[1])
        probs = ", ".join(f"{name} {p:.0%}" for name, p in ranked)
        mix = " + ".join(f"{v} {w:.2f}" for v, w in choice.weights.items())
        rows.append((expert, f"{expert} profile: {probs}"))
        rows.append((expert, f"{expert} variants: {mix}"))
    return rows


def _legend(analysis: Analysis, expert_of: dict[str, str]) -> list[tuple[str, str]]:
    """One row per category present: share, classes found, and who colors it if not itself."""
    routing = analysis.routing
    rows = []
    for name in routing.categories:
        share = routing.shares.get(name, 0.0)
        if share <= 0:
            continue
        found = [c for c in routing.classes_found.get(name, []) if c != "background"]
        text = f"{name}  {share:.1f}%" + (f"  ({', '.join(found)})" if found else "")
        if expert_of.get(name, name) != name:
            text += f"  (no expert: colored by {expert_of[name]})"
        rows.append((name, text))
    return rows


def hint_rows(routing: Routing, edits: RoutingEdits | None) -> list[dict[str, Any]]:
    """The edits' color hints as listed in the report: each as in the edits file, with its
    index, kind, size in photo pixels (its own or the default) and the categories under it."""
    if edits is None or not edits.hints:
        return []
    height, width = routing.working_size
    fallback = default_radius(routing.size, routing.working_size)
    rows = []
    for i, hint in enumerate(edits.hints):
        under = []
        for x, y in hint.points:
            row = min(height - 1, int(y * height / routing.size[0]))
            col = min(width - 1, int(x * width / routing.size[1]))
            name = routing.categories[int(routing.category_map_small[row, col])]
            if name not in under:
                under.append(name)
        size = hint.size if hint.size is not None else fallback * (1 if hint.is_point else 2)
        rows.append(
            {
                "index": i,
                "kind": "point" if hint.is_point else "stroke",
                **hint.to_dict(),
                "size_px": round(size, 2),
                "size_is_default": hint.size is None,
                "categories": under,
            }
        )
    return rows


def write_inspection(
    pipeline: Pipeline,
    photo: str | Path,
    out_dir: str | Path,
    edits: RoutingEdits | None = None,
) -> dict[str, Path]:
    """Analyse ``photo`` (with routing ``edits``, as ``colorize --routing`` applies them) and
    write the report files; returns them by role."""
    photo, out_dir = Path(photo), Path(out_dir)
    image = load_image(photo)
    edits = None if edits is None or edits.empty else edits
    # raises for a single-expert pipeline: no routing
    analysis = pipeline.analyze(image.rgb, edits=edits)
    assert pipeline.router is not None
    routing = analysis.routing
    height, width = analysis.gray.shape
    overrides = {}
    if pipeline.config is not None:
        overrides = {c.name: c.color for c in pipeline.config.categories}
    colors = category_colors(routing.categories, overrides)

    files: dict[str, Path] = {}
    size = preview_size(height, width, OVERLAY_SIDE)
    gray_small = np.asarray(Image.fromarray(analysis.gray).resize(size[::-1], Image.BILINEAR))
    overlay = render_overlay(
        gray_small,
        routing.category_map_at(size),
        routing.categories,
        colors,
        _legend(analysis, pipeline.router.expert_of) + profile_legend(routing),
    )
    if edits is not None:
        draw_hints(overlay, edits.hints, (height, width), routing.working_size)
    files["overlay"] = _save_png(out_dir / "overlay.png", overlay)
    result = Image.fromarray(analysis.colorized, "RGB")
    files["colorized"] = _save_png(out_dir / "colorized.png", result)

    experts = []
    mean_weights = {}
    for name in routing.experts:
        alone = Image.fromarray(analysis.expert_images[name], "RGB")
        weight = analysis.merge_weights[name]
        mean_weights[name] = float(weight.mean())
        weight_img = Image.fromarray(np.clip(np.rint(weight * 255), 0, 255).astype(np.uint8))
        weight_img = weight_img.resize((width, height), Image.BILINEAR)
        files[f"expert_{name}"] = _save_png(out_dir / f"expert_{name}.png", alone)
        files[f"weights_{name}"] = _save_png(out_dir / f"weights_{name}.png", weight_img)
        experts.append(
            (
                name,
                alone,
                weight_img,
                f"{name} expert alone (mean weight in the result {mean_weights[name]:.2f})",
            )
        )

    hints = hint_rows(routing, edits)
    settings = _settings(pipeline) | {"style": pipeline.style_for(edits)}
    report = {"image": str(photo), **routing.to_dict(), "settings": settings}
    if hints:
        report["hints"] = hints
    for entry in report["experts"]:
        entry["mean_weight_after_merge"] = round(mean_weights[entry["category"]], 4)
        if pipeline.config is not None:
            spec = pipeline.config.category(entry["category"])
            entry["checkpoints"] = [str(p) for p in spec.checkpoints]
            if spec.profiled:
                entry["variants"] = dict(zip(spec.variants, entry["checkpoints"], strict=True))
                entry["profile_classifier"] = str(spec.classifier)
    for region, dcd in zip(
        report["regions"], region_colors(routing, analysis.colorized), strict=True
    ):
        region["dominant_colors"] = dcd
    for expert, entry in report.get("profiles", {}).items():
        gate = pipeline.router.gates.get(expert)
        if gate is not None:
            entry["profile_colors"] = {
                p["name"]: p.get("colors", []) for p in gate.classifier.card.get("profiles", [])
            }
    with atomic_write(out_dir / "routing.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    files["routing"] = out_dir / "routing.json"

    page = render_index(
        title=photo.name,
        summary=routing.summary() or "nothing found",
        main_images=[
            (
                "input (grayscale)",
                Image.fromarray(analysis.gray),
                f"input as the pipeline sees it ({width}x{height})",
            ),
            (
                "categories overlay",
                overlay,
                "categories found (legend below the photo)"
                + (f"; {len(hints)} color hint(s), numbered" if hints else ""),
            ),
            ("colorized result", result, "result: experts merged by their weights"),
        ],
        expert_images=experts,
        regions=report["regions"],
        colors=colors,
        settings={"image": photo, **settings},
        profiles=report.get("profiles", {}),
        hints=hints,
    )
    with atomic_write(out_dir / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    files["index"] = out_dir / "index.html"
    return files
