"""How much of "merged beats general" is which training one drew: two seeds of each side.

Reads four ``bench/quality.py``-style result folders (each with ``coco/results.csv`` and
``held_out/per_photo.csv``): the merge and the general model as shipped (seed 0), and both
trained again with ``train.seed: 1`` and evaluated on the same photos. Prints, per set of the
issue's bar, each side's seed-1 minus seed-0 difference, merged minus general for each seed,
and the mean of both merges minus the mean of both generals with a photo-bootstrap 95 %
interval (PSNR dB, ΔE2000).

Why: every other table compares one training with one training. When a second training moves
a set by as much as the difference being judged, only the seed-averaged column means anything.

    # seed 1 of every shipped model (one --out each: --out names one run's folder)
    for c in general_ft2 people birds animals places; do
      segcolor train --resume configs/routed/$c.yaml --set train.seed=1 --out runs/seed1/$c
    done
    for v in gray cold-blue warm-orange green; do
      segcolor train --resume configs/routed/places_$v.yaml --set train.seed=1 \\
        --set model.init=runs/seed1/places/expert.safetensors --out runs/seed1/places_$v
    done
    # evaluate them as bench/quality.py does (--general runs/seed1/general_ft2/expert.safetensors;
    # a pipeline YAML naming the seed-1 experts for the merge), then:
    python bench/seed_spread.py out/quality out/quality out/seed1_merged out/seed1_general
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

METRICS = ("psnr_rgb", "delta_e2000")
SETS = [  # (row, folder, region): COCO regions from results.csv, held-out folders per photo
    ("COCO whole images", "coco", "image"),
    ("COCO people regions", "coco", "people"),
    ("COCO animals regions", "coco", "animals"),
    ("COCO places regions", "coco", "places"),
    ("held-out, all", "held_out", "all"),
    ("held-out people", "held_out", "people"),
    ("held-out birds", "held_out", "birds"),
    ("held-out animals", "held_out", "animals"),
    ("held-out places", "held_out", "places"),
]
Scores = dict[tuple[str, str], dict[str, float]]  # (region, metric) -> photo -> value


def coco_scores(root: Path, method: str) -> Scores:
    scores: Scores = {}
    with open(root / "coco" / "results.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["method"] == method and row["metric"] in METRICS:
                key = (row["region"], row["metric"])
                scores.setdefault(key, {})[row["photo"]] = float(row["value"])
    return scores


def held_out_scores(root: Path, method: str) -> Scores:
    scores: Scores = {}
    with open(root / "held_out" / "per_photo.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["method"] != method:
                continue
            for metric in METRICS:
                for region in (row["dataset"], "all"):
                    scores.setdefault((region, metric), {})[row["photo"]] = float(row[metric])
    return scores


def bootstrap(x: np.ndarray, rng: np.random.Generator, rounds: int = 2000) -> str:
    means = [x[rng.integers(0, len(x), len(x))].mean() for _ in range(rounds)]
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{x.mean():+.2f} [{low:+.2f}, {high:+.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ("merged0", "general0", "merged1", "general1")
    for name in names:
        parser.add_argument(name, type=Path, help=f"result folder of {name[:-1]}, seed {name[-1]}")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    loaded = {}
    for name in names:
        method = "merged" if name.startswith("merged") else "general"
        root = getattr(args, name)
        loaded[name] = {
            "coco": coco_scores(root, method),
            "held_out": held_out_scores(root, method),
        }
    print(
        "| set (photos) | general: seed 1 − seed 0 | merged: seed 1 − seed 0 | merged − general, "
        "seed 0 | merged − general, seed 1 | mean of both merges − mean of both generals "
        "[95 % CI] |"
    )
    print("|:--|--:|--:|--:|--:|--:|")
    for row, folder, region in SETS:
        columns: list[list[str]] = [[], [], [], [], []]
        photos: list[str] = []
        for metric in METRICS:
            key = (region, metric)
            tables = {n: loaded[n][folder].get(key, {}) for n in names}
            photos = sorted(set.intersection(*(set(t) for t in tables.values())))
            if not photos:
                break
            m0, g0, m1, g1 = (np.array([tables[n][p] for p in photos]) for n in names)
            columns[0].append(f"{(g1 - g0).mean():+.2f}")
            columns[1].append(f"{(m1 - m0).mean():+.2f}")
            columns[2].append(f"{(m0 - g0).mean():+.2f}")
            columns[3].append(f"{(m1 - g1).mean():+.2f}")
            columns[4].append(bootstrap((m0 + m1) / 2 - (g0 + g1) / 2, rng))
        if photos:
            cells = " | ".join(", ".join(c) for c in columns)
            print(f"| {row} ({len(photos)}) | {cells} |")


if __name__ == "__main__":
    main()
