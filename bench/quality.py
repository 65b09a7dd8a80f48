"""Reproduce the README's quality tables in one command.

Runs ``segcolor evaluate`` twice and prints each run's results.md:

1. COCO photos with masks (``data/eval_masks/coco128`` + ``coco_taming_train100``, 141 photos,
   the black-and-white ones skipped): whole images and per category region, with the oracle.
2. The held-out split of ``data/train`` (``--held-out 0.1``: photos no expert nor the general
   model trained on), at most ``--per-category`` photos per category folder (default 50, a fixed
   pseudo-random subset by file name) to bound CPU time; whole images per category folder.

Each run's exact command line is printed before its tables, so any row can be re-run alone.

    SEGCOLOR_SHARED_DIR=../shared SEGCOLOR_WEIGHTS_DIR=../shared/weights python bench/quality.py
    python bench/quality.py --per-category 20 --threads 1    # quicker, on a busy machine

Defaults: the shipped pipeline and general model (segcolor/weights). On a 2-core CPU shared with
other jobs, ``--threads 1`` is much faster (torch's threads spin-wait when cores are shared).
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segcolor.cli import main as segcolor  # noqa: E402

COCO = ("coco128", "coco_taming_train100")
CATEGORIES = ("people", "birds", "animals", "places")
HELD_OUT = 0.1  # the val_fraction of configs/experts/*.yaml


def shared_dir() -> Path:
    return Path(os.environ.get("SEGCOLOR_SHARED_DIR", REPO.parent / "shared"))


def runs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(title, argv of ``segcolor``) for each evaluation."""
    common: list[str] = []
    for flag, value in (
        ("--pipeline", args.pipeline),
        ("--general", args.general),
        ("--device", args.device),
        ("--threads", args.threads),
    ):
        if value is not None:
            common += [flag, str(value)]
    data = args.shared / "data"
    coco = [str(data / "eval_masks" / name) for name in COCO]
    train = [str(data / "train" / name) for name in CATEGORIES]
    held = ["--held-out", str(HELD_OUT), "--limit", str(args.per_category)]
    return [
        (
            "COCO photos with category masks",
            ["evaluate", *coco, "-o", str(args.out / "coco"), *common],
        ),
        (
            f"held-out photos of data/train (at most {args.per_category} per category)",
            [
                "evaluate",
                *train,
                "-o",
                str(args.out / "held_out"),
                "--baselines",
                "gray,general,experts,merged",
                *held,
                *common,
            ],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=shared_dir(), help="the shared data folder")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "quality", help="results folder")
    ap.add_argument("--per-category", type=int, default=50, help="held-out photos per category")
    ap.add_argument("--pipeline", help="pipeline YAML (default: the shipped one)")
    ap.add_argument("--general", help="general-model checkpoint (default: the shipped one)")
    ap.add_argument("--device", help="cuda, mps, cpu or auto")
    ap.add_argument("--threads", type=int, help="CPU threads for inference")
    ap.add_argument(
        "--summary-only", action="store_true", help="print the summary of existing results only"
    )
    args = ap.parse_args(argv)

    if args.summary_only:
        print(summary(args.out))
        return 0
    status = 0
    for title, command in runs(args):
        print(f"## {title}\n\n    {shlex.join(['segcolor', *command])}\n", flush=True)
        code = segcolor(command)
        status = max(status, code)
        results = Path(command[command.index("-o") + 1]) / "results.md"
        if results.is_file():
            print(results.read_text(encoding="utf-8"), flush=True)
        else:
            print(f"(no results: segcolor exited with {code})\n", flush=True)
    print(summary(args.out), flush=True)
    return status


# --- the README's two compact tables, with the merged - general difference and its 95 % CI


def paired_ci(diff: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of the mean of per-photo differences (photos resampled)."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _per_photo(rows: list[dict[str, str]], method: str, metric: str) -> dict[str, float]:
    return {r["photo"]: float(r[metric]) for r in rows if r["method"] == method}


def _cells(rows: list[dict[str, str]], methods: list[str | None], metric: str) -> str:
    values = []
    for method in methods:
        got = list(_per_photo(rows, method, metric).values()) if method else []
        values.append(f"{np.mean(got):.2f}" if got else "–")
    return " / ".join(values)


def _difference(rows: list[dict[str, str]], metric: str) -> str:
    merged, general = _per_photo(rows, "merged", metric), _per_photo(rows, "general", metric)
    photos = sorted(set(merged) & set(general))
    diff = np.array([merged[p] - general[p] for p in photos])
    low, high = paired_ci(diff)
    return f"{diff.mean():+.2f} [{low:+.2f}, {high:+.2f}]"


def _table(groups: dict[str, list[dict[str, str]]], expert_of: dict[str, str | None]) -> list[str]:
    lines = [
        "| set (photos) | PSNR dB ↑ gray / general / expert alone / merged "
        "| ΔE00 ↓ gray / general / expert alone / merged "
        "| merged − general: PSNR, ΔE00 [95 % CI] | \\|ΔCF\\| ↓ general / merged |",
        "|:--|--:|--:|--:|--:|",
    ]
    for name, rows in groups.items():
        methods = ["gray", "general", expert_of.get(name), "merged"]
        photos = len(_per_photo(rows, "merged", "psnr_rgb"))
        lines.append(
            f"| {name} ({photos}) | {_cells(rows, methods, 'psnr_rgb')} "
            f"| {_cells(rows, methods, 'delta_e2000')} "
            f"| {_difference(rows, 'psnr_rgb')}, {_difference(rows, 'delta_e2000')} "
            f"| {_cells(rows, ['general', 'merged'], 'colorfulness_diff')} |"
        )
    return lines


def summary(out: Path) -> str:
    """Both evaluations in two compact tables (photo means), each set's merged - general
    difference with a paired bootstrap 95 % interval: which gaps are more than noise."""
    lines: list[str] = []
    coco = out / "coco" / "results.csv"
    if coco.is_file():
        by_region: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
        with coco.open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                row = by_region[r["region"]].setdefault(
                    (r["photo"], r["method"]), {"photo": r["photo"], "method": r["method"]}
                )
                row[r["metric"]] = r["value"]
        groups = {}
        for region, name in (("image", "COCO whole images"),) + tuple(
            (c, f"COCO {c} regions") for c in CATEGORIES
        ):
            rows = [r for r in by_region.get(region, {}).values() if "psnr_rgb" in r]
            rows = [r for r in rows if r["psnr_rgb"] not in ("", "nan")]
            if rows:
                groups[name] = rows
        experts = {f"COCO {c} regions": f"expert:{c}" for c in CATEGORIES}
        lines += ["**COCO**, whole images and ground-truth regions:", ""]
        lines += _table(groups, experts) + [""]
    held = out / "held_out" / "per_photo.csv"
    if held.is_file():
        with held.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        groups = {"held-out, all": rows}
        for c in CATEGORIES:
            groups[f"held-out {c}"] = [r for r in rows if r["dataset"] == c]
        experts = {f"held-out {c}": f"expert:{c}" for c in CATEGORIES}
        lines += ["**Held-out training photos**, whole photos:", ""]
        lines += _table(groups, experts) + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
