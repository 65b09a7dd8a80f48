"""``segcolor train``'s entry point: a config's task (``segcolor.train.tasks``) run in its
folder by the training loop (``segcolor.train.loop``), fresh or resumed.

Without ``--resume`` a folder that already holds a checkpoint is refused; ``--resume`` continues
from the last completed epoch with the run's own saved config (flags given now override it, e.g.
``--epochs`` to train longer), and starts afresh, saying so, when there is no checkpoint yet.
A ``.lock`` keeps a second run from writing into the same folder at the same time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from segcolor.errors import ConfigError
from segcolor.train import distributed, tasks
from segcolor.train.loop import Record, fit
from segcolor.train.run import (
    CHECKPOINT,
    exclusive,
    refuse_existing_run,
    sigterm_as_interrupt,
    training_device,
)

log = logging.getLogger(__name__)


def main(
    config_path: str | Path, overrides: dict[str, Any] | None = None, resume: bool = False
) -> list[Record]:
    """Train what ``config_path`` describes; returns the per-epoch records."""
    config_path = Path(config_path)
    overrides = overrides or {}
    info = distributed.from_env()
    task = tasks.create(config_path, overrides, info)
    task.prepare()  # a missing or empty data folder fails here, before anything is written
    out = task.out
    with exclusive(out, info):
        state = None
        if resume and (out / CHECKPOINT).exists():
            state = task.read_checkpoint(out / CHECKPOINT)
            cfg, ignored = task.resumed_config(state, overrides, config_path)
            changed = cfg != task.cfg
            if changed:
                task = type(task)(cfg, info)
            if state["epoch"] >= task.epochs:
                if info.is_main:
                    log.info(
                        "%s: the run is already complete (%d/%d epochs); pass --epochs N to "
                        "train longer",
                        out,
                        state["epoch"],
                        task.epochs,
                    )
                return state["history"]
            if changed:
                task.prepare()  # the saved config's data
            if ignored and info.is_main:
                log.warning(
                    "note: resuming with the run's saved config; ignoring the changes to %s in %s",
                    ", ".join(ignored),
                    config_path,
                )
        elif resume:
            if info.is_main:
                log.info("--resume: no checkpoint in %s yet; starting from epoch 1", out)
        else:
            refuse_existing_run(out)
        device = training_device(task.device_name, info)
        distributed.init(info, device)
        try:
            with sigterm_as_interrupt():
                return fit(task, state, device)
        finally:
            distributed.cleanup(info)


def check_configs(configs: list[str], overrides: dict[str, Any], resume: bool) -> None:
    """Parse and validate every config, and see that no two share an output folder, before the
    first one trains: a mistake in the last of a recipe should not cost the hours of the others.
    """
    outs: dict[Path, str] = {}
    for config in configs:
        out = Path(tasks.load(config, overrides)[1]["out"])
        other = outs.get(out.resolve())
        if other is not None:
            twice = Path(other).resolve() == Path(config).resolve()
            problem = "given twice" if twice else f"writes to {out}, as {other} does"
            raise ConfigError(f"{problem}; each config needs its own output folder", config)
        outs[out.resolve()] = config
        if not resume:
            refuse_existing_run(out)
