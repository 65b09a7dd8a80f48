"""Command-line sub-commands; each module is thin glue over the library."""

from __future__ import annotations

import argparse

from segcolor.errors import SegcolorError


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pipeline``, ``--device``, ``--working-size`` and ``--vividness``: how commands that
    route photos build their pipeline (checked by ``check_pipeline_options``)."""
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
    add_vividness_argument(parser)


def add_vividness_argument(parser: argparse.ArgumentParser) -> None:
    """``--vividness``, for the commands whose output is colored photos (checked by
    ``check_pipeline_options``)."""
    parser.add_argument(
        "--vividness",
        type=float,
        metavar="GAIN",
        help="chroma gain on the predicted colors: above 1 more vivid, below 1 more muted "
        "(default 1, or the pipeline YAML's vividness; see the README's 'Vividness')",
    )


def check_pipeline_options(args: argparse.Namespace) -> None:
    """``--working-size`` (and ``--vividness``, where a command has it) before any work."""
    from segcolor.router.categories import MIN_WORKING_SIZE, vividness_problem

    if args.working_size is not None and args.working_size < MIN_WORKING_SIZE:
        raise SegcolorError(
            f"--working-size must be at least {MIN_WORKING_SIZE}, got {args.working_size}"
        )
    vividness = getattr(args, "vividness", None)
    problem = None if vividness is None else vividness_problem(vividness)
    if problem:
        raise SegcolorError(f"--vividness {problem}")
