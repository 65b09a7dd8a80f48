"""Read a video file or a folder of frames one frame at a time, whatever the source.

Frames are decoded lazily (PyAV for files, Pillow for folders), so a two-hour film needs the
memory of one frame. Every problem a user can cause (missing, empty, corrupt, no video stream,
frames of different sizes) becomes a one-line ``SegcolorError`` naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from segcolor.errors import SegcolorError
from segcolor.io.images import IMAGE_EXTENSIONS, load_image
from segcolor.pipeline import to_uint8

# file extension -> FFmpeg container (muxer) name
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".gif": "gif",
}
VIDEO_EXTENSIONS = frozenset(CONTAINERS)
FRAME_EXTENSIONS = frozenset(IMAGE_EXTENSIONS - {".gif"})  # a GIF in a folder is an animation
DEFAULT_FOLDER_FPS = Fraction(25)


@dataclass(frozen=True)
class VideoInfo:
    """What the output must match: size, rate, frame count (when known) and audio."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int | None  # None: the container does not say (progress shows no total)
    has_audio: bool = False
    is_folder: bool = False

    def describe(self) -> str:
        count = f"{self.frames} frames" if self.frames else "unknown frame count"
        rate = f"{float(self.fps):.3g} fps"
        audio = ", audio" if self.has_audio else ""
        return f"{self.width}x{self.height}, {rate}, {count}{audio}"


def is_video_path(path: str | Path) -> bool:
    """A video file by extension, or a folder (of frames)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in VIDEO_EXTENSIONS


def _natural_key(path: Path) -> list[int | str]:
    """frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_frames(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, in natural order (hidden files skipped)."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith(".")
    ]
    return sorted(files, key=_natural_key)


class VideoReader:
    """Frames of a video file or a folder of images as uint8 RGB arrays (H, W, 3).

    ``frames(start)`` decodes from the beginning and skips to ``start``: slower than seeking,
    but exact for every codec and container, and decoding is cheap next to colorization.
    """

    def __init__(self, path: str | Path, fps: Fraction | float | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SegcolorError("no such file or folder", self.path)
        self.frame_files: list[Path] = []
        if self.path.is_dir():
            self.info = self._probe_folder(fps)
        else:
            self.info = self._probe_file(fps)

    def _probe_folder(self, fps: Fraction | float | None) -> VideoInfo:
        self.frame_files = list_frames(self.path)
        if not self.frame_files:
            exts = ", ".join(sorted(FRAME_EXTENSIONS))
            raise SegcolorError(f"folder holds no frames ({exts})", self.path)
        first = load_image(self.frame_files[0]).rgb
        return VideoInfo(
            path=self.path,
            width=first.shape[1],
            height=first.shape[0],
            fps=_fraction(fps) if fps else DEFAULT_FOLDER_FPS,
            frames=len(self.frame_files),
            is_folder=True,
        )

    def _probe_file(self, fps: Fraction | float | None) -> VideoInfo:
        if self.path.stat().st_size == 0:
            raise SegcolorError("empty file (0 bytes)", self.path)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise SegcolorError("no video stream in this file", self.path)
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                frames = stream.frames or None
                if frames is None and container.duration and rate:
                    frames = max(1, round(container.duration / av.time_base * float(rate)))
                width, height = stream.codec_context.width, stream.codec_context.height
                has_audio = bool(container.streams.audio)
        except av.FFmpegError as err:
            raise SegcolorError(f"not a readable video ({_reason(err)})", self.path) from None
        if not width or not height:
            raise SegcolorError("video stream has no frame size", self.path)
        if fps:
            rate = _fraction(fps)
        if not rate or rate <= 0:
            raise SegcolorError("video has no frame rate; pass --fps", self.path)
        return VideoInfo(self.path, width, height, Fraction(rate), frames, has_audio)

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """uint8 RGB frames from index ``start`` on."""
        if self.info.is_folder:
            yield from self._folder_frames(start)
        else:
            yield from self._file_frames(start)

    def _folder_frames(self, start: int) -> Iterator[np.ndarray]:
        for path in self.frame_files[start:]:
            rgb = to_uint8(load_image(path).rgb)
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise SegcolorError(
                    f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the first frame "
                    f"{self.info.width}x{self.info.height}; all frames need one size",
                    path,
                )
            yield rgb

    def _file_frames(self, start: int) -> Iterator[np.ndarray]:
        index = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    if index >= start:
                        rgb = frame.to_ndarray(format="rgb24")
                        if rgb.shape[:2] != (self.info.height, self.info.width):
                            raise SegcolorError(
                                f"frame {index} changes size to {rgb.shape[1]}x{rgb.shape[0]}; "
                                "videos whose size changes are not supported",
                                self.path,
                            )
                        yield rgb
                    index += 1
        except av.FFmpegError as err:
            raise SegcolorError(
                f"cannot decode frame {index} ({_reason(err)})", self.path
            ) from None
        if index == 0:
            raise SegcolorError("no frame could be decoded", self.path)


def _fraction(value: Fraction | float) -> Fraction:
    return Fraction(value).limit_denominator(1001 * 1000)


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return str(text).splitlines()[0] if text else type(err).__name__
