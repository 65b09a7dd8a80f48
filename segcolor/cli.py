"""The ``segcolor`` command: one sub-command per module in ``segcolor/commands``.

User mistakes (``SegcolorError``) print one line and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from segcolor import __version__
from segcolor.errors import SegcolorError

# name -> module in segcolor.commands; each defines HELP, add_arguments(parser), run(args) -> int
COMMANDS = (
    "colorize",
    "manifest",
    "inspect",
    "serve",
    "train",
    "evaluate",
    "export",
    "profiles",
    "video",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segcolor",
        description="Colorize black-and-white photos by routing each region to a specialist.",
    )
    parser.add_argument("--version", action="version", version=f"segcolor {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"segcolor.commands.{name.replace('-', '_')}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        command.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks for errors",
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return int(args._run(args) or 0)
    except SegcolorError as err:
        if args.debug:
            traceback.print_exc()
        print(f"segcolor: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("segcolor: interrupted (finished outputs and checkpoints are kept)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `segcolor manifest OUT | head`: the reader left; say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail
        return 1
    except OSError as err:
        if err.filename is None:  # not about a path the user gave: a bug, keep the traceback
            raise
        if args.debug:
            traceback.print_exc()
        # an output folder that cannot be made, a read-only place: the user's to fix
        print(f"segcolor: error: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
