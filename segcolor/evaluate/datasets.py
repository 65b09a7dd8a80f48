"""Evaluation photos: which files to use, and the ground-truth category mask beside each one.

Masks are read into one convention, the COCO ``*_semantic.png`` one of ``data/eval_masks``:
0 background/other, 1 person, 2 bird, 3 animal, 255 ignore. The other mask layouts there are
converted into it: ADE20K-150 label maps (``*_ade150.png``; 13 person, 127 animal, 0 unlabeled
is ignored) and DAVIS binary masks (``*_mask.png``, the foreground's class from the folder's
``index.json``). Mask files are never evaluated as photos themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segcolor.errors import BadImageError, SegcolorError
from segcolor.io.images import IMAGE_EXTENSIONS, find_images
from segcolor.splits import is_held_out

IGNORE = 255
# mask code -> the category region it is reported under; IGNORE is in no region
REGIONS = {1: "people", 2: "birds", 3: "animals", 0: "places"}
REGION_ORDER = ("people", "birds", "animals", "places")
MASK_SUFFIXES = ("_semantic", "_ade150", "_mask", "_instances")
ADE_PERSON, ADE_ANIMAL = 13, 127


@dataclass(frozen=True)
class PhotoRef:
    """A photo to evaluate and the name it is reported under."""

    path: Path
    name: str  # "<dataset>/<path inside it>", unique in a run
    dataset: str  # the DATA argument it came from (its folder's name)


def _subset_key(path: Path) -> str:
    """Order of a ``--limit`` subset: a hash of the file name, so a cap is an unbiased sample
    (sorted names would favour, e.g., UTKFace's youngest faces) and the same on every machine."""
    return hashlib.sha1(("subset:" + path.name).encode("utf-8")).hexdigest()


def _is_mask(path: Path, stems: set[str]) -> bool:
    stem = path.stem
    return any(stem.endswith(s) and stem[: -len(s)] in stems for s in MASK_SUFFIXES)


def _photos_in(folder: Path) -> list[Path]:
    files = find_images(folder)
    stems: dict[Path, set[str]] = {}
    for f in files:
        stems.setdefault(f.parent, set()).add(f.stem)
    return [f for f in files if not _is_mask(f, stems[f.parent])]


def find_photos(
    inputs: Sequence[str | Path],
    held_out: float | None = None,
    limit: int | None = None,
    skip: int = 0,
) -> list[PhotoRef]:
    """Photos of every input (files or folders, recursively), in a reproducible order.

    ``held_out``: only photos that training with this validation fraction never used.
    ``limit``: at most this many per input, a fixed pseudo-random subset; ``skip``: leave out the
    first ``skip`` of that pseudo-random order (a pick disjoint from ``limit=skip``'s).
    """
    refs: list[PhotoRef] = []
    seen: set[Path] = set()
    used: set[str] = set()
    for item in map(Path, inputs):
        if not item.exists():
            raise SegcolorError("no such file or folder", item)
        if item.is_dir():
            pairs = [(p, p.relative_to(item)) for p in _photos_in(item)]
            dataset = item.resolve().name or "data"
        else:
            if item.suffix.lower() not in IMAGE_EXTENSIONS:
                raise BadImageError(
                    f"not an image file (expected {', '.join(sorted(IMAGE_EXTENSIONS))})", item
                )
            pairs = [(item, Path(item.name))]
            dataset = item.resolve().parent.name or "data"
        base, n = dataset, 2
        while dataset in used and item.is_dir():
            dataset, n = f"{base}-{n}", n + 1
        used.add(dataset)
        if held_out is not None:
            pairs = [(p, r) for p, r in pairs if is_held_out(p, held_out)]
        if limit is not None or skip:
            end = None if limit is None else skip + limit
            pairs = sorted(sorted(pairs, key=lambda pr: _subset_key(pr[0]))[skip:end])
        for path, rel in pairs:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                name = f"{dataset}/{rel.as_posix()}"
                refs.append(PhotoRef(path=path, name=name, dataset=dataset))
    return refs


def _read_labels(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16", "1"):
                raise BadImageError(f"mask must be single-channel labels, not {image.mode}", path)
            return np.asarray(image).astype(np.int64)
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImageError(f"unreadable mask ({err})", path) from None


def _davis_code(folder: Path, photo: str) -> int | None:
    """The mask code of a DAVIS photo's foreground, from the folder's ``index.json``."""
    index = folder / "index.json"
    if not index.is_file():
        return None
    try:
        entries = json.loads(index.read_text(encoding="utf-8")).get("images", [])
    except (OSError, ValueError, AttributeError):
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("image") == photo:
            label = str(entry.get("foreground", ""))
            if "+" in label.split("(")[0]:
                return IGNORE  # e.g. "person+animal(horse)": one binary mask for two groups
            return {"person": 1, "bird": 2, "animal": 3}.get(label.split("(")[0], IGNORE)
    return None


def load_mask(photo: Path, size: tuple[int, int]) -> np.ndarray | None:
    """The photo's category mask (H,W) uint8 in the COCO convention, or None if it has none."""
    semantic = photo.with_name(f"{photo.stem}_semantic.png")
    ade = photo.with_name(f"{photo.stem}_ade150.png")
    davis = photo.with_name(f"{photo.stem}_mask.png")
    if semantic.is_file():
        path, labels = semantic, _read_labels(semantic)
        bad = ~np.isin(labels, [0, 1, 2, 3, IGNORE])
        if bad.any():
            raise BadImageError(
                f"mask value {int(labels[bad][0])} is not 0-3 or 255 (background, person, bird, "
                "animal, ignore)",
                path,
            )
        codes = labels
    elif ade.is_file():
        path, labels = ade, _read_labels(ade)
        codes = np.zeros_like(labels)
        codes[labels == ADE_PERSON] = 1
        codes[labels == ADE_ANIMAL] = 3
        codes[labels == 0] = IGNORE  # unlabeled
    elif davis.is_file() and (code := _davis_code(photo.parent, photo.name)) is not None:
        path, labels = davis, _read_labels(davis)
        codes = np.where(labels > 0, code, 0)
    else:
        return None
    if codes.shape != tuple(size):
        raise BadImageError(
            f"mask is {codes.shape[1]}x{codes.shape[0]} but the photo is {size[1]}x{size[0]}",
            path,
        )
    return codes.astype(np.uint8)


def region_masks(codes: np.ndarray) -> dict[str, np.ndarray]:
    """Category name -> bool (H,W) of its pixels (ignored pixels belong to none)."""
    return {name: codes == code for code, name in REGIONS.items()}
