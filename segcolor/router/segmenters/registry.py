"""Name → segmenter factory, so configs can pick a backend by name and new backends (e.g. a
user-trained smp model) plug in with a decorator instead of edits to the router."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from segcolor.errors import ConfigError
from segcolor.pipeline_config import DEFAULT_SEGMENTER
from segcolor.router.segmenters.base import Segmenter
from segcolor.router.segmenters.gray_head import load_gray_head

T = TypeVar("T")
_REGISTRY: dict[str, Callable[..., Segmenter]] = {}


def register_segmenter(name: str) -> Callable[[T], T]:
    """Decorator registering a ``Segmenter`` subclass (built via its ``from_pretrained``) or a
    factory function ``f(weights=None, **kwargs) -> Segmenter`` under ``name``."""

    def deco(obj: T) -> T:
        factory = obj.from_pretrained if isinstance(obj, type) else obj  # type: ignore[attr-defined]
        old = _REGISTRY.get(name)
        if old is not None and _qualname(old) != _qualname(factory):
            raise ValueError(f"segmenter {name!r} is already registered by {_qualname(old)}")
        _REGISTRY[name] = factory
        return obj

    return deco


def _qualname(f: Callable[..., Segmenter]) -> str:
    """Identity that survives a module reload (re-registering the same code is allowed)."""
    owner = getattr(f, "__self__", None)  # a classmethod bound to the registered class
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}"
    return f"{f.__module__}.{f.__qualname__}"


def list_segmenters() -> list[str]:
    """Registered names, sorted."""
    return sorted(_REGISTRY)


def create_segmenter(
    name: str = DEFAULT_SEGMENTER,
    weights: str | Path | None = None,
    device: torch.device | str | None = None,
    gray_head: str | Path | None = None,
    **kwargs: Any,
) -> Segmenter:
    """Build a registered segmenter in eval mode on ``device``; ``weights`` overrides where its
    weights come from (file or folder), ``gray_head`` adds a learned gray-photo correction
    (``segmenters.gray_head``), extra kwargs go to the backend."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown segmenter {name!r}; available: {', '.join(list_segmenters())}")
    model = _REGISTRY[name](weights=weights, **kwargs)
    if not isinstance(model, Segmenter):
        raise TypeError(f"segmenter factory {name!r} returned {type(model).__name__}")
    if gray_head is not None:
        head = load_gray_head(gray_head, name, model.classes)
        if head.in_channels != model.feature_channels:
            raise ConfigError(
                f"gray head reads {head.in_channels} feature channels, segmenter {name!r} "
                f"gives {model.feature_channels}",
                gray_head,
            )
        model.attach_gray_head(head)
    if device is not None:
        model = model.to(device)
    return model.eval()
