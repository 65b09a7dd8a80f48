"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output or checkpoint."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from segcolor.errors import SegcolorError


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise cannot_write(path, err) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal modes
        try:
            os.replace(tmp_path, path)
        except OSError as err:
            raise cannot_write(path, err) from None
    finally:
        tmp_path.unlink(missing_ok=True)


def cannot_write(path: Path, err: OSError) -> SegcolorError:
    """The one-line error for an output that cannot be written (a read-only place, a file where
    a folder should be, a folder where the file should be), naming the output, not a temp file."""
    reason = err.strerror or type(err).__name__
    if (
        err.filename
        and Path(err.filename) not in (path, path.parent)
        and ".tmp" not in str(err.filename)
    ):
        reason += f": {err.filename}"
    return SegcolorError(f"cannot write here ({reason})", path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_overwriting_inputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Inputs are never overwritten: an output that resolves to an input (through ``./``,
    symlinks, an absolute path) is a one-line error before any work."""
    sources = {Path(p).resolve() for p in inputs}
    for output in outputs:
        if Path(output).resolve() in sources:
            raise SegcolorError("output would overwrite an input; choose another -o", output)
