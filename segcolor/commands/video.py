"""``segcolor video INPUT -o OUTPUT``: colorize a video so colors stay steady frame to frame.

INPUT is a video file (mp4, mov, mkv, webm, avi, gif) or a folder of frames; OUTPUT a video
file (same size and frame rate; audio copied through) or a folder of PNG frames. The run is
streamed and written in chunks to ``OUTPUT.segcolor-work``: interrupt it and run the same
command again to go on from the last finished chunk.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segcolor.commands import add_style_argument, add_vividness_argument, check_pipeline_options
from segcolor.errors import SegcolorError

HELP = "colorize a black-and-white video (file or folder of frames), steady from frame to frame"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="video file or folder of frames")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="video file (.mp4 .mov .mkv .webm .avi .gif) or folder for PNG frames",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pipeline", metavar="YAML", help="routed experts (default: shipped)")
    source.add_argument("--expert", metavar="CKPT", help="one expert checkpoint for every pixel")
    parser.add_argument("--device", default="auto", help="cuda, mps, cpu or auto (default)")
    parser.add_argument(
        "--working-size", type=int, metavar="PX", help="short side at which color is predicted"
    )
    add_vividness_argument(parser)
    add_style_argument(parser)
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for torch (default: torch's choice; on a machine busy with other "
        "work, 1 is often several times faster)",
    )
    steady = parser.add_argument_group("temporal stability")
    steady.add_argument(
        "--no-stabilize",
        action="store_true",
        help="colorize every frame on its own (naive; flickers)",
    )
    steady.add_argument(
        "--routing-alpha",
        type=float,
        metavar="A",
        help="weight of a new frame's segmentation in the running mean (default 0.5; "
        "lower keeps regions on their expert longer)",
    )
    steady.add_argument(
        "--color-alpha",
        type=float,
        metavar="A",
        help="weight of a new frame's colors where motion is trusted (default: the style's, "
        "faithful 0.3, vivid 0.05; 1 = none carried over)",
    )
    steady.add_argument(
        "--profile-alpha",
        type=float,
        metavar="A",
        help="weight of a new frame's P(profile) in the shot's running mean (default 1: each "
        "frame's own; lower holds a profiled expert's variants longer)",
    )
    steady.add_argument(
        "--feature-alpha",
        type=float,
        metavar="A",
        help="weight of a new frame's segmenter features (what every expert reads) in their "
        "running mean along the flow (default 0.1; 1: each frame's own)",
    )
    steady.add_argument(
        "--cut-threshold",
        type=float,
        metavar="T",
        help="scene-cut score (0-1) above which smoothing restarts (default 0.2)",
    )
    steady.add_argument(
        "--flow",
        choices=("ultrafast", "fast", "medium"),
        help="optical-flow preset (default medium)",
    )
    run = parser.add_argument_group("output and resuming")
    run.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 25)")
    run.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (18)")
    run.add_argument(
        "--chunk-frames",
        type=int,
        default=100,
        metavar="N",
        help="frames per resumable chunk (default 100)",
    )
    run.add_argument(
        "--restart", action="store_true", help="discard chunks left by a different earlier run"
    )
    run.add_argument("--keep-work", action="store_true", help="keep the chunk folder afterwards")


def _options(args: argparse.Namespace) -> tuple:
    """Validated ``StabilizerOptions`` and ``RunOptions`` from the flags."""
    from segcolor.video.runner import RunOptions
    from segcolor.video.stabilize import StabilizerOptions

    if args.fps is not None and args.fps <= 0:
        raise SegcolorError(f"--fps must be positive, got {args.fps}")
    if not 0 <= args.crf <= 51:
        raise SegcolorError(f"--crf must be between 0 and 51, got {args.crf}")
    given = {
        "routing_alpha": args.routing_alpha,
        "color_alpha": args.color_alpha,
        "profile_alpha": args.profile_alpha,
        "feature_alpha": args.feature_alpha,
        "cut_threshold": args.cut_threshold,
        "flow_preset": args.flow,
    }  # flags left out keep StabilizerOptions' defaults (the help repeats them)
    try:
        stabilizer = StabilizerOptions(
            enabled=not args.no_stabilize, **{k: v for k, v in given.items() if v is not None}
        )
    except ValueError as err:
        raise SegcolorError(str(err).replace("_", "-")) from None
    run_options = RunOptions(
        chunk_frames=args.chunk_frames,
        crf=args.crf,
        fps=args.fps,
        restart=args.restart,
        keep_work=args.keep_work,
    )
    return stabilizer, run_options


def run(args: argparse.Namespace) -> int:
    check_pipeline_options(args)
    if not Path(args.input).exists():
        raise SegcolorError("no such file or folder", args.input)
    stabilizer, options = _options(args)
    if args.threads is not None and args.threads < 1:
        raise SegcolorError(f"--threads must be at least 1, got {args.threads}")
    import torch

    from segcolor.pipeline import Pipeline  # heavy imports only when there is work to do
    from segcolor.video.runner import colorize_video

    if args.threads:
        torch.set_num_threads(args.threads)

    pipeline = Pipeline.load(
        args.pipeline,
        args.expert,
        device=args.device,
        working_size=args.working_size,
        vividness=args.vividness,
        style=args.style,
    )
    summary = colorize_video(pipeline, args.input, args.output, stabilizer, options)
    info = summary.info
    parts = [f"{summary.frames} frames, {info.width}x{info.height}, {float(info.fps):.4g} fps"]
    if summary.processed:
        parts.append(f"{summary.processed} colorized in {summary.seconds:.0f} s "
                     f"({summary.fps:.2f} frames/s)")  # fmt: skip
    if summary.resumed_chunks:
        parts.append(f"resumed after {summary.resumed_chunks} finished chunk(s)")
    if summary.cuts:
        parts.append(f"scene cuts at frames {', '.join(map(str, summary.cuts[:10]))}"
                     + (" ..." if len(summary.cuts) > 10 else ""))  # fmt: skip
    print(f"segcolor: wrote {summary.output} ({'; '.join(parts)})", file=sys.stderr)
    return 0
