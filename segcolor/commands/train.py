"""``segcolor train CONFIG...``: train experts, profile classifiers, the gray head (glue over
``segcolor.train.engine``; the config's ``task:`` picks, in ``segcolor.train.tasks``).

Several configs train one after the other, in the order given, so a whole recipe (a general
model, then the experts fine-tuned from it) is one command; with ``--resume`` a rerun skips
what is finished and continues what was interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from segcolor.errors import ConfigError
from segcolor.train.config import FLAG_KEYS

HELP = "train a category expert from a YAML config (flags override the config)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        metavar="CONFIG",
        nargs="+",
        help="training YAML(s), e.g. configs/experts/birds.yaml; several run in order",
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override any config key (dotted, value read as YAML), e.g. --set optim.lr=5e-4",
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
    # before torch is first imported, as here: the training modules (torch) are imported below,
    # not at the top, which also keeps every other command's start-up free of them.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from segcolor.train import engine
    from segcolor.train.run import TrainingInterrupted

    overrides = {
        key: getattr(args, flag)
        for flag, key in FLAG_KEYS.items()
        if getattr(args, flag) is not None
    }
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=3")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: not valid YAML") from None
    if len(args.config) > 1 and "out" in overrides:
        raise ConfigError("--out names one run's folder; with several configs set `out:` in each")
    engine.check_configs(args.config, overrides, args.resume)
    for config in args.config:
        try:
            engine.main(config, overrides, resume=args.resume)
        except TrainingInterrupted as stop:
            print(f"segcolor: {stop}", file=sys.stderr)
            return 130
    return 0
