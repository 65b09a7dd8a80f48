"""The one training loop: epochs, steps, the learning rate, validation, outputs and checkpoint,
for every task; a ``Task`` says what its model, data, step and files are.

Reproducibility is by construction: the data order and augmentation are functions of
(seed, epoch, index) (``segcolor.train.data``), the learning rate is a function of the position
in the run (``segcolor.train.schedule``), and everything else that changes (weights, optimizer,
AMP scaler, RNG states, metrics) is in the task's checkpoint. So a run resumed from the
checkpoint of epoch k ends with exactly the weights of an uninterrupted run (on CPU; CUDA
kernels may differ in the last bits).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from segcolor.errors import SegcolorError
from segcolor.paths import BEST
from segcolor.train import distributed
from segcolor.train.config import check_same_model, load_config, resumed_config
from segcolor.train.data import init_worker
from segcolor.train.distributed import DistInfo
from segcolor.train.run import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    amp_dtype,
    interrupted,
    interrupts_deferred,
    load_checkpoint,
    rng_state,
    save_state,
    seed_everything,
    set_rng_state,
    write_config,
    write_metrics,
)
from segcolor.train.schedule import learning_rate, set_lr

log = logging.getLogger(__name__)

Record = dict[str, Any]
Step = tuple[list[torch.Tensor], int]  # a step's sums to report, and its number of items


class Batches(Sized, Iterable[Any], Protocol):
    """An epoch's batches: a DataLoader, or anything with a length that iterates."""


class Task:
    """One kind of training run, as the loop (``fit``) sees it.

    Lifecycle: ``load_config`` -> ``prepare`` (find the data, before anything is written) ->
    [``read_checkpoint``, ``resumed_config`` when resuming] -> ``build`` (after seeding) ->
    ``begin`` -> per epoch: ``start_epoch``, ``train_step`` per batch, ``validate``, ``record``,
    ``save_epoch`` + ``checkpoint`` (rank 0) -> ``finish`` (rank 0).
    The defaults fit a task that trains a model with AdamW on DataLoaders and resumes from a
    ``segcolor-train/1`` checkpoint holding its config (the expert, the profile classifier).
    """

    name: ClassVar[str]
    lr_every_step: ClassVar[bool] = True  # False: the rate is set at each epoch's start only
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)  # train_step's sums, as train_<name>
    optimizer: torch.optim.Optimizer

    def __init__(self, cfg: dict[str, Any], info: DistInfo) -> None:
        self.cfg, self.info = cfg, info
        self.out = Path(cfg["out"])

    # ------------------------------------------------------------------ before the run

    @classmethod
    def load_config(cls, path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
        return load_config(path, overrides)

    @classmethod
    def read_checkpoint(cls, path: Path) -> dict[str, Any]:
        """The checkpoint to resume from: a dict with at least ``epoch`` and ``history``."""
        return load_checkpoint(path)

    def resumed_config(
        self, state: dict[str, Any], overrides: dict[str, Any], path: Path
    ) -> tuple[dict[str, Any], list[str]]:
        """The config to resume with (the run's own, saved in ``state``, with today's flags)
        and the keys of today's YAML it ignores."""
        cfg, ignored = resumed_config(state["config"], self.cfg, overrides, path)
        check_same_model(state["config"], cfg, self.out / CHECKPOINT)
        return cfg, ignored

    @property
    def epochs(self) -> int:
        return int(self.cfg["train"]["epochs"])

    @property
    def seed(self) -> int:
        return int(self.cfg["train"]["seed"])

    @property
    def device_name(self) -> str:
        return self.cfg["train"]["device"]

    def prepare(self) -> None:
        """Find the data: a missing folder or cache fails here, before anything is written."""

    # ------------------------------------------------------------------ the run

    def build(self, device: torch.device, state: dict[str, Any] | None) -> None:
        """Model, optimizer and loaders (after ``seed_everything``); ``state`` when resuming."""
        raise NotImplementedError

    def begin(self, start_epoch: int) -> None:
        """Rank 0, before the first epoch: the config for people, and what is about to run."""
        write_config(self.out, self.cfg)

    def schedule(self) -> str | None:
        """The learning-rate schedule (``segcolor.train.schedule``); None leaves it alone."""
        return self.cfg["optim"]["scheduler"]

    def start_epoch(self, epoch: int) -> Batches:
        """The model in training mode, and the epoch's batches."""
        raise NotImplementedError

    def train_step(self, batch: Any) -> Step:
        """One optimisation step. Returns sums to report per item (the first is the loss) and
        the number of items; the loop sums both over the epoch and all processes."""
        raise NotImplementedError

    def validate(self) -> Record:
        """Validation metrics (an empty dict without validation data)."""
        return {}

    def record(self, epoch: int, train: Record, val: Record) -> Record:
        """The epoch's line in the history."""
        return {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"], **train, **val}

    def save_epoch(self, history: list[Record], improved: bool) -> None:
        """Rank 0, after each epoch and before the checkpoint: metrics and exports."""

    def checkpoint(
        self, epoch: int, history: list[Record], best: dict[str, Any]
    ) -> dict[str, Any] | None:
        """What resumes the run after ``epoch`` epochs; None: nothing to resume."""
        raise NotImplementedError

    def epoch_line(self, record: Record) -> str:
        return f"epoch {record['epoch']}/{self.epochs}  train_loss {record['train_loss']:.5f}"

    def finish(self, history: list[Record]) -> None:
        """Rank 0, after the last epoch."""


class LoaderTask(Task):
    """A model trained with AdamW on DataLoaders (mixed precision on CUDA, DDP under
    ``torchrun``), exported after every epoch as ``weights_file`` and ``best.safetensors``;
    its checkpoint holds the weights, optimizer, scaler, RNG states and config."""

    weights_file: ClassVar[str]
    model: nn.Module
    device: torch.device
    amp: torch.dtype | None
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # the loaders' (shuffling, worker seeds)

    def setup_training(
        self, model: nn.Module, device: torch.device, state: dict[str, Any] | None
    ) -> None:
        """AdamW over ``model``, the AMP scaler and the loaders' generator, restored from
        ``state`` (the RNGs by ``restore_rng``, once the loaders exist)."""
        self.model, self.device = model, device
        optim = self.cfg["optim"]
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"]
        )
        self.amp = amp_dtype(self.cfg["train"]["amp"], device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp is torch.float16)
        self.generator = torch.Generator().manual_seed(self.seed)
        if state is not None:
            model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])

    def parallel(self, module: nn.Module) -> nn.Module:
        """``module`` as the training step calls it: wrapped by DDP under ``torchrun``."""
        if not self.info.enabled:
            return module
        cuda = self.device.type == "cuda"
        return DistributedDataParallel(module, device_ids=[self.device] if cuda else None)

    def loader_options(self) -> dict[str, Any]:
        workers = self.cfg["train"]["workers"]
        return {
            "num_workers": workers,
            "persistent_workers": workers > 0,
            "pin_memory": self.device.type == "cuda",
            "worker_init_fn": init_worker,
            "generator": self.generator,
        }

    def restore_rng(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            set_rng_state(state["rng"], self.generator)

    def training_state(
        self, epoch: int, history: list[Record], best: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "config": self.cfg,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(self.generator),
            "history": history,
            "best": best,
        }

    def card(self, history: list[Record]) -> dict[str, Any]:
        """What the exported weights say about themselves."""
        raise NotImplementedError

    def export(self, path: Path, card: dict[str, Any]) -> None:
        raise NotImplementedError

    def save_epoch(self, history: list[Record], improved: bool) -> None:
        card = self.card(history)
        write_metrics(self.out, history)
        self.export(self.out / self.weights_file, card)
        if improved:
            self.export(self.out / BEST, card)


def fit(task: Task, state: dict[str, Any] | None, device: torch.device) -> list[Record]:
    """Build ``task`` (from ``state`` when resuming), then run its remaining epochs."""
    info, out, epochs = task.info, task.out, task.epochs
    seed_everything(task.seed)
    task.build(device, state)
    history: list[Record] = state["history"] if state else []
    best: dict[str, Any] = (state or {}).get("best") or {"val_loss": None, "epoch": None}
    start_epoch = int(state["epoch"]) if state else 0
    if info.is_main:
        task.begin(start_epoch)
    epoch = saved = start_epoch
    try:
        for epoch in range(start_epoch, epochs):
            train = train_epoch(task, epoch, device)
            record = task.record(epoch, train, task.validate())
            history.append(record)
            improved = "val_loss" in record and (
                best["val_loss"] is None or record["val_loss"] < best["val_loss"]
            )
            if improved:
                best = {"val_loss": record["val_loss"], "epoch": epoch + 1}
            with interrupts_deferred():  # the checkpoint on disk and `saved` agree
                if info.is_main:
                    task.save_epoch(history, improved)
                    checkpoint = task.checkpoint(epoch + 1, history, best)
                    if checkpoint is not None:
                        save_state(out / CHECKPOINT, checkpoint)
                saved = epoch + 1
            if info.is_main:
                log.info(task.epoch_line(record))
    except KeyboardInterrupt:
        raise interrupted(epoch, saved, out) from None
    distributed.barrier(task.info)
    if info.is_main:
        task.finish(history)
    return history


def train_epoch(task: Task, epoch: int, device: torch.device) -> Record:
    """One epoch of ``task.train_step``; returns the means over all processes and the speed."""
    schedule, epochs = task.schedule(), task.epochs
    if schedule is not None and not task.lr_every_step:
        set_lr(task.optimizer, learning_rate(schedule, task.cfg["optim"], epochs, epoch))
    batches = task.start_epoch(epoch)
    steps = max(1, len(batches))
    sums: torch.Tensor | None = None  # per metric, summed in float64 on the device
    items = 0
    start = time.perf_counter()
    bar = tqdm(
        batches,
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="batch",
        leave=False,
        dynamic_ncols=True,
        disable=not task.info.is_main or None,
    )
    for step, batch in enumerate(bar):
        if schedule is not None and task.lr_every_step:
            lr = learning_rate(schedule, task.cfg["optim"], epochs, epoch, step, steps)
            set_lr(task.optimizer, lr)
        values, count = task.train_step(batch)
        step_sums = torch.stack([v.double() for v in values])
        if sums is None:
            sums = step_sums
        else:
            sums += step_sums
        items += count
        if step % 10 == 0 or step == len(batches) - 1:
            running = (sums[0] / items).item()
            if not math.isfinite(running):
                raise SegcolorError(
                    f"the loss became {running} in epoch {epoch + 1}; lower "
                    "optim.lr (the last checkpoint is intact)"
                )
            bar.set_postfix(loss=f"{running:.4f}")
    seconds = time.perf_counter() - start
    if sums is None:  # no batch at all: nothing learned, nothing to report
        sums = torch.zeros(len(task.metric_names), dtype=torch.float64, device=device)
    counted = torch.tensor([float(items)], dtype=torch.float64, device=sums.device)
    total = distributed.all_reduce_sum(torch.cat([sums, counted]), task.info)
    count = total[-1].clamp_min(1.0)
    means = {f"train_{n}": (total[i] / count).item() for i, n in enumerate(task.metric_names)}
    return {**means, "images_per_s": total[-1].item() / seconds, "epoch_s": seconds}
