"""``segcolor colorize INPUT... -o OUT``: files or folders in, colorized images out.

By default the shipped pipeline routes each region to its category's shipped expert (without the
segmenter's weights: the shipped general model, with a warning). ``--pipeline YAML`` routes to
your own experts; ``--expert CKPT`` colors every pixel with one expert. ``--show-routing``
prints what went where, one line per image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segcolor.errors import SegcolorError
from segcolor.io.images import IMAGE_EXTENSIONS, OUTPUT_FORMATS, iter_inputs, load_image, save_image

HELP = "colorize black-and-white photos (files or folders)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (one input) or folder (names and sub-folders kept)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--expert", metavar="CKPT", help="one expert checkpoint (.safetensors) for every pixel"
    )
    source.add_argument(
        "--pipeline",
        metavar="YAML",
        help="route regions to the category experts a YAML names (e.g. configs/pipeline.yaml); "
        "default: the shipped experts",
    )
    parser.add_argument(
        "--show-routing",
        action="store_true",
        help="print each image's categories, e.g. 'photo.jpg: people 23%% (person), places 77%%'",
    )
    parser.add_argument(
        "--routing",
        metavar="EDITS",
        help="routing edits (JSON, e.g. saved by `segcolor serve`): regions reassigned to other "
        "categories, categories painted over masks, profile variants pinned; applied to "
        "every input",
    )
    parser.add_argument("--device", default="auto", help="cuda, mps, cpu or auto (default)")
    parser.add_argument(
        "--working-size",
        type=int,
        metavar="PX",
        help="short side at which color is predicted (default 256, or the pipeline YAML's "
        "working_size)",
    )
    parser.add_argument(
        "--format",
        choices=sorted({e.lstrip(".") for e in OUTPUT_FORMATS}),
        help="output format for folder outputs (default: keep the input's)",
    )


def plan_outputs(inputs: list[str], output: str, fmt: str | None) -> list[tuple[Path, Path]]:
    """Map every input image to its output path; refuse anything that would overwrite an input."""
    pairs = iter_inputs(inputs)
    if not pairs:
        raise SegcolorError(f"no images found in {', '.join(inputs)}")
    out = Path(output)
    single_file = (
        len(pairs) == 1 and not Path(inputs[0]).is_dir() and out.suffix.lower() in IMAGE_EXTENSIONS
    )
    if single_file:
        plan = [(pairs[0][0], out)]
    else:
        if out.exists() and not out.is_dir():
            raise SegcolorError("several images need an output folder, but it is a file", out)
        plan = []
        for src, rel in pairs:
            suffix = f".{fmt}" if fmt else rel.suffix.lower()
            if suffix not in OUTPUT_FORMATS:
                suffix = ".png"
            plan.append((src, out / rel.with_suffix(suffix)))
    inputs_resolved = {src.resolve() for src, _ in plan}
    for _, dst in plan:
        if dst.resolve() in inputs_resolved:
            raise SegcolorError("output would overwrite an input; choose another -o", dst)
    return plan


def run(args: argparse.Namespace) -> int:
    if args.show_routing and args.expert:
        raise SegcolorError("--show-routing needs a routed pipeline (one --expert has no routing)")
    if args.working_size is not None and args.working_size < 16:
        raise SegcolorError(f"--working-size must be at least 16, got {args.working_size}")
    edits = None
    if getattr(args, "routing", None):
        if args.expert:
            raise SegcolorError("--routing needs a routed pipeline (one --expert has no routing)")
        from segcolor.router.overrides import RoutingEdits

        edits = RoutingEdits.load(args.routing)
    plan = plan_outputs(args.inputs, args.output, args.format)
    from segcolor.pipeline import Pipeline  # torch is imported only when there is work to do

    pipeline = Pipeline.load(
        args.pipeline, args.expert, device=args.device, working_size=args.working_size
    )
    if edits is not None:
        if not pipeline.routed:
            raise SegcolorError("--routing needs a routed pipeline, but no segmenter was found")
        pipeline.router.check_edits(edits)  # a wrong name fails once, before any photo
    failures: list[str] = []
    progress = tqdm(plan, desc="colorize", unit="img", disable=len(plan) < 2, file=sys.stderr)
    for src, dst in progress:
        try:
            image = load_image(src)  # as decoded: a float copy of a large scan would cost GBs
            if args.show_routing and pipeline.routed:
                rgb, routing = pipeline.colorize_routed(image.pixels, np.uint8, edits)
                tqdm.write(f"{src}: {routing.summary()}", file=sys.stdout)
            else:
                rgb = pipeline.colorize(image.pixels, edits)
            alpha, image = image.alpha_pixels, None  # the input is not held while encoding
            save_image(dst, rgb, alpha=alpha)
            rgb = alpha = None
        except SegcolorError as err:
            failures.append(str(err))
            tqdm.write(f"segcolor: error: {err}", file=sys.stderr)
    done = len(plan) - len(failures)
    if failures:
        print(
            f"segcolor: colorized {done} of {len(plan)} images; {len(failures)} failed",
            file=sys.stderr,
        )
        return 1
    if len(plan) > 1:
        print(f"segcolor: colorized {done} images into {args.output}", file=sys.stderr)
    return 0
