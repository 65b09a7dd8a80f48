"""The Ray engine: the same batch on Ray Data, for more than one machine.

The file list becomes a Ray dataset; ``map_batches`` with an ``ActorPoolStrategy`` of ``--jobs``
actors, each holding one ``Colorizer`` (one ``Pipeline``), decodes, colorizes and writes the
outputs; the rows stream back to this process, which alone writes the manifest. So the resume
rule, the manifest rows and the output bytes are those of the local engine (each actor computes
with ``Options.threads`` torch threads, like a local worker).

On a cluster every node must see the inputs and the output folder at the same paths (a shared
file system) and have segcolor installed; ``--address auto`` joins the cluster that ``ray
start`` made. Without ``--address`` a local Ray is started for the run and stopped after it.
A GPU per actor is asked for when ``--device`` is cuda.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from segcolor.batch.worker import Colorizer, Options
from segcolor.errors import SegcolorError

Row = dict[str, Any]


class RayColorizer:
    """A Ray Data actor: one pipeline, rows in (one JSON task each), rows out (JSON)."""

    options = Options()  # set on the subclass ``run_ray`` ships to the cluster

    def __init__(self) -> None:
        self.colorizer, self.fatal = None, None
        try:
            self.colorizer = Colorizer(self.options)
        except SegcolorError as err:  # e.g. a missing checkpoint: one line for the driver
            self.fatal = str(err)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        if self.colorizer is None:
            return {"row": [json.dumps({"fatal": self.fatal})] * len(batch["task"])}
        tasks = [json.loads(text) for text in batch["task"]]
        return {"row": [json.dumps(row) for row in self.colorizer.stream(tasks)]}


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SegcolorError(
            "--engine ray needs Ray Data, which is not installed: pip install 'segcolor[ray]' "
            "(or pip install -e '.[ray]' in a checkout)"
        ) from None
    return ray


def run_ray(
    tasks: list[Row],
    options: Options,
    jobs: int,
    address: str | None,
    on_row: Callable[[Row], None],
) -> None:
    """Colorize ``tasks`` on ``jobs`` Ray actors; ``on_row`` gets each row as it arrives."""
    if not tasks:
        return
    ray = import_ray()
    logging.getLogger("ray").setLevel(logging.WARNING)  # the CLI logs INFO; Ray's is noise here
    started = not ray.is_initialized()
    # ray.init installs a SIGTERM handler (sys.exit(15)) and leaves it behind after shutdown;
    # a caller's own handler (a training run's checkpoint-on-SIGTERM, pytest's) must survive us.
    sigterm = signal.getsignal(signal.SIGTERM)
    if started:
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address:
            init["address"] = address
        else:  # a local Ray with room for the actors asked for
            init["num_cpus"] = max(jobs * options.threads, 1)
        try:
            ray.init(**init, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = address or "local"
            raise SegcolorError(f"cannot start or join Ray at {where}: {err}") from None
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the batch has its own
        context.print_on_execution_start = False
        gpu = str(options.device).startswith("cuda")
        dataset = ray.data.from_items([{"task": json.dumps(item)} for item in tasks])
        actor = type("SegcolorColorizer", (RayColorizer,), {"options": options})
        rows = dataset.map_batches(
            actor,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(jobs, len(tasks))),
            num_cpus=options.threads,
            num_gpus=1 if gpu else 0,
        )
        # A fatal row (no worker could load the models) is raised only once the stream has
        # ended by itself: abandoned mid-stream, Ray Data's block-fetching threads outlive the
        # ray.shutdown() below, touch the shut-down core worker, and Ray's C++ core then ends
        # the whole process with status 1 and no output ("The core worker has already been
        # shutdown ... The process will exit"): the silent CI deaths of issue 25. Fatal rows
        # come back at once (the actors have no model to run), so draining costs nothing.
        fatal = None
        for record in rows.iter_rows():
            row = json.loads(record["row"])
            if "fatal" in row:
                fatal = fatal or row["fatal"]
            else:  # finished work is recorded even after a fatal row: a rerun skips it
                on_row(row)
        if fatal is not None:
            raise SegcolorError(fatal)
    finally:
        if started:
            ray.shutdown()
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, sigterm)
