"""Speed of the MPEG-7 Dominant Color Descriptor: images per second, and distances per second.

Three numbers, on real photos (the places training folder by default):
- decode: reading and subsampling the photos (``load_image`` + ``subsample``), one process;
- DCD: the batched Lloyd/merge/coherency on already-decoded photos, per batch size;
- end to end: ``describe_files`` as ``segcolor profiles fit`` runs it (decoding in workers);
and the MPEG-7 distance matrix (pairs per second).

    python bench/dcd_speed.py                       # 512 places photos
    python bench/dcd_speed.py --images 2000 --batch-sizes 64 256

Set OMP_WAIT_POLICY=PASSIVE on a shared CPU (the CLI does): spinning OpenMP threads cost 3-10x
here when another job holds the cores. The header shows it and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from segcolor.color.dcd import distance_matrix, dominant_colors_many, subsample
from segcolor.io.images import find_images, load_image
from segcolor.paths import resolve_data_path
from segcolor.profiles.describe import describe_files

from common import Timer, table_header


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/train/places", help="photo folder")
    parser.add_argument("--images", type=int, default=512, help="photos to use")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--workers", type=int, default=2, help="decoding processes (end to end)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = find_images(resolve_data_path(args.data))[: args.images]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# DCD speed: {len(files)} photos from {args.data}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
        f"load average {load:.2f}\n"
    )
    with Timer() as timer:
        thumbs = [subsample(load_image(f).rgb) for f in files]
    rows = [("decode + subsample to 64 px (1 process)", len(files) / timer.seconds)]
    for batch in args.batch_sizes:
        dominant_colors_many(thumbs[:batch])  # warm-up
        descriptors = []
        with Timer() as timer:
            for i in range(0, len(thumbs), batch):
                descriptors += dominant_colors_many(thumbs[i : i + batch])
        rows.append((f"DCD, batch {batch}", len(thumbs) / timer.seconds))
    with Timer() as timer:
        describe_files(files, workers=args.workers, progress=False)
    rows.append(
        (
            f"end to end (`profiles fit`'s describe, {args.workers} workers)",
            len(files) / timer.seconds,
        )
    )
    print(table_header(["stage", "images/s"]))
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    with Timer() as timer:
        matrix = distance_matrix(descriptors)
    pairs = matrix.size / timer.seconds
    colors = sum(len(d) for d in descriptors) / len(descriptors)
    print(
        f"\nMPEG-7 distance matrix {matrix.shape[0]} x {matrix.shape[1]}: {pairs:,.0f} pairs/s "
        f"({colors:.1f} colors per descriptor on average)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
