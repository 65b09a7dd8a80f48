"""Colorize a whole video in chunks that survive an interruption, then join them.

Frames stream through the stabilizer one at a time (memory stays that of a frame, whatever the
length). Every ``chunk_frames`` frames the chunk is finished on disk in a work folder beside
the output (``OUTPUT.segcolor-work``), together with the stabilizer's state after its last
frame. Rerunning the same command finds the finished chunks, loads that state and goes on from
the first missing chunk, so the result is the same as an uninterrupted run; if the state file
is missing, the stabilizer is re-seeded on the ``warmup_frames`` frames before the chunk
instead. When every chunk is done they are joined (remuxed, no second encode) into the output,
which appears in one step, and the work folder is removed.

The work folder records a fingerprint of the input, the pipeline's weights and the settings;
a rerun with anything changed refuses to mix chunks unless told ``restart``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from segcolor.errors import SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.io.images import IMAGE_EXTENSIONS
from segcolor.io.process import is_running
from segcolor.pipeline import Pipeline, to_uint8
from segcolor.pipeline_config import DEFAULT_STYLE
from segcolor.video.encode import FRAME_NAME, ChunkWriter, OutputSpec, assemble, plan_output
from segcolor.video.io import VideoInfo, VideoReader
from segcolor.video.stabilize import Stabilizer, StabilizerOptions

log = logging.getLogger(__name__)
WORK_SUFFIX = ".segcolor-work"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RunOptions:
    """How the run is cut up and written (not how it looks: that is ``StabilizerOptions``)."""

    chunk_frames: int = 100  # frames per resumable chunk
    warmup_frames: int = 8  # frames re-processed before a chunk when no saved state exists
    crf: int = 18  # H.264 quality (lower is better)
    fps: Fraction | float | None = None  # frame rate of a folder of frames (default 25)
    restart: bool = False  # discard a work folder left by a different run
    keep_work: bool = False  # keep the chunks after joining them
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        if self.chunk_frames < 1:
            raise SegcolorError(f"chunk size must be at least 1 frame, got {self.chunk_frames}")
        if self.warmup_frames < 0:
            raise SegcolorError(f"warm-up must be 0 frames or more, got {self.warmup_frames}")


@dataclass
class RunSummary:
    """What a run did (a resumed run counts only the frames it colorized itself)."""

    output: Path
    info: VideoInfo
    frames: int  # frames in the output
    processed: int  # frames colorized by this call
    resumed_chunks: int  # finished chunks found on disk
    seconds: float
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot (processed)

    @property
    def fps(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0


def work_dir_for(output: Path) -> Path:
    return output.parent / f"{output.name}{WORK_SUFFIX}"


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class WorkDir:
    """Finished chunks, saved stabilizer states and the run's manifest."""

    def __init__(self, root: Path, spec: OutputSpec) -> None:
        self.root = root
        self.spec = spec
        self.manifest_path = root / "run.json"

    def prepare(self, fingerprint: str, restart: bool, style: str = DEFAULT_STYLE) -> dict:
        """The manifest of this run; an existing folder must belong to the same run.
        ``style`` is recorded for the reader (the fingerprint already holds it)."""
        if self.root.exists() and not self.root.is_dir():
            raise SegcolorError("work folder name is taken by a file", self.root)
        if self.root.is_dir():
            self._lock()  # before touching anything: another run may be writing here
            manifest = self._read_manifest()
            if manifest.get("fingerprint") == fingerprint and not restart:
                self._clean_temporaries()
                return manifest
            if not restart:
                self.unlock()
                raise SegcolorError(
                    "holds chunks of a different run (input, pipeline or settings changed); "
                    "pass --restart to discard them",
                    self.root,
                )
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self._lock()
        manifest = {
            "version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "style": style,
            "frames": None,
        }
        self.write_manifest(manifest)
        return manifest

    @property
    def lock_path(self) -> Path:
        return self.root / "lock"

    def _lock(self) -> None:
        """Claim the folder for this process: a second `segcolor video` writing the same output
        would interleave chunks. A lock left by a process that no longer runs is taken over."""
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = _lock_owner(self.lock_path)
                if owner is not None and owner != os.getpid() and is_running(owner):
                    raise SegcolorError(
                        f"another segcolor video (pid {owner}) is writing this output; wait for "
                        "it to finish or stop it",
                        self.root,
                    ) from None
                self.lock_path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            return
        raise SegcolorError("could not lock the work folder", self.root)

    def unlock(self) -> None:
        if _lock_owner(self.lock_path) == os.getpid():
            self.lock_path.unlink(missing_ok=True)

    def _read_manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_manifest(self, manifest: dict) -> None:
        with atomic_write(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    def _clean_temporaries(self) -> None:
        """Leftovers of a killed process (finished files are never temporary)."""
        for path in self.root.glob(".*.tmp"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def chunk(self, index: int) -> Path:
        return self.root / f"chunk_{index:05d}{self.spec.chunk_suffix}"

    def finished_prefix(self) -> int:
        """How many chunks from the first on are finished."""
        count = 0
        while self.chunk(count).exists():
            count += 1
        return count

    def state_path(self, index: int) -> Path:
        return self.root / f"state_{index:05d}.npz"

    def save_state(self, index: int, state: dict[str, np.ndarray]) -> None:
        with atomic_write(self.state_path(index)) as tmp, tmp.open("wb") as handle:
            np.savez(handle, **state)
        self.state_path(index - 1).unlink(missing_ok=True)  # only the latest is ever needed

    def load_state(self, index: int) -> dict[str, np.ndarray] | None:
        try:
            with np.load(self.state_path(index)) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError):
            return None


def fingerprint(
    pipeline: Pipeline,
    reader: VideoReader,
    spec: OutputSpec,
    stabilizer: StabilizerOptions,
    options: RunOptions,
) -> str:
    """Changes whenever the input, the weights or anything that shapes the frames changes."""
    digest = hashlib.sha256()
    info = reader.info
    settings = {
        "version": FORMAT_VERSION,
        "input": _input_identity(reader),
        "fps": str(info.fps),
        "size": [info.width, info.height],
        "output": [spec.kind, spec.container, spec.codec, spec.crf],
        "chunk_frames": options.chunk_frames,
        # the color weight as used (the style's when not given): work folders from before it
        # depended on the style still resume, and a vivid run never joins chunks of two weights
        "stabilizer": {
            **stabilizer.to_dict(),
            "color_alpha": stabilizer.color_weight(pipeline.style),
        },
        "working_size": pipeline.working_size,
        # absent at the default, so work folders from before the option still resume
        **({"vividness": pipeline.vividness} if pipeline.vividness != 1.0 else {}),
        "router": repr(pipeline.router.options) if pipeline.router else None,
        "merge": repr(pipeline.merge),
        "categories": pipeline.router.categories if pipeline.router else None,
    }
    if pipeline.style != DEFAULT_STYLE:  # absent at the default too, like vividness: a resumed
        # run never joins faithful chunks to vivid ones (or to another vivid temperature)
        settings["style"] = pipeline.style
        settings["vivid"] = repr(pipeline.vivid_options)
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for model in _models(pipeline):
        for name, tensor in model.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _models(pipeline: Pipeline) -> list[torch.nn.Module]:
    models: list[torch.nn.Module] = []
    if pipeline.expert is not None:
        models.append(pipeline.expert)
    if pipeline.router is not None:
        if pipeline.router.segmenter is not None:
            models.append(pipeline.router.segmenter)
        for name in sorted(getattr(pipeline.router, "gates", {})):  # profile classifiers
            models.append(pipeline.router.gates[name].classifier)
    for name in sorted(pipeline.experts):
        models.extend(pipeline.experts[name])
    return models


def _input_identity(reader: VideoReader) -> list:
    """The input's path, and name, size and mtime of the file or of every frame."""
    paths = reader.frame_files or [reader.path]
    out: list = [str(reader.path.resolve())]
    for path in paths:
        stat = path.stat()
        out.append([path.name, stat.st_size, stat.st_mtime_ns])
    return out


def output_frame_names(reader: VideoReader, spec: OutputSpec) -> list[str] | None:
    """A folder input keeps its frame names (as PNG) unless two would clash."""
    if spec.kind != "folder" or not reader.frame_files:
        return None
    names = [f"{p.stem}.png" for p in reader.frame_files]
    return names if len(set(names)) == len(names) else None


def check_frames_folder(reader: VideoReader, spec: OutputSpec) -> None:
    """Refuse, before any work, a frames folder that already holds other images: they would sit
    among the new frames, and a later encode of the folder would mix the two."""
    if spec.kind != "folder" or not spec.path.is_dir():
        return
    names = output_frame_names(reader, spec)
    ours = set(names) if names is not None else None
    others = sorted(
        p.name
        for p in spec.path.iterdir()
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and (p.name not in ours if ours is not None else not FRAME_NAME.fullmatch(p.name))
    )
    if others:
        raise SegcolorError(
            f"holds {len(others)} other image(s) (e.g. {others[0]}) that would mix with the "
            "frames; choose an empty or new folder",
            spec.path,
        )


def colorize_video(
    pipeline: Pipeline,
    source: str | Path,
    output: str | Path,
    stabilizer: StabilizerOptions | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Colorize ``source`` (video file or folder of frames) into ``output``; resumable."""
    stabilizer = stabilizer or StabilizerOptions()
    options = options or RunOptions()
    reader = VideoReader(source, fps=options.fps)
    info = reader.info
    spec = plan_output(output, info, options.crf)
    check_frames_folder(reader, spec)
    work = WorkDir(work_dir_for(spec.path), spec)
    run_id = fingerprint(pipeline, reader, spec, stabilizer, options)
    manifest = work.prepare(run_id, options.restart, pipeline.style)
    try:
        return _run(pipeline, reader, info, spec, work, manifest, stabilizer, options)
    finally:
        work.unlock()


def _run(
    pipeline: Pipeline,
    reader: VideoReader,
    info: VideoInfo,
    spec: OutputSpec,
    work: WorkDir,
    manifest: dict,
    stabilizer: StabilizerOptions,
    options: RunOptions,
) -> RunSummary:
    """The locked part of ``colorize_video``: the missing chunks, then the output."""
    size = options.chunk_frames
    done = work.finished_prefix()
    total = manifest.get("frames")
    summary = RunSummary(spec.path, info, frames=0, processed=0, resumed_chunks=done, seconds=0.0)
    if done:
        log.info("%s: resuming after %d finished chunk(s) in %s", spec.path, done, work.root)
    if total is None or done < math.ceil(total / size):
        total = _colorize_chunks(pipeline, reader, work, stabilizer, options, done, summary)
        manifest["frames"] = total
        work.write_manifest(manifest)
    chunks = [work.chunk(k) for k in range(math.ceil(total / size))]
    missing = [c.name for c in chunks if not c.exists()]
    if missing:
        raise SegcolorError(f"chunk {missing[0]} went missing; rerun to make it", work.root)
    assemble(spec, chunks, info, output_frame_names(reader, spec))
    if not options.keep_work:
        shutil.rmtree(work.root, ignore_errors=True)
    summary.frames = total
    return summary


def _colorize_chunks(
    pipeline: Pipeline,
    reader: VideoReader,
    work: WorkDir,
    stabilizer_options: StabilizerOptions,
    options: RunOptions,
    done: int,
    summary: RunSummary,
) -> int:
    """Colorize from chunk ``done`` to the end; returns the input's frame count."""
    size = options.chunk_frames
    first = done * size
    stabilizer = Stabilizer(pipeline, stabilizer_options)
    start = first
    if done:
        state = work.load_state(done - 1)
        if state is not None:
            stabilizer.load_state(state)
        else:  # re-seed the running means on the frames just before the chunk
            start = max(0, first - options.warmup_frames)
    progress = tqdm(
        total=reader.info.frames,
        initial=first,
        unit="frame",
        desc=reader.info.path.name,
        disable=not options.progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    writer: ChunkWriter | None = None
    index = start - 1
    began = time.perf_counter()
    try:
        for index, frame in enumerate(reader.frames(start), start=start):
            result = stabilizer.process(frame)
            if index < first:
                continue  # warm-up only
            if writer is None:
                writer = ChunkWriter(work.chunk(index // size), work.spec, reader.info)
            writer.write(to_uint8(result.rgb))
            if result.cut and index > 0:
                summary.cuts.append(index)
            summary.processed += 1
            progress.update(1)
            if (index + 1) % size == 0:
                _finish(work, writer, index // size, stabilizer)
                writer = None
        if writer is not None:
            _finish(work, writer, index // size, stabilizer)
            writer = None
    finally:
        if writer is not None:
            writer.abort()
        progress.close()
        summary.seconds += time.perf_counter() - began
    if index < first:
        raise SegcolorError(
            f"has {index + 1} frames, fewer than the finished chunks hold", reader.info.path
        )
    return index + 1


def _finish(work: WorkDir, writer: ChunkWriter, index: int, stabilizer: Stabilizer) -> None:
    """State first, then the chunk: a finished chunk always has the state to go on from."""
    work.save_state(index, stabilizer.state())
    writer.finish()
