"""``segcolor manifest OUT/``: what a batch did, from the manifest beside its outputs.

Counts (done, failed), the failures with their reasons, throughput, and the photos per category
and per profile variant, so an archivist can see what to check by eye first.
"""

from __future__ import annotations

import argparse

from segcolor.batch.manifest import summarize

HELP = "summarize a colorize batch: counts, failures, throughput, photos per category"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="OUT", help="the output folder of segcolor colorize")


def run(args: argparse.Namespace) -> int:
    print(summarize(args.output))
    return 0
