"""``segcolor inspect PHOTO -o DIR``: see how a photo is routed, expert by expert.

Writes routing.json, overlay.png, expert_<category>.png, weights_<category>.png, colorized.png
and a self-contained index.html (open it in any browser).

Given a video (a file, or a folder of frames) it writes the routing timeline instead:
timeline.json (category shares per frame, scene cuts) and timeline.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from segcolor.commands import add_pipeline_arguments, add_style_argument, check_pipeline_options
from segcolor.errors import SegcolorError
from segcolor.io.atomic import refuse_overwriting_inputs

if TYPE_CHECKING:
    from segcolor.pipeline import Pipeline

HELP = "show which expert colors which region of a photo (writes an HTML report)"
# what write_inspection / write_timeline write (expert_*/weights_* take a category name)
REPORT_FILES = ("routing.json", "overlay.png", "colorized.png", "index.html")
PER_EXPERT_FILES = ("expert_*.png", "weights_*.png")
TIMELINE_FILES = ("timeline.json", "timeline.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "photo",
        metavar="PHOTO",
        help="image file; or a video file / folder of frames for its routing timeline",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="folder for the report (created; existing report files replaced)",
    )
    parser.add_argument(
        "--routing",
        metavar="EDITS",
        help="routing edits (JSON, as `segcolor serve` saves and `colorize --routing` replays): "
        "the report shows the photo with them, its color hints drawn and listed",
    )
    add_pipeline_arguments(parser)
    add_style_argument(parser)


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise SegcolorError("the report needs a folder, but this is a file", out)
    _check_input_kept(Path(args.photo), out)
    check_pipeline_options(args)
    from segcolor.inspection import write_inspection
    from segcolor.pipeline import Pipeline  # heavy imports only when there is work to do
    from segcolor.router.edits import RoutingEdits

    edits = RoutingEdits.load(args.routing) if args.routing else None

    pipeline = Pipeline.load(
        args.pipeline,
        device=args.device,
        working_size=args.working_size,
        require_router=True,
        vividness=args.vividness,
        style=args.style,
    )
    if _is_video(Path(args.photo)):
        if edits is not None:
            raise SegcolorError("--routing edits are for one photo, not a video's timeline")
        return _inspect_video(pipeline, Path(args.photo), out)
    files = write_inspection(pipeline, args.photo, out, edits=edits)
    summary = _read_summary(files["routing"])
    print(f"{Path(args.photo).name}: {summary}")
    print(f"segcolor: report in {files['index']}", file=sys.stderr)
    return 0


def _check_input_kept(photo: Path, out: Path) -> None:
    """Refuse, before any work, a report that would replace its own input (as ``colorize``
    does): the user's photo is worth more than a report about it."""
    source = photo.resolve()
    names = [*REPORT_FILES, *TIMELINE_FILES]
    if out.is_dir():  # an existing expert_*.png can only be an input if it is already there
        names += [f.name for pattern in PER_EXPERT_FILES for f in out.glob(pattern)]
    refuse_overwriting_inputs([out / name for name in names], [source])
    if photo.is_dir() and out.resolve() == source:
        raise SegcolorError(
            "the timeline would be written among the frames it reads; choose another -o", out
        )


def _is_video(path: Path) -> bool:
    """A folder of frames, a video file, or an animated GIF."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"):
        return True
    if suffix == ".gif" and path.is_file():
        try:
            with Image.open(path) as image:
                return getattr(image, "n_frames", 1) > 1
        except OSError:
            return False
    return False


def _inspect_video(pipeline: Pipeline, video: Path, out: Path) -> int:
    """The routing timeline of a video (segmenter and router only, smoothed as in video)."""
    from segcolor.video.timeline import build_timeline, write_timeline

    timeline = build_timeline(pipeline, video)
    files = write_timeline(timeline, out)
    means = timeline.to_dict()["mean_share_percent"]
    shares = ", ".join(f"{name} {share:.0f}%" for name, share in means.items() if share > 0)
    print(f"{video.name}: {len(timeline.shares)} frames, {len(timeline.cuts)} cut(s); {shares}")
    print(f"segcolor: timeline in {files['png']} and {files['json']}", file=sys.stderr)
    return 0


def _read_summary(routing_json: Path) -> str:
    """The one-line summary stored in routing.json."""
    return json.loads(routing_json.read_text(encoding="utf-8"))["summary"] or "nothing found"
