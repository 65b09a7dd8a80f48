"""Wall time and peak memory of ``segcolor colorize`` on large synthetic grayscale scans.

    python bench/large_scans.py                                  # this checkout
    git worktree add /tmp/before 6d19b15
    python bench/large_scans.py --compare-to /tmp/before         # side by side with another tree
    python bench/large_scans.py --sizes --compare-to /tmp/before # start-up only

Each run is a fresh ``segcolor colorize SCAN -o OUT.jpg`` subprocess with the shipped pipeline,
so the times include start-up and the PNG decode and JPEG encode a user waits for; peak resident
memory is the child's own (``os.wait4``). Scans (3:2, smooth tones plus film grain) are written
once into ``--work`` and reused. Runs of the two trees alternate, so load from other processes
hits both alike; the load average is printed with the table.

Start-up is timed on a small photo: from spawning the process to the first ``forward`` of any
model (a forward pre-hook installed before segcolor is imported), and the whole run; its runs
alternate between the trees too, and the last column is after / before.

``--compare-to`` runs another tree's code with this interpreter: the editable install's import
hook is removed in the child so the other tree's ``segcolor`` is the one imported (plain
``PYTHONPATH`` does not win over that hook).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGCOLOR_SHARED_DIR", REPO.parent / "shared"))
SMALL_PHOTO = SHARED / "data/historical_bw/bopbtl_early_10.png"
FIRST_FORWARD = "segcolor-bench: first forward at"

# Runs ``segcolor`` from the tree in argv[1] ("" = as installed); reports the first forward.
CHILD = f"""
import os, sys, time
root = sys.argv[1]
if root:
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
    sys.path.insert(0, root)
if sys.argv[2] == "colorize":
    import torch.nn.modules.module as module

    def _first(*_):
        handle.remove()
        spent = time.time() - float(os.environ["SEGCOLOR_BENCH_T0"])
        print("{FIRST_FORWARD}", f"{{spent:.3f}}", file=sys.stderr, flush=True)

    handle = module.register_module_forward_pre_hook(_first)
import segcolor
from segcolor.cli import main
if root and not segcolor.__file__.startswith(os.path.abspath(root)):
    sys.exit(f"segcolor-bench: imported {{segcolor.__file__}}, not the tree at {{root}}")
sys.exit(main(sys.argv[2:]))
"""


@dataclass
class Run:
    wall: float  # seconds, spawn to exit
    peak_mb: float  # the child's peak resident memory
    first_forward: float | None  # seconds, spawn to the first model forward


def scan_shape(megapixels: float) -> tuple[int, int]:
    width = round(math.sqrt(megapixels * 1e6 * 1.5))
    return round(width / 1.5), width


def make_scan(path: Path, megapixels: float, bits: int) -> Path:
    """A 3:2 grayscale scan: smooth tones plus grain, written a band of rows at a time."""
    if path.is_file():
        return path
    height, width = scan_shape(megapixels)
    top = 255 if bits == 8 else 65535
    pixels = np.empty((height, width), np.uint8 if bits == 8 else np.uint16)
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None]
    for start in range(0, height, 256):
        y = np.linspace(start / height, min(start + 256, height) / height, 256, dtype=np.float32)
        y = y[: min(256, height - start), None]
        tone = 0.5 + 0.3 * np.sin(6 * x + 4 * y) + 0.12 * np.cos(17 * x * y + 3 * y)
        tone += 0.03 * rng.standard_normal(tone.shape, dtype=np.float32)
        pixels[start : start + len(y)] = np.rint(np.clip(tone, 0.0, 1.0) * top)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(pixels).save(tmp, compress_level=1)
    tmp.replace(path)
    return path


def run_colorize(tree: str, args: list[str], env: dict[str, str], timeout: float) -> Run | None:
    """One ``segcolor`` process; None if it failed or ran out of time."""
    env = {**env, "SEGCOLOR_BENCH_T0": repr(time.time())}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, tree, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                os.wait4(child.pid, 0)
                return None
            time.sleep(0.02)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
    if child.returncode != 0:
        print(f"  failed ({child.returncode}): {text.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    first = [line.split()[-1] for line in text.splitlines() if line.startswith(FIRST_FORWARD)]
    return Run(wall, usage.ru_maxrss / 1024, float(first[0]) if first else None)


def median_run(runs: list[Run | None]) -> Run | None:
    done = [r for r in runs if r is not None]
    if len(done) < len(runs) or not done:
        return None
    forwards = [r.first_forward for r in done if r.first_forward is not None]
    return Run(
        statistics.median(r.wall for r in done),
        max(r.peak_mb for r in done),
        statistics.median(forwards) if forwards else None,
    )


def cell(run: Run | None) -> str:
    return "failed / timed out | –" if run is None else f"{run.wall:.1f} | {run.peak_mb:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=float, nargs="*", default=[1, 8.6, 24, 50], help="MP (none: start-up only)"
    )
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 16], choices=[8, 16])
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (median wall)")
    parser.add_argument("--startup-repeat", type=int, default=3, help="runs on the small photo")
    parser.add_argument("--compare-to", metavar="PATH", help="another segcolor tree (before)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "segcolor_scans")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the runs (default: unset)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    trees = {"after": ""}
    if args.compare_to:
        trees = {"before": str(Path(args.compare_to).resolve()), "after": ""}
    load_before = os.getloadavg()

    results: dict[tuple[str, str], Run | None] = {}
    small = SMALL_PHOTO if SMALL_PHOTO.is_file() else make_scan(args.work / "small.png", 0.1, 8)
    small_args = ["colorize", str(small), "-o", str(args.work / "small.jpg")]
    for tree in trees.values():  # first-run effects (disk cache) hit no measured run
        run_colorize(tree, small_args, env, args.timeout)
    timed = (("startup", small_args, args.startup_repeat), ("help", ["--help"], 3))
    for key, argv, repeat in timed:
        runs: dict[str, list[Run | None]] = {name: [] for name in trees}
        for _ in range(repeat):
            for name, tree in trees.items():
                runs[name].append(run_colorize(tree, argv, env, args.timeout))
        for name in trees:
            results[(key, name)] = median_run(runs[name])

    cases = [(mp, bits) for mp in args.sizes for bits in args.bits]
    for mp, bits in cases:
        scan = make_scan(args.work / f"scan_{mp:g}mp_{bits}bit.png", mp, bits)
        key = f"{mp:g} MP {bits}-bit"
        print(f"{key}: {scan}", file=sys.stderr)
        per_tree: dict[str, list[Run | None]] = {name: [] for name in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                out = args.work / f"out_{name}.jpg"
                run = run_colorize(tree, ["colorize", str(scan), "-o", str(out)], env, args.timeout)
                per_tree[name].append(run)
                print(f"  {name}: {cell(run)}", file=sys.stderr)
        for name in trees:
            results[(key, name)] = median_run(per_tree[name])

    load_after = os.getloadavg()
    names = list(trees)
    print(
        f"\n`segcolor colorize SCAN.png -o OUT.jpg`, shipped pipeline, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}, load average "
        f"{load_before[0]:.1f} -> {load_after[0]:.1f}, median of {args.repeat}:\n"
    )
    header = " | ".join(f"{n} s | {n} peak MB" for n in names)
    if cases:
        print(f"| scan | pixels | {header} |")
        print("|---|---|" + "---|---|" * len(names))
    for mp, bits in cases:
        height, width = scan_shape(mp)
        key = f"{mp:g} MP {bits}-bit"
        row = " | ".join(cell(results[(key, n)]) for n in names)
        print(f"| {key} | {width}×{height} | {row} |")
    width, height = Image.open(small).size
    print(f"\nStart-up on a {width}×{height} photo, median of {args.startup_repeat}:\n")
    ratio = len(names) == 2
    print("| | " + " | ".join(names) + (" | after / before |" if ratio else " |"))
    print("|---|" + "---|" * (len(names) + ratio))
    rows = {
        "spawn to the first model forward, s": ("startup", lambda r: r.first_forward),
        "whole `segcolor colorize`, s": ("startup", lambda r: r.wall),
        "`segcolor --help`, s": ("help", lambda r: r.wall),
    }
    for label, (key, get) in rows.items():
        values = [results[(key, n)] for n in names]
        times = [None if v is None else get(v) for v in values]
        cells = ["–" if t is None else f"{t:.2f}" for t in times]
        if ratio:
            cells.append("–" if None in times else f"{times[1] / times[0]:.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
