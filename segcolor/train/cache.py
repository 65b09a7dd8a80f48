"""The routed training cache: every training photo decoded and routed once, memory-mapped.

For each photo of the data folders it stores, at a fixed square size ``S`` (the centre square of
the photo at the pipeline's working resolution):

- ``images``: RGB uint8 (N,S,S,3), so an epoch costs no JPEG decoding;
- ``weights``: each category's soft routing weight (N,K,S/4,S/4) uint8, computed exactly as the
  merge computes it at inference (the router on the photo's grayscale, then feathered);
- ``features``: the segmenter's semantic features on the experts' stride-8 grid
  (N,F,S/8,S/8) float16, the same ones the pipeline hands the experts at inference;
- ``profiles``: P(profile | photo) from the profiled category's classifier (N,P) float32.

Beside it, ``color_profiles-*.npy`` files (``color_profiles``) hold each photo's profile read
from its own colors, for profile variants trained on the palettes they stand for.

The cache is keyed by a sha256 of the router's settings, the size and the file list with each
file's bytes, so a changed photo, folder or router rebuilds it and a copied folder does not.
Building is resumable (progress is saved every few hundred photos, arrays are flushed first) and
shows a progress bar; an unreadable photo is marked and skipped, not fatal.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segcolor.errors import BadImageError, SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.io.images import find_images, load_image
from segcolor.profiles.store import load_profiles
from segcolor.router.features import FEATURE_STRIDE, sample_features

log = logging.getLogger(__name__)

FORMAT = "segcolor-train-cache/1"
WEIGHT_STRIDE = 4  # routing weights are smooth (feathered): stored at 1/4 of the image size
_SAVE_EVERY = 256


def default_cache_root() -> Path:
    """``train/`` in segcolor's per-user cache (``$SEGCOLOR_CACHE_DIR``, else
    ``~/.cache/segcolor``), beside the converted segmenter weights."""
    from segcolor.router.weights import cache_dir

    return cache_dir() / "train"


def file_list(roots: Sequence[Path]) -> list[tuple[Path, str]]:
    """Every image under ``roots`` with the name of the root it came from, in a stable order."""
    out: list[tuple[Path, str]] = []
    for root in roots:
        if not root.is_dir():
            raise SegcolorError("data folder not found", root)
        files = find_images(root)
        if not files:
            raise SegcolorError("no images in the data folder", root)
        out += [(f, root.name) for f in files]
    return out


def routing_signature(config: Any) -> str:
    """What in a pipeline config changes the routing (not which experts it names), so pointing
    a pipeline at newly trained experts does not invalidate the cache."""
    parts = [
        config.segmenter,
        config.working_size,
        config.fallback,
        repr(config.router),
        config.merge.feather,
        [(c.name, c.classes, bool(c.checkpoints)) for c in config.categories],
    ]
    if config.segmenter_head is not None:  # a gray head changes the labels (not the features)
        parts.append(hashlib.sha256(Path(config.segmenter_head).read_bytes()).hexdigest())
    for spec in config.categories:
        # a lightness classifier's P(profile) is stored in the cache; a features classifier's
        # is computed from the cached features when a variant trains (``profile_probability``)
        if spec.classifier is not None and not reads_features(spec.classifier):
            parts.append(hashlib.sha256(Path(spec.classifier).read_bytes()).hexdigest())
    return json.dumps(parts, default=str)


def reads_features(classifier: str | Path) -> bool:
    """Whether a profile classifier checkpoint reads the segmenter's features."""
    from segcolor.profiles.classifier import FeatureProfileClassifier, read_classifier_card

    return read_classifier_card(classifier).get("arch") == FeatureProfileClassifier.arch


def cache_key(files: Sequence[tuple[Path, str]], config: Any, size: int) -> str:
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}|{size}|".encode())
    digest.update(routing_signature(config).encode())
    for path, folder in files:
        # the bytes, not the modification time: a copied or re-synced folder keeps its cache,
        # an edited photo rebuilds it (hashing ~200 MB of JPEGs takes about a second)
        digest.update(f"|{folder}/{path.name}|".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@dataclass
class TrainingCache:
    """A built cache, opened read-only (arrays are memory-mapped, so workers share them)."""

    root: Path
    index: dict[str, Any]

    @classmethod
    def open(cls, root: Path) -> TrainingCache:
        index = json.loads((root / "index.json").read_text())
        if index.get("format") != FORMAT or not index.get("complete"):
            raise SegcolorError("not a complete training cache; rebuild it", root)
        return cls(root, index)

    def __len__(self) -> int:
        return len(self.index["files"])

    @property
    def size(self) -> int:
        return int(self.index["size"])

    # the index's own lists (not copies: callers index them per photo in loops); read-only
    @property
    def categories(self) -> list[str]:
        return self.index["categories"]

    @property
    def profiles(self) -> list[str]:
        return self.index["profiles"]

    @property
    def files(self) -> list[str]:
        return self.index["files"]

    @property
    def folders(self) -> list[str]:
        return self.index["folders"]

    @property
    def ok(self) -> np.ndarray:
        return np.asarray(self.index["ok"], dtype=bool)

    def array(self, name: str) -> np.ndarray:
        spec = self.index["arrays"][name]
        return np.memmap(
            self.root / f"{name}.bin", dtype=spec["dtype"], mode="r", shape=tuple(spec["shape"])
        )

    def mean_weights(self) -> np.ndarray:
        """(N,K) mean routing weight of each category per photo."""
        return np.asarray(self.index["mean_weights"], dtype=np.float32)


class PhotoReader(Dataset):
    """(index, RGB or None, error) per file, decoded in a loader worker: an unreadable photo is
    reported, not fatal."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return i, load_image(self.files[i]).rgb, ""
        except BadImageError as err:
            return i, None, str(err)


def read_photos(
    files: Sequence[Path], start: int, desc: str
) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """``files[start:]`` decoded in a loader worker, with a progress bar: (index into ``files``,
    RGB or None, the error that made it None)."""
    loader = DataLoader(
        PhotoReader(files[start:]), batch_size=None, num_workers=1, prefetch_factor=8
    )
    for offset, rgb, error in tqdm(loader, total=len(files) - start, desc=desc, unit="photo"):
        yield start + int(offset), None if rgb is None else np.asarray(rgb), error


def _shapes(n: int, size: int, categories: int, feature_channels: int, profiles: int) -> dict:
    w, f = size // WEIGHT_STRIDE, size // FEATURE_STRIDE
    return {
        "images": {"dtype": "uint8", "shape": [n, size, size, 3]},
        "weights": {"dtype": "uint8", "shape": [n, categories, w, w]},
        "features": {"dtype": "float16", "shape": [n, feature_channels, f, f]},
        "profiles": {"dtype": "float32", "shape": [n, max(profiles, 1)]},
    }


def center_square(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the centred square."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def build_cache(
    roots: Sequence[Path],
    pipeline_config: Path,
    size: int = 112,
    cache_root: Path | None = None,
    device: str | torch.device = "cpu",
) -> TrainingCache:
    """Route every photo under ``roots`` once and store what training needs (see the module
    docstring); returns the cache, reusing a complete one with the same key."""
    from segcolor.merge import feather, feather_sigma
    from segcolor.pipeline import LabImage, Pipeline
    from segcolor.router.categories import load_pipeline_config
    from segcolor.router.routing import Router
    from segcolor.router.segmenters import create_segmenter

    if size % FEATURE_STRIDE:
        raise SegcolorError(f"cache size must be a multiple of {FEATURE_STRIDE}, got {size}")
    files = file_list(roots)
    config = load_pipeline_config(pipeline_config)
    key = cache_key(files, config, size)
    root = (cache_root or default_cache_root()) / key
    if (root / "index.json").is_file():
        try:
            return TrainingCache.open(root)
        except SegcolorError:
            pass
    segmenter = create_segmenter(
        config.segmenter, weights=config.segmenter_weights, gray_head=config.segmenter_head
    )
    router = Router.from_config(config, segmenter)
    if not router.has_features:
        raise SegcolorError("the pipeline's segmenter gives no features", pipeline_config)
    segmenter.to(device).eval()
    gate = next(iter(router.gates.values()), None)
    profile_names = list(gate.profiles) if gate is not None else []
    shapes = _shapes(
        len(files), size, len(router.categories), segmenter.feature_channels, len(profile_names)
    )
    root.mkdir(parents=True, exist_ok=True)
    progress_path = root / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {}
    start = int(progress.get("done", 0))
    ok: list[bool] = progress.get("ok", [])[:start]
    mean_weights: list[list[float]] = progress.get("mean_weights", [])[:start]
    arrays = {
        name: np.memmap(
            root / f"{name}.bin",
            dtype=spec["dtype"],
            mode="r+" if start and (root / f"{name}.bin").is_file() else "w+",
            shape=tuple(spec["shape"]),
        )
        for name, spec in shapes.items()
    }
    if start:
        log.info("resuming the training cache at photo %d of %d", start + 1, len(files))

    def save_progress(done: int) -> None:
        for array in arrays.values():
            array.flush()
        with atomic_write(progress_path) as tmp:
            tmp.write_text(json.dumps({"done": done, "ok": ok, "mean_weights": mean_weights}))

    sigma_fraction = config.merge.feather
    wsize, fsize = size // WEIGHT_STRIDE, size // FEATURE_STRIDE
    cells = torch.arange(fsize, dtype=torch.float32) * FEATURE_STRIDE + (FEATURE_STRIDE - 1) / 2
    photos = read_photos([f for f, _ in files], start, "routing training photos")
    with torch.inference_mode():
        for i, rgb, error in photos:
            if rgb is None:
                log.warning("skipping unreadable training image: %s", error)
                ok.append(False)
                mean_weights.append([0.0] * len(router.categories))
            else:
                lab = LabImage.from_rgb(rgb, config.working_size, torch.device(device))
                gray = Pipeline.gray_rgb(lab)
                routing = router.route(gray, size=tuple(lab.l_small.shape[-2:]))
                h, w = routing.working_size
                weights = routing.category_weights_small.to(device)
                weights = feather(weights, feather_sigma(sigma_fraction, (h, w)))
                top, left, side = center_square(h, w)
                image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
                image = (
                    F.interpolate(image.float(), size=(h, w), mode="bilinear", antialias=True)
                    if image.shape[-2:] != (h, w)
                    else image
                )
                square = image[..., top : top + side, left : left + side]
                square = F.interpolate(square, size=(size, size), mode="bilinear", antialias=True)
                arrays["images"][i] = (
                    (square[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
                )
                wsq = weights[None, :, top : top + side, left : left + side]
                wsq = F.interpolate(wsq, size=(wsize, wsize), mode="bilinear", antialias=True)
                arrays["weights"][i] = (wsq[0].clamp(0, 1) * 255).round().byte().cpu().numpy()
                scale = side / size
                ys = top + (cells + 0.5) * scale - 0.5
                xs = left + (cells + 0.5) * scale - 0.5
                feats = sample_features(routing.features.float(), (h, w), ys, xs)
                arrays["features"][i] = feats[0].half().cpu().numpy()
                if gate is not None:  # as the router chose (it does when the category runs)
                    choice = routing.profiles.get(gate.expert)
                    if choice is None:
                        k = router.categories.index(gate.expert)
                        choice = gate.choose(lab.l_small, routing.features, weights[k][None, None])
                    arrays["profiles"][i] = [choice.probabilities[p] for p in profile_names]
                ok.append(True)
                mean_weights.append([round(float(v), 4) for v in weights.mean((1, 2))])
            done = i + 1
            if done % _SAVE_EVERY == 0:
                save_progress(done)
    save_progress(len(files))
    index = {
        "format": FORMAT,
        "complete": True,
        "size": size,
        "pipeline": str(pipeline_config),
        "categories": router.categories,
        "fallback": router.fallback,
        "profiled_category": gate.expert if gate is not None else None,
        "profiles": profile_names,
        "files": [str(f) for f, _ in files],
        "folders": [folder for _, folder in files],
        "ok": ok,
        "mean_weights": mean_weights,
        "arrays": shapes,
    }
    with atomic_write(root / "index.json") as tmp:
        tmp.write_text(json.dumps(index))
    return TrainingCache.open(root)


# ----------------------------------------------------------------------------- training data


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
    from segcolor.train.data import is_held_out, subset_score

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
    from segcolor.profiles.classifier import FeatureProfileClassifier

    if isinstance(classifier, FeatureProfileClassifier):
        from segcolor.train.profile_features import cached_profile_probabilities

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
    from segcolor.color.dcd import dominant_colors_many
    from segcolor.profiles.embedding import embed
    from segcolor.profiles.kmeans import assign

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
    from segcolor.color.bins import NUM_BINS, ab_histogram
    from segcolor.color.lab import rgb_to_lab
    from segcolor.train.losses import smooth_prior

    step = max(1, len(split.train) // max(images, 1))
    picks = split.train[::step][:images]
    dataset = RoutedPhotos(split, range(len(split.train)), split.cache.size, False, features=False)
    dataset.indices = picks
    counts = torch.zeros(NUM_BINS, dtype=torch.float64)
    for batch in DataLoader(dataset, batch_size=64):
        ab = rgb_to_lab(batch["rgb"])[:, 1:]
        counts += ab_histogram(ab, batch["weight"][:, 0])
    return smooth_prior(counts)
