"""Build a network without initialising it when its weights are loaded right after.

Random init of the shipped experts, classifier and segmenter cost ~0.5 s at start-up for weights
that are then overwritten: built on the meta device, a module allocates nothing and draws nothing,
and ``load_state_dict(assign=True)`` makes the loaded tensors its parameters. So loading no
longer advances the global RNG: only a profile classifier started from an expert (``model.init``)
then trains with other dropout masks than it did at the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from segcolor.errors import CheckpointError

M = TypeVar("M", bound=nn.Module)
# the metadata key of the JSON card in segcolor's checkpoints (experts, profile classifiers)
CARD_KEY = "segcolor.card"


def build_empty(factory: Callable[..., M], *args: object, **kwargs: object) -> M:
    """``factory(*args, **kwargs)`` with every tensor on the meta device (no memory, no RNG)."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


def assign_weights(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load ``state`` into a module from ``build_empty``, strictly: each tensor is cast to the
    dtype the module declares (as a copying load would: fp16 files give float32 weights) and
    becomes the parameter or buffer itself. Raises RuntimeError like ``load_state_dict``."""
    declared = model.state_dict()
    cast = {
        k: v.to(declared[k].dtype) if k in declared and v.dtype != declared[k].dtype else v
        for k, v in state.items()
    }
    model.load_state_dict(cast, assign=True)
    empty = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if empty:  # e.g. a non-persistent buffer, which no state dict carries
        raise RuntimeError(f"weights left unset after loading: {', '.join(empty)}")
    return model


def read_metadata(path: str | Path, what: str) -> dict[str, str]:
    """A safetensors file's metadata, without loading its weights; a missing or unreadable file
    is a one-line ``CheckpointError`` (``what`` names the file's role: "expert checkpoint")."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found", path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"not a safetensors checkpoint ({err})", path) from None
