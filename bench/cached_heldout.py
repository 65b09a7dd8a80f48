"""Models compared on the routed training cache's held-out photos (quick, no segmenter pass).

The routed cache (``segcolor.train.cache``: 112-px squares, routing weights, segmenter features)
holds the held-out tenth of the training folders too; scoring on it takes a minute where
``bench/quality.py`` takes ten, so it is where heads, losses and variants are compared before a
full evaluation. Two tables:

- ``experts``: each checkpoint on every pixel of the held-out photos: ab RMSE, PSNR (8-bit
  RGB), colorfulness (Hasler-Suesstrunk), |Δ colorfulness| to the photo and the correlation of
  the output's colorfulness with the photo's. ``CKPT@T`` decodes a 313-bin classification head
  with the annealed mean at temperature T.
- ``variants``: profile variants on the background (places-weighted) pixels, mixed as the router
  mixes them by the classifier's P(profile) (``--classifier``: a features classifier applied to
  the cached features; default, the P stored in the cache), by each photo's true profile (its
  own background colors, nearest profile), and uniformly.

    python bench/cached_heldout.py experts segcolor/weights/general.safetensors \\
        runs/routed/general_cls05/expert.safetensors@0.38
    python bench/cached_heldout.py variants --variants "segcolor/weights/places_{name}.safetensors"

The cache is the routed recipe's (``configs/routed``: the four training folders, 112 px, the
shipped pipeline's router), built on first use (about 25 min on a 2-core CPU).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segcolor.color.lab import lab_to_rgb, normalize_l, rgb_to_lab
from segcolor.evaluate.metrics import colorfulness
from segcolor.experts import load_expert
from segcolor.paths import resolve_data_path
from segcolor.pipeline import DEFAULT_PIPELINE
from segcolor.router.gates import mix_weights
from segcolor.train.cache import TrainingCache, build_cache
from segcolor.train.routed import color_profiles

from common import CATEGORIES, held_out_photos, table_header

AB_SCALE = 110.0


def open_cache(size: int) -> TrainingCache:
    folders = [resolve_data_path(f"data/train/{c}", None) for c in CATEGORIES]
    return build_cache(folders, DEFAULT_PIPELINE, size)


def held_out(cache: TrainingCache, stride: int, category: str | None = None) -> np.ndarray:
    held = set(held_out_photos(cache.files))
    keep = cache.ok & np.array([Path(f) in held for f in cache.files])
    if category is not None:
        keep &= cache.mean_weights()[:, cache.categories.index(category)] >= 0.02
    return np.flatnonzero(keep)[::stride]


def batches(cache: TrainingCache, photos: np.ndarray, size: int = 32):
    """(indices, Lab (B,3,S,S), normalised L, features) per batch of cached photos."""
    images, features = cache.array("images"), cache.array("features")
    for start in range(0, len(photos), size):
        rows = photos[start : start + size]
        rgb = torch.from_numpy(np.asarray(images[rows])).permute(0, 3, 1, 2).float() / 255
        lab = rgb_to_lab(rgb)
        yield (
            rows,
            lab,
            normalize_l(lab[:, :1]),
            torch.from_numpy(np.asarray(features[rows], np.float32)),
        )


def to_uint8(lab: torch.Tensor) -> np.ndarray:
    rgb = lab_to_rgb(lab).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return (rgb * 255).round().astype(np.uint8)


def experts_table(cache: TrainingCache, specs: list[str], stride: int) -> None:
    photos = held_out(cache, stride)
    models = []
    for spec in specs:
        path, _, temperature = spec.partition("@")
        model = load_expert(path).eval()
        if temperature:
            model.temperature = float(temperature)
        models.append((spec, model))
    sq_err = {s: 0.0 for s, _ in models}
    cf = {s: [] for s, _ in models}
    psnr = {s: [] for s, _ in models}
    truth_cf: list[float] = []
    with torch.inference_mode():
        for _, lab, l_norm, features in batches(cache, photos):
            truth = to_uint8(lab)
            truth_cf += [colorfulness(t) for t in truth]
            for spec, model in models:
                ab = model(l_norm, features) * AB_SCALE
                sq_err[spec] += float(((ab - lab[:, 1:]) ** 2).mean((1, 2, 3)).sum())
                out = to_uint8(torch.cat([lab[:, :1], ab], 1))
                for o, t in zip(out, truth, strict=True):
                    cf[spec].append(colorfulness(o))
                    mse = float(((o.astype(np.float64) - t) ** 2).mean())
                    psnr[spec].append(10 * np.log10(255**2 / max(mse, 1e-6)))
    photos_cf = np.array(truth_cf)
    print(f"{len(photos)} held-out photos of the cache; their colorfulness {photos_cf.mean():.1f}")
    columns = ["model", "ab RMSE ↓", "PSNR dB ↑", "CF", "\\|ΔCF\\| ↓", "corr(CF, photo's)"]
    print(table_header(columns, "lrrrrr"))
    for spec, _ in models:
        out_cf = np.array(cf[spec])
        print(
            f"| {spec} | {np.sqrt(sq_err[spec] / len(photos) / 2):.2f} "
            f"| {np.mean(psnr[spec]):.2f} | {out_cf.mean():.1f} "
            f"| {np.abs(out_cf - photos_cf).mean():.1f} "
            f"| {np.corrcoef(out_cf, photos_cf)[0, 1]:.2f} |"
        )


def variants_table(
    cache: TrainingCache, pattern: str, classifier: str | None, profiles: Path, stride: int
) -> None:
    names = cache.profiles
    category = "places"
    k = cache.categories.index(category)
    photos = held_out(cache, stride, category)
    variants = {n: load_expert(pattern.format(name=n)).eval() for n in names}
    if classifier:
        from segcolor.profiles.classifier import load_classifier
        from segcolor.train.routed import cached_profile_probabilities

        model = load_classifier(classifier)
        p_classifier = cached_profile_probabilities(cache, model, category)
        p_classifier = p_classifier[:, [model.profiles.index(n) for n in names]]
    else:
        p_classifier = np.asarray(cache.array("profiles"), np.float32)
    labels = color_profiles(cache, profiles, category)
    mixes = {
        "classifier (P ≥ 0.3, as routed)": (p_classifier, 0.3),
        "classifier (all variants)": (p_classifier, 0.0),
        "true profile": (np.eye(len(names), dtype=np.float32)[labels.clip(0)], 0.3),
        "uniform": (np.full((len(cache), len(names)), 1 / len(names), np.float32), 0.0),
    }
    weights = cache.array("weights")
    sq_err = {m: 0.0 for m in mixes}
    total = 0.0
    with torch.inference_mode():
        for rows, lab, l_norm, features in batches(cache, photos):
            outs = torch.stack([variants[n](l_norm, features) * AB_SCALE for n in names], 1)
            w = torch.from_numpy(np.asarray(weights[rows, k], np.float32) / 255)[:, None]
            w = F.interpolate(w, size=lab.shape[-2:], mode="bilinear")
            total += float(w.sum())
            for mix, (p, threshold) in mixes.items():
                chosen = [
                    mix_weights(dict(zip(names, p[i].tolist(), strict=True)), names, threshold)
                    for i in rows
                ]
                mw = torch.tensor([[m.get(n, 0.0) for n in names] for m in chosen])
                ab = (outs * mw[:, :, None, None, None]).sum(1)
                sq_err[mix] += float((((ab - lab[:, 1:]) ** 2).sum(1, keepdim=True) * w).sum())
    print(f"{len(photos)} held-out photos with background; variants {pattern}")
    print(table_header(["variants mixed by", "background ab RMSE ↓"], "lr"))
    for mix, err in sq_err.items():
        print(f"| {mix} | {np.sqrt(err / total / 2):.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-size", type=int, default=112)
    parser.add_argument("--stride", type=int, default=2, help="every n-th held-out photo")
    parser.add_argument("--threads", type=int, default=2)
    sub = parser.add_subparsers(dest="table", required=True)
    experts = sub.add_parser("experts")
    experts.add_argument("checkpoints", nargs="+", help="CKPT or CKPT@T (annealed-mean T)")
    variants = sub.add_parser("variants")
    variants.add_argument("--variants", default="segcolor/weights/places_{name}.safetensors")
    variants.add_argument("--classifier", default=None, help="a features profile classifier")
    variants.add_argument("--profiles", default="configs/profiles/places.yaml", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = open_cache(args.cache_size)
    if args.table == "experts":
        experts_table(cache, args.checkpoints, args.stride)
    else:
        variants_table(cache, args.variants, args.classifier, args.profiles, args.stride)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
