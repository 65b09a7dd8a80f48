"""Load any reasonable photo, or fail with one line that says what is wrong.

Accepted and converted: 8/16-bit grayscale, RGB, palette, CMYK, RGBA/LA (alpha is kept and
re-attached on output), EXIF-rotated files. Refused: empty, truncated, corrupt or non-image
files, animations (use ``segcolor video``) and images above the decompression-bomb limit.

Pixels stay as decoded (uint8 or uint16, gray or RGB): a float RGB copy costs 12 bytes a pixel,
288 MB for a 24 MP scan, and the colorizer does not need one (``LoadedImage.rgb`` makes one).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segcolor.errors import BadImageError
from segcolor.io.atomic import atomic_write
from segcolor.io.png import write_png

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP; Pillow's own default bomb limit is ~89 MP


@dataclass
class LoadedImage:
    """An image ready for colorization, orientation already applied."""

    pixels: np.ndarray  # (H, W) gray or (H, W, 3) RGB: uint8, uint16 (16-bit) or float32 [0, 1];
    # read-only (a view of the decoded bytes)
    alpha_pixels: np.ndarray | None = None  # (H, W) uint8
    notes: list[str] = field(default_factory=list)  # conversions a user may want to know about

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    @property
    def rgb(self) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1]: a new full-size copy on each access."""
        return float_rgb(self.pixels)

    @property
    def alpha(self) -> np.ndarray | None:
        """(H, W) float32 in [0, 1], or None."""
        if self.alpha_pixels is None:
            return None
        return self.alpha_pixels.astype(np.float32) / 255.0


def float_rgb(pixels: np.ndarray) -> np.ndarray:
    """H x W or H x W x 3/4 (alpha dropped), uint8/uint16/bool/float -> float32 RGB in [0, 1]."""
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W or H x W x 3 image, got shape {array.shape}")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        rgb = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        rgb = array.astype(np.float32) / 65535.0
    else:
        rgb = np.clip(array.astype(np.float32), 0.0, 1.0)
    return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else np.ascontiguousarray(rgb)


def _pixels(image: Image.Image) -> np.ndarray:
    """The decoded values, kept in 8 or 16 bits (float only for float images)."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "ui" and array.itemsize == 2:  # the I;16 modes
        if array.dtype.kind == "i":
            array = np.clip(array, 0, None)
        return array.astype(np.uint16, copy=False)  # native byte order, a copy only if not
    if image.mode == "I":  # 32-bit int PNGs hold 16-bit data in practice
        if array.max() > 255:
            return np.clip(array, 0, 65535).astype(np.uint16)
        return np.clip(array, 0, 255).astype(np.uint8)
    if image.mode == "F":
        return np.clip(array.astype(np.float32), 0.0, 1.0)
    raise BadImageError(f"unsupported pixel format {image.mode!r}")


def _decode(path: Path, max_pixels: int) -> LoadedImage:
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                if frames > 1 and image.format != "MPO":
                    raise BadImageError(
                        f"animated image with {frames} frames; use `segcolor video` for animations"
                    )
                image.load()
                ImageOps.exif_transpose(image, in_place=True)  # no copy when upright
                return _convert(image)
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _convert(image: Image.Image) -> LoadedImage:
    notes: list[str] = []
    mode = image.mode
    alpha = None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.uint8)
        image = image.convert("RGB" if mode.startswith("RGB") else "L")
        mode = image.mode
        notes.append("alpha channel kept as is")
    if mode == "CMYK" or mode == "YCbCr" or mode == "LAB" or mode == "HSV":
        image = image.convert("RGB")
        mode = "RGB"
    if mode == "1":
        image = image.convert("L")
        mode = "L"
    if mode.startswith("I;16") or mode in ("I", "F"):
        notes.append(f"{mode} image read at full precision, written as 8-bit")
    pixels = _pixels(image)
    if pixels.ndim != (3 if mode == "RGB" else 2):
        raise BadImageError(f"unsupported pixel format {image.mode!r}")
    if pixels.shape[0] < 2 or pixels.shape[1] < 2:
        raise BadImageError(f"image is too small ({pixels.shape[1]}x{pixels.shape[0]} pixels)")
    return LoadedImage(pixels=np.ascontiguousarray(pixels), alpha_pixels=alpha, notes=notes)


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read ``path`` (``.pixels`` as decoded, ``.rgb`` as float RGB), or raise a one-line
    ``BadImageError`` naming the file."""
    path = Path(path)
    if not path.exists():
        raise BadImageError("no such file", path)
    if path.is_dir():
        raise BadImageError("is a folder, not an image", path)
    if path.stat().st_size == 0:
        raise BadImageError("empty file (0 bytes)", path)
    try:
        return _decode(path, max_pixels)
    except BadImageError as err:
        raise BadImageError(str(err), path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImageError(
            f"image too large ({err}); limit is {max_pixels:,} pixels", path
        ) from None
    except UnidentifiedImageError:
        raise BadImageError(
            "not a readable image (unknown format or corrupt header)", path
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BadImageError(f"corrupt or truncated image ({reason})", path) from None


def save_image(
    path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None, quality: int = 95
) -> None:
    """Write RGB (float in [0,1], or uint8 as is) atomically; the format follows the extension.
    ``alpha``: (H, W) float in [0,1] or uint8."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadImageError(
            f"unsupported output extension {path.suffix!r} (use one of "
            f"{', '.join(sorted(OUTPUT_FORMATS))})",
            path,
        )
    if fmt == "PNG":  # lossless, deflated on every core (segcolor.io.png)
        pixels = _as_uint8(rgb)
        if alpha is not None:
            pixels = np.concatenate([pixels, _as_uint8(alpha)[..., None]], axis=-1)
        with atomic_write(path) as tmp, open(tmp, "wb") as fh:
            write_png(fh, pixels)
        return
    image = Image.fromarray(_as_uint8(rgb), "RGB")
    if alpha is not None and fmt in ("WEBP", "TIFF"):
        image.putalpha(Image.fromarray(_as_uint8(alpha)))
    options: dict = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "JPEG":
        options["subsampling"] = 0  # 4:4:4: chroma is what we produce, keep all of it
    with atomic_write(path) as tmp:
        image.save(tmp, format=fmt, **options)


def _as_uint8(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def find_images(root: str | Path) -> list[Path]:
    """All image files under ``root``, recursively, sorted so runs are reproducible."""
    root = Path(root)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def iter_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Expand files and folders into (file, path relative to its input root) pairs."""
    pairs: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            pairs.extend((p, p.relative_to(item)) for p in find_images(item))
        else:
            pairs.append((item, Path(item.name)))
    return pairs
