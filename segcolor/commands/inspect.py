"""``segcolor inspect PHOTO -o DIR``: see how a photo is routed, expert by expert.

Writes routing.json, overlay.png, expert_<category>.png, weights_<category>.png, colorized.png
and a self-contained index.html (open it in any browser).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segcolor.errors import SegcolorError

HELP = "show which expert colors which region of a photo (writes an HTML report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photo", metavar="PHOTO", help="image file")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="folder for the report (created; existing report files replaced)",
    )
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


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise SegcolorError("the report needs a folder, but this is a file", out)
    if args.working_size is not None and args.working_size < 16:
        raise SegcolorError(f"--working-size must be at least 16, got {args.working_size}")
    from segcolor.pipeline import Pipeline  # heavy imports only when there is work to do
    from segcolor.report import write_inspection

    if args.pipeline:
        pipeline = Pipeline.from_config(
            args.pipeline, device=args.device, working_size=args.working_size
        )
    else:
        pipeline = Pipeline.default(device=args.device)
    files = write_inspection(pipeline, args.photo, out)
    summary = _read_summary(files["routing"])
    print(f"{Path(args.photo).name}: {summary}")
    print(f"segcolor: report in {files['index']}", file=sys.stderr)
    return 0


def _read_summary(routing_json: Path) -> str:
    """The one-line summary stored in routing.json."""
    import json

    return json.loads(routing_json.read_text(encoding="utf-8"))["summary"] or "nothing found"
