"""Fit K color profiles to a set of photos: DCD per photo, embedding, K-means, names.

Photos that ``held_out`` marks (the validation photos of the train/val split) are assigned to
their nearest profile but take no part in fitting, so a classifier evaluated on them is
evaluated on photos the whole system never fitted to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segcolor.color.dcd import MAX_COLORS, MAX_SIDE, TD, DominantColors, dominant_colors_lab
from segcolor.errors import SegcolorError
from segcolor.profiles.describe import describe_files
from segcolor.profiles.embedding import KIND, SIGMA, embed
from segcolor.profiles.kmeans import assign, kmeans
from segcolor.profiles.naming import profile_names
from segcolor.profiles.store import Profile, ProfileSet


@dataclass
class FitResult:
    profiles: ProfileSet
    files: list[Path]  # readable photos, in input order
    descriptors: list[DominantColors]  # one per file
    labels: np.ndarray  # profile index per file
    seconds: float = 0.0  # wall time of the fit


def pooled(descriptors: Sequence[DominantColors], td: float = TD) -> DominantColors:
    """The dominant colors of several descriptors together (each photo counts equally): their
    colors, weighted by share / number of photos, clustered like pixels."""
    rows = [d for d in descriptors if len(d)]
    if not rows:
        return DominantColors(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)), 0.0)
    colors = np.concatenate([d.colors for d in rows])
    weights = np.concatenate([d.percents for d in rows]) / len(rows)
    lab = torch.from_numpy(colors.T.astype(np.float32))[None, :, None, :]  # (1, 3, 1, T)
    weight = torch.from_numpy(weights.astype(np.float32))[None, None, :]  # (1, 1, T)
    merged = dominant_colors_lab(lab, weight, td=td, max_colors=MAX_COLORS)[0]
    coherency = float(np.mean([d.coherency for d in rows]))  # no pixel grid: members' mean
    return DominantColors(merged.colors, merged.percents, merged.variances, coherency)


def fit_profiles(
    files: Sequence[Path],
    k: int,
    *,
    root: Path,
    root_label: str,
    seed: int = 0,
    held_out: Callable[[Path], bool] | None = None,
    td: float = TD,
    max_side: int = MAX_SIDE,
    sigma: float = SIGMA,
    workers: int = 2,
    progress: bool = True,
    settings: dict[str, Any] | None = None,
) -> FitResult:
    """Cluster ``files`` (photos under ``root``) into ``k`` profiles; deterministic per seed."""
    start = time.perf_counter()
    described = describe_files(files, td=td, max_side=max_side, workers=workers, progress=progress)
    keep = [i for i, d in enumerate(described) if d is not None]
    files = [files[i] for i in keep]
    descriptors: list[DominantColors] = [described[i] for i in keep]  # type: ignore[misc]
    held = np.array([bool(held_out(f)) if held_out else False for f in files], dtype=bool)
    fit_rows = np.flatnonzero(~held)
    if len(fit_rows) < k:
        raise SegcolorError(
            f"{len(fit_rows)} photos to fit (after the held-out ones) but --k {k}; "
            "give more photos or a smaller k"
        )
    x = embed(descriptors, sigma)
    result = kmeans(x[fit_rows], k, seed=seed)
    labels = assign(x, result.centers)
    labels[fit_rows] = result.labels
    dist = ((x - result.centers[labels]) ** 2).sum(1)

    centroids, members, held_counts = [], [], []
    for j in range(k):
        rows = np.flatnonzero(labels == j)
        rows = rows[np.lexsort((rows, dist[rows]))]  # most typical (nearest the center) first
        fitted = [descriptors[i] for i in sorted(rows) if not held[i]]  # file order: stable sums
        centroids.append(pooled(fitted, td))
        members.append([files[i].relative_to(root).as_posix() for i in rows])
        held_counts.append(int(held[rows].sum()))
    names = profile_names(centroids)
    profiles = [
        Profile(name=n, centroid=c, members=m, held_out=h)
        for n, c, m, h in zip(names, centroids, members, held_counts, strict=True)
    ]
    all_settings = {
        "k": k,
        "seed": seed,
        **(settings or {}),
        "descriptor": {
            "space": "CIE Lab",
            "td": td,
            "max_colors": MAX_COLORS,
            "max_side": max_side,
        },
        "embedding": {"kind": KIND, "sigma": sigma},
        "fit": {
            "photos": len(files),
            "fitted": len(fit_rows),
            "held_out": int(held.sum()),
            "unreadable": len(described) - len(files),
            "inertia": round(result.inertia, 6),
        },
    }
    profile_set = ProfileSet(profiles, root_label, all_settings)
    seconds = time.perf_counter() - start  # reported, not stored: the file is deterministic
    return FitResult(profile_set, files, descriptors, labels, seconds)
