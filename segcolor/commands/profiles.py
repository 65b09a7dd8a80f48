"""``segcolor profiles fit DATA... --k K -o profiles.yaml`` and ``segcolor profiles show FILE``.

``fit`` describes every photo by its MPEG-7 Dominant Color Descriptor, clusters the descriptors
into K color profiles and writes the profiles file plus one contact sheet per profile;
``show`` prints a profiles file's summary.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from segcolor.errors import SegcolorError
from segcolor.io.images import find_images
from segcolor.paths import resolve_data_path, shared_dir
from segcolor.splits import is_held_out

if TYPE_CHECKING:
    from segcolor.profiles.store import Profile, ProfileSet

HELP = "color profiles: fit them to photos (dominant colors + K-means), or show a profiles file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = sub.add_parser(
        "fit",
        help="cluster photos into K color profiles; writes the profiles YAML and contact sheets",
        description="Cluster photos into K color profiles by their dominant colors.",
    )
    fit.add_argument("data", nargs="+", metavar="DATA", help="photo folders (searched recursively)")
    fit.add_argument("--k", type=int, default=4, metavar="K", help="number of profiles (4)")
    fit.add_argument(
        "-o",
        "--output",
        default="profiles.yaml",
        metavar="YAML",
        help="profiles file to write (profiles.yaml)",
    )
    fit.add_argument("--seed", type=int, default=0, metavar="S", help="K-means seed (0)")
    fit.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="photos held out by the training split (by file name, as `segcolor train` does) are "
        "assigned to a profile but not fitted (0.1, the experts' split; 0 fits all)",
    )
    fit.add_argument(
        "--sheets",
        metavar="DIR",
        help="folder for the contact sheets (default: <output stem>_sheets beside the YAML)",
    )
    fit.add_argument(
        "--per-sheet", type=int, default=48, metavar="N", help="photos per contact sheet (48)"
    )
    fit.add_argument(
        "--workers", type=int, default=2, metavar="W", help="image-decoding processes (2)"
    )
    show = sub.add_parser(
        "show",
        help="summarise a profiles file",
        description="Summarise a profiles file: names, sizes, colors.",
    )
    show.add_argument("file", metavar="FILE", help="profiles YAML")
    for command in (fit, show):
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )


def run(args: argparse.Namespace) -> int:
    if args.action == "fit":
        return _fit(args)
    return _show(args)


def _root_label(root: Path, given: str) -> str:
    """How the data folder is written in the file: relative to the shared directory when it
    is inside it (no machine paths in tracked files), else as the user gave it."""
    base = shared_dir()
    if base is not None:
        try:
            return root.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return given


def _fit(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise SegcolorError(f"--k must be at least 1, got {args.k}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise SegcolorError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.per_sheet < 1:
        raise SegcolorError(f"--per-sheet must be at least 1, got {args.per_sheet}")
    out = Path(args.output)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise SegcolorError("the profiles file must end in .yaml", out)
    if out.is_dir():
        raise SegcolorError("the profiles file is a folder here; choose another -o", out)
    sheets = Path(args.sheets) if args.sheets else out.parent / f"{out.stem}_sheets"
    for folder in (out.parent, sheets):  # checked now, not after a fit of many minutes
        _check_folder(folder)
    # see segcolor.commands.train: spinning OpenMP threads collapse on a shared CPU
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from segcolor.profiles.fit import fit_profiles
    from segcolor.profiles.sheets import render_sheet, write_sheet

    roots = [resolve_data_path(d) for d in args.data]
    for root in roots:
        if not root.is_dir():
            raise SegcolorError("not a folder of photos", root)
        if sheets.resolve().is_relative_to(root.resolve()):
            # the sheets would be fitted as photos next time, and could replace one
            raise SegcolorError(
                f"the contact sheets would land among the photos of {root}; choose another "
                "--sheets (or -o)",
                sheets,
            )
    files = sorted({f for root in roots for f in find_images(root)})
    if not files:
        raise SegcolorError(f"no photos found in {', '.join(args.data)}")
    common = Path(os.path.commonpath([r.resolve() for r in roots]))
    label = _root_label(common, args.data[0] if len(roots) == 1 else str(common))
    result = fit_profiles(
        [f.resolve() for f in files],
        args.k,
        root=common,
        root_label=label,
        seed=args.seed,
        held_out=(lambda p: is_held_out(p, args.val_fraction)) if args.val_fraction else None,
        workers=args.workers,
        settings={"val_fraction": args.val_fraction},
    )
    profiles = result.profiles
    for profile in profiles.profiles:
        profile.sheet = Path(os.path.relpath(_sheet(sheets, profile), out.parent)).as_posix()
    profiles.save(out)  # the fit first: a sheet that cannot be written must not lose it
    print(summary(profiles))
    for profile in profiles.profiles:
        members = [common / m for m in profile.members[: args.per_sheet]]
        write_sheet(_sheet(sheets, profile), render_sheet(profile, members))
    print(
        f"segcolor: wrote {out} and {len(profiles.profiles)} contact sheets in {sheets} "
        f"({result.seconds:.0f} s)",
        file=sys.stderr,
    )
    return 0


def _check_folder(folder: Path) -> None:
    """A folder to write into must be one, or be creatable: no file in its place or above."""
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                raise SegcolorError("a folder is needed here, but this is a file", path)
            return


def _sheet(folder: Path, profile: Profile) -> Path:
    """Where a profile's contact sheet goes (recorded in the YAML before it is drawn)."""
    return folder / f"{profile.name}.png"


def summary(profiles: ProfileSet) -> str:
    """A few lines: where the photos came from, then one line per profile with its colors."""
    fit = profiles.settings.get("fit", {})
    head = (
        f"{profiles.path}: {len(profiles.profiles)} profiles of {fit.get('photos', '?')} photos "
        f"in {profiles.root} (seed {profiles.settings.get('seed', '?')}, "
        f"{fit.get('held_out', 0)} held out of the fit)"
    )
    width = max(len(p.name) for p in profiles.profiles)
    lines = [head, f"  {'profile':<{width}}  photos  held-out  dominant colors (share)"]
    for p in profiles.profiles:
        colors = "  ".join(
            f"{h} {share:.0%}"
            for h, share in zip(p.centroid.hex(), p.centroid.percents, strict=True)
        )
        lines.append(f"  {p.name:<{width}}  {p.size:>6}  {p.held_out:>8}  {colors}")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from segcolor.profiles.store import load_profiles

    print(summary(load_profiles(args.file)))
    return 0
