"""The training folder's lock: one run writes into a folder at a time, and a killed run's lock
is free for an immediate ``--resume``.

An ``flock`` on ``OUT/.lock``, whose file names the owner (``pid host``). Two things used to
keep a killed run's lock alive for seconds: ``fork``ed children (DataLoader workers) share the
locked file description, and a ``kill -9`` leaves them orphaned until they notice. So:

* every process forked while the lock is held closes its copy of the descriptor at once (an
  ``os.register_at_fork`` hook; closing a copy never unlocks the others), and the descriptor is
  close-on-exec, so ``subprocess`` children never get it;
* should the lock still be held while the pid it names, on this host, is gone (children forked
  by code that bypasses the hook), the stale file is unlinked and a fresh one locked.

A lock held by a live process, or by an owner this host cannot check, is refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from segcolor.errors import SegcolorError
from segcolor.io.process import is_running

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, no protection against two runs in one folder
    fcntl = None

LOCK_NAME = ".lock"
_held: set[int] = set()  # descriptors of locks this process holds


def _close_held_in_child() -> None:
    for fd in list(_held):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def _owner(fd: int) -> tuple[int, str] | None:
    try:
        pid, host = os.pread(fd, 256, 0).decode().split()
        return int(pid), host
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _acquire(out: Path) -> int:
    path = out / LOCK_NAME
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _owner(fd)
            if owner is None or owner[1] != socket.gethostname() or is_running(owner[0]):
                os.close(fd)
                who = f" (pid {owner[0]} on {owner[1]})" if owner else ""
                raise SegcolorError(
                    f"another training run{who} is writing to this folder; wait for it "
                    "or choose another --out",
                    out,
                ) from None
            # its owner is dead: what holds it are processes the owner left behind
            if _same_file(fd, path):
                path.unlink(missing_ok=True)
            os.close(fd)
            continue
        if not _same_file(fd, path):  # replaced while we locked it: lock the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        return fd
    raise SegcolorError("could not take the training lock", path)


@contextlib.contextmanager
def training_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the duration (a no-op without ``fcntl``)."""
    if fcntl is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = _acquire(out)
    _held.add(fd)
    try:
        yield
    finally:
        _held.discard(fd)
        os.close(fd)
