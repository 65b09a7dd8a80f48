"""Contact sheets: a profile's most typical member photos in a grid, under its color swatches.

For people deciding whether a profile is a meaningful group; written as PNG atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from segcolor.errors import BadImageError
from segcolor.io.atomic import atomic_write
from segcolor.io.images import load_image
from segcolor.profiles.store import Profile

CELL = 96  # thumbnail cell, pixels
COLUMNS = 8
ROWS = 6
GAP = 4
HEADER = 64  # title line + swatch bar


def _thumbnail(path: Path, cell: int) -> Image.Image | None:
    try:
        rgb = load_image(path).rgb
    except BadImageError:
        return None
    image = Image.fromarray((rgb * 255).round().clip(0, 255).astype("uint8"), "RGB")
    image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    return image


def render_sheet(
    profile: Profile,
    files: Sequence[Path],
    *,
    cell: int = CELL,
    columns: int = COLUMNS,
    rows: int = ROWS,
) -> Image.Image:
    """The sheet of ``profile``; ``files`` are its members' paths, most typical first."""
    shown = list(files[: columns * rows])
    grid_rows = max(1, -(-len(shown) // columns))
    width = columns * (cell + GAP) + GAP
    height = HEADER + grid_rows * (cell + GAP) + GAP
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    title = (
        f"{profile.name}: {profile.size} photos ({profile.held_out} held out), "
        f"the {len(shown)} most typical"
    )
    draw.text((GAP, 6), title, fill="black", font=font)
    left = GAP
    bar_width = width - 2 * GAP
    colors, shares = profile.centroid.hex(), profile.centroid.percents
    for i, (color, share) in enumerate(zip(colors, shares, strict=True)):
        right = GAP + bar_width if i == len(colors) - 1 else left + round(share * bar_width)
        draw.rectangle((left, 30, max(left, right - 1), HEADER - 8), fill=color)
        if right - left > 60:
            draw.text((left + 4, 34), f"{share:.0%}", fill=_ink(color), font=font)
        left = right
    for i, path in enumerate(shown):
        thumb = _thumbnail(path, cell)
        if thumb is None:
            continue
        x = GAP + (i % columns) * (cell + GAP) + (cell - thumb.width) // 2
        y = HEADER + (i // columns) * (cell + GAP) + (cell - thumb.height) // 2
        sheet.paste(thumb, (x, y))
    return sheet


def _ink(color: str) -> str:
    """Black or white text, whichever reads on ``color``."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"


def write_sheet(path: Path, sheet: Image.Image) -> Path:
    with atomic_write(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return path
