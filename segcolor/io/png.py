"""A PNG encoder that uses every core: the output format archives keep, at JPEG-like speed.

Pillow writes PNG with zlib at level 6 in one thread: 24 MP of colorized photo took ~8 s of a
~13 s ``segcolor colorize`` run. Here each row gets PNG's "Sub" filter (a vectorised difference
with the pixel to its left, which suits smooth photographic colour about as well as Pillow's
adaptive choice), bands of rows are deflated at level 2 in parallel threads (the deflater
releases the GIL), and the raw deflate streams are joined with sync flushes into one zlib
stream, as pigz does. The deflater is ISA-L's (``isal``, the zlib-compatible binding of Intel's
ISA-L: 3.5× zlib's speed at its level 2 on this data, 34.4 MB for the 24 MP benchmark scan
against Pillow's 35.0), else zlib's (32.9 MB, slower). The bands are fixed by the image size,
not the thread count, so the bytes depend only on the deflater. The result is an ordinary,
lossless 8-bit PNG (checked: Pillow reads back every pixel).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

try:  # ISA-L's deflate, zlib-compatible output; plain zlib where its wheel is missing
    from isal import isal_zlib as deflater
except ImportError:  # pragma: no cover - the dependency is declared; a platform may lack it
    deflater = zlib  # type: ignore[assignment]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEVEL = 2  # 1-3 cost about the same here; 2 is the smallest of the fast ones (ISA-L: 0-3)
BAND_BYTES = 4 << 20  # filtered bytes deflated per task (the window restarts at each band)
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA
_SUB_FILTER = 1


def _chunk(kind: bytes, data: bytes | memoryview) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return b"".join((struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)))


def sub_filtered(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (H, 1 + W*C) rows, each the filter byte then the Sub-filtered row."""
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    out = np.empty((height, 1 + width * channels), np.uint8)
    out[:, 0] = _SUB_FILTER
    out[:, 1 : 1 + channels] = rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=out[:, 1 + channels :])
    return out


def _deflate(rows: np.ndarray, last: bool, level: int) -> bytes:
    """One band as raw deflate, ending on a byte boundary (sync flush) unless it is the last."""
    compressor = deflater.compressobj(level, deflater.DEFLATED, -15)
    end = deflater.Z_FINISH if last else deflater.Z_SYNC_FLUSH
    return compressor.compress(rows) + compressor.flush(end)


def default_threads() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def write_png(
    fh: BinaryIO, pixels: np.ndarray, level: int = LEVEL, threads: int | None = None
) -> None:
    """Write ``pixels`` ((H, W) or (H, W, C) uint8, C in 1-4) to ``fh`` as a PNG."""
    if pixels.dtype != np.uint8:
        raise TypeError(f"write_png takes uint8 pixels, not {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    height, width, channels = pixels.shape
    filtered = sub_filtered(np.ascontiguousarray(pixels))
    rows_per_band = max(1, BAND_BYTES // filtered.shape[1])
    starts = list(range(0, height, rows_per_band))
    bands = [filtered[s : s + rows_per_band] for s in starts]
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    fh.write(SIGNATURE + _chunk(b"IHDR", header))
    fh.write(_chunk(b"IDAT", b"\x78\x5e"))  # zlib header: deflate, 32 KB window, level 2
    workers = threads or default_threads()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        deflated = pool.map(
            lambda i: _deflate(bands[i], i == len(bands) - 1, level), range(len(bands))
        )
        for data in deflated:  # in order, each written as soon as it is ready
            fh.write(_chunk(b"IDAT", data))
    fh.write(_chunk(b"IDAT", struct.pack(">I", zlib.adler32(filtered))))
    fh.write(_chunk(b"IEND", b""))
