"""Find pretrained weight files on this machine and check their sha256.

Nothing is ever downloaded: weights ship inside the package (``segcolor/weights``, e.g. the
segmenter) or are public files the user puts in a known place, and every pretrained component of
the project resolves them through ``resolve_weights`` so the search order and the error messages
are the same everywhere.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from segcolor.errors import CheckpointError, WeightsNotFoundError

PACKAGED_DIR = Path(__file__).resolve().parent.parent / "weights"  # files shipped in the wheel
_CHUNK = 1 << 20
# (resolved path, size, mtime_ns) -> sha256 hex; files do not change under a running process
# often, and hashing a 100 MB checkpoint on every call would be wasteful.
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def cache_dir() -> Path:
    """The per-user cache folder: ``$SEGCOLOR_CACHE_DIR``, else ``$XDG_CACHE_HOME/segcolor``,
    else ``~/.cache/segcolor``. It is not created here."""
    explicit = os.environ.get("SEGCOLOR_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "segcolor"


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, streamed in chunks, memoised per (path, size, mtime) in this process."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    cached = _HASH_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def _candidates(filename: str, explicit: str | Path | None) -> list[Path]:
    """Search order: explicit file or folder, then $SEGCOLOR_WEIGHTS_DIR, then the cache dir, then
    the package's own folder (last, so a user's copy can stand in for a shipped file)."""
    out: list[Path] = []
    if explicit is not None:
        p = Path(explicit).expanduser()
        out.append(p / filename if p.is_dir() else p)
    env = os.environ.get("SEGCOLOR_WEIGHTS_DIR")
    if env:
        out.append(Path(env).expanduser() / filename)
    out.append(cache_dir() / filename)
    out.append(PACKAGED_DIR / filename)
    return out


def resolve_weights(
    filename: str, sha256: str, explicit: str | Path | None = None, source: str = ""
) -> Path:
    """Return the path of ``filename`` after checking its sha256.

    An explicit path that does not exist is an error of its own (the user named it), rather than
    silently falling back to another copy.
    """
    candidates = _candidates(filename, explicit)
    if explicit is not None and not candidates[0].is_file():
        raise WeightsNotFoundError(f"weights file {filename} not found there", candidates[0])
    for path in candidates:
        if path.is_file():
            actual = sha256_file(path)
            if sha256 and actual != sha256.lower():
                raise CheckpointError(
                    f"sha256 mismatch for {filename} (expected {sha256[:12]}…, got {actual[:12]}…):"
                    " the file is corrupt or a different version; replace it",
                    path,
                )
            return path
    where = f"$SEGCOLOR_WEIGHTS_DIR or {_display(cache_dir())}"
    origin = f"download it from {source} and " if source else ""
    raise WeightsNotFoundError(f"{filename} not found: {origin}put it in {where}")


def _display(path: Path) -> str:
    """Show paths under the home folder as ``~/…`` so messages stay short."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
