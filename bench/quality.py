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
import math
import shlex
import sys
from pathlib import Path

import numpy as np

from segcolor.cli import main as segcolor

from common import (
    ALL,
    CATEGORIES,
    COCO,
    HELD_OUT,
    REPO,
    Scores,
    paired_bootstrap,
    read_scores,
    shared,
    table_header,
    table_row,
)


def runs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(title, argv of ``segcolor``) for each evaluation."""
    options: list[str] = []
    for flag, value in (
        ("--pipeline", args.pipeline),
        ("--general", args.general),
        ("--device", args.device),
        ("--threads", args.threads),
    ):
        if value is not None:
            options += [flag, str(value)]
    data = (args.shared or shared()) / "data"
    coco = [str(data / "eval_masks" / name) for name in COCO]
    train = [str(data / "train" / name) for name in CATEGORIES]
    held = ["--held-out", str(HELD_OUT), "--limit", str(args.per_category)]
    return [
        (
            "COCO photos with category masks",
            ["evaluate", *coco, "-o", str(args.out / "coco"), *options],
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
                *options,
            ],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, help="the shared data folder ($SEGCOLOR_SHARED_DIR)")
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


Table = dict[tuple[str, str], dict[str, float]]  # (method, metric) -> {photo: value}


def _cells(table: Table, methods: list[str | None], metric: str) -> str:
    values = []
    for method in methods:
        got = list(table.get((method, metric), {}).values()) if method else []
        values.append(f"{np.mean(got):.2f}" if got else "–")
    return " / ".join(values)


def _difference(table: Table, metric: str) -> str:
    merged, general = table.get(("merged", metric), {}), table.get(("general", metric), {})
    photos = sorted(set(merged) & set(general))
    return str(paired_bootstrap([merged[p] for p in photos], [general[p] for p in photos]))


def _table(groups: dict[str, Table], expert_of: dict[str, str]) -> list[str]:
    lines = [
        table_header(
            [
                "set (photos)",
                "PSNR dB ↑ gray / general / expert alone / merged",
                "ΔE00 ↓ gray / general / expert alone / merged",
                "merged − general: PSNR, ΔE00 [95 % CI]",
                "\\|ΔCF\\| ↓ general / merged",
            ],
            "lrrrr",
        )
    ]
    for name, table in groups.items():
        methods = ["gray", "general", expert_of.get(name), "merged"]
        photos = len(table.get(("merged", "psnr_rgb"), {}))
        lines.append(
            table_row(
                [
                    f"{name} ({photos})",
                    _cells(table, methods, "psnr_rgb"),
                    _cells(table, methods, "delta_e2000"),
                    f"{_difference(table, 'psnr_rgb')}, {_difference(table, 'delta_e2000')}",
                    _cells(table, ["general", "merged"], "colorfulness_diff"),
                ]
            )
        )
    return lines


def _group(scores: Scores, group: str, rated_only: bool = False) -> Table:
    """One group's scores; ``rated_only``: of each method only the photos it has a PSNR for
    (a region a photo lacks has nan scores)."""
    table = {(m, metric): v for (m, g, metric), v in scores.items() if g == group}
    if rated_only:
        for method in {m for m, _ in table}:
            rated = table.get((method, "psnr_rgb"), {})
            keep = {p for p, v in rated.items() if not math.isnan(v)}
            for key in [k for k in table if k[0] == method]:
                table[key] = {p: v for p, v in table[key].items() if p in keep}
    return {k: v for k, v in table.items() if v}


def summary(out: Path) -> str:
    """Both evaluations in two compact tables (photo means), each set's merged - general
    difference with a paired bootstrap 95 % interval: which gaps are more than noise."""
    lines: list[str] = []
    coco = read_scores(out / "coco" / "results.csv")
    if coco is not None:
        groups = {}
        for region, name in (("image", "COCO whole images"),) + tuple(
            (c, f"COCO {c} regions") for c in CATEGORIES
        ):
            table = _group(coco, region, rated_only=True)
            if table:
                groups[name] = table
        experts = {f"COCO {c} regions": f"expert:{c}" for c in CATEGORIES}
        lines += ["**COCO**, whole images and ground-truth regions:", ""]
        lines += _table(groups, experts) + [""]
    held = read_scores(out / "held_out" / "per_photo.csv")
    if held is not None:
        groups = {"held-out, all": _group(held, ALL)}
        for c in CATEGORIES:
            groups[f"held-out {c}"] = _group(held, c)
        experts = {f"held-out {c}": f"expert:{c}" for c in CATEGORIES}
        lines += ["**Held-out training photos**, whole photos:", ""]
        lines += _table(groups, experts) + [""]
    lines += distribution(out)
    return "\n".join(lines)


def distribution(out: Path) -> list[str]:
    """The realism measure of both evaluations: how far each method's colors over the whole
    set are from the photos' (JS divergence of ab histograms, x1000; 0 = the same)."""
    rows = []
    for name, folder in (("COCO", "coco"), ("held-out", "held_out")):
        path = out / folder / "distribution.csv"
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.append((name, row["region"], row["method"], float(row["ab_js_divergence"])))
    if not rows:
        return []
    methods = list(dict.fromkeys(method for _, _, method, _ in rows))
    sets = list(dict.fromkeys((name, region) for name, region, _, _ in rows))
    values = {(name, region, method): v for name, region, method, v in rows}
    lines = [
        "**Color distribution over the set** (JS divergence of ab histograms to the photos', "
        "x1000; 0 = the photos' own):",
        "",
        table_header(["set", *methods], "l" + "r" * len(methods)),
    ]
    for name, region in sets:
        cells = [values.get((name, region, m), math.nan) for m in methods]
        label = f"{name} {'whole' if region == 'image' else region}"
        lines.append(
            table_row([label, *("–" if math.isnan(v) else f"{1e3 * v:.1f}" for v in cells)])
        )
    return [*lines, ""]


if __name__ == "__main__":
    sys.exit(main())
