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
import os
import shlex
import sys
from pathlib import Path

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
    args = ap.parse_args(argv)

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
    return status


if __name__ == "__main__":
    sys.exit(main())
