"""The local engine: the batch in this process (``--jobs 1``) or in N worker processes.

Workers are started fresh (``spawn``: no inherited threads, locks or CUDA state), each loads its
own pipeline with ``Options.threads`` torch threads, and pulls tasks from a bounded queue, so memory
is N pipelines plus a few photos in flight whatever the batch's length. Only this process writes
the manifest. A worker that dies (killed, out of memory) costs the photos it held, which are
recorded as errors (a rerun retries them); the others go on. Workers die with this process.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import torch

from segcolor.batch.worker import Colorizer, Options
from segcolor.errors import SegcolorError

Row = dict[str, Any]


def run_local(tasks: list[Row], options: Options, jobs: int, on_row: Callable[[Row], None]) -> None:
    """Colorize ``tasks``; ``on_row`` gets each photo's row as it finishes (any order)."""
    if not tasks:
        return
    if jobs <= 1:
        threads = torch.get_num_threads()
        try:
            for row in Colorizer(options).stream(tasks):
                on_row(row)
        finally:
            torch.set_num_threads(threads)  # this process's setting, as it was
        return
    _run_workers(tasks, options, min(jobs, len(tasks)), on_row)


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies (e.g. killed with kill -9)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(options: Options, tasks: Any, results: Any, parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: no temporary files left
    try:
        colorizer = Colorizer(options)
    except SegcolorError as err:
        results.put(("fatal", str(err)))
        return
    results.put(("ready", os.getpid()))

    def items():
        while True:
            try:
                item = tasks.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if item is None:
                return
            yield item

    for row in colorizer.stream(items()):
        results.put(("row", row))
    results.put(("exit", os.getpid()))


def _run_workers(tasks: list[Row], options: Options, jobs: int, on_row: Callable[[Row], None]):
    ctx = mp.get_context("spawn")
    task_queue = ctx.Queue(maxsize=2 * jobs)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker_main,
            args=(options, task_queue, results, os.getpid()),
            daemon=True,
            name=f"segcolor-worker-{i}",
        )
        for i in range(jobs)
    ]
    for worker in workers:
        worker.start()
    sent: dict[str, Row] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def feed() -> None:
        for item in [*tasks, *[None] * jobs]:
            while not stop.is_set():
                try:
                    task_queue.put(item, timeout=0.5)
                except queue.Full:
                    continue
                if item is not None:
                    with lock:
                        sent[item["output"]] = item
                break

    feeder = threading.Thread(target=feed, name="segcolor-feeder", daemon=True)
    feeder.start()
    finished: set[int] = set()
    received: set[str] = set()
    try:
        while True:
            try:
                kind, value = results.get(timeout=0.5)
            except queue.Empty:
                if all(not w.is_alive() for w in workers):
                    break
                continue
            if kind == "row":
                received.add(value["output"])
                on_row(value)
            elif kind == "exit":
                finished.add(value)
                if len(finished) == jobs:
                    break
            elif kind == "fatal":
                raise SegcolorError(value)
        dead = [w for w in workers if w.pid not in finished]
        for worker in dead:
            worker.join(timeout=5)
        with lock:
            lost = [item for key, item in sent.items() if key not in received]
        codes = sorted({str(w.exitcode) for w in dead})
        for item in lost:
            on_row(
                {
                    "input": item["input"],
                    "output": item["output"],
                    "status": "error",
                    "error": f"the worker process died while on it (exit code {', '.join(codes)})",
                }
            )
        if len(dead) == jobs and feeder.is_alive():
            raise SegcolorError(
                f"all {jobs} worker processes died (exit codes {', '.join(codes)}); "
                "rerun the same command to continue"
            )
    finally:
        stop.set()
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
        feeder.join(timeout=2)
        task_queue.cancel_join_thread()
        results.cancel_join_thread()
