"""Where data lives: the shared reference directory, relative data paths, output folders.

The shared directory (photos, pretrained weights) is never part of the package. It comes from a
config's ``shared_dir`` key, else ``$SEGCOLOR_SHARED_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

from segcolor.errors import ConfigError

SHARED_ENV = "SEGCOLOR_SHARED_DIR"

# a training run's folder (``segcolor train``), as ``segcolor export`` reads it back
EXPERT = "expert.safetensors"  # the expert after the last epoch
CLASSIFIER = "classifier.safetensors"  # a profile classifier after the last epoch
BEST = "best.safetensors"  # the weights of the best validation epoch (either kind)


def shared_dir(configured: str | Path | None = None) -> Path | None:
    """The shared reference directory, or None when neither the config nor the env names one."""
    value = configured or os.environ.get(SHARED_ENV)
    return Path(value).expanduser() if value else None


def portable_path(path: str | Path, shared: Path | None = None) -> str:
    """``path`` as text that holds no machine path where it can: under the shared directory it
    becomes ``$SEGCOLOR_SHARED_DIR/...``, under the working directory relative to it; anything
    else is returned as given (the caller decides what else to strip)."""
    shared = shared if shared is not None else shared_dir()
    absolute = Path(path).expanduser().absolute()
    if shared is not None and absolute.is_relative_to(shared.absolute()):
        return f"${SHARED_ENV}/" + absolute.relative_to(shared.absolute()).as_posix()
    if absolute.is_relative_to(Path.cwd()):
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    return str(path)


def resolve_data_path(path: str | Path, configured_shared: str | Path | None = None) -> Path:
    """A data path as given if it exists, else relative to the shared directory."""
    candidate = Path(path).expanduser()
    if candidate.exists() or candidate.is_absolute():
        return candidate
    base = shared_dir(configured_shared)
    if base is not None and (base / candidate).exists():
        return base / candidate
    hint = f" (also looked in {base})" if base else f" (set ${SHARED_ENV} or pass --data)"
    raise ConfigError(f"data folder {path} not found{hint}")
