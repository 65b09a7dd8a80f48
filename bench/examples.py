"""The README's example figure: gray input | routing | general model | segcolor | ground truth.

    python bench/examples.py -o docs/figures/examples.png
    python bench/examples.py --styles        # the style sheet, docs/figures/styles.jpg

Rows: COCO photos with several subjects, a Flickr8k scene with a person and a dog, one held-out
photo of each category (never trained on), and real historical photos (no ground truth: that
cell stays blank). The figure is built from the shared photos, whose licences are mostly
research-only, so it is written to an ignored folder and never committed; this script
regenerates it.

``--styles`` draws the style sheet instead (issue 26): gray | faithful | vivid | photo for 24
COCO photos (``data/eval_masks/coco128`` + ``coco_taming_train100``), two photos a row. The
photos were not chosen by looks, nor used to choose anything: they are the first color photos
(black-and-white ones skipped) in the order of a hash of their file names
(``sha1("styles:" + name)``), so the sheet shows what the styles do on photos picked blindly.
Both styles come from one pipeline (``RoutingEdits(style=...)`` per photo, one segmenter pass).
It is a modest JPEG (quality lowered until it is under ``--max-mb``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from segcolor.evaluate.datasets import find_photos
from segcolor.evaluate.harness import MIN_CHROMA
from segcolor.evaluate.metrics import GroundTruth
from segcolor.io.images import find_images, load_image, save_image
from segcolor.pipeline import GENERAL_EXPERT, Pipeline, to_uint8
from segcolor.router.edits import RoutingEdits
from segcolor.router.overlay import category_colors, render_overlay
from segcolor.splits import split_score

from common import COCO, held_out_photos, shared

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


def example_figure(args: argparse.Namespace) -> int:
    """The README's example figure (``ROWS`` x ``COLUMNS``)."""
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
    out = Path(args.output or "docs/figures/examples.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, np.asarray(sheet, dtype=np.float32) / 255.0)
    print(f"wrote {out} ({len(rows)} rows)")
    return 0


# ------------------------------------------------------------------ the style sheet (issue 26)

STYLE_COLUMNS = ("gray", "faithful", "vivid", "photo")
STYLE_PHOTOS = 24
STYLE_CELL = 200  # px: each image fits a STYLE_CELL square
STYLE_GAP = 12  # px between the photos of a row
STYLE_MAX_MB = 1.5


def style_key(path: Path) -> str:
    """The style sheet's order of photos: a hash of the file name, blind to what they show."""
    return hashlib.sha1(("styles:" + path.name).encode("utf-8")).hexdigest()


def style_photos(root: Path, count: int) -> list[tuple[Path, np.ndarray]]:
    """The first ``count`` color COCO photos in ``style_key`` order, with their uint8 RGB."""
    folders = [root / "data" / "eval_masks" / name for name in COCO]
    refs = find_photos([f for f in folders if f.is_dir()])
    chosen = []
    for ref in sorted(refs, key=lambda r: style_key(r.path)):
        rgb = to_uint8(load_image(ref.path).rgb)
        if GroundTruth.from_rgb(rgb).mean_chroma >= MIN_CHROMA:  # black and white: no photo
            chosen.append((ref.path, rgb))
        if len(chosen) == count:
            break
    return chosen


def style_cells(pipeline: Pipeline, rgb: np.ndarray) -> list[Image.Image]:
    """gray | faithful | vivid | photo of one photo, each fitted to a ``STYLE_CELL`` square."""
    lab = pipeline.lab(rgb)
    semantics = pipeline.segment(lab) if pipeline.routed else None
    styled = []
    for style in ("faithful", "vivid"):
        result = pipeline.run(lab, RoutingEdits(style=style), semantics=semantics, dtype=np.uint8)
        assert result.rgb is not None
        styled.append(Image.fromarray(result.rgb))
    no_color = torch.zeros_like(lab.l_small).repeat(1, 2, 1, 1)
    gray = Image.fromarray(Pipeline.to_rgb(lab, no_color, np.uint8))  # what the pipeline saw
    cells = [gray, *styled, Image.fromarray(rgb)]
    for cell in cells:
        cell.thumbnail((STYLE_CELL, STYLE_CELL))
    return cells


def style_sheet(args: argparse.Namespace) -> int:
    """gray | faithful | vivid | photo for ``--count`` blindly picked COCO photos."""
    root = shared()
    pipeline = (
        Pipeline.from_config(args.pipeline, device="cpu")
        if args.pipeline
        else Pipeline.default(device="cpu", require_router=True)
    )
    photos = style_photos(root, args.count)
    if not photos:
        print(f"no COCO photos under {root / 'data' / 'eval_masks'}", file=sys.stderr)
        return 1
    rows = [style_cells(pipeline, rgb) for _, rgb in photos]
    per_row, width = args.per_row, STYLE_CELL * len(STYLE_COLUMNS)
    font = ImageFont.load_default(size=14)
    header = 24
    lines = [rows[i : i + per_row] for i in range(0, len(rows), per_row)]
    heights = [max(c.height for cells in line for c in cells) for line in lines]
    total_width = per_row * width + (per_row - 1) * STYLE_GAP
    sheet = Image.new("RGB", (total_width, header + sum(heights) + 4 * len(lines)), "white")
    draw = ImageDraw.Draw(sheet)
    for k in range(per_row):
        for i, title in enumerate(STYLE_COLUMNS):
            x = k * (width + STYLE_GAP) + i * STYLE_CELL + STYLE_CELL // 2
            draw.text((x, header // 2), title, fill="black", font=font, anchor="mm")
    top = header
    for line, height in zip(lines, heights, strict=True):
        for k, cells in enumerate(line):
            for i, cell in enumerate(cells):
                left = k * (width + STYLE_GAP) + i * STYLE_CELL + (STYLE_CELL - cell.width) // 2
                sheet.paste(cell, (left, top + (height - cell.height) // 2))
        top += height + 4
    out = Path(args.output or "docs/figures/styles.jpg")
    out.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.asarray(sheet)
    for quality in (85, 80, 75, 70, 65, 60, 50, 40):
        save_image(out, pixels, quality=quality)
        megabytes = out.stat().st_size / 1e6
        if megabytes <= args.max_mb:
            break
    names = ", ".join(path.name for path, _ in photos)
    print(f"wrote {out} ({len(photos)} photos, {megabytes:.2f} MB, quality {quality}): {names}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o",
        "--output",
        help="default: docs/figures/examples.png (--styles: docs/figures/styles.jpg)",
    )
    parser.add_argument("--pipeline", help="pipeline YAML (default: the shipped one)")
    parser.add_argument("--general", default=str(GENERAL_EXPERT), help="general model")
    parser.add_argument(
        "--styles", action="store_true", help="the style sheet: gray | faithful | vivid | photo"
    )
    parser.add_argument("--count", type=int, default=STYLE_PHOTOS, help="--styles: photos")
    parser.add_argument("--per-row", type=int, default=2, help="--styles: photos a row")
    parser.add_argument(
        "--max-mb", type=float, default=STYLE_MAX_MB, help="--styles: largest JPEG (MB)"
    )
    args = parser.parse_args()
    return style_sheet(args) if args.styles else example_figure(args)


if __name__ == "__main__":
    sys.exit(main())
