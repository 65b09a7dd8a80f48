"""Whether a process named in a lock file is still alive (training and video locks)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"  # killed, not yet reaped by its parent
    return True
