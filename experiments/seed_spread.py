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
    python experiments/seed_spread.py out/quality out/quality out/seed1_merged out/seed1_general
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import ALL, Scores, paired_bootstrap, read_scores, table_header  # noqa: E402

METRICS = ("psnr_rgb", "delta_e2000")
SETS = [  # (row, folder, region): COCO regions from results.csv, held-out folders per photo
    ("COCO whole images", "coco", "image"),
    ("COCO people regions", "coco", "people"),
    ("COCO animals regions", "coco", "animals"),
    ("COCO places regions", "coco", "places"),
    ("held-out, all", "held_out", ALL),
    ("held-out people", "held_out", "people"),
    ("held-out birds", "held_out", "birds"),
    ("held-out animals", "held_out", "animals"),
    ("held-out places", "held_out", "places"),
]
FILES = {"coco": "results.csv", "held_out": "per_photo.csv"}  # folder -> the file of its sets


def read(root: Path, folder: str) -> Scores:
    scores = read_scores(root / folder / FILES[folder])
    if scores is None:
        raise SystemExit(f"{root / folder / FILES[folder]}: not found")
    return scores


def method_of(name: str) -> str:
    return "merged" if name.startswith("merged") else "general"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ("merged0", "general0", "merged1", "general1")
    for name in names:
        parser.add_argument(name, type=Path, help=f"result folder of {name[:-1]}, seed {name[-1]}")
    args = parser.parse_args()
    loaded = {name: {f: read(getattr(args, name), f) for f in FILES} for name in names}
    header = [
        "set (photos)",
        "general: seed 1 − seed 0",
        "merged: seed 1 − seed 0",
        "merged − general, seed 0",
        "merged − general, seed 1",
        "mean of both merges − mean of both generals [95 % CI]",
    ]
    print(table_header(header, "lrrrrr"))
    for row, folder, region in SETS:
        columns: list[list[str]] = [[], [], [], [], []]
        photos: list[str] = []
        for metric in METRICS:
            tables = {n: loaded[n][folder].get((method_of(n), region, metric), {}) for n in names}
            photos = sorted(set.intersection(*(set(t) for t in tables.values())))
            if not photos:
                break
            m0, g0, m1, g1 = (np.array([tables[n][p] for p in photos]) for n in names)
            columns[0].append(f"{(g1 - g0).mean():+.2f}")
            columns[1].append(f"{(m1 - m0).mean():+.2f}")
            columns[2].append(f"{(m0 - g0).mean():+.2f}")
            columns[3].append(f"{(m1 - g1).mean():+.2f}")
            columns[4].append(str(paired_bootstrap((m0 + m1) / 2, (g0 + g1) / 2)))
        if photos:
            cells = " | ".join(", ".join(c) for c in columns)
            print(f"| {row} ({len(photos)}) | {cells} |")


if __name__ == "__main__":
    main()
