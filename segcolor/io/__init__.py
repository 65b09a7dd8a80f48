"""Reading and writing images safely: clear errors for bad files, atomic writes."""

from segcolor.io.atomic import atomic_write
from segcolor.io.images import (
    IMAGE_EXTENSIONS,
    LoadedImage,
    find_images,
    load_image,
    save_image,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "LoadedImage",
    "atomic_write",
    "find_images",
    "load_image",
    "save_image",
]
