"""Readable profile names from a profile's centroid colors: "warm-orange", "cold-blue", "gray".

The name follows the colors a person would notice: the share-and-chroma weighted mean hue of
the dominant colors (Lab hue angle), with "warm"/"cold" for hues on either side of green, and
"gray" when the profile has little chroma at all. Names that collide are told apart by
lightness, then by a number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segcolor.color.dcd import DominantColors

GRAY_CHROMA = 10.0  # share-weighted mean chroma below this: "gray"
MUTED_CHROMA = 16.0  # below this (and above gray): "muted-<hue>"
# Lab hue angle (degrees) where each hue name starts, in order around the circle; sRGB red is
# at 40, orange 73, yellow 103, green 136, cyan 196, sky blue 235, blue 306, purple 328.
HUES = (
    (0.0, "red"),
    (55.0, "orange"),
    (85.0, "yellow"),
    (105.0, "green"),  # foliage sits at 110-130: yellow-green is green to a person
    (180.0, "cyan"),
    (225.0, "blue"),
    (300.0, "purple"),
    (345.0, "red"),
)
WARM = {"red", "orange", "yellow"}
COLD = {"cyan", "blue", "purple"}


def hue_name(angle: float) -> str:
    angle = angle % 360.0
    name = HUES[0][1]
    for start, label in HUES:
        if angle >= start:
            name = label
    return name


def color_stats(d: DominantColors) -> tuple[float, float, float]:
    """(mean chroma, mean hue angle in degrees, mean L) of a descriptor.

    Chroma and L are share-weighted; the hue is a circular mean weighted by share x chroma, so
    grays do not pull it around.
    """
    if not len(d):
        return 0.0, 0.0, 0.0
    a, b = d.colors[:, 1], d.colors[:, 2]
    chroma = float((d.percents * np.hypot(a, b)).sum())
    # unit hue vectors weighted by share x chroma sum to the share-weighted mean ab
    hue = float(np.degrees(np.arctan2((d.percents * b).sum(), (d.percents * a).sum()))) % 360.0
    return chroma, hue, float((d.percents * d.colors[:, 0]).sum())


def base_name(d: DominantColors) -> str:
    chroma, hue, _ = color_stats(d)
    if chroma < GRAY_CHROMA:
        return "gray"
    name = hue_name(hue)
    if chroma < MUTED_CHROMA:
        return f"muted-{name}"
    if name in WARM:
        return f"warm-{name}"
    if name in COLD:
        return f"cold-{name}"
    return name


def profile_names(centroids: Sequence[DominantColors]) -> list[str]:
    """One unique name per centroid (same order)."""
    names = [base_name(d) for d in centroids]
    lightness = [color_stats(d)[2] for d in centroids]
    out = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) < 2:
            continue
        same.sort(key=lambda i: lightness[i])
        if len(same) == 2:
            out[same[0]], out[same[1]] = f"dark-{name}", f"light-{name}"
        else:
            for rank, i in enumerate(same, start=1):
                out[i] = f"{name}-{rank}"
    return out
