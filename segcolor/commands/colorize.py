"""``segcolor colorize INPUT... -o OUT``: files or folders in, colorized images out.

By default the shipped pipeline routes each region to its category's shipped expert (without the
segmenter's weights: the shipped general model, with a warning). ``--pipeline YAML`` routes to
your own experts; ``--expert CKPT`` colors every pixel with one expert. ``--show-routing``
prints what went where, one line per image.

A folder output is a resumable batch: ``OUT/segcolor-manifest.jsonl`` records every photo (see
``segcolor.batch.manifest``); a rerun of the same command skips photos done from unchanged
sources and retries failed ones (``--overwrite`` redoes all). ``--jobs N`` colorizes in N worker
processes, ``--engine ray`` on a Ray cluster (``segcolor.batch.ray_engine``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from segcolor.batch.manifest import (
    Manifest,
    end_row,
    last_settings,
    latest_photos,
    start_row,
    unchanged,
)
from segcolor.commands import add_style_argument, add_vividness_argument, check_pipeline_options
from segcolor.errors import SegcolorError
from segcolor.io.atomic import refuse_overwriting_inputs
from segcolor.io.images import IMAGE_EXTENSIONS, OUTPUT_FORMATS, iter_inputs

if TYPE_CHECKING:
    from segcolor.batch.worker import Options

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
        "every input (a batch rerun with other edits needs --overwrite)",
    )
    parser.add_argument("--device", default="auto", help="cuda, mps, cpu or auto (default)")
    parser.add_argument(
        "--working-size",
        type=int,
        metavar="PX",
        help="short side at which color is predicted (default 256, or the pipeline YAML's "
        "working_size)",
    )
    add_vividness_argument(parser)
    add_style_argument(parser)
    parser.add_argument(
        "--format",
        choices=sorted({e.lstrip(".") for e in OUTPUT_FORMATS}),
        help="output format for folder outputs (default: keep the input's)",
    )
    batch = parser.add_argument_group("batches (a folder output)")
    batch.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="worker processes, each with its own model and cores // N threads (default 1); "
        "with --engine ray, the number of actors",
    )
    batch.add_argument(
        "--threads",
        type=int,
        metavar="T",
        help="torch threads per worker (default for a folder: 1, so outputs are the same bytes "
        "whatever --jobs and the machine's core count: on CPU more threads change a few "
        "pixels' last bit; give the cores to --jobs. Default for one file: all cores)",
    )
    batch.add_argument(
        "--overwrite",
        action="store_true",
        help="colorize every input again, even those the manifest lists as done",
    )
    batch.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local processes (default) or Ray Data actors (pip install 'segcolor[ray]')",
    )
    batch.add_argument(
        "--address",
        metavar="ADDR",
        help="with --engine ray: the cluster to join (e.g. auto, or ray://head:10001); "
        "default: a local Ray started for this run",
    )


def plan_outputs(
    inputs: list[str], output: str, fmt: str | None
) -> tuple[list[tuple[Path, Path, Path]], Path | None]:
    """Map every input image to its output path; refuse anything that would overwrite an input.
    Returns (source, path relative to its input root, output) triples and the output folder
    (None for one file in, one file out)."""
    for item in inputs:  # a typo is reported before any photo is colorized, not as a failed row
        if not Path(item).exists():
            raise SegcolorError("no such file or folder", item)
    pairs = iter_inputs(inputs)
    if not pairs:
        raise SegcolorError(f"no images found in {', '.join(inputs)}")
    out = Path(output)
    one_file = len(pairs) == 1 and not Path(inputs[0]).is_dir()
    names_a_file = bool(out.suffix) and not out.is_dir()
    if names_a_file and out.suffix.lower() not in OUTPUT_FORMATS:
        if one_file or out.suffix.lower() in IMAGE_EXTENSIONS:
            raise SegcolorError(
                f"unsupported output extension {out.suffix!r} (use one of "
                f"{', '.join(sorted(OUTPUT_FORMATS))}, or an existing folder)",
                out,
            )
        names_a_file = False  # a folder with a dot in its name ("scans.1952")
    if names_a_file and not one_file:
        raise SegcolorError("several images need an output folder, not an image file name", out)
    single_file = one_file and names_a_file
    if single_file:
        plan = [(pairs[0][0], pairs[0][1], out)]
    else:
        if out.exists() and not out.is_dir():
            raise SegcolorError("exists and is not a folder (outputs go into a folder)", out)
        plan = []
        for src, rel in pairs:
            suffix = f".{fmt}" if fmt else rel.suffix.lower()
            if suffix not in OUTPUT_FORMATS:
                suffix = ".png"
            plan.append((src, rel, out / rel.with_suffix(suffix)))
    refuse_overwriting_inputs([dst for _, _, dst in plan], [src for src, _, _ in plan])
    seen: dict[Path, Path] = {}
    for src, _, dst in plan:
        if dst in seen:
            raise SegcolorError(f"both {seen[dst]} and {src} would be written here", dst)
        seen[dst] = src
    return plan, None if single_file else out


def run(args: argparse.Namespace) -> int:
    if args.show_routing and args.expert:
        raise SegcolorError("--show-routing needs a routed pipeline (one --expert has no routing)")
    check_pipeline_options(args)
    if args.routing and args.expert:
        raise SegcolorError("--routing needs a routed pipeline (one --expert has no routing)")
    if args.routing:
        from segcolor.router.edits import RoutingEdits

        RoutingEdits.load(args.routing)  # a malformed file fails once, before any photo
    for flag, value in (("--jobs", args.jobs), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise SegcolorError(f"{flag} must be at least 1, got {value}")
    if args.address and args.engine != "ray":
        raise SegcolorError("--address needs --engine ray")
    plan, folder = plan_outputs(args.inputs, args.output, args.format)
    from segcolor.batch.worker import Options, task  # loads the pipeline: torch

    options = Options(
        pipeline=args.pipeline,
        expert=args.expert,
        device=args.device,
        working_size=args.working_size,
        vividness=args.vividness,
        style=args.style,
        # a folder: 1 thread per worker unless told (the same bytes whatever --jobs); one file:
        # torch's default, all cores (0)
        threads=args.threads or (0 if folder is None else 1),
        debug=bool(getattr(args, "debug", False)),
        routing=args.routing,
    )
    if folder is None:
        src, rel, dst = plan[0]
        tasks = [task(0, src, rel, dst.parent, dst)]
        return Batch(args, options, tasks, total=1).run()
    manifest = Manifest.of(folder)
    manifest.open()  # also the folder's lock: one batch writes into it at a time
    try:
        rows = manifest.rows()
        latest = {} if args.overwrite else latest_photos(rows)
        previous = last_settings(rows)
        if latest and previous is not None and previous != settings_of(options):
            changed = ", ".join(
                f"{key} {previous.get(key)} -> {value}"
                for key, value in settings_of(options).items()
                if previous.get(key) != value
            )
            raise SegcolorError(
                f"holds photos colorized with other settings ({changed}); pass --overwrite to "
                "redo them, or choose another -o",
                folder,
            )
        tasks = []
        for index, (src, rel, dst) in enumerate(plan):
            row = latest.get(dst.relative_to(folder).as_posix())
            done = row is not None and row["status"] == "done"
            if done and dst.is_file() and unchanged(row, src):
                continue
            tasks.append(task(index, src, rel, folder, dst))
        remove_temporaries(tasks)
        return Batch(args, options, tasks, total=len(plan), manifest=manifest).run()
    finally:
        manifest.close()


def settings_of(options: Options) -> dict[str, object]:
    """What decides a batch's colors, as recorded in its manifest: a rerun into the same folder
    with other models, working size, routing edits, vividness or style would mix two kinds
    of output (a manifest from before vividness or style existed reads None: the default)."""

    def where(path: str | None) -> str | None:
        return None if path is None else str(Path(path).resolve())

    return {
        "pipeline": where(options.pipeline) if options.expert is None else None,
        "expert": where(options.expert),
        "working_size": options.working_size,
        "routing": where(options.routing),
        "vividness": options.vividness,
        "style": options.style,
    }


def remove_temporaries(tasks: list[dict]) -> None:
    """Temporary files a killed run left beside the outputs it was writing."""
    names: dict[Path, set[str]] = {}
    for item in tasks:
        dest = Path(item["dest"])
        names.setdefault(dest.parent, set()).add(dest.name)
    for folder, wanted in names.items():
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                if tmp.name[1:].rsplit(".", 2)[0] in wanted:
                    tmp.unlink(missing_ok=True)


class Batch:
    """Runs the tasks on the chosen engine; reports and records each photo as it finishes."""

    def __init__(
        self,
        args: argparse.Namespace,
        options: Options,
        tasks: list[dict],
        total: int,
        manifest: Manifest | None = None,
    ) -> None:
        self.args, self.options, self.tasks, self.total = args, options, tasks, total
        self.manifest = manifest
        self.sources = {item["output"]: item["source"] for item in tasks}
        self.done = self.failed = 0

    def on_row(self, row: dict) -> None:
        source = self.sources.get(row["output"], row["input"])
        if self.manifest is not None:
            self.manifest.append(row)
        if row["status"] == "done":
            self.done += 1
            routing = row.get("routing")
            if self.args.show_routing and routing:
                tqdm.write(f"{source}: {routing['summary']}", file=sys.stdout)
        else:
            self.failed += 1
            tqdm.write(f"segcolor: error: {source}: {row['error']}", file=sys.stderr)
        self.progress.update()

    def run(self) -> int:
        skipped = self.total - len(self.tasks)
        if skipped:
            print(
                f"segcolor: {skipped} of {self.total} images already done (per "
                f"{self.manifest.path}); colorizing {len(self.tasks)}",
                file=sys.stderr,
            )
        if self.manifest is not None:
            self.manifest.append(
                start_row(
                    self.args.engine,
                    self.args.jobs,
                    self.total,
                    len(self.tasks),
                    settings_of(self.options),
                )
            )
        self.progress = tqdm(
            total=len(self.tasks),
            desc="colorize",
            unit="img",
            disable=len(self.tasks) < 2,
            file=sys.stderr,
        )
        with self.progress:
            if self.args.engine == "ray":
                from segcolor.batch.ray_engine import run_ray

                run_ray(self.tasks, self.options, self.args.jobs, self.args.address, self.on_row)
            else:
                from segcolor.batch.local import run_local

                run_local(self.tasks, self.options, self.args.jobs, self.on_row)
        if self.manifest is not None:
            self.manifest.append(end_row(self.done, self.failed, skipped))
            self.manifest.compact()
        done = self.done + skipped
        where = f"; see {self.manifest.path}" if self.manifest is not None else ""
        if self.failed:
            print(
                f"segcolor: colorized {done} of {self.total} images; {self.failed} failed{where}",
                file=sys.stderr,
            )
            return 1
        if self.total > 1:
            print(f"segcolor: colorized {done} images into {self.args.output}", file=sys.stderr)
        return 0
