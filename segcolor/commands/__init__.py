"""Command-line sub-commands; each module is thin glue over the library."""

from __future__ import annotations

import argparse

from segcolor.errors import SegcolorError


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pipeline``, ``--device`` and ``--working-size``: how commands that route photos build
    their pipeline (checked by ``check_working_size``)."""
    parser.add_argument(
        "--pipeline",
        metavar="YAML",
        help="pipeline YAML (e.g. configs/pipeline.yaml); default: the shipped experts",
    )
    parser.add_argument("--device", default="auto", help="cuda, mps, cpu or auto (default)")
    parser.add_argument(
        "--working-size",
        type=int,
        metavar="PX",
        help="short side at which color is predicted (default: the YAML's)",
    )


def check_working_size(args: argparse.Namespace) -> None:
    from segcolor.router.categories import MIN_WORKING_SIZE

    if args.working_size is not None and args.working_size < MIN_WORKING_SIZE:
        raise SegcolorError(
            f"--working-size must be at least {MIN_WORKING_SIZE}, got {args.working_size}"
        )
