"""``segcolor train CONFIG``: train a category expert (glue over ``segcolor.train.engine``)."""

from __future__ import annotations

import argparse
import os
import sys

from segcolor.train.config import FLAG_KEYS

HELP = "train a category expert from a YAML config (flags override the config)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", metavar="CONFIG", help="training YAML, e.g. configs/experts/birds.yaml"
    )
    parser.add_argument("--data", metavar="DIR", help="image folder (data.root)")
    parser.add_argument("--epochs", type=int, metavar="N", help="number of epochs (train.epochs)")
    parser.add_argument("--size", type=int, metavar="PX", help="training crop size (data.size)")
    parser.add_argument(
        "--batch-size", type=int, metavar="B", help="images per step and process (train.batch_size)"
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (out; default runs/NAME)")
    parser.add_argument(
        "--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps (train.device)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the output folder from its last completed epoch "
        "(starts afresh if it has no checkpoint yet)",
    )
    parser.add_argument("--seed", type=int, metavar="S", help="random seed (train.seed)")
    parser.add_argument(
        "--workers", type=int, metavar="W", help="data-loading processes (train.workers)"
    )


def run(args: argparse.Namespace) -> int:
    # OpenMP threads that spin while waiting for each other collapse when the CPU is shared
    # (DataLoader workers, other jobs): 7 img/s instead of 17 measured on 2 busy cores. Sleeping
    # instead of spinning costs a few microseconds per wake-up on an idle CPU. Takes effect only
    # before torch is first imported, as here (the CLI imports it lazily); the env var wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from segcolor.train.engine import TrainingInterrupted, main

    overrides = {
        key: getattr(args, flag)
        for flag, key in FLAG_KEYS.items()
        if getattr(args, flag) is not None
    }
    try:
        main(args.config, overrides, resume=args.resume)
    except TrainingInterrupted as stop:
        print(f"segcolor: {stop}", file=sys.stderr)
        return 130
    return 0
