"""Image loading: every odd file either loads correctly or fails with one clear line."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcolor.errors import BadImageError
from segcolor.io.images import find_images, load_image, save_image

from .conftest import color_image


def make_bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, expected error fragment) for files that must be refused."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "_good.jpg"
    Image.fromarray(color_image(64, 64)).save(good, quality=90)
    data = good.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    (folder / "notes.png").write_text("this is not an image\n")
    frames = [Image.fromarray(color_image(16, 16, seed=s)) for s in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=50)
    (folder / "huge.png").write_bytes(_png_header_only(30_000, 30_000))
    good.unlink()
    return {
        "truncated": (folder / "truncated.jpg", "corrupt or truncated"),
        "empty": (folder / "empty.png", "empty file"),
        "corrupt": (folder / "corrupt.jpg", "not a readable image"),
        "non-image": (folder / "notes.png", "not a readable image"),
        "animated": (folder / "animated.gif", "animated image with 3 frames"),
        "huge": (folder / "huge.png", "image too large"),
    }


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions (a decompression bomb) but holds almost nothing."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("name", ["truncated", "empty", "corrupt", "non-image", "animated", "huge"])
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, name):
    path, fragment = make_bad_files(tmp_path)[name]
    with pytest.raises(BadImageError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(BadImageError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(BadImageError, match="is a folder"):
        load_image(tmp_path)


def test_sixteen_bit_grayscale_keeps_its_precision(tmp_path):
    ramp = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.pixels.dtype == np.uint16 and np.array_equal(loaded.pixels, ramp)
    assert loaded.rgb.shape == (30, 40, 3)
    np.testing.assert_allclose(loaded.rgb[..., 0], ramp / 65535.0, atol=1e-6)
    assert len(np.unique(loaded.rgb)) > 256  # more levels than 8 bits could hold


def test_pixels_stay_as_decoded_and_rgb_is_a_writable_float_copy(tmp_path):
    rgb = color_image(24, 32)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(77)
    rgba.save(tmp_path / "rgba.png")
    gray = load_image(tmp_path / "gray.png")
    assert gray.pixels.dtype == np.uint8 and gray.pixels.shape == (24, 32) and gray.size == (24, 32)
    color = load_image(tmp_path / "rgb.png")
    assert color.pixels.dtype == np.uint8 and np.array_equal(color.pixels, rgb)
    np.testing.assert_allclose(color.rgb, rgb / 255.0, atol=1e-6)
    for loaded in (gray, color):
        assert loaded.rgb.flags.writeable and loaded.rgb.dtype == np.float32
    alpha = load_image(tmp_path / "rgba.png")
    assert alpha.alpha_pixels.dtype == np.uint8 and (alpha.alpha_pixels == 77).all()


def test_thirty_two_bit_integer_image_is_read_as_sixteen_bit(tmp_path):
    deep = (np.arange(30 * 40).reshape(30, 40) * 50).astype(np.int32)
    Image.fromarray(deep, "I").save(tmp_path / "deep.tif")
    loaded = load_image(tmp_path / "deep.tif")
    assert loaded.pixels.dtype == np.uint16
    np.testing.assert_allclose(loaded.rgb[..., 0], deep / 65535.0, atol=1e-6)


def test_cmyk_palette_rgba_and_gray_are_converted(tmp_path):
    rgb = color_image(24, 32)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb).quantize(64).save(tmp_path / "palette.png")
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full((24, 32), 128, np.uint8)))
    rgba.save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(rgb).convert("1").save(tmp_path / "bilevel.png")
    for name in ("cmyk.jpg", "palette.png", "rgba.png", "gray.png", "bilevel.png"):
        loaded = load_image(tmp_path / name)
        assert loaded.rgb.shape == (24, 32, 3) and loaded.rgb.dtype == np.float32
        assert loaded.rgb.min() >= 0.0 and loaded.rgb.max() <= 1.0
    assert load_image(tmp_path / "rgba.png").alpha is not None
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png").alpha, 128 / 255, atol=1e-6)
    np.testing.assert_allclose(load_image(tmp_path / "palette.png").rgb * 255, rgb, atol=40)


def _corners(height: int = 20, width: int = 50) -> np.ndarray:
    """Gray with a red top-left corner, a blue bottom-right one and a green column off-centre:
    every flip and rotation of it is a different array."""
    rgb = np.full((height, width, 3), 128, np.uint8)
    rgb[:4, :6] = (255, 0, 0)
    rgb[-3:, -8:] = (0, 0, 255)
    rgb[:, width // 2] = (0, 255, 0)
    return rgb


# EXIF orientation -> how the stored pixels are turned to display (done by hand, in numpy)
UPRIGHT = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),  # rotated 90 clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, 1),  # rotated 90 counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = _corners()
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "turned.png", exif=exif.tobytes())  # lossless: pixels compare exactly
    loaded = load_image(tmp_path / "turned.png")
    expected = UPRIGHT[orientation](stored)
    assert loaded.pixels.shape == expected.shape
    assert np.array_equal(loaded.pixels, expected)
    np.testing.assert_allclose(loaded.rgb, expected / 255.0, atol=1e-6)


def test_exif_orientation_of_a_camera_jpeg_is_applied(tmp_path):
    """The usual case: a phone's JPEG stored sideways, orientation 6 (lossy, so compared with a
    tolerance; the corners are far apart in color)."""
    stored = _corners(40, 100)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_image(tmp_path / "phone.jpg").pixels.astype(np.int16)
    expected = UPRIGHT[6](stored).astype(np.int16)
    assert loaded.shape == expected.shape == (100, 40, 3)
    assert np.abs(loaded - expected).mean() < 3
    assert np.abs(loaded[1, -2] - (255, 0, 0)).max() < 40  # red is now top-right
    assert np.abs(loaded[-2, 1] - (0, 0, 255)).max() < 40  # blue is now bottom-left
    assert np.abs(loaded[1, 1] - loaded[-2, -2]).max() < 40  # the other corners are gray


def test_save_image_is_atomic_and_round_trips(tmp_path):
    rgb = color_image(16, 24).astype(np.float32) / 255.0
    save_image(tmp_path / "out" / "x.png", rgb)
    np.testing.assert_allclose(load_image(tmp_path / "out" / "x.png").rgb, rgb, atol=1 / 255)
    save_image(
        tmp_path / "out" / "x.png", color_image(16, 24), alpha=np.full((16, 24), 9, np.uint8)
    )
    saved = np.asarray(Image.open(tmp_path / "out" / "x.png"))
    assert np.array_equal(saved[..., :3], color_image(16, 24)) and (saved[..., 3] == 9).all()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.png"]  # no temp files left
    with pytest.raises(BadImageError, match="unsupported output extension"):
        save_image(tmp_path / "x.xyz", rgb)


def test_find_images_is_recursive_and_sorted(tmp_path):
    for rel in ("b/2.png", "a/1.JPG", "c.txt", "a/.hidden.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)] == [
        "a/1.JPG",
        "b/2.png",
    ]
