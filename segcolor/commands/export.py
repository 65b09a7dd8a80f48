"""``segcolor export RUN -o FILE``: a trained expert (or profile classifier) as a small file to
ship or share.

Writes fp16 weights (half the size, colors unchanged to well under 0.1 Lab units) with the card
stripped of machine paths; the shipped experts in ``segcolor/weights`` were made this way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segcolor.errors import SegcolorError
from segcolor.paths import BEST, CLASSIFIER, EXPERT

HELP = (
    "export a trained expert or profile classifier (run folder or checkpoint) as fp16 safetensors"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN", help="training run folder or .safetensors file")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help=".safetensors file")
    parser.add_argument(
        "--best", action="store_true", help="from a run folder: the lowest-val-loss epoch"
    )
    parser.add_argument("--fp32", action="store_true", help="keep float32 weights")


def run(args: argparse.Namespace) -> int:
    from segcolor.experts import export_expert
    from segcolor.profiles.classifier import export_classifier, is_classifier_checkpoint

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise SegcolorError("the output must be a .safetensors file", out)
    source = Path(args.source)
    is_classifier_run = (source / CLASSIFIER).exists()
    if source.is_dir() and is_classifier_run and not (source / EXPERT).exists():
        source = source / (BEST if args.best else CLASSIFIER)
    if source.is_file() and is_classifier_checkpoint(source):
        path = export_classifier(source, out, half=not args.fp32)
    else:
        path = export_expert(source, out, half=not args.fp32, best=args.best)
    size_mb = path.stat().st_size / 1e6
    print(f"segcolor: wrote {path} ({size_mb:.1f} MB)", file=sys.stderr)
    return 0
