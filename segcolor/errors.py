"""User-facing errors.

Anything a user can cause (a bad file, a missing checkpoint, a malformed config) raises
``SegcolorError`` with a message that fits on one line and names the file and the problem.
The CLI prints that line and no traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

from pathlib import Path


class SegcolorError(Exception):
    """A problem the user can fix; ``str(err)`` is a complete one-line explanation."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class BadImageError(SegcolorError):
    """An input image that cannot be read or is not supported."""


class CheckpointError(SegcolorError):
    """A checkpoint that is missing, corrupt, or incompatible with this version."""


class ConfigError(SegcolorError):
    """A YAML config that cannot be parsed or fails validation."""


class WeightsNotFoundError(SegcolorError):
    """Pretrained weights that are not on this machine (nothing is downloaded at run time)."""


class EditsError(SegcolorError):
    """Routing edits (or color hints) that are malformed or do not fit the photo / pipeline."""
