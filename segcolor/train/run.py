"""A training run's folder and state, the same for every task: file names, the checkpoint
(written atomically, read with ``weights_only=True``), the RNG states it restores, the lock,
mixed precision, and a clean stop on Ctrl-C or SIGTERM.

Every task writes into its folder in one order, outputs first and checkpoint last, so a kill at
any moment leaves nothing that disagrees with the checkpoint; a ``.lock`` keeps a second run out.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from segcolor.device import select_device
from segcolor.errors import CheckpointError, ConfigError, SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.train.distributed import DistInfo
from segcolor.train.lock import training_lock

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
CHECKPOINT_FORMAT = "segcolor-train/1"
DATA_NOTE = "the weights inherit the licences of the training photos"


# ----------------------------------------------------------------------------- stopping


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training; ``str()`` says what was saved and how to go on."""


def interrupted(epoch: int, saved: int, out: Path) -> TrainingInterrupted:
    """What Ctrl-C in epoch ``epoch`` (0-based) leaves: ``saved`` epochs checkpointed in ``out``."""
    what = (
        f"the checkpoint of epoch {saved} is in {out / CHECKPOINT}: rerun with --resume to continue"
        if saved
        else "no epoch was completed, nothing is saved"
    )
    return TrainingInterrupted(f"interrupted in epoch {epoch + 1}; {what}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (a scheduler or ``kill``) stop training like Ctrl-C: cleanly, with a message."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then stop as they asked: writing a
    checkpoint and recording that it was written happen together, so a stop can never report
    an epoch as unsaved whose checkpoint is on disk. Off the main thread the block runs as is."""
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    try:
        previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise KeyboardInterrupt


# ----------------------------------------------------------------------------- the folder


@contextlib.contextmanager
def exclusive(out: Path, info: DistInfo) -> Iterator[None]:
    """Refuse a second training run writing into the same folder at the same time; a lock
    left by a killed run (or its orphaned data-loader workers) is taken over
    (``segcolor.train.lock``). Rank 0 alone writes, so it alone locks."""
    if not info.is_main:
        yield
        return
    with training_lock(out):
        yield


def refuse_existing_run(out: Path) -> None:
    """A new run never writes over another's checkpoint (``--resume`` continues it)."""
    if (out / CHECKPOINT).exists():
        raise SegcolorError(
            f"already holds a training run ({CHECKPOINT}); pass --resume to continue it, or "
            "choose another --out",
            out,
        )


def write_config(out: Path, cfg: dict[str, Any]) -> None:
    """The resolved config, for people (a resume reads the checkpoint's own copy)."""
    with atomic_write(out / CONFIG) as tmp:
        tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))


def write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    """One JSON line per finished epoch, rewritten whole so it never runs ahead of the
    checkpoint."""
    with atomic_write(out / METRICS) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in history))


def save_state(path: Path, state: dict[str, Any]) -> None:
    """``torch.save``, atomically: a kill mid-write leaves the previous checkpoint."""
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def read_state(path: Path) -> Any:
    """A torch file loaded safely (tensors and plain data only); unreadable bytes are a one-line
    ``CheckpointError``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # junk bytes fail in the unpickler in many ways (KeyError, ...)
        readable = (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError)
        message = str(err).splitlines()[0] if str(err) else ""
        reason = message if message and isinstance(err, readable) else type(err).__name__
        raise CheckpointError(f"not a readable training checkpoint ({reason})", path) from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A ``segcolor-train/1`` checkpoint (``read_state``, then its format checked)."""
    state = read_state(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"not a segcolor training checkpoint (expected format {CHECKPOINT_FORMAT})", path
        )
    return state


# ----------------------------------------------------------------------------- randomness


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG's state, as tensors and numbers (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss,
        },
        "loader": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- the device


def training_device(name: str, info: DistInfo) -> torch.device:
    """``select_device``, plus this process's own GPU under ``torchrun``."""
    device = select_device(name)
    if info.enabled and name == "auto" and device.type == "mps":
        device = torch.device("cpu")  # no DDP backend for MPS
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
    if info.enabled and device.type not in ("cuda", "cpu"):
        raise ConfigError(f"distributed training runs on CUDA or the CPU, not {device.type}")
    return device


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for float32. Mixed precision is used on CUDA only."""
    if mode == "off" or device.type != "cuda":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def autocast(device: torch.device, amp: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``amp``, or nothing for float32 (losses are computed outside it)."""
    return torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
