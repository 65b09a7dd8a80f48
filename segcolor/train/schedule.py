"""The learning rate: a pure function of where training is, so a resumed run needs no saved
scheduler state and repeats an uninterrupted one exactly."""

from __future__ import annotations

import math
from typing import Any

import torch

SCHEDULES = ("cosine", "step", "warmup_cosine")


def learning_rate(
    schedule: str, optim: dict[str, Any], epochs: int, epoch: int, step: int = 0, steps: int = 1
) -> float:
    """The learning rate at ``step`` of ``steps`` in ``epoch`` (0-based) of ``epochs``.

    ``cosine`` decays every step over the whole run, so a one-epoch fine-tune still ends
    annealed; its ``warmup`` (a share of all steps) multiplies in a ramp, for a fresh optimizer
    that starts from trained weights. ``step`` multiplies by ``gamma`` every ``step_size``
    epochs. ``warmup_cosine`` (the gray head's) ramps up over the first ``warmup`` share of the
    steps, then decays to zero over the rest.
    """
    if schedule == "warmup_cosine":
        total, at = steps * epochs, epoch * steps + step
        warm = max(1, round(float(optim["warmup"]) * total))
        if at < warm:
            return float(optim["lr"]) * (at + 1) / warm
        decay = math.pi * (at - warm) / max(1, total - warm)
        return float(optim["lr"]) * 0.5 * (1 + math.cos(decay))
    position = epoch + step / steps
    warmup = optim.get("warmup", 0.0) or 0.0
    ramp = min(1.0, position / (warmup * epochs)) if warmup > 0 else 1.0
    if schedule == "cosine":
        factor = ramp * 0.5 * (1.0 + math.cos(math.pi * position / epochs))
    elif schedule == "step":
        factor = ramp * optim["gamma"] ** (int(position) // optim["step_size"])
    else:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    return optim["lr"] * factor


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
