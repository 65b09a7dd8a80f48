"""Load any reasonable photo as float RGB, or fail with one line that says what is wrong.

Accepted and converted: 8/16-bit grayscale, RGB, palette, CMYK, RGBA/LA (alpha is kept and
re-attached on output), EXIF-rotated files. Refused: empty, truncated, corrupt or non-image
files, animations (use ``segcolor video``) and images above the decompression-bomb limit.
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
    """An image ready for colorization."""

    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1], orientation already applied
    alpha: np.ndarray | None = None  # (H, W) float32 in [0, 1]
    notes: list[str] = field(default_factory=list)  # conversions a user may want to know about

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]


def _to_float(image: Image.Image) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == bool:
        return array.astype(np.float32)
    if image.mode.startswith("I;16") or array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if image.mode == "I":  # 32-bit int PNGs hold 16-bit data in practice
        top = 65535.0 if array.max() > 255 else 255.0
        return np.clip(array.astype(np.float32) / top, 0.0, 1.0)
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
                image = ImageOps.exif_transpose(image)
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
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
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
    if mode == "RGB":
        rgb = _to_float(image)
    else:
        gray = _to_float(image)
        if gray.ndim != 2:
            raise BadImageError(f"unsupported pixel format {image.mode!r}")
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise BadImageError(f"image is too small ({rgb.shape[1]}x{rgb.shape[0]} pixels)")
    return LoadedImage(rgb=np.ascontiguousarray(rgb, dtype=np.float32), alpha=alpha, notes=notes)


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read ``path`` as float RGB, or raise a one-line ``BadImageError`` naming the file."""
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
    """Write float RGB in [0,1] atomically; the format follows the extension."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadImageError(
            f"unsupported output extension {path.suffix!r} (use one of "
            f"{', '.join(sorted(OUTPUT_FORMATS))})",
            path,
        )
    pixels = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        image.putalpha(Image.fromarray(np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)))
    options: dict = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "JPEG":
        options["subsampling"] = 0  # 4:4:4: chroma is what we produce, keep all of it
    with atomic_write(path) as tmp:
        image.save(tmp, format=fmt, **options)


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
