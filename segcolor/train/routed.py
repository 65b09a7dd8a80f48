"""The routed training cache as training data: which cached photos an expert learns from, how
much each pixel counts in its loss, the crops it sees, and its colors' prior.

Beside the cache, ``color_profiles-*.npy`` files (``color_profiles``) hold each photo's profile
read from its own colors, for profile variants trained on the palettes they stand for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segcolor.color.bins import NUM_BINS, ab_histogram
from segcolor.color.dcd import dominant_colors_many
from segcolor.color.lab import rgb_to_lab
from segcolor.errors import SegcolorError
from segcolor.feature_grid import FEATURE_STRIDE
from segcolor.io.atomic import atomic_write
from segcolor.profiles.classifier import FeatureProfileClassifier, pool_features
from segcolor.profiles.embedding import embed
from segcolor.profiles.kmeans import assign
from segcolor.profiles.store import load_profiles
from segcolor.splits import is_held_out, subset_score
from segcolor.train.cache import TrainingCache
from segcolor.train.losses import smooth_prior

_BATCH = 256  # photos pooled at a time


@dataclass
class RoutedSplit:
    """The photos of a cache one expert trains and validates on, with what weights its loss."""

    cache: TrainingCache
    train: list[int]
    val: list[int]
    category: str | None  # None: every pixel counts fully (a general model)
    profile: str | None = None
    profile_weight: np.ndarray | None = None  # (N,) a profile variant's weight of each photo

    @property
    def root(self) -> Path:
        return self.cache.root

    def summary(self) -> dict[str, object]:
        folders: dict[str, int] = {}
        for i in self.train:
            folders[self.cache.folders[i]] = folders.get(self.cache.folders[i], 0) + 1
        return {
            "cache": self.cache.root.name,
            "routing": self.category or "all pixels",
            **({"profile": self.profile} if self.profile else {}),
            "train_images": len(self.train),
            "val_images": len(self.val),
            "train_images_per_folder": folders,
        }


def routed_split(
    cache: TrainingCache,
    val_fraction: float,
    category: str | None,
    profile: str | None = None,
    min_weight: float = 0.02,
    max_images: int | None = None,
    profile_from: str = "classifier",
    profiles_file: Path | None = None,
    classifier: torch.nn.Module | None = None,
) -> RoutedSplit:
    """Photos in which the router gives ``category`` (and, for a profile variant, its profile)
    at least ``min_weight`` of the pixels on average, split by file name like plain folders.

    A variant's photos are weighted by P(profile | photo) from the pipeline's classifier
    (``profile_from="classifier"``: as it will be routed; pass ``classifier`` when it reads the
    segmenter's features) or by whether the photo's own colors belong to the profile
    (``"colors"``, with ``profiles_file``: what the variant stands for)."""
    share = np.ones(len(cache), dtype=np.float32)
    weight = None
    if category is not None:
        if category not in cache.categories:
            raise SegcolorError(
                f"category {category!r} is not routed by the cache's pipeline "
                f"({', '.join(cache.categories)})",
                cache.root,
            )
        share = cache.mean_weights()[:, cache.categories.index(category)]
        if profile is not None:
            if profile_from == "colors":
                if profiles_file is None:
                    raise SegcolorError("profile_from 'colors' needs a profiles file", cache.root)
                weight = profile_membership(cache, profiles_file, category, profile)
            else:
                weight = profile_probability(cache, profile, classifier, category)
            share = share * weight
    keep = np.flatnonzero(cache.ok & (share >= min_weight))
    if max_images is not None:
        by_score = sorted(keep.tolist(), key=lambda i: subset_score(Path(cache.files[i])))
        keep = np.sort(np.array(by_score[:max_images], dtype=np.int64))
    train, val = [], []
    for i in keep.tolist():
        (val if is_held_out(Path(cache.files[i]), val_fraction) else train).append(i)
    if not train:
        raise SegcolorError(f"no training photos give {category!r} any pixels", cache.root)
    return RoutedSplit(cache, train, val, category, profile, weight)


def profile_probability(
    cache: TrainingCache,
    profile: str,
    classifier: torch.nn.Module | None = None,
    category: str | None = None,
) -> np.ndarray:
    """(N,) P(profile | photo) of every cached photo as the router gives it: computed from the
    cached features by a features ``classifier`` (of ``category``), else the lightness
    classifier's, stored when the cache was built."""
    if isinstance(classifier, FeatureProfileClassifier):
        if profile not in classifier.profiles:
            raise SegcolorError(
                f"profile {profile!r} is not one of the classifier's "
                f"({', '.join(classifier.profiles)})",
                cache.root,
            )
        probabilities = cached_profile_probabilities(cache, classifier, category or "")
        return probabilities[:, classifier.profiles.index(profile)].astype(np.float32)
    if profile not in cache.profiles:
        raise SegcolorError(
            f"profile {profile!r} is not one of the cache's ({', '.join(cache.profiles)})",
            cache.root,
        )
    return np.asarray(cache.array("profiles")[:, cache.profiles.index(profile)], np.float32)


def profile_membership(
    cache: TrainingCache, profiles_file: Path, category: str, profile: str
) -> np.ndarray:
    """(N,) float32: 1 for the photos whose own colors belong to ``profile``, else 0."""
    profiles = load_profiles(profiles_file)
    names = profiles.names
    if profile not in names:
        raise SegcolorError(f"profile {profile!r} is not one of {', '.join(names)}", profiles_file)
    labels = color_profiles(cache, profiles_file, category)
    return (labels == names.index(profile)).astype(np.float32)


def color_profiles(
    cache: TrainingCache, profiles_file: Path, category: str, batch: int = 64
) -> np.ndarray:
    """(N,) int64: each cached photo's profile (an index into ``profiles_file``'s profiles)
    read from its colors: the Dominant Color Descriptor of the pixels the router gives
    ``category``, assigned to the nearest profile centroid as `segcolor profiles fit` assigns
    held-out photos; -1 for unreadable photos.

    Why both: a variant weighted by P(profile | grayscale) learns the photos the classifier
    will send it (the shipped variants); one trained on its photos' own colors learns the
    palette it stands for, which pays off only with a classifier that names the palette
    reliably (the shipped one, right for under half of the routed photos, makes such variants
    cost 0.5 dB: README). Computed once (about a minute per 10k photos) and kept beside the
    cache, keyed by the profiles file's bytes and the category."""
    profiles = load_profiles(profiles_file)
    key = hashlib.sha256(Path(profiles_file).read_bytes() + category.encode()).hexdigest()[:16]
    path = cache.root / f"color_profiles-{key}.npy"
    if path.is_file():
        return np.load(path)
    if category not in cache.categories:
        raise SegcolorError(f"category {category!r} is not routed by the cache", cache.root)
    k = cache.categories.index(category)
    settings = profiles.settings.get("descriptor", {})
    sigma = float(profiles.settings.get("embedding", {}).get("sigma", 16.0))
    centers = embed([p.centroid for p in profiles.profiles], sigma)
    images, weights, ok = cache.array("images"), cache.array("weights"), cache.ok
    labels = np.full(len(cache), -1, dtype=np.int64)
    rows = np.flatnonzero(ok)
    for start in tqdm(range(0, len(rows), batch), desc="color profiles", unit="batch"):
        chunk = rows[start : start + batch]
        masks = torch.from_numpy(np.array(weights[chunk, k])).float()[:, None] / 255
        masks = F.interpolate(masks, size=(cache.size, cache.size), mode="bilinear")[:, 0]
        descriptors = dominant_colors_many(
            [np.array(images[i]) for i in chunk],
            list(masks.numpy()),
            td=float(settings.get("td", 16.0)),
            max_colors=int(settings.get("max_colors", 8)),
            max_side=int(settings.get("max_side", 64)),
        )
        labels[chunk] = assign(embed(descriptors, sigma), centers)
    with atomic_write(path) as tmp, tmp.open("wb") as f:
        np.save(f, labels)
    return labels


def pooled_cache_features(
    cache: TrainingCache, category: str, context: float, photos: np.ndarray | None = None
) -> np.ndarray:
    """(n,F) float32: the cached features of ``photos`` (default: all) pooled over their cached
    routing weights of ``category``, exactly as ``FeatureProfileClassifier.pool`` pools."""
    k = cache.categories.index(category)
    photos = np.arange(len(cache)) if photos is None else np.asarray(photos)
    features, weights = cache.array("features"), cache.array("weights")
    out = np.zeros((len(photos), features.shape[1]), np.float32)
    for s in range(0, len(photos), _BATCH):
        rows = photos[s : s + _BATCH]
        f = torch.from_numpy(np.asarray(features[rows], np.float32))
        w = torch.from_numpy(np.asarray(weights[rows, k], np.float32))[:, None] / 255.0
        out[s : s + len(rows)] = pool_features(f, w, context).numpy()
    return out


@torch.inference_mode()
def cached_profile_probabilities(
    cache: TrainingCache, classifier: FeatureProfileClassifier, category: str
) -> np.ndarray:
    """(N,K) P(profile | photo) of every cached photo, as the router will give it."""
    if cache.array("features").shape[1] != classifier.mean.numel():
        raise SegcolorError(
            f"the profile classifier reads {classifier.mean.numel()} feature "
            f"channels; the cache holds {cache.array('features').shape[1]}",
            cache.root,
        )
    pooled = torch.from_numpy(pooled_cache_features(cache, category, classifier.context))
    return classifier.float().logits_from_pooled(pooled).softmax(1).numpy()


class RoutedPhotos(Dataset):
    """Cached photos as dicts: ``rgb`` (3,c,c) float, ``weight`` (1,c,c) the loss weight of
    each pixel, ``features`` (F,c/8,c/8) float; indexed by ``(epoch, index)`` like
    ``ImageFolderRGB`` so augmentation (a crop on the feature grid, a flip, feature dropout) is
    a pure function of (seed, epoch, index). ``balance="photo"`` rescales each sample's weights
    to mean 1, so the loss counts every photo once instead of every pixel once."""

    def __init__(
        self,
        split: RoutedSplit,
        indices: Sequence[int],
        crop: int,
        train: bool,
        seed: int = 0,
        context_weight: float = 0.1,
        feature_dropout: float = 0.0,
        features: bool = True,
        crop_scale: Sequence[float] | None = None,
        balance: str = "pixel",
    ) -> None:
        self.split = split
        self.indices = list(indices)
        self.crop = min(crop, split.cache.size) // FEATURE_STRIDE * FEATURE_STRIDE
        self.train = train
        self.seed = seed
        self.context_weight = context_weight
        self.feature_dropout = feature_dropout
        self.features = features
        self.balance = balance
        self.windows = _windows(split.cache.size, self.crop, crop_scale)
        cache = split.cache
        self._k = None if split.category is None else cache.categories.index(split.category)
        self._p = split.profile_weight
        self._arrays: dict[str, np.ndarray] = {}

    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:  # opened lazily: each DataLoader worker maps its own
            self._arrays[name] = self.split.cache.array(name)
        return self._arrays[name]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        i = self.indices[index]
        size, crop = self.split.cache.size, self.crop
        rgb = torch.from_numpy(np.array(self._array("images")[i])).permute(2, 0, 1).float() / 255
        weight = self._weight(i, size)
        feats = torch.from_numpy(np.array(self._array("features")[i])).float()
        flip, drop, window = False, False, crop
        top = left = (size - crop) // 2 // FEATURE_STRIDE * FEATURE_STRIDE
        if self.train:
            rng = np.random.default_rng((self.seed, epoch, index))
            window = self.windows[0]
            if len(self.windows) > 1:  # drawn only then, so plain crops keep their streams
                window = int(rng.choice(self.windows))
            cells = abs(size - window) // FEATURE_STRIDE
            top, left = (int(v) * FEATURE_STRIDE for v in rng.integers(0, cells + 1, size=2))
            flip = bool(rng.random() < 0.5)
            drop = bool(rng.random() < self.feature_dropout)
        s = FEATURE_STRIDE
        if window > size:  # zoom out: the square at (top, left) in a larger window, its rim
            # mirrored for the model to look at and weighted 0 (no photo there to learn from)
            pad = (left, window - size - left, top, window - size - top)
            rgb = F.pad(rgb[None], pad, mode="reflect")[0]
            weight = F.pad(weight, pad, value=0.0)
            feats = F.pad(feats[None], tuple(p // s for p in pad), mode="replicate")[0]
            top = left = 0
        rgb = rgb[:, top : top + window, left : left + window]
        weight = weight[:, top : top + window, left : left + window]
        feats = feats[:, top // s : (top + window) // s, left // s : (left + window) // s]
        if window != crop:  # a larger or smaller window resized to the crop: scale jitter
            rgb = F.interpolate(rgb[None], size=(crop, crop), mode="bilinear", antialias=True)[0]
            rgb = rgb.clamp(0.0, 1.0)
            weight = F.interpolate(weight[None], size=(crop, crop), mode="bilinear")[0]
            feats = F.interpolate(feats[None], size=(crop // s, crop // s), mode="bilinear")[0]
        if flip:
            rgb, weight, feats = rgb.flip(-1), weight.flip(-1), feats.flip(-1)
        if drop or not self.features:
            feats = torch.zeros_like(feats)
        if self.balance == "photo":
            weight = weight / weight.mean().clamp_min(1e-6)
        sample = {"rgb": rgb.contiguous(), "weight": weight.contiguous()}
        if self.features:
            sample["features"] = feats.contiguous()
        return sample

    def _weight(self, i: int, size: int) -> torch.Tensor:
        if self._k is None:
            return torch.ones(1, size, size)
        small = torch.from_numpy(np.array(self._array("weights")[i, self._k])).float() / 255
        if self._p is not None:
            small = small * float(self._p[i])
        full = F.interpolate(small[None, None], size=(size, size), mode="bilinear")[0]
        return self.context_weight + (1.0 - self.context_weight) * full


def _windows(size: int, crop: int, crop_scale: Sequence[float] | None) -> list[int]:
    """Window sides (multiples of the feature stride) a training crop is cut at before being
    resized to ``crop``: ``crop_scale`` (low, high) as fractions of the cached square; above 1
    the window is larger than the square (zoom out: things smaller than in any photo)."""
    if crop_scale is None:
        return [crop]
    low, high = crop_scale
    sides = range(FEATURE_STRIDE, int(high * size + 1e-6) + 1, FEATURE_STRIDE)
    return [w for w in sides if low * size - 1e-6 <= w <= high * size + 1e-6] or [crop]


def cached_ab_prior(split: RoutedSplit, images: int) -> torch.Tensor:
    """The ab prior of the pixels this expert is trained on (routing-weighted), over up to
    ``images`` training photos spread evenly over the split."""
    step = max(1, len(split.train) // max(images, 1))
    picks = split.train[::step][:images]
    dataset = RoutedPhotos(split, range(len(split.train)), split.cache.size, False, features=False)
    dataset.indices = picks
    counts = torch.zeros(NUM_BINS, dtype=torch.float64)
    for batch in DataLoader(dataset, batch_size=64):
        ab = rgb_to_lab(batch["rgb"])[:, 1:]
        counts += ab_histogram(ab, batch["weight"][:, 0])
    return smooth_prior(counts)
