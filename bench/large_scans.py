"""Wall time, peak memory and where the time goes, for ``segcolor colorize`` on large scans.

    python bench/large_scans.py                               # 24 MP 8-bit PNG -> PNG/JPEG/TIFF
    python bench/large_scans.py --sizes 8.6 24 50 --bits 8 16 --repeat 3
    git worktree add /tmp/before HEAD~3
    python bench/large_scans.py --compare-to /tmp/before      # side by side with another tree
    python bench/large_scans.py --tree /tmp/after --compare-to /tmp/before   # two other trees

Each run is a fresh ``segcolor colorize SCAN.png -o OUT.<ext>`` subprocess with the shipped
pipeline (warm: one untimed run first, so the disk cache and the segmenter conversion cache are
filled), so the wall time is what a user waits for; peak resident memory is the child's own
(``os.wait4``). The child times its stages by wrapping the functions that do them (wall time,
inclusive; nested stages are subtracted from their callers):

    import       spawn -> ``segcolor.cli.main`` called (interpreter, torch, segcolor)
    decode       ``io.images.load_image``
    lightness    ``LabImage.from_rgb``: L of the full scan, shrunk to the working size
    segmenter    ``Segmenter.predict_proba[_features]``
    routing      ``Router.route_probs``: regions, profiles, weights
    experts      ``Pipeline.expert_patches``: the experts on their crops
    merge        ``Pipeline.merge_routed`` without the experts: the feathered composite
    recombine    ``recombine_bands``: working-size ab + full-size L -> RGB, gamut fit
    encode       ``io.images.save_image``: the output file, written atomically
    other        the rest of the wall time (model loading, manifest, process exit)

The output's lightness is checked against the input's (mean |ΔL|, CIE Lab, on a 1/16 grid of
pixels): the product keeps the scan's L. Scans (3:2, smooth tones plus film grain) are written
once into ``--work`` and reused. Runs of several trees alternate, so other load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import skimage.color
from PIL import Image

STAGES = (
    "import", "decode", "lightness", "segmenter", "routing", "experts", "merge", "recombine",
    "encode",
)  # fmt: skip
STAGE_LINE = "segcolor-bench-stages:"

# Runs ``segcolor`` from the tree in argv[1] ("" = as installed) with its stages timed.
CHILD = f"""
import functools, inspect, json, os, sys, time
t0 = float(os.environ["SEGCOLOR_BENCH_T0"])
root = sys.argv[1]
if root:  # another tree: drop the editable install's import hook so that tree's code is used
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
    sys.path.insert(0, root)
spent = {{}}

def wrap(owner, name, stage):
    raw = inspect.getattr_static(owner, name)
    kind = type(raw) if isinstance(raw, (classmethod, staticmethod)) else None
    func = raw.__func__ if kind else raw

    @functools.wraps(func)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - start

    setattr(owner, name, kind(timed) if kind else timed)

import segcolor.color.recombine as recombine
import segcolor.io.images as images
import segcolor.pipeline as pipeline
try:  # the Router's own module since the router/ split; before it, routing.py
    import segcolor.router.router as routing
except ImportError:
    import segcolor.router.routing as routing
import segcolor.router.segmenters.base as segmenters

wrap(images, "load_image", "decode")
wrap(images, "save_image", "encode")
wrap(pipeline.LabImage, "from_rgb", "lightness")
wrap(segmenters.Segmenter, "predict_proba", "segmenter")
wrap(segmenters.Segmenter, "predict_proba_features", "segmenter")
wrap(routing.Router, "route_probs", "routing")
wrap(pipeline.Pipeline, "expert_patches", "experts")
wrap(pipeline.Pipeline, "merge_routed", "merge_all")
wrap(recombine, "recombine_bands", "recombine")
sys.modules[pipeline.Pipeline.__module__].recombine_bands = recombine.recombine_bands
from segcolor.cli import main

spent["import"] = time.time() - t0
code = main(sys.argv[2:])
spent["merge"] = spent.pop("merge_all", 0.0) - spent.get("experts", 0.0)
print("{STAGE_LINE}", json.dumps(spent), file=sys.stderr, flush=True)
sys.exit(code)
"""


@dataclass
class Run:
    wall: float  # seconds, spawn to exit
    peak_mb: float  # the child's peak resident memory
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage


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


def run_colorize(tree: str, args: list[str], timeout: float) -> Run | None:
    """One ``segcolor`` process; None if it failed or ran out of time."""
    env = {**os.environ, "SEGCOLOR_BENCH_T0": repr(time.time())}
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
            time.sleep(0.01)
        returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
    if returncode != 0:
        print(f"  failed ({returncode}): {text.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    lines = [line for line in text.splitlines() if line.startswith(STAGE_LINE)]
    stages = json.loads(lines[-1][len(STAGE_LINE) :]) if lines else {}
    return Run(wall, usage.ru_maxrss / 1024, stages)


def median_run(runs: list[Run | None]) -> Run | None:
    """Median wall and stage times, the largest peak; None if any run failed."""
    if not runs or any(r is None for r in runs):
        return None
    done = [r for r in runs if r is not None]
    stages = {s: statistics.median(r.stages.get(s, 0.0) for r in done) for s in STAGES}
    return Run(statistics.median(r.wall for r in done), max(r.peak_mb for r in done), stages)


def lightness_error(scan: Path, output: Path, step: int = 4) -> float:
    """Mean |ΔL| (CIE Lab) between the output and the gray scan on every ``step``-th pixel."""
    with Image.open(scan) as gray_image, Image.open(output) as out_image:
        gray = np.asarray(gray_image)[::step, ::step].astype(np.float64)
        out = np.asarray(out_image.convert("RGB"))[::step, ::step].astype(np.float64) / 255.0
    gray /= 65535.0 if gray.max() > 255 else 255.0
    expected = skimage.color.rgb2lab(np.repeat(gray[..., None], 3, axis=-1))[..., 0]
    return float(np.abs(skimage.color.rgb2lab(out)[..., 0] - expected).mean())


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[24], help="megapixels")
    parser.add_argument("--bits", type=int, nargs="+", default=[8], choices=[8, 16])
    parser.add_argument("--formats", nargs="+", default=["png", "jpg", "tif"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--compare-to", metavar="PATH", help="another segcolor tree (before)")
    parser.add_argument("--tree", metavar="PATH", help="the tree measured (default: installed)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "segcolor_scans")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    args = parser.parse_args()

    this = str(Path(args.tree).resolve()) if args.tree else ""
    trees = {"this tree": this}
    if args.compare_to:
        trees = {"before": str(Path(args.compare_to).resolve()), "after": this}
    load_before = os.getloadavg()
    cases = [(mp, bits, fmt) for mp in args.sizes for bits in args.bits for fmt in args.formats]
    results: dict[tuple[float, int, str, str], Run | None] = {}
    errors: dict[tuple[float, int, str, str], float] = {}
    for mp, bits, fmt in cases:
        scan = make_scan(args.work / f"scan_{mp:g}mp_{bits}bit.png", mp, bits)
        runs: dict[str, list[Run | None]] = {name: [] for name in trees}
        for tree in trees.values():  # warm: disk cache, converted segmenter
            run_colorize(tree, ["colorize", str(scan), "-o", str(args.work / f"warm.{fmt}")], 600)
        for _ in range(args.repeat):
            for name, tree in trees.items():
                out = args.work / f"out_{name.replace(' ', '_')}.{fmt}"
                out.unlink(missing_ok=True)
                run = run_colorize(tree, ["colorize", str(scan), "-o", str(out)], args.timeout)
                runs[name].append(run)
                wall = "failed" if run is None else f"{run.wall:.2f} s, {run.peak_mb:,.0f} MB"
                print(f"{mp:g} MP {bits}-bit -> {fmt}, {name}: {wall}", file=sys.stderr)
                if run is not None and (mp, bits, fmt, name) not in errors:
                    errors[(mp, bits, fmt, name)] = lightness_error(scan, out)
        for name in trees:
            results[(mp, bits, fmt, name)] = median_run(runs[name])

    load_after = os.getloadavg()
    print(
        f"\n`segcolor colorize SCAN.png -o OUT.<format>`, shipped pipeline, warm, median of "
        f"{args.repeat}; {cpu_name()}, {os.cpu_count()} CPUs, load average "
        f"{load_before[0]:.1f} -> {load_after[0]:.1f}\n"
    )
    columns = ["wall s", "peak MB", *STAGES, "other", "mean |ΔL|"]
    name_column = "tree | " if len(trees) > 1 else ""
    print(f"| scan | out | {name_column}" + " | ".join(columns) + " |")
    print("|---|---|" + ("---|" if name_column else "") + "--:|" * len(columns))
    for mp, bits, fmt in cases:
        height, width = scan_shape(mp)
        for name in trees:
            run = results[(mp, bits, fmt, name)]
            label = f"| {mp:g} MP {bits}-bit ({width}×{height}) | {fmt} | "
            label += f"{name} | " if name_column else ""
            if run is None:
                print(label + " | ".join(["failed"] + ["–"] * (len(columns) - 1)) + " |")
                continue
            other = run.wall - sum(run.stages.values())
            cells = [f"{run.wall:.2f}", f"{run.peak_mb:,.0f}"]
            cells += [f"{run.stages[s]:.2f}" for s in STAGES] + [f"{other:.2f}"]
            cells.append(f"{errors[(mp, bits, fmt, name)]:.2f}")
            print(label + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
