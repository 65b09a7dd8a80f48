"""The contact sheet: gray | general | merged | ground truth side by side, one photo a row,
so a reader sees at a glance what the numbers mean."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segcolor.io.images import save_image

from .harness import SheetRow

CELL = 192  # px: each image is fitted into a CELL x CELL box, aspect kept
GAP = 4
HEADER = 22  # column labels
CAPTION = 16  # the photo's name above its row
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _fit(rgb: np.ndarray) -> Image.Image:
    image = Image.fromarray(rgb)
    scale = min(CELL / image.width, CELL / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS) if size != image.size else image


def contact_sheet(rows: Sequence[SheetRow]) -> np.ndarray:
    """(H,W,3) uint8: a labelled grid, one row per photo (as tall as its tallest image)."""
    columns = list(dict.fromkeys(c for row in rows for c in row.images))
    cells = [{c: _fit(img) for c, img in row.images.items()} for row in rows]
    heights = [max((im.height for im in row.values()), default=0) for row in cells]
    width = GAP + len(columns) * (CELL + GAP)
    height = HEADER + sum(CAPTION + h + GAP for h in heights)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    label_font, caption_font = _font(14), _font(11)
    for j, column in enumerate(columns):
        x = GAP + j * (CELL + GAP)
        left = x + max(0.0, (CELL - draw.textlength(column, font=label_font)) / 2)
        draw.text((left, 3), column, fill=INK, font=label_font)
    top = HEADER
    for row, images, row_height in zip(rows, cells, heights, strict=True):
        draw.text((GAP, top + 2), row.name, fill=INK, font=caption_font)
        for j, column in enumerate(columns):
            if column in images:
                cell = images[column]
                x = GAP + j * (CELL + GAP) + (CELL - cell.width) // 2
                sheet.paste(cell, (x, top + CAPTION + (row_height - cell.height) // 2))
        top += CAPTION + row_height + GAP
    return np.asarray(sheet)


def write_contact_sheet(rows: Sequence[SheetRow], path: Path) -> Path:
    """Write the sheet atomically (PNG)."""
    save_image(path, contact_sheet(rows).astype(np.float32) / 255.0)
    return path
