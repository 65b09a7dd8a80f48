"""Training task ``profile_classifier`` with ``model.arch: profile_features_linear``.

A profile classifier that reads the router's segmenter features (see
``segcolor.profiles.classifier``), trained from the routed training cache (``data.routing``):

- inputs: each cached photo's segmenter features pooled over its cached routing weights of the
  category (the pixels that category's variants will color);
- labels: the profile of the photo's own colors over those pixels (``cache.color_profiles``:
  their dominant colors, nearest profile centroid, as `segcolor profiles fit` assigns);
- loss: cross-entropy, each photo weighted by its share of the category (a photo that is mostly
  subject says little about its background), plus ``optim.weight_decay`` x the squared weights.

It is a logistic regression on 12 k pooled vectors, so it is solved exactly by full-batch
L-BFGS: deterministic, a few seconds on a CPU, nothing to resume. Held-out photos are the
experts' (by file name). The same pooled features give the training cache's P(profile | photo)
when profile variants are trained "as routed" (``cached_profile_probabilities``), so changing
this classifier never rebuilds the cache.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segcolor.errors import SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.profiles.classifier import (
    FeatureProfileClassifier,
    create_profile_classifier,
    pool_features,
    save_classifier,
)
from segcolor.train.cache import RoutedSplit, TrainingCache, color_profiles
from segcolor.train.profile_classifier import BEST, CLASSIFIER, classifier_card, confusion_report

log = logging.getLogger(__name__)

LBFGS_ITERATIONS = 500
_BATCH = 256


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


def _weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    return (F.cross_entropy(logits, labels, reduction="none") * weight).sum() / weight.sum()


def fit_feature_classifier(cfg: dict[str, Any], split: RoutedSplit) -> list[dict[str, Any]]:
    """Train the feature profile classifier ``cfg`` describes (called by ``engine.fit``)."""
    from segcolor.profiles.data import resolve_profiles_file
    from segcolor.profiles.store import load_profiles
    from segcolor.train.engine import METRICS, seed_everything, write_config

    start = time.perf_counter()
    seed_everything(cfg["train"]["seed"])
    out, cache, category = Path(cfg["out"]), split.cache, split.category
    if category is None:
        raise SegcolorError("a profile classifier learns one category's profiles", cache.root)
    profiles_file = resolve_profiles_file(cfg["profiles"])
    profiles = load_profiles(profiles_file)
    names = profiles.names
    labels = color_profiles(cache, profiles_file, category)
    share = cache.mean_weights()[:, cache.categories.index(category)].astype(np.float32)
    train = np.array([i for i in split.train if labels[i] >= 0], dtype=np.int64)
    val = np.array([i for i in split.val if labels[i] >= 0], dtype=np.int64)
    if len(train) < len(names):
        raise SegcolorError(f"too few photos with {category!r} pixels to learn", cache.root)
    model_cfg = {k: v for k, v in cfg["model"].items() if k not in ("arch", "head", "init")}
    model_cfg.setdefault("feature_channels", int(cache.array("features").shape[1]))
    model = create_profile_classifier(len(names), arch=cfg["model"]["arch"], **model_cfg)
    assert isinstance(model, FeatureProfileClassifier)
    pooled = torch.from_numpy(pooled_cache_features(cache, category, model.context))
    y = torch.from_numpy(labels.astype(np.int64))
    weight = torch.from_numpy(share)
    with torch.no_grad():
        model.mean.copy_(pooled[train].mean(0))
        model.std.copy_(pooled[train].std(0) + 1e-4)
    decay = float(cfg["optim"]["weight_decay"])
    x_train, y_train, w_train = pooled[train], y[train], weight[train]
    optimizer = torch.optim.LBFGS(
        model.parameters(), max_iter=LBFGS_ITERATIONS, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _weighted_cross_entropy(model.logits_from_pooled(x_train), y_train, w_train)
        loss = loss + decay * model.fc.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    record: dict[str, Any] = {"epoch": 1, "solver": f"L-BFGS, {LBFGS_ITERATIONS} iterations"}
    with torch.no_grad():
        record["train_loss"] = float(
            _weighted_cross_entropy(model.logits_from_pooled(x_train), y_train, w_train)
        )
        if len(val):
            logits = model.logits_from_pooled(pooled[val])
            record["val_loss"] = float(_weighted_cross_entropy(logits, y[val], weight[val]))
            prior = torch.bincount(y_train, minlength=len(names)).float().clamp_min(1)
            record["val_loss_prior"] = float(
                _weighted_cross_entropy(prior.log().expand(len(val), -1), y[val], weight[val])
            )
            confusion = np.zeros((len(names), len(names)), np.int64)
            np.add.at(confusion, (labels[val], logits.argmax(1).numpy()), 1)
            report = confusion_report(confusion, names)
            record.update(
                val_accuracy=report["accuracy"],
                val_balanced_accuracy=report["balanced_accuracy"],
                val_recall=report["recall"],
                val_confusion=report["confusion"],
            )
    record["seconds"] = round(time.perf_counter() - start, 1)
    history = [record]
    data = {**split.summary(), "labelled_train": int(len(train)), "labelled_val": int(len(val))}
    card = classifier_card(cfg, profiles, data, history)
    card.pop("input_size", None)
    card["input"] = (
        f"the router's segmenter features pooled over the {category!r} routing weights "
        f"(+ {model.context} everywhere), standardised"
    )
    card["labels"] = "each photo's own dominant colors over those pixels, nearest profile"
    write_config(out, cfg)
    save_classifier(model, out / CLASSIFIER, card)
    save_classifier(model, out / BEST, card)
    with atomic_write(out / METRICS) as tmp:
        tmp.write_text(json.dumps(record, sort_keys=True) + "\n")
    log.info(
        "profile classifier %s: %d train / %d held-out photos; held-out log-loss %.3f "
        "(profile frequencies alone: %.3f), accuracy %.3f; %s s -> %s",
        cfg["name"],
        len(train),
        len(val),
        record.get("val_loss", float("nan")),
        record.get("val_loss_prior", float("nan")),
        record.get("val_accuracy", float("nan")),
        record["seconds"],
        out / CLASSIFIER,
    )
    return history
