"""``segcolor serve``: the routing studio, a local web app (needs ``pip install -e ".[studio]"``).

Opens on http://127.0.0.1:8000 by default; ``--host 0.0.0.0`` serves other machines too (the
studio has no accounts: only do that on a network you trust).
"""

from __future__ import annotations

import argparse
import sys

from segcolor.commands import add_pipeline_arguments, add_style_argument, check_pipeline_options
from segcolor.errors import SegcolorError
from segcolor.io.images import DEFAULT_MAX_PIXELS

HELP = "open the routing studio: a local web app to colorize photos and correct their routing"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_pipeline_arguments(parser)
    add_style_argument(parser)
    parser.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest upload in MB (default 50)"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="largest image in pixels (default: the CLI's decompression-bomb limit, 100 MP)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="photos processed at once (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise SegcolorError(f"--port must be 1-65535, got {args.port}")
    for flag, value in (
        ("--workers", args.workers),
        ("--max-upload-mb", args.max_upload_mb),
        ("--max-pixels", args.max_pixels),
    ):
        if value is not None and value <= 0:
            raise SegcolorError(f"{flag} must be positive, got {value}")
    check_pipeline_options(args)
    try:
        import uvicorn

        from segcolor.studio.app import StudioSettings, create_app
    except ImportError as err:
        raise SegcolorError(
            f'the studio needs its extra ({err.name} is missing): pip install -e ".[studio]"'
        ) from None
    from segcolor.pipeline import Pipeline

    pipeline = Pipeline.load(
        args.pipeline,
        device=args.device,
        working_size=args.working_size,
        require_router=True,
        vividness=args.vividness,
        style=args.style,
    )
    settings = StudioSettings(
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
        max_pixels=DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels,
        workers=args.workers,
    )
    app = create_app(pipeline, settings)
    print(f"segcolor: routing studio on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
