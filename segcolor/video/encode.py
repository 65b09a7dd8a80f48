"""Write colorized frames chunk by chunk, then join the chunks into the output in one step.

A chunk of a video output is a short segment in the output's own container and codec, encoded
without B-frames so segments can be joined by remuxing (no second encode, no quality lost).
Chunks of GIF and folder outputs are folders of PNG frames. Each chunk is written under a
temporary name and renamed when complete, so a finished chunk on disk is always whole.
``assemble`` joins them, copies the input's audio through, and replaces the output atomically.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from PIL import Image

from segcolor.errors import SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.video.io import CONTAINERS, VideoInfo

log = logging.getLogger(__name__)

OutputKind = Literal["video", "gif", "folder"]
VIDEO_CODECS = {  # container -> encoders to try, best first
    "mp4": ("libx264", "mpeg4"),
    "mov": ("libx264", "mpeg4"),
    "matroska": ("libx264", "mpeg4"),
    "webm": ("libvpx-vp9", "libvpx"),
    "avi": ("mpeg4",),
}
AUDIO_COPY = {  # container -> audio codecs it can hold as they are (None: anything)
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": None,
    "webm": {"opus", "vorbis"},
    "avi": {"mp3", "ac3", "aac", "pcm_s16le", "pcm_u8"},
}
AUDIO_TRANSCODE = {
    "mp4": "aac",
    "mov": "aac",
    "matroska": "aac",
    "webm": "libopus",
    "avi": "libmp3lame",
}


@dataclass(frozen=True)
class OutputSpec:
    """Where and how the colorized video is written."""

    path: Path
    kind: OutputKind
    container: str | None = None  # FFmpeg muxer of video/gif outputs
    codec: str | None = None  # video encoder of video outputs
    crf: int = 18  # H.264 constant rate factor (VP9 gets crf + 13, MPEG-4 a bit rate)

    @property
    def chunk_suffix(self) -> str:
        return self.path.suffix.lower() if self.kind == "video" else ""


def plan_output(path: str | Path, source: VideoInfo, crf: int = 18) -> OutputSpec:
    """The output's kind from its name: a known video extension, else a folder of frames."""
    path = Path(path)
    if source.path.resolve() == path.resolve():
        raise SegcolorError("output would overwrite the input; choose another -o", path)
    suffix = path.suffix.lower()
    if suffix in CONTAINERS:
        if path.is_dir():
            raise SegcolorError("a video output is wanted here, but it is a folder", path)
        container = CONTAINERS[suffix]
        if container == "gif":
            return OutputSpec(path, "gif", container="gif", crf=crf)
        codec = next((c for c in VIDEO_CODECS[container] if c in av.codecs_available), None)
        if codec is None:
            raise SegcolorError(f"this PyAV build has no encoder for {suffix} files", path)
        return OutputSpec(path, "video", container=container, codec=codec, crf=crf)
    if suffix and not path.is_dir():
        known = ", ".join(sorted(CONTAINERS))
        raise SegcolorError(f"unknown video extension {suffix!r} (use {known}, or a folder)", path)
    if path.exists() and not path.is_dir():
        raise SegcolorError("a folder of frames is wanted here, but it is a file", path)
    return OutputSpec(path, "folder")


# ---------------------------------------------------------------------------- chunks


class ChunkWriter:
    """One chunk: frames go to a temporary file or folder; ``finish`` renames it into place."""

    def __init__(self, path: Path, spec: OutputSpec, source: VideoInfo) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.count = 0
        self._discard()
        self._container: av.container.OutputContainer | None = None
        if spec.kind == "video":
            self._container = av.open(str(self.tmp), "w", format=spec.container)
            self._stream = _add_video_stream(self._container, spec, source)
        else:
            self.tmp.mkdir(parents=True)

    def write(self, rgb: np.ndarray) -> None:
        """Append one uint8 RGB frame."""
        if self._container is not None:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = self.count
            self._container.mux(self._stream.encode(frame))
        else:  # fast PNG: these are intermediate files
            Image.fromarray(rgb).save(self.tmp / f"{self.count:08d}.png", compress_level=1)
        self.count += 1

    def finish(self) -> None:
        if self._container is not None:
            self._container.mux(self._stream.encode())
            self._container.close()
            self._container = None
        if self.path.is_dir():
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError):
                self._container.close()
            self._container = None
        self._discard()

    def _discard(self) -> None:
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp)
        else:
            self.tmp.unlink(missing_ok=True)


def _add_video_stream(
    container: av.container.OutputContainer, spec: OutputSpec, source: VideoInfo
) -> av.VideoStream:
    stream = container.add_stream(spec.codec, rate=source.fps)
    stream.width, stream.height = source.width, source.height
    even = source.width % 2 == 0 and source.height % 2 == 0
    stream.pix_fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 needs even sizes
    if spec.codec == "libx264":
        stream.options = {"crf": str(spec.crf), "preset": "medium", "bf": "0"}
    elif spec.codec in ("libvpx-vp9", "libvpx"):
        stream.options = {"crf": str(min(63, spec.crf + 13)), "b": "0", "cpu-used": "4"}
        stream.pix_fmt = "yuv420p"
    else:  # MPEG-4 part 2: no CRF; ~0.6 bit per pixel looks clean
        stream.codec_context.bit_rate = int(source.width * source.height * float(source.fps) * 0.6)
        stream.codec_context.max_b_frames = 0
        stream.pix_fmt = "yuv420p"
    return stream


# ---------------------------------------------------------------------------- assembly


def assemble(
    spec: OutputSpec,
    chunks: Sequence[Path],
    source: VideoInfo,
    frame_names: Sequence[str] | None = None,
) -> None:
    """Join finished chunks into ``spec.path`` (atomically for files, frame by frame for
    folders), with the source's audio for video outputs."""
    if spec.kind == "video":
        with atomic_write(spec.path) as tmp:
            _remux(tmp, spec, chunks, source)
    elif spec.kind == "gif":
        with atomic_write(spec.path) as tmp:
            _write_gif(tmp, chunks, source.fps)
    else:
        _move_frames(spec.path, chunks, frame_names)


def _remux(tmp: Path, spec: OutputSpec, chunks: Sequence[Path], source: VideoInfo) -> None:
    with av.open(str(chunks[0])) as first:
        template = first.streams.video[0]
        options = {"movflags": "+faststart"} if spec.container in ("mp4", "mov") else {}
        with av.open(str(tmp), "w", format=spec.container, options=options) as out:
            video = out.add_stream_from_template(template)
            streams = [_video_packets(chunks, video, source.fps)]
            audio_in = _open_audio(source)
            try:
                if audio_in is not None:  # every stream exists before the first packet
                    streams.append(_audio_packets(audio_in, out, spec.container))
                for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
                    out.mux(packet)
            finally:
                if audio_in is not None:
                    audio_in.close()


def _video_packets(
    chunks: Sequence[Path], stream: av.VideoStream, fps: Fraction
) -> Iterator[tuple[Fraction, int, av.Packet]]:
    """Every chunk's packets in order, shifted by the frames before it."""
    done = 0
    for chunk in chunks:
        with av.open(str(chunk)) as container:
            source = container.streams.video[0]
            base = source.time_base
            shift = round(Fraction(done) / fps / base)
            count = 0
            for packet in container.demux(source):
                if packet.pts is None:  # the demuxer's end-of-stream marker
                    continue
                dts = packet.dts if packet.dts is not None else packet.pts
                packet.pts += shift
                packet.dts = dts + shift
                packet.stream = stream
                count += 1
                yield packet.pts * base, 0, packet
        done += count


def _open_audio(source: VideoInfo) -> av.container.InputContainer | None:
    if not source.has_audio or source.is_folder:
        return None
    return av.open(str(source.path))


def _audio_packets(
    source: av.container.InputContainer, out: av.container.OutputContainer, container: str
) -> Iterator[tuple[Fraction, int, av.Packet]]:
    """The first audio stream, copied if the container holds its codec, else re-encoded; its
    timing is shifted like the video's, which starts at zero in the output. The output stream
    is added now, before any packet is written."""
    audio = source.streams.audio[0]
    video = source.streams.video[0]
    start = Fraction(0)
    if video.start_time is not None:
        start = video.start_time * video.time_base
    allowed = AUDIO_COPY.get(container, set())
    name = audio.codec_context.name
    if allowed is None or name in allowed:
        return _copied(source, audio, out.add_stream_from_template(audio), start)
    codec = AUDIO_TRANSCODE.get(container)
    if codec is None or codec not in av.codecs_available:
        log.warning("%s audio cannot go into a %s file here: the output is silent", name, container)
        return iter(())
    log.info("re-encoding %s audio as %s for the %s container", name, codec, container)
    stream = out.add_stream(codec, rate=48000 if codec == "libopus" else audio.sample_rate)
    stream.layout = audio.layout
    return _transcoded(source, audio, stream, start)


def _copied(
    source: av.container.InputContainer,
    audio: av.AudioStream,
    stream: av.AudioStream,
    start: Fraction,
) -> Iterator[tuple[Fraction, int, av.Packet]]:
    shift = round(start / audio.time_base)
    for packet in source.demux(audio):
        if packet.pts is None:
            continue
        when = packet.pts * audio.time_base - start
        if when < 0:
            continue
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = stream
        yield when, 1, packet


def _transcoded(
    source: av.container.InputContainer,
    audio: av.AudioStream,
    stream: av.AudioStream,
    start: Fraction,
) -> Iterator[tuple[Fraction, int, av.Packet]]:
    for frame in source.decode(audio):
        if frame.pts is None:
            continue
        when = frame.pts * frame.time_base - start
        if when < 0:
            continue
        frame.pts = None  # the encoder numbers its own samples from zero
        for packet in stream.encode(frame):
            yield when, 1, packet
    for packet in stream.encode():
        yield Fraction(10**9), 1, packet  # the encoder's tail: after everything


def _chunk_pngs(chunks: Sequence[Path]) -> Iterator[Path]:
    for chunk in chunks:
        yield from sorted(chunk.glob("*.png"))


def _write_gif(tmp: Path, chunks: Sequence[Path], fps: Fraction) -> None:
    """Pillow quantises each frame to its own palette (FFmpeg's GIF encoder only has a fixed
    3-3-2 palette). GIF keeps every frame in memory while writing: GIFs are short."""
    frames = (Image.open(p).convert("RGB") for p in _chunk_pngs(chunks))
    first = next(frames)
    duration = max(20, round(1000 / float(fps) / 10) * 10)  # GIF timing is in 1/100 s
    first.save(tmp, format="GIF", save_all=True, append_images=frames, duration=duration, loop=0)


FRAME_NAME = re.compile(r"frame_\d{6}\.png")  # a folder output's frames, unless the input's


def _move_frames(folder: Path, chunks: Sequence[Path], names: Sequence[str] | None) -> None:
    """Each frame appears in the output folder in one step (a rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = list(_chunk_pngs(chunks))
    if names is None:
        names = [f"frame_{i:06d}.png" for i in range(len(files))]
    if len(names) != len(files):
        raise SegcolorError(f"expected {len(names)} frames in the work folder, found {len(files)}")
    for src, name in zip(files, names, strict=True):
        _place(src, folder / name)


def _place(src: Path, dst: Path) -> None:
    """Link (or copy) under a temporary name, then rename: the chunk keeps its frame, so an
    interrupted assembly can simply run again."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
