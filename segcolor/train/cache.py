"""The routed training cache: every training photo decoded and routed once, memory-mapped.

For each photo of the data folders it stores, at a fixed square size ``S`` (the centre square of
the photo at the pipeline's working resolution):

- ``images``: RGB uint8 (N,S,S,3), so an epoch costs no JPEG decoding;
- ``weights``: each category's soft routing weight (N,K,S/4,S/4) uint8, computed exactly as the
  merge computes it at inference (the router on the photo's grayscale, then feathered);
- ``features``: the segmenter's semantic features on the experts' stride-8 grid
  (N,F,S/8,S/8) float16, the same ones the pipeline hands the experts at inference;
- ``profiles``: P(profile | photo) from the profiled category's classifier (N,P) float32.

What an expert trains on from it (its photos, their loss weights, crops) is
``segcolor.train.routed``.

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
from segcolor.feature_grid import FEATURE_STRIDE, sample_features
from segcolor.io.atomic import atomic_write
from segcolor.io.images import find_images, load_image
from segcolor.merge import feather, feather_sigma
from segcolor.pipeline import LabImage, Pipeline
from segcolor.pipeline_config import load_pipeline_config
from segcolor.profiles.classifier import FeatureProfileClassifier, read_classifier_card
from segcolor.router.router import Router
from segcolor.router.segmenters import create_segmenter
from segcolor.router.weights import cache_dir

log = logging.getLogger(__name__)

FORMAT = "segcolor-train-cache/1"
WEIGHT_STRIDE = 4  # routing weights are smooth (feathered): stored at 1/4 of the image size
_SAVE_EVERY = 256


def default_cache_root() -> Path:
    """``train/`` in segcolor's per-user cache (``$SEGCOLOR_CACHE_DIR``, else
    ``~/.cache/segcolor``), beside the converted segmenter weights."""
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
