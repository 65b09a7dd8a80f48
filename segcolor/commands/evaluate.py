"""``segcolor evaluate DATA... -o DIR``: how close each method's colors come to the photos' own.

Every color photo is turned into its lightness, colorized by each method (gray, the general
model, each expert alone, the routed pipeline, the mask oracle) and compared with itself:
over the whole image and, where a ground-truth mask lies beside the photo, per category
region; over the whole set, the distribution of its colors (ab-histogram divergence) and
the Fréchet Wavelet Distance of its outputs. ``--style`` evaluates the pipeline in that style.
Writes results.md, results.csv, per_photo.csv, distribution.csv and contact_sheet.png.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import NoReturn

from segcolor.commands import add_pipeline_arguments, add_style_argument, check_pipeline_options
from segcolor.errors import SegcolorError
from segcolor.io.atomic import refuse_overwriting_inputs
from segcolor.paths import SHARED_ENV, portable_path

HELP = "measure colorization quality against color photos (PSNR, ΔE2000, colorfulness, FWD, ...)"
BASELINES = "gray,general,experts,merged,oracle"  # segcolor.evaluate.methods.DEFAULT_BASELINES
OUTPUT_FILES = (
    "results.md",
    "results.csv",
    "per_photo.csv",
    "distribution.csv",
    "contact_sheet.png",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="color photos: files or folders (recursive); masks beside them "
        "(<stem>_semantic.png, as in data/eval_masks) add per-category results",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="folder for the results (created)"
    )
    add_pipeline_arguments(parser)  # --pipeline, --device, --working-size, --vividness
    add_style_argument(parser)  # --style: every method is evaluated in it
    parser.add_argument(
        "--general",
        metavar="CKPT",
        help="general-model checkpoint for the 'general' baseline; default: the shipped one",
    )
    parser.add_argument(
        "--baselines",
        default=BASELINES,
        metavar="LIST",
        help=f"methods to compare, comma-separated (default {BASELINES}); 'experts' means "
        "every expert alone, or name one: expert:people",
    )
    parser.add_argument(
        "--held-out",
        type=float,
        metavar="FRAC",
        help="only photos that training with this validation fraction never used "
        "(0.1 for the shipped experts and general model)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="at most N photos per DATA (a fixed pseudo-random subset, by file name)",
    )
    parser.add_argument(
        "--skip",
        type=int,
        default=0,
        metavar="N",
        help="leave out the first N photos of that pseudo-random order: with --limit, a pick "
        "disjoint from --limit N's, to choose models on without touching the reported photos",
    )
    parser.add_argument(
        "--sheet",
        type=int,
        default=8,
        metavar="N",
        help="rows of the contact sheet: the first N photos (default 8; 0: no sheet)",
    )
    parser.add_argument(
        "--sheet-photos",
        metavar="NAMES",
        help="comma-separated file names or stems for the contact sheet instead of the first N",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for inference (default: PyTorch's; 1 can be much faster when other "
        "jobs share the CPU)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check(args: argparse.Namespace) -> None:
    if args.held_out is not None and not 0 < args.held_out < 1:
        raise SegcolorError(f"--held-out must be a fraction in (0, 1), got {args.held_out}")
    if args.limit is not None and args.limit < 1:
        raise SegcolorError(f"--limit must be at least 1, got {args.limit}")
    if args.skip < 0:
        raise SegcolorError(f"--skip must be 0 or more, got {args.skip}")
    if args.sheet < 0:
        raise SegcolorError(f"--sheet must be 0 or more, got {args.sheet}")
    check_pipeline_options(args)
    if args.threads is not None and args.threads < 1:
        raise SegcolorError(f"--threads must be at least 1, got {args.threads}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise SegcolorError("the results need a folder, but this is a file", out)
    _check_output_apart(args.data, out)


def _check_output_apart(data: list[str], out: Path) -> None:
    """Refuse results among the photos: the next run would evaluate its own contact sheet as a
    photo, and a photo could be replaced."""
    target = out.resolve()
    for item in map(Path, data):
        source = item.resolve()
        if item.is_dir() and target.is_relative_to(source):
            raise SegcolorError(
                f"the results would be written among the photos of {item}; choose another -o",
                out,
            )
        refuse_overwriting_inputs([out / name for name in OUTPUT_FILES], [source])


def _quote(arg: str) -> str:
    """Shell-quoted, leaving a leading ``$SEGCOLOR_SHARED_DIR/`` to be expanded."""
    prefix = f"${SHARED_ENV}/"
    if arg.startswith(prefix):
        return prefix + shlex.quote(arg[len(prefix) :])
    return shlex.quote(arg)


def command_line(args: argparse.Namespace) -> str:
    """The command, as a user would retype it (recorded in results.md), without this machine's
    paths where they are the shared directory's or the working directory's."""
    paths = [portable_path(p) for p in (*args.data, args.output)]
    argv = ["segcolor", "evaluate", *paths[:-1], "-o", paths[-1]]
    for flag, value in (
        ("--pipeline", args.pipeline and portable_path(args.pipeline)),
        ("--general", args.general and portable_path(args.general)),
        ("--baselines", None if args.baselines == BASELINES else args.baselines),
        ("--held-out", args.held_out),
        ("--limit", args.limit),
        ("--skip", args.skip or None),
        ("--sheet", None if args.sheet == 8 else args.sheet),
        ("--sheet-photos", args.sheet_photos),
        ("--working-size", args.working_size),
        ("--vividness", args.vividness),
        ("--style", args.style),
        ("--device", None if args.device == "auto" else args.device),
        ("--threads", args.threads),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return " ".join(_quote(arg) for arg in argv)


def run(args: argparse.Namespace) -> int:
    _check(args)
    from segcolor.evaluate import (  # torch is imported only when there is work to do
        Methods,
        evaluate,
        find_photos,
        parse_methods,
        write_contact_sheet,
        write_results,
    )
    from segcolor.pipeline import GENERAL_EXPERT, Pipeline

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    refs = find_photos(args.data, held_out=args.held_out, limit=args.limit, skip=args.skip)
    if not refs:
        _no_photos(args)
    sheet_photos = [s.strip() for s in (args.sheet_photos or "").split(",") if s.strip()]
    known = {n for ref in refs for n in (ref.path.name, ref.path.stem)}
    for name in sheet_photos:
        if name not in known:
            raise SegcolorError(
                f"--sheet-photos names a photo that is not among the {len(refs)} evaluated", name
            )
    out = Path(args.output)
    try:  # now, not after an evaluation of many minutes
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or err
        raise SegcolorError(f"cannot make the results folder ({reason})", out) from None
    pipeline = Pipeline.load(
        args.pipeline,
        device=args.device,
        working_size=args.working_size,
        require_router=True,
        vividness=args.vividness,
        style=args.style,
    )
    names = parse_methods(args.baselines, list(pipeline.experts))
    general = None
    general_path = Path(args.general) if args.general else GENERAL_EXPERT
    if "general" in names:
        if not general_path.is_file():
            raise SegcolorError(
                "general model not found: pass --general CKPT, or leave 'general' out of "
                "--baselines",
                general_path,
            )
        general = Pipeline.from_expert(
            general_path,
            device=pipeline.device,
            working_size=pipeline.working_size,
            vividness=pipeline.vividness,  # every method at the same gain: a fair comparison
            style=pipeline.style,  # and in the same style
        )
    methods = Methods(pipeline, names, general)
    results = evaluate(
        refs, methods, sheet=args.sheet, sheet_photos=sheet_photos, progress=not args.quiet
    )
    if not results.photos:
        raise SegcolorError(
            f"none of the {len(refs)} photos could be evaluated (unreadable or black and white)"
        )
    if "oracle" in names and not any(p.masked for p in results.photos):
        print(
            "segcolor: note: no photo has a category mask, so there is no oracle", file=sys.stderr
        )
    source = pipeline.config.path if pipeline.config and pipeline.config.path else "shipped"
    context = [
        f"command: `{command_line(args)}`",
        f"pipeline: {portable_path(source) if source != 'shipped' else source}; "
        f"general: {portable_path(general_path) if general else 'not evaluated'}; "
        f"working size {pipeline.working_size}; style {pipeline.style}"
        + (f"; vividness {pipeline.vividness:g}" if pipeline.vividness != 1.0 else ""),
    ]
    files = write_results(results, out, context)
    if results.sheet and (args.sheet > 0 or sheet_photos):
        write_contact_sheet(results.sheet, out / "contact_sheet.png")
    count = len(results.photos)
    print(
        f"segcolor: evaluated {count} photos x {len(names)} methods in {results.seconds:.1f} s "
        f"({results.seconds / count:.2f} s/photo); results in {files['markdown']}",
        file=sys.stderr,
    )
    if results.failures:
        print(
            f"segcolor: {len(results.failures)} of {len(refs)} files could not be read and "
            "were skipped",
            file=sys.stderr,
        )
        return 1
    return 0


def _no_photos(args: argparse.Namespace) -> NoReturn:
    """Why nothing is left to evaluate: no photos at all, or --skip/--limit went past them."""
    from segcolor.evaluate.datasets import find_photos

    where = " held out" if args.held_out else ""
    counts = [len(find_photos([d], held_out=args.held_out)) for d in args.data]
    if not any(counts):
        raise SegcolorError(f"no{where} photos found in {', '.join(args.data)}")
    picked = f"--skip {args.skip}" + (f" --limit {args.limit}" if args.limit else "")
    found = ", ".join(f"{d} has {n}{where}" for d, n in zip(args.data, counts, strict=True))
    raise SegcolorError(f"{picked} left no photos (applied to each DATA: {found})")
