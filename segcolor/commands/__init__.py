"""Command-line sub-commands; each module is thin glue over the library.

The CLI imports every command module to build its parser, so ``segcolor --help``, a bad flag
or ``segcolor manifest`` cost what these modules import at their top: the standard library,
PyYAML, Pillow, tqdm and segcolor's torch-free modules (errors, config, paths, splits, io,
batch.manifest, train.config). What loads torch (the pipeline, router, experts, profiles, and
the training, evaluation, video and studio packages, plus the optional extras) is imported
inside ``run``, once there is work to do (and after ``OMP_WAIT_POLICY`` is set, for training);
``tests/test_architecture.py`` checks that the parser loads no torch. These, and lazy imports
of optional extras (ray, uvicorn, fastapi), are the only imports inside functions.
"""

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


def add_style_argument(parser: argparse.ArgumentParser) -> None:
    """``--style``, for the commands whose output is colored photos (checked by
    ``check_pipeline_options``: an unknown name is a one-line error, like a bad vividness,
    not an argparse usage dump)."""
    parser.add_argument(
        "--style",
        metavar="{faithful,vivid}",
        help="faithful: the mean of the plausible colors (best PSNR, muted where unsure); "
        "vivid: a plausible color chosen per region from the experts' 313-bin heads (experts "
        "without that head answer faithfully). Default: the pipeline YAML's style (faithful)",
    )


def check_pipeline_options(args: argparse.Namespace) -> None:
    """``--working-size`` (and ``--vividness`` and ``--style``, where a command has them)
    before any work."""
    from segcolor.pipeline_config import MIN_WORKING_SIZE, style_problem, vividness_problem  # torch

    if args.working_size is not None and args.working_size < MIN_WORKING_SIZE:
        raise SegcolorError(
            f"--working-size must be at least {MIN_WORKING_SIZE}, got {args.working_size}"
        )
    vividness = getattr(args, "vividness", None)
    problem = None if vividness is None else vividness_problem(vividness)
    if problem:
        raise SegcolorError(f"--vividness {problem}")
    style = getattr(args, "style", None)
    problem = None if style is None else style_problem(style)
    if problem:
        raise SegcolorError(f"--style {problem}")
