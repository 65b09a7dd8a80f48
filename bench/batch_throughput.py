"""Photos per second of ``segcolor colorize FOLDER -o OUT --jobs N``, and the speed-up over one job.

    python bench/batch_throughput.py                       # 1 and 2 jobs, 60 photos, CPU
    python bench/batch_throughput.py --jobs 1 2 4 --count 200 --device cuda

The folder mixes sizes as an archive does: grayscale copies of photos from the shared training
folders (people, birds, animals, places), most at their own size (150-500 px), every fifth one
enlarged to a 1600 px scan (JPEG and PNG). It is written once into ``--work`` and reused. Each
run is a fresh subprocess into an empty output folder with the shipped pipeline, so its time
includes start-up (each worker loads its own models) as a user's does; photos/s is photos over
that wall time. Every run's outputs are compared with the one-job run's, byte for byte.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from common import CATEGORIES, Timer, shared, table_header


def make_folder(folder: Path, count: int) -> Path:
    """``count`` grayscale photos of mixed sizes (written once)."""
    if folder.is_dir() and len(list(folder.iterdir())) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    root = shared()
    pools = [sorted((root / "data" / "train" / c).glob("*")) for c in CATEGORIES]
    if not all(pools):
        sys.exit(f"needs the shared training photos under {root}/data/train/{{{CATEGORIES}}}")
    for i in range(count):
        pool = pools[i % len(pools)]
        image = Image.open(pool[(i * 37) % len(pool)]).convert("L")
        if i % 5 == 4:  # a scan: long side 1600 px
            scale = 1600 / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)))
        image.save(folder / f"{i:04d}.{'png' if i % 3 == 0 else 'jpg'}", quality=92)
    return folder


def run(folder: Path, out: Path, jobs: int, device: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "segcolor", "colorize", str(folder), "-o", str(out)]
    command += ["--jobs", str(jobs), "--device", device]
    with Timer() as timer:
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
    return timer.seconds


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix != ".jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--count", type=int, default=60, help="photos in the folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "segcolor-bb")
    args = parser.parse_args()
    folder = make_folder(args.work / f"photos-{args.count}", args.count)
    print(
        f"{args.count} photos ({folder}), device {args.device}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print()
    print(table_header(["jobs", "wall s", "photos/s", "speed-up", "same bytes as 1 job"], "rrrrl"))
    base_seconds, base_outputs = None, None
    for jobs in args.jobs:
        out = args.work / f"out-{jobs}"
        seconds = run(folder, out, jobs, args.device)
        result = outputs(out)
        if base_seconds is None:
            base_seconds, base_outputs = seconds, result
        same = "yes" if result == base_outputs else "NO"
        print(
            f"| {jobs} | {seconds:.1f} | {args.count / seconds:.2f} | "
            f"{base_seconds / seconds:.2f}x | {same} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
