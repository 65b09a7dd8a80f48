"""Training data: a recursive image folder, a stable train/val split, reproducible augmentation.

Samples are RGB float tensors (3, S, S) in [0, 1]; the Lab conversion happens batched on the
training device (``to_lab_batch``). Augmentation draws its randomness from
``(seed, epoch, index)`` alone, never from a process's global RNG, so a sample looks the same
whatever the number of DataLoader workers or processes, and an interrupted run resumes exactly.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from segcolor.color.bins import NUM_BINS, ab_histogram
from segcolor.color.lab import AB_SCALE, normalize_ab, normalize_l, rgb_to_lab
from segcolor.errors import BadImageError, SegcolorError
from segcolor.io.images import find_images, load_image
from segcolor.splits import is_held_out, split_score, subset_score  # noqa: F401 (moved there)
from segcolor.splits import unit_hash as _unit_hash
from segcolor.train.losses import smooth_prior

log = logging.getLogger(__name__)

CROP_SCALE = (0.5, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
MAX_BAD_IN_A_ROW = 50


@dataclass
class Split:
    """The files of one data folder, split into training and validation images."""

    root: Path
    train: list[Path]
    val: list[Path]

    def summary(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "train_images": len(self.train),
            "val_images": len(self.val),
        }


def split_folder(root: Path, val_fraction: float, max_images: int | None = None) -> Split:
    """Split ``root``'s images by a hash of their file names.

    A file's side never depends on the other files, so adding photos does not move existing
    ones between train and val. ``max_images`` keeps the files with the smallest hashes: a
    stable, unbiased subset.
    """
    if not root.is_dir():
        raise SegcolorError("data folder not found", root)
    files = find_images(root)
    if not files:
        raise SegcolorError("no images in the data folder (jpg, png, webp, bmp, tiff)", root)
    keyed = sorted((_unit_hash(f.relative_to(root).as_posix()), f) for f in files)
    if max_images is not None:
        keyed = keyed[:max_images]
    # the salted file name decides the side (the unsalted path above decides the subset): a photo
    # held out of a category expert stays held out of a general model trained on the parent folder
    side = {f: split_score(f) for _, f in keyed}
    val = sorted(f for f in side if side[f] < val_fraction)
    if val_fraction > 0 and not val and len(side) > 1:
        val = [min(side, key=side.get)]  # a tiny folder still gets a validation image
    train = sorted(set(side) - set(val))
    if not train:
        raise SegcolorError("no training images left after the validation split", root)
    return Split(root=root, train=train, val=val)


def filter_split(split: Split, keep: Callable[[Path], bool], what: str) -> Split:
    """The files of ``split`` that ``keep`` accepts, each on its side (e.g. one color profile's
    photos, so a profile expert's rare-color prior is counted on that profile alone)."""
    train = [f for f in split.train if keep(f)]
    val = [f for f in split.val if keep(f)]
    if not train:
        raise SegcolorError(f"no training images of {what} in this folder", split.root)
    return Split(root=split.root, train=train, val=val)


def random_crop_box(height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (top, left, h, w): 50-100 % of the area, aspect 3/4..4/3."""
    area = height * width
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    ratio = width / height  # fallback, as torchvision: the central crop of a clamped aspect
    if ratio < CROP_RATIO[0]:
        w, h = width, round(width / CROP_RATIO[0])
    elif ratio > CROP_RATIO[1]:
        h, w = height, round(height * CROP_RATIO[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


class ImageFolderRGB(Dataset):
    """Images as RGB float tensors (3, size, size): random crop + flip, or a center crop.

    Indexed by ``(epoch, index)`` pairs (see ``EpochSampler``) so that augmentation is a pure
    function of the seed, the epoch and the image. Unreadable images are replaced by the next
    readable one with a warning, keeping batch sizes (and DDP ranks) in step.
    """

    def __init__(self, files: Sequence[Path], size: int, train: bool, seed: int = 0) -> None:
        self.files = list(files)
        self.size = size
        self.train = train
        self.seed = seed
        self._reported: set[Path] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int] | int) -> torch.Tensor:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        for attempt in range(min(MAX_BAD_IN_A_ROW, len(self.files))):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                rgb = load_image(path).rgb
            except BadImageError as err:
                if path not in self._reported:
                    self._reported.add(path)
                    log.warning("skipping unreadable training image: %s", err)
                continue
            image = torch.from_numpy(rgb).permute(2, 0, 1)
            return self._augment(image, epoch, index) if self.train else self._center(image)
        raise SegcolorError(
            f"{MAX_BAD_IN_A_ROW} unreadable images in a row; is this an image folder?",
            self.files[index].parent,
        )

    def _augment(self, image: torch.Tensor, epoch: int, index: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, epoch, index))
        top, left, h, w = random_crop_box(image.shape[1], image.shape[2], rng)
        image = TF.resized_crop(image, top, left, h, w, [self.size, self.size], antialias=True)
        if rng.random() < 0.5:
            image = TF.horizontal_flip(image)
        return image.clamp_(0.0, 1.0).contiguous()

    def _center(self, image: torch.Tensor) -> torch.Tensor:
        image = TF.resize(image, self.size, antialias=True)
        return TF.center_crop(image, [self.size, self.size]).clamp_(0.0, 1.0).contiguous()


class EpochSampler(Sampler):
    """A ``DistributedSampler`` (one replica when not distributed) that yields (epoch, index).

    The order is a function of (seed, epoch) alone, so it needs no saved state; tagging the
    indices with the epoch carries it into persistent DataLoader workers.
    """

    def __init__(
        self, size: int, shuffle: bool, seed: int, replicas: int = 1, rank: int = 0
    ) -> None:
        indices = range(size)
        self.inner = DistributedSampler(
            indices, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, index) for index in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


class ShardSampler(Sampler):
    """Every ``replicas``-th index, without padding: each validation image counts exactly once."""

    def __init__(self, size: int, replicas: int = 1, rank: int = 0) -> None:
        self.indices = list(range(rank, size, replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def boost_saturation(ab: torch.Tensor, boost: float) -> torch.Tensor:
    """Scale chroma by ``1 + boost`` (seed 001: counters the desaturated-prediction bias).

    Capped per pixel so that a and b stay within +-110 with the hue unchanged.
    """
    if boost == 0:
        return ab
    largest = ab.abs().amax(dim=-3, keepdim=True).clamp_min(1e-6)
    return ab * torch.clamp(AB_SCALE / largest, max=1.0 + boost)


def to_lab_batch(rgb: torch.Tensor, boost: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB batch (B,3,H,W) in [0,1] -> (normalised L input, normalised ab target)."""
    lab = rgb_to_lab(rgb.float())
    return normalize_l(lab[:, :1]), normalize_ab(boost_saturation(lab[:, 1:], boost))


def init_worker(worker_id: int) -> None:
    """DataLoader worker setup: seed numpy and ``random``; exit quietly on SIGTERM.

    A scheduler or ``kill -- -PGID`` signals every process of the run. Left to PyTorch, the
    workers die "killed by signal" and the main process reports that instead of stopping
    cleanly with its checkpoint message; exiting with status 0 lets it stop cleanly.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))


def compute_ab_prior(
    files: Sequence[Path], images: int, device: torch.device | str = "cpu", size: int = 64
) -> torch.Tensor:
    """The training set's color distribution over the 313 ab bins, smoothed (313,) float64.

    Counted on up to ``images`` files (a stable hash-ordered sample) at ``size`` pixels:
    the histogram of a few hundred small images is as good as that of all of them, and
    reading them takes about a second (less than starting DataLoader workers would).
    """
    sample = sorted(files, key=lambda f: _unit_hash(f.as_posix()))[:images]
    counts = torch.zeros(NUM_BINS, dtype=torch.float64)
    for rgb in DataLoader(ImageFolderRGB(sample, size, train=False), batch_size=64):
        counts += ab_histogram(rgb_to_lab(rgb.to(device))[:, 1:])
    return smooth_prior(counts)
