"""Registry + factory for expert architectures (in the style of timm / smp)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segcolor.errors import ConfigError
from segcolor.experts.base import Expert

_ARCHS: dict[str, Callable[..., Expert]] = {}
_DEFAULT_CFGS: dict[str, dict[str, Any]] = {}


def register_expert(
    name: str, **default_cfg: Any
) -> Callable[[Callable[..., Expert]], Callable[..., Expert]]:
    """Decorator: make ``fn(**cfg) -> Expert`` buildable as ``create_expert(name, **cfg)``."""

    def decorator(fn: Callable[..., Expert]) -> Callable[..., Expert]:
        if name in _ARCHS:
            raise ValueError(f"expert arch {name!r} is registered twice")
        _ARCHS[name] = fn
        _DEFAULT_CFGS[name] = dict(default_cfg)
        return fn

    return decorator


def list_experts() -> list[str]:
    return sorted(_ARCHS)


def default_cfg(arch: str) -> dict[str, Any]:
    """The arch's default keyword arguments (a copy)."""
    _check(arch)
    return dict(_DEFAULT_CFGS[arch])


def _check(arch: str) -> None:
    if arch not in _ARCHS:
        raise ConfigError(f"unknown expert arch {arch!r}; available: {', '.join(list_experts())}")


def create_expert(arch: str = "resnet18_unet", **cfg: Any) -> Expert:
    """Build an untrained expert; ``cfg`` overrides the arch's defaults."""
    _check(arch)
    merged = {**_DEFAULT_CFGS[arch], **cfg}
    try:
        model = _ARCHS[arch](**merged)
    except (TypeError, ValueError) as err:  # an unknown option, or a value out of its range
        raise ConfigError(f"bad options for expert arch {arch!r}: {err}") from None
    model.arch = arch
    model.arch_config = merged
    return model
