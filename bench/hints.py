"""PSNR and ΔE00 against the number of color hints sampled from the photo itself (issue 27).

    SEGCOLOR_SHARED_DIR=../shared python bench/hints.py
    python bench/hints.py --limit 3 --counts 0,1,10 --csv out/hints.csv   # a quick look
    python bench/hints.py --summary out/hints.csv                          # reprint the tables

Hints are sampled as Zhang et al. (SIGGRAPH 2017) evaluate their user-guided network
(colorization-pytorch, ``test_sweep.py``): each hint is a square patch (6 px at their 256², here
6 working pixels: ``PATCH / 256`` of the photo's short side) at a spot drawn from a Gaussian
about the centre (sigma a quarter of the side), revealing the patch's mean color. segcolor gets
it as a point hint (``segcolor.router.hints.Hint``) at the patch's centre, in the photo's own
pixels, with a radius of half the patch side and the patch's mean Lab as an sRGB "#rrggbb" (its
chroma is what the experts use, at the photo's lightness). The hints of a photo are drawn once
from a generator seeded by the photo's file name (and ``--seed``) and the first N are used for N
hints, so 10 hints hold the 5; Zhang et al. draw each count afresh.

Methods: the routed pipeline (``Pipeline.default()`` or ``--pipeline``) and the general model
alone (``--general``), with the same hints, through ``RoutingEdits(hints=...)``. PSNR and ΔE00
are ``segcolor evaluate``'s (the 8-bit output against the 8-bit photo, at the photo's size).
Photos: COCO with masks (``data/eval_masks/coco128`` + ``coco_taming_train100``, as
``bench/quality.py``) and the held-out photos of ``data/train`` (no model trained on them), at
most ``--limit`` per set (a fixed pseudo-random subset by file name, as ``segcolor evaluate
--limit`` picks); black-and-white photos are skipped, as ``segcolor evaluate`` skips them.

Hint reproduction: for each hint, the target is its chroma at the photo's lightness,
(L_photo, a_hint, b_hint) at every pixel of the hint's disc (less the pixels a later hint
covers: the later one wins, as ``hint_map`` draws them); its ΔE00 is the mean CIEDE2000 between
that target and the output's Lab over those pixels. A hint is out of gamut when most of its
targets are outside sRGB (no output can show them); those are reported apart (their share, and
their ΔE00 against the target brought into the gamut as the pipeline does, ``fit_to_gamut``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab
from tqdm import tqdm

from segcolor.color.lab import fit_to_gamut
from segcolor.errors import SegcolorError
from segcolor.evaluate.datasets import find_photos
from segcolor.evaluate.harness import MIN_CHROMA
from segcolor.evaluate.metrics import GroundTruth, psnr
from segcolor.io.images import load_image
from segcolor.pipeline import GENERAL_EXPERT, Pipeline, to_uint8
from segcolor.pipeline.lab_image import LabImage
from segcolor.router.edits import RoutingEdits
from segcolor.router.hints import MAX_EXTENT, MAX_HINTS, Hint

from common import CATEGORIES, COCO, HELD_OUT, paired_bootstrap, shared, table_header, table_row

COUNTS = (0, 1, 2, 5, 10, 20, 50)
PATCH = 6  # Zhang et al.'s evaluation patch side at 256² (test_sweep.py: sample_Ps = [6])
PATCH_SCALE = 256  # the side their patch is measured at
# Zhang et al. 2017, ImageNet val (1000 images at 256², their released per-image PSNRs), dB
ZHANG = {0: 24.43, 1: 25.37, 2: 26.20, 5: 27.39, 10: 28.42, 20: 29.34, 50: 30.42, 100: 31.13}
METHODS = ("routed", "general")
SETS = {"coco": "COCO whole images", "held-out": "held-out photos of data/train"}
Row = dict[str, Any]  # one CSV row: a photo, a method, a hint count
FIELDS = (
    "set",
    "photo",
    "method",
    "hints",
    "psnr_rgb",
    "delta_e2000",
    "hint_de00",
    "hints_in_gamut",
    "hints_out_of_gamut",
    "hint_de00_out_of_gamut",
)


# ------------------------------------------------------------------ sampling


@dataclass(frozen=True)
class SampledHint:
    """A hint and the patch it reveals: ``box`` = (x0, y0, side) in photo pixels."""

    hint: Hint
    box: tuple[int, int, int]


def patch_side(size: tuple[int, int], patch: int = PATCH) -> int:
    """Patch side in photo pixels: ``patch`` pixels at a short side of ``PATCH_SCALE``."""
    return max(1, round(patch * min(size) / PATCH_SCALE))


def mean_color(pixels: np.ndarray) -> str:
    """The mean color of uint8 RGB pixels (..., 3) as "#rrggbb": the mean of their Lab
    (Zhang et al. reveal the mean ab), back to 8-bit sRGB."""
    lab = rgb2lab(np.asarray(pixels, dtype=np.uint8).reshape(-1, 1, 3)).mean(axis=(0, 1))
    rgb = np.clip(lab2rgb(lab[None, None]), 0.0, 1.0)[0, 0]
    r, g, b = (int(v) for v in np.round(rgb * 255.0))
    return f"#{r:02x}{g:02x}{b:02x}"


def photo_rng(name: str, seed: int = 0) -> np.random.Generator:
    """A generator fixed by the photo's name and ``seed`` (the same on every machine)."""
    digest = int(hashlib.sha1(f"hints:{name}".encode()).hexdigest()[:15], 16)
    return np.random.default_rng([seed, digest])


def _gaussian_start(rng: np.random.Generator, extent: int, side: int) -> int:
    """A patch's first pixel along a side of ``extent``: Gaussian about the centre."""
    free = extent - side + 1
    return int(np.clip(rng.normal(free / 2, free / 4), 0, extent - side))


def sample_hints(
    rgb: np.ndarray, count: int, rng: np.random.Generator, side: int | None = None
) -> list[SampledHint]:
    """``count`` hints from a uint8 RGB photo (H, W, 3): each a ``side`` px square patch
    (default ``patch_side``) at a spot drawn from a Gaussian about the centre with sigma a
    quarter of the free side, clipped into the photo (Zhang et al.'s ``samp='normal'``); the
    hint is a point at the patch's centre, radius half the side, the patch's mean color."""
    height, width = rgb.shape[:2]
    side = side or patch_side((height, width))
    side = min(side, height, width)
    radius = min(side / 2.0, MAX_EXTENT * min(height, width))
    out = []
    for _ in range(count):
        y0, x0 = (_gaussian_start(rng, extent, side) for extent in (height, width))
        color = mean_color(rgb[y0 : y0 + side, x0 : x0 + side])
        centre = (x0 + (side - 1) / 2.0, y0 + (side - 1) / 2.0)
        out.append(SampledHint(Hint((centre,), color, radius), (x0, y0, side)))
    return out


# ------------------------------------------------------------------ hint reproduction


@dataclass
class Reproduction:
    """ΔE00 of one output at its hints: per hint in gamut, and per hint out of gamut (against
    the target brought into the gamut)."""

    in_gamut: list[float]
    out_of_gamut: list[float]


def hint_owners(hints: Sequence[Hint], size: tuple[int, int]) -> np.ndarray:
    """(H, W) int: the index of the hint whose disc covers each pixel (the later one where
    discs overlap, as ``hint_map`` draws them), -1 elsewhere. The centre pixel always counts."""
    height, width = size
    owner = np.full((height, width), -1, dtype=np.int32)
    for i, hint in enumerate(hints):
        (cx, cy), r = hint.points[0], hint.size or 0.5
        x0, x1 = max(int(math.floor(cx - r)), 0), min(int(math.ceil(cx + r)) + 1, width)
        y0, y1 = max(int(math.floor(cy - r)), 0), min(int(math.ceil(cy + r)) + 1, height)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        disc = (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
        disc[min(max(round(cy), y0), y1 - 1) - y0, min(max(round(cx), x0), x1 - 1) - x0] = True
        owner[y0:y1, x0:x1][disc] = i
    return owner


def hint_targets(
    hints: Sequence[Hint], truth_lab: np.ndarray, owner: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Per hint with pixels of its own: (its pixels' flat indices, the target Lab at them
    brought into the gamut (N, 3), whether most targets were out of gamut)."""
    flat_owner = owner.ravel()
    lightness = truth_lab[..., 0].ravel()
    out = []
    for i, hint in enumerate(hints):
        where = np.flatnonzero(flat_owner == i)
        if where.size == 0:
            continue
        a, b = hint.ab
        target = np.stack(
            [lightness[where], np.full(where.size, a), np.full(where.size, b)], axis=0
        )
        raw = torch.from_numpy(target[:, :, None])  # (3, N, 1): channel-first for fit_to_gamut
        fitted = fit_to_gamut(raw)
        moved = (fitted[1:] - raw[1:]).abs().amax(dim=0)[:, 0] > 1e-6
        out.append((where, fitted[:, :, 0].numpy().T, bool(moved.float().mean() > 0.5)))
    return out


def reproduction(
    targets: Sequence[tuple[np.ndarray, np.ndarray, bool]], output_lab: np.ndarray
) -> Reproduction:
    """Mean ΔE00 between each hint's target and ``output_lab`` (H, W, 3) at its pixels."""
    flat = output_lab.reshape(-1, 3)
    result = Reproduction([], [])
    for where, target, out_of_gamut in targets:
        value = float(deltaE_ciede2000(target, flat[where]).mean())
        (result.out_of_gamut if out_of_gamut else result.in_gamut).append(value)
    return result


# ------------------------------------------------------------------ photos and methods


def subset_key(path: Path) -> str:
    """``segcolor evaluate --limit``'s order (a hash of the file name)."""
    return hashlib.sha1(("subset:" + path.name).encode("utf-8")).hexdigest()


def set_photos(root: Path, name: str, limit: int) -> list[tuple[Path, str]]:
    """(path, name) of a set's photos: at most ``limit`` (0: all), spread over its folders."""
    data = root / "data"
    if name == "coco":
        folders, held = [data / "eval_masks" / n for n in COCO], None
    else:
        folders, held = [data / "train" / n for n in CATEGORIES], HELD_OUT
    folders = [f for f in folders if f.is_dir()]
    if not folders:
        return []
    each = math.ceil(limit / len(folders)) if limit else None
    refs = find_photos(folders, held_out=held, limit=each)
    if limit and len(refs) > limit:
        keep = {r.name for r in sorted(refs, key=lambda r: subset_key(r.path))[:limit]}
        refs = [r for r in refs if r.name in keep]
    return [(r.path, r.name) for r in refs]


class Methods:
    """The routed pipeline and the general model, on one photo at a time: the segmenter (or
    the general model's semantic features) runs once per photo, not once per hint count."""

    def __init__(self, routed: Pipeline, general: Pipeline) -> None:
        self.routed, self.general = routed, general

    def outputs(
        self, rgb: np.ndarray, hint_sets: dict[int, tuple[Hint, ...]]
    ) -> dict[tuple[str, int], np.ndarray]:
        """uint8 RGB at the photo's size for each (method, hint count)."""
        out: dict[tuple[str, int], np.ndarray] = {}
        lab = self.routed.lab(rgb)
        semantics = self.routed.segment(lab) if self.routed.routed else None
        cache: dict = {}
        for count, hints in hint_sets.items():
            edits = RoutingEdits(hints=hints) if hints else None
            result = self.routed.run(lab, edits, semantics=semantics, cache=cache, dtype=np.uint8)
            assert result.rgb is not None
            out[("routed", count)] = result.rgb
        lab_g = lab
        if self.general.working_size != self.routed.working_size:
            lab_g = LabImage.from_rgb(rgb, self.general.working_size, self.general.device)
        with torch.inference_mode():
            features = self.general.single_features(lab_g)
        for count, hints in hint_sets.items():
            edits = RoutingEdits(hints=hints) if hints else None
            ab = self.general.predict_ab(lab_g, features, edits)
            out[("general", count)] = Pipeline.to_rgb(lab_g, ab, np.uint8)
        return out


def measure_photo(
    set_name: str,
    path: Path,
    name: str,
    methods: Methods,
    counts: Sequence[int],
    seed: int,
) -> list[Row] | None:
    """The CSV rows of one photo (None: black and white, nothing to compare to)."""
    image = load_image(path)
    truth = GroundTruth.from_rgb(to_uint8(image.rgb))
    if truth.mean_chroma < MIN_CHROMA:
        return None
    sampled = sample_hints(truth.rgb, max(counts), photo_rng(name, seed))
    hint_sets = {n: tuple(s.hint for s in sampled[:n]) for n in counts}
    targets = {
        n: hint_targets(hs, truth.lab, hint_owners(hs, truth.rgb.shape[:2]))
        for n, hs in hint_sets.items()
    }
    rows = []
    for (method, count), output in methods.outputs(image.rgb, hint_sets).items():
        lab = rgb2lab(output)
        rep = reproduction(targets[count], lab)
        rows.append(
            {
                "set": set_name,
                "photo": name,
                "method": method,
                "hints": count,
                "psnr_rgb": psnr(truth.rgb, output, 255),
                "delta_e2000": float(deltaE_ciede2000(truth.lab, lab).mean()),
                "hint_de00": _mean(rep.in_gamut),
                "hints_in_gamut": len(rep.in_gamut),
                "hints_out_of_gamut": len(rep.out_of_gamut),
                "hint_de00_out_of_gamut": _mean(rep.out_of_gamut),
            }
        )
    return rows


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


# ------------------------------------------------------------------ summary


def _pooled(rows: Sequence[Row], value: str, weight: str) -> float:
    """The mean over hints of a per-photo mean ``value`` weighted by its count ``weight``."""
    total = sum(float(r[weight]) for r in rows)
    if not total:
        return math.nan
    return sum(float(r[value]) * float(r[weight]) for r in rows if float(r[weight])) / total


def _fmt(value: float, digits: int = 2, sign: bool = False) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


HEADER = (
    "hints",
    "Zhang et al. PSNR (gain), ImageNet",
    "routed PSNR dB ↑ (gain)",
    "general PSNR dB ↑ (gain)",
    "routed − general PSNR [95 % CI]",
    "ΔE00 ↓ routed / general",
    "hint ΔE00 ↓ routed / general (in gamut)",
    "hints out of gamut",
)
NOTE = (
    "Zhang et al.'s column is their network on ImageNet val (1000 photos resized to 256², hints "
    "drawn afresh for each count); the others are segcolor on other photos, at their own size: "
    "another data set, so compare the shape of the curves (the gain over no hints), not the "
    "levels. Gains are over the same method's PSNR with no hints. Hint ΔE00: the output against "
    "each hint's chroma at the photo's lightness, over the hint's pixels; hints whose target is "
    "out of the sRGB gamut are left out of it (their share: the last column)."
)


def _set_table(rows: Sequence[Row]) -> list[str]:
    """One set's table: a row per hint count."""
    by: dict[tuple[str, int], dict[str, Row]] = {}
    for r in rows:
        by.setdefault((str(r["method"]), int(r["hints"])), {})[str(r["photo"])] = r

    def mean(method: str, count: int, metric: str) -> float:
        got = [float(r[metric]) for r in by.get((method, count), {}).values()]
        return float(np.mean(got)) if got else math.nan

    lines = [table_header(HEADER, "r" * len(HEADER))]
    base = {m: mean(m, 0, "psnr_rgb") for m in METHODS}
    for count in sorted({n for _, n in by}):
        zhang = ZHANG.get(count, math.nan)
        cells = [str(count), f"{_fmt(zhang)} ({_fmt(zhang - ZHANG[0], sign=True)})"]
        for m in METHODS:
            value = mean(m, count, "psnr_rgb")
            cells.append(f"{_fmt(value)} ({_fmt(value - base[m], sign=True)})")
        routed, general = by.get(("routed", count), {}), by.get(("general", count), {})
        both = sorted(set(routed) & set(general))
        if both:
            diff = paired_bootstrap(
                [float(routed[p]["psnr_rgb"]) for p in both],
                [float(general[p]["psnr_rgb"]) for p in both],
            )
        cells.append(str(diff) if both else "–")
        cells.append(" / ".join(_fmt(mean(m, count, "delta_e2000")) for m in METHODS))
        hint_de = [
            _pooled(list(by.get((m, count), {}).values()), "hint_de00", "hints_in_gamut")
            for m in METHODS
        ]
        cells.append(" / ".join(_fmt(v) for v in hint_de) if count else "–")
        inside = sum(int(r["hints_in_gamut"]) for r in routed.values())
        outside = sum(int(r["hints_out_of_gamut"]) for r in routed.values())
        total = inside + outside
        cells.append(f"{outside / total:.1%} of {total}" if total else "–")
        lines.append(table_row(cells))
    return lines


def summary(rows: Sequence[Row]) -> str:
    """A markdown table per set beside Zhang et al.'s curve, and a note on how to read it."""
    lines: list[str] = []
    for set_name, title in SETS.items():
        mine = [r for r in rows if r["set"] == set_name]
        if mine:
            photos = len({r["photo"] for r in mine})
            lines += [f"**{title}** ({photos} photos):", "", *_set_table(mine), ""]
    return "\n".join([*lines, NOTE])


def read_rows(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as f:
        return [
            {k: (v if k in ("set", "photo", "method") else float(v or "nan")) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


def write_rows(rows: Sequence[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})


# ------------------------------------------------------------------ main


def _counts(text: str) -> list[int]:
    try:
        counts = sorted({int(c) for c in text.split(",") if c.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or counts[0] < 0 or counts[-1] > MAX_HINTS:
        raise argparse.ArgumentTypeError(f"counts must be 0 to {MAX_HINTS}, got {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=50, help="photos per set (0: all; default 50)")
    ap.add_argument("--counts", type=_counts, default=list(COUNTS), help="e.g. 0,1,2,5,10,20,50")
    ap.add_argument("--sets", default="coco,held-out", help="coco, held-out or both")
    ap.add_argument("--csv", type=Path, help="write the per-photo rows here")
    ap.add_argument("--summary", type=Path, help="print the tables of an earlier --csv only")
    ap.add_argument("--seed", type=int, default=0, help="the hints' seed (with the file name)")
    ap.add_argument("--shared", type=Path, help="the shared data folder ($SEGCOLOR_SHARED_DIR)")
    ap.add_argument("--pipeline", help="pipeline YAML (default: the shipped one)")
    ap.add_argument("--general", default=str(GENERAL_EXPERT), help="general-model checkpoint")
    ap.add_argument("--working-size", type=int, help="default: the pipeline's")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(read_rows(args.summary)))
        return 0
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        ap.error(f"unknown set {unknown[0]!r} (choose from {', '.join(SETS)})")
    if args.threads:
        torch.set_num_threads(args.threads)
    root = args.shared or shared()
    routed = Pipeline.load(args.pipeline, device=args.device, working_size=args.working_size)
    general = Pipeline.from_expert(
        args.general, device=args.device, working_size=args.working_size or routed.working_size
    )
    general.spread_options = routed.spread_options  # hints spread alike: only routing differs
    methods = Methods(routed, general)
    rows: list[Row] = []
    skipped = 0
    for set_name in sets:
        photos = set_photos(root, set_name, args.limit)
        if not photos:
            print(f"hints.py: no photos for {set_name} under {root / 'data'}", file=sys.stderr)
        for path, name in tqdm(photos, desc=set_name, unit="photo", file=sys.stderr):
            try:
                got = measure_photo(set_name, path, name, methods, args.counts, args.seed)
            except SegcolorError as err:
                tqdm.write(f"hints.py: {err} (skipped)", file=sys.stderr)
                got = None
            if got is None:
                skipped += 1
                continue
            rows += got
    if args.csv:
        write_rows(rows, args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    if skipped:
        print(f"({skipped} photos skipped: black and white, or unreadable)\n")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
