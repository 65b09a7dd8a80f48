"""The batch manifest: one JSON line per photo, beside the outputs, so a batch can be resumed.

``OUT/segcolor-manifest.jsonl`` holds, per input, its path relative to its input folder, its
size, modification time and (for done photos) sha256, the output path relative to ``OUT``, the
status (``done`` or ``error`` with the one-line reason), the seconds it took and the routing
summary (each category's share of the photo, in %, and the profile variant chosen). Lines of
``{"event": "start"}`` / ``{"event": "end"}`` mark each run, for throughput.

Only the process that runs the batch appends, and each line is written whole with one
``write`` on an ``O_APPEND`` descriptor and fsync'd, after the output is in place; so a kill at
any moment (``kill -9`` included) loses at most the line being written. A truncated last line is
ignored on reading, and the next append starts on a fresh line. At the end of a run the file is
rewritten (atomically) with only the latest row per output.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segcolor.errors import SegcolorError
from segcolor.io.atomic import atomic_write

try:
    import fcntl
except ImportError:  # Windows: no lock against two batches in one folder
    fcntl = None

MANIFEST_NAME = "segcolor-manifest.jsonl"
FORMAT = "segcolor-batch/1"


def file_identity(path: Path) -> dict[str, int]:
    """What decides whether a source changed: its size and modification time."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a manifest; a torn line (a killed writer) is skipped."""
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def latest_photos(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Output path -> the latest row about it (photo rows only, in file order)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "output" in row and "status" in row:
            latest.pop(row["output"], None)  # keep the order of the latest writes
            latest[row["output"]] = row
    return latest


def unchanged(row: dict[str, Any], source: Path) -> bool:
    """Whether ``source`` is the file ``row`` was made from: same size, and the same mtime or
    (a copied or re-synced file) the same sha256."""
    try:
        now = file_identity(source)
    except OSError:
        return False
    if now["size"] != row.get("size"):
        return False
    if now["mtime_ns"] == row.get("mtime_ns"):
        return True
    return bool(row.get("sha256")) and sha256_of(source) == row["sha256"]


@dataclass
class Manifest:
    """The manifest of an output folder, opened for appending."""

    path: Path

    @classmethod
    def of(cls, out: str | Path) -> Manifest:
        return cls(Path(out) / MANIFEST_NAME)

    def rows(self) -> list[dict[str, Any]]:
        return read_rows(self.path)

    def open(self) -> None:
        """Open for appending, and lock: one batch writes into a folder at a time (the lock
        goes with the process, so a killed batch's is free at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise SegcolorError(f"cannot write the manifest ({err.strerror})", self.path) from None
        if fcntl is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.close()
                raise SegcolorError(
                    "another segcolor colorize is writing into this folder; wait for it or "
                    "choose another -o",
                    self.path.parent,
                ) from None
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":  # a torn last line: start a fresh one
                    os.write(self._fd, b"\n")

    def append(self, row: dict[str, Any]) -> None:
        """One whole line, written in one call and flushed to disk."""
        data = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, data)
        os.fsync(self._fd)

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def compact(self) -> None:
        """Rewrite the file with the run markers and only the latest row per output."""
        rows = self.rows()
        keep = {id(row) for row in latest_photos(rows).values()}
        with atomic_write(self.path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            for row in (r for r in rows if "event" in r or id(r) in keep):
                handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def start_row(
    engine: str, jobs: int, total: int, todo: int, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run marker; ``settings`` (what decides the colors: models, working size, routing
    edits) lets a later run into the same folder tell whether its outputs would match."""
    row = {
        "event": "start",
        "format": FORMAT,
        "time": round(time.time(), 3),
        "engine": engine,
        "jobs": jobs,
        "total": total,
        "todo": todo,
    }
    if settings is not None:
        row["settings"] = settings
    return row


def last_settings(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The settings of the latest run that recorded them (None before any)."""
    found = None
    for row in rows:
        if row.get("event") == "start" and "settings" in row:
            found = row["settings"]
    return found


def end_row(done: int, failed: int, skipped: int) -> dict[str, Any]:
    return {
        "event": "end",
        "time": round(time.time(), 3),
        "done": done,
        "failed": failed,
        "skipped": skipped,
    }


# ----------------------------------------------------------------------------- summary


def summarize(out: str | Path) -> str:
    """What ``segcolor manifest OUT/`` prints: counts, failures, throughput, photos per
    category (a category counts a photo where it covers at least 1 % of it)."""
    out = Path(out)
    if out.is_file() and out.name == MANIFEST_NAME:  # the manifest itself: its folder is meant
        out = out.parent
    if not out.exists():
        raise SegcolorError("no such folder", out)
    manifest = Manifest.of(out)
    if not manifest.path.is_file():
        raise SegcolorError(f"no batch manifest here ({MANIFEST_NAME})", out)
    rows = manifest.rows()
    if not rows:
        raise SegcolorError("not a readable batch manifest (no complete JSON rows)", manifest.path)
    latest = latest_photos(rows)
    done = [r for r in latest.values() if r["status"] == "done"]
    failed = [r for r in latest.values() if r["status"] != "done"]
    lines = [f"{manifest.path}: {len(latest):,} photos: {len(done):,} done, {len(failed):,} failed"]
    speed = throughput(rows)
    if speed is not None:
        photos, seconds = speed
        lines.append(
            f"throughput: {photos:,} photos in {seconds:,.1f} s of runs "
            f"({photos / max(seconds, 1e-9):.2f} photos/s); "
            f"{sum(r.get('seconds', 0.0) for r in done) / max(len(done), 1):.2f} s per photo"
        )
    categories: Counter[str] = Counter()
    profiles: Counter[str] = Counter()
    for row in done:
        routing = row.get("routing") or {}
        for name, share in (routing.get("shares") or {}).items():
            if share >= 1.0:
                categories[name] += 1
        for name, variant in (routing.get("profiles") or {}).items():
            profiles[f"{name} {variant}"] += 1
    if categories:
        lines.append("photos per category (covering at least 1 % of the photo):")
        lines += [f"  {n:>9,} photos with {name}" for name, n in categories.most_common()]
    elif done:
        lines.append("no routing recorded (a single expert colored every photo)")
    if profiles:
        lines.append("profile variants chosen:")
        lines += [f"  {n:>9,} photos: {name}" for name, n in profiles.most_common()]
    if failed:
        lines.append(f"failures ({len(failed):,}):")
        lines += [f"  {r['input']}: {r.get('error', 'unknown error')}" for r in failed]
    return "\n".join(lines)


def throughput(rows: list[dict[str, Any]]) -> tuple[int, float] | None:
    """(photos done, seconds) over all runs: each run from its start marker to its last row."""
    photos, seconds, start, last, count = 0, 0.0, None, None, 0
    for row in [*rows, {"event": "start"}]:
        if row.get("event") == "start":
            if start is not None and last is not None and count:
                photos, seconds = photos + count, seconds + max(last - start, 0.0)
            start, last, count = row.get("time"), row.get("time"), 0
        elif start is not None and "time" in row:
            last = row["time"]
            count += row.get("status") == "done"
    return (photos, seconds) if photos else None
