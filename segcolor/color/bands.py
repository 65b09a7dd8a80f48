"""Full-resolution work a band of rows at a time, so memory grows with the band, not the photo.

A band holds about ``BAND_PIXELS`` pixels whatever the photo's width; its float temporaries
(a dozen of them in the Lab -> RGB conversion) stay in the tens of megabytes for any scan.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

BAND_PIXELS = 1 << 19  # ~0.5 M pixels: small enough to stay in cache-friendly tens of MB

RowFunction = Callable[[int, int], np.ndarray]  # (start, stop) -> float32 (stop - start, W)


def row_bands(height: int, width: int, band_pixels: int = BAND_PIXELS) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive row bands of about ``band_pixels`` pixels (at least a row)."""
    rows = max(1, band_pixels // max(1, width))
    for start in range(0, height, rows):
        yield start, min(height, start + rows)


def for_each_band(
    work: Callable[[int, int], None], bands: Iterable[tuple[int, int]], device: torch.device
) -> None:
    """Run ``work(start, stop)`` on every band; on the CPU, bands run side by side, one thread
    each, instead of each op of each band being split across threads.

    An op split across threads waits for its slowest thread at every step: with another job on
    the cores that made the full-resolution stage of a 24 MP photo 18x slower (1 s -> 18 s).
    Whole bands per thread share nothing, so a descheduled thread delays only its own band.
    """
    workers = min(torch.get_num_threads(), 4) if device.type == "cpu" else 1
    if workers == 1:
        for start, stop in bands:
            work(start, stop)
        return
    with _one_torch_thread(), ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda band: _inference(work, *band), bands):
            pass


def _inference(work: Callable[[int, int], None], start: int, stop: int) -> None:
    with torch.inference_mode():  # per thread: the caller's mode does not reach pool threads
        work(start, stop)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch's intra-op threads set to one while any caller is inside (threads started meanwhile
    take it); the first caller in saves the count and the last one out restores it, so callers
    on several threads cannot leave it at one."""
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def shrink_rows(
    rows_of: RowFunction,
    size: tuple[int, int],
    working: tuple[int, int],
    device: torch.device,
    band_pixels: int = BAND_PIXELS,
) -> torch.Tensor:
    """A full-size (H, W) channel, given band by band, antialiased down to ``working`` (1,1,h,w).

    The same result as one antialiased ``F.interpolate`` of the whole channel: torch resamples
    the width first and then the height, so each band is narrowed alone and only the narrow
    (H, w) intermediate is kept.
    """
    height, width = size
    bands = list(row_bands(height, width, band_pixels))
    narrow: dict[int, torch.Tensor] = {}

    def narrow_band(start: int, stop: int) -> None:
        band = torch.from_numpy(rows_of(start, stop)).to(device)[None, None]
        narrow[start] = _resize(band, (stop - start, working[1]))

    for_each_band(narrow_band, bands, device)
    return _resize(torch.cat([narrow[start] for start, _ in bands], dim=2), working)


def _resize(channel: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(channel.shape[-2:]) == size:
        return channel
    return F.interpolate(channel, size=size, mode="bilinear", antialias=True, align_corners=False)
