"""The README's example figure: gray input | routing | general model | segcolor | ground truth.

    python bench/examples.py -o docs/figures/examples.png

Rows: COCO photos with several subjects, a Flickr8k scene with a person and a dog, one held-out
photo of each category (never trained on), and real historical photos (no ground truth: that
cell stays blank). The figure is built from the shared photos, whose licences are mostly
research-only, so it is written to an ignored folder and never committed; this script
regenerates it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segcolor.io.images import find_images, load_image, save_image
from segcolor.pipeline import GENERAL_EXPERT, Pipeline, to_uint8
from segcolor.router.overlay import category_colors, render_overlay
from segcolor.splits import split_score

from common import held_out_photos, shared

HELD_OUT = ""  # the category folder's first held-out photo (by split score: none was trained on)
# (folder under data/, file name): chosen to show several subjects, each category, and old photos
ROWS = [
    ("eval_masks/coco_taming_train100", "000000010005.jpg"),
    ("eval_masks/coco128", "000000000025.jpg"),
    ("multi_subject_nomask", "flickr8k_1003163366_44323f5815.jpg"),
    ("train/people", HELD_OUT),
    ("train/birds", HELD_OUT),
    ("train/animals", HELD_OUT),
    ("train/places", HELD_OUT),
    ("historical_bw", "ddcolor_February_1936_Nipomo_Calif_Destitute_pea_pickers_living_in_t.png"),
    ("historical_bw", "ddcolor_Detroit_circa_1915.png"),
    ("historical_bw", "bopbtl_early_10.png"),
]
COLUMNS = ("input (gray)", "routing", "general model", "segcolor (routed experts)", "ground truth")
CELL = 224


def _fit(image: Image.Image) -> Image.Image:
    image = image.copy()
    image.thumbnail((CELL, CELL + 200))
    return image


def _row(path: Path, pipeline: Pipeline, general: Pipeline, has_truth: bool) -> list[Image.Image]:
    loaded = load_image(path)
    analysis = pipeline.analyze(loaded.rgb, expert_images=False)
    routing = analysis.routing
    colors = category_colors(routing.categories)
    legend = [(c, f"{c} {routing.shares.get(c, 0):.0f}%") for c in routing.experts]
    overlay = render_overlay(
        analysis.gray, routing.category_map, routing.categories, colors, legend
    )
    cells = [
        Image.fromarray(analysis.gray).convert("RGB"),
        overlay,
        Image.fromarray(general.colorize(loaded.rgb)),
        Image.fromarray(analysis.colorized),
        Image.fromarray(to_uint8(loaded.rgb)) if has_truth else None,
    ]
    return [_fit(c) if c is not None else None for c in cells]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="docs/figures/examples.png")
    parser.add_argument("--pipeline", help="pipeline YAML (default: the shipped one)")
    parser.add_argument("--general", default=str(GENERAL_EXPERT), help="general model")
    args = parser.parse_args()
    root = shared()
    pipeline = (
        Pipeline.from_config(args.pipeline, device="cpu")
        if args.pipeline
        else Pipeline.default(device="cpu", require_router=True)
    )
    general = Pipeline.from_expert(args.general, device="cpu")
    rows = []
    for folder, name in ROWS:
        path = root / "data" / folder / name
        if name == HELD_OUT and path.is_dir():
            held_out = held_out_photos(find_images(path))
            path = min(held_out, key=split_score) if held_out else path / "(none held out)"
            name = path.name
        if not path.is_file():
            print(f"skipping {path}: not found", file=sys.stderr)
            continue
        rows.append((name, _row(path, pipeline, general, has_truth=folder != "historical_bw")))
    font = ImageFont.load_default(size=14)
    header = 24
    heights = [max(c.height for c in cells if c is not None) for _, cells in rows]
    sheet = Image.new("RGB", (CELL * len(COLUMNS), header + sum(heights) + 4 * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, title in enumerate(COLUMNS):
        draw.text((i * CELL + CELL // 2, header // 2), title, fill="black", font=font, anchor="mm")
    top = header
    for (_, cells), height in zip(rows, heights, strict=True):
        for i, cell in enumerate(cells):
            if cell is not None:
                sheet.paste(cell, (i * CELL + (CELL - cell.width) // 2, top))
            else:
                draw.text((i * CELL + CELL // 2, top + height // 2), "(no ground truth)",
                          fill="gray", font=font, anchor="mm")  # fmt: skip
        top += height + 4
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, np.asarray(sheet, dtype=np.float32) / 255.0)
    print(f"wrote {out} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
