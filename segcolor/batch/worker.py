"""One process's share of a batch: decode, colorize, encode, and say what happened.

A ``Colorizer`` holds one ``Pipeline`` (one model copy) and turns tasks (plain dicts, so they
cross process and Ray boundaries) into manifest rows. ``stream`` overlaps the work: the next
photo is decoded and the previous one encoded in threads while the current one is colorized
(Pillow and torch release the GIL), so a single process keeps a core busy with inference.
Every photo's result is computed by the same code on one photo at a time, so the outputs do
not depend on how many processes run or in which order.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segcolor.batch.manifest import file_identity, sha256_of
from segcolor.errors import SegcolorError
from segcolor.io.images import load_image, save_image
from segcolor.pipeline import Pipeline
from segcolor.router.edits import RoutingEdits


@dataclass(frozen=True)
class Options:
    """What every worker needs to build the same pipeline (picklable)."""

    pipeline: str | None = None
    expert: str | None = None
    device: str = "auto"
    working_size: int | None = None
    vividness: float | None = None  # None: the pipeline YAML's
    style: str | None = None  # faithful or vivid; None: the pipeline YAML's
    threads: int = 1  # torch threads per process (0: torch's default): see Colorizer
    debug: bool = False
    routing: str | None = None  # routing edits (JSON file) applied to every photo


def task(index: int, source: Path, rel_input: Path, out_root: Path, dest: Path) -> dict[str, Any]:
    return {
        "index": index,
        "source": str(source),
        "input": rel_input.as_posix(),
        "output": dest.relative_to(out_root).as_posix(),
        "dest": str(dest),
    }


def reason_of(err: BaseException, source: str | Path | None = None) -> str:
    """The one-line reason, without the file name the row already has (``source``); an error
    about another file (the output) keeps that file's name."""
    if isinstance(err, SegcolorError):
        text = str(err)
        about_source = source is None or err.path == Path(source)
        if err.path is not None and about_source and text.startswith(f"{err.path}: "):
            text = text[len(f"{err.path}: ") :]
        return text
    first = str(err).splitlines()[0] if str(err) else ""
    return f"unexpected error ({type(err).__name__}{': ' + first if first else ''})"


def routing_summary(routing: Any) -> dict[str, Any] | None:
    if routing is None:
        return None
    return {
        "shares": {k: round(float(v), 2) for k, v in routing.shares.items() if v > 0},
        "profiles": {name: choice.chosen for name, choice in routing.profiles.items()},
        "summary": routing.summary(),
    }


class Colorizer:
    """A pipeline and the per-photo steps of a batch.

    It sets this process's torch threads to ``options.threads``: on CPU, convolutions give
    results that differ in the last bits with the number of threads (a few pixels in a million
    change by one level), so every process computing with the same count is what makes the
    outputs of ``--jobs 1`` and ``--jobs N``, or of the local and Ray engines, byte for byte
    equal.
    """

    def __init__(self, options: Options) -> None:
        if options.threads > 0:
            torch.set_num_threads(options.threads)
        self.options = options
        self.pipeline = Pipeline.load(
            options.pipeline,
            options.expert,
            device=options.device,
            working_size=options.working_size,
            vividness=options.vividness,
            style=options.style,
        )
        self.edits = None
        if options.routing:
            if not self.pipeline.routed:
                raise SegcolorError("--routing needs a routed pipeline, but no segmenter was found")
            self.edits = RoutingEdits.load(options.routing)
            self.pipeline.router.check_edits(self.edits)  # a wrong name fails once

    # the three steps; each returns the row so far, with "status" set on failure

    def decode(self, item: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        row = {k: item[k] for k in ("input", "output")}
        row["_start"], row["_dest"] = time.perf_counter(), item["dest"]
        row["_source"] = item["source"]
        source = Path(item["source"])
        try:
            row.update(file_identity(source))
            image = load_image(source)
            row["sha256"] = sha256_of(source)  # read from the page cache the decode just filled
            return row, image
        except Exception as err:  # noqa: BLE001 - a batch goes on past any one photo
            return self._failed(row, err), None

    def infer(self, row: dict[str, Any], image: Any) -> tuple[dict[str, Any], Any]:
        if image is None:
            return row, None
        try:
            if self.pipeline.routed:
                rgb, routing = self.pipeline.colorize_routed(image.pixels, np.uint8, self.edits)
            else:
                rgb, routing = self.pipeline.colorize(image.pixels), None
            row["routing"] = routing_summary(routing)
            return row, (rgb, image.alpha_pixels)
        except Exception as err:  # noqa: BLE001
            return self._failed(row, err), None

    def encode(self, row: dict[str, Any], result: Any) -> dict[str, Any]:
        if result is not None:
            try:
                save_image(row["_dest"], result[0], alpha=result[1])
                row["status"] = "done"
            except Exception as err:  # noqa: BLE001
                self._failed(row, err)
        return self._finish(row)

    def _failed(self, row: dict[str, Any], err: BaseException) -> dict[str, Any]:
        if self.options.debug:
            traceback.print_exc(file=sys.stderr)
        row["status"], row["error"] = "error", reason_of(err, row.get("_source"))
        row.pop("routing", None)
        return row

    @staticmethod
    def _finish(row: dict[str, Any]) -> dict[str, Any]:
        row["seconds"] = round(time.perf_counter() - row.pop("_start"), 3)
        row["time"] = round(time.time(), 3)
        row["worker"] = os.getpid()
        row.pop("_dest", None)
        row.pop("_source", None)
        return row

    def run(self, item: dict[str, Any]) -> dict[str, Any]:
        """One photo, start to end."""
        return self.encode(*self.infer(*self.decode(item)))

    def stream(self, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Rows in task order; photo k+1 decodes and photo k-1 encodes while k is colorized."""
        with ThreadPoolExecutor(1, "decode") as decoder, ThreadPoolExecutor(1, "encode") as encoder:
            source = iter(items)
            decoded: deque[Future] = deque()
            encoding: deque[Future] = deque()

            def feed() -> None:
                item = next(source, None)
                if item is not None:
                    decoded.append(decoder.submit(self.decode, item))

            feed()
            while decoded:
                row, image = decoded.popleft().result()
                feed()  # decode the next photo while this one is colorized
                row, result = self.infer(row, image)
                image = None
                while encoding and (encoding[0].done() or len(encoding) > 1):
                    yield encoding.popleft().result()
                encoding.append(encoder.submit(self.encode, row, result))
            while encoding:
                yield encoding.popleft().result()
