"""The parallel PNG encoder: lossless (Pillow reads back every pixel), valid (CRCs, zlib
checksum), the same bytes whatever the thread count, and what ``save_image`` writes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from segcolor.io import png
from segcolor.io.images import save_image

from .conftest import color_image


def encoded(pixels: np.ndarray, threads: int | None = None) -> bytes:
    buffer = io.BytesIO()
    png.write_png(buffer, pixels, threads=threads)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # chunk CRCs
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)  # inflating checks the zlib stream's adler32


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (1, 9), (37, 53)])
def test_round_trip_is_lossless(channels: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, (*shape, channels), dtype=np.uint8)
    back = decoded(encoded(pixels))
    assert np.array_equal(back.reshape(pixels.shape), pixels)


def test_many_bands_join_into_one_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "BAND_BYTES", 500)  # 3 rows a band: 14 bands for 40 rows
    pixels = color_image(40, 56)
    one = encoded(pixels, threads=1)
    assert np.array_equal(decoded(one), pixels)
    assert encoded(pixels, threads=3) == one  # bands, not threads, decide the bytes


def test_smooth_images_compress() -> None:
    pixels = color_image(120, 160)
    assert len(encoded(pixels)) < 0.1 * pixels.nbytes  # measured 6.5 % (noise: ~100 %)


def test_wrong_dtype_is_refused() -> None:
    with pytest.raises(TypeError, match="uint8"):
        encoded(np.zeros((2, 2, 3), np.uint16))


def test_save_image_writes_png_with_alpha(tmp_path) -> None:
    rgb = color_image(20, 30)
    alpha = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    save_image(tmp_path / "out.png", rgb, alpha=alpha)
    with Image.open(tmp_path / "out.png") as image:
        assert image.mode == "RGBA"
        back = np.asarray(image)
    assert np.array_equal(back[..., :3], rgb)
    assert np.array_equal(back[..., 3], np.rint(alpha * 255).astype(np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary left
