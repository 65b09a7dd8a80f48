"""Task ``profile_classifier`` with ``model.arch: profile_features_linear``.

A profile classifier that reads the router's segmenter features (see
``segcolor.profiles.classifier``), trained from the routed training cache (``data.routing``):

- inputs: each cached photo's segmenter features pooled over its cached routing weights of the
  category (the pixels that category's variants will color);
- labels: the profile of the photo's own colors over those pixels (``routed.color_profiles``:
  their dominant colors, nearest profile centroid, as `segcolor profiles fit` assigns);
- loss: cross-entropy, each photo weighted by its share of the category (a photo that is mostly
  subject says little about its background), plus ``optim.weight_decay`` x the squared weights.

It is a logistic regression on 12 k pooled vectors, so it is solved exactly by full-batch
L-BFGS: one "epoch" of one step in the training loop, deterministic, a few seconds on a CPU,
nothing to resume (no checkpoint). Held-out photos are the experts' (by file name). The same
pooled features give the training cache's P(profile | photo) when profile variants are trained
"as routed" (``routed.cached_profile_probabilities``), so changing this classifier never
rebuilds the cache.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segcolor.errors import SegcolorError
from segcolor.paths import BEST, CLASSIFIER
from segcolor.profiles.classifier import (
    FeatureProfileClassifier,
    create_profile_classifier,
    save_classifier,
)
from segcolor.profiles.data import resolve_profiles_file
from segcolor.profiles.store import load_profiles
from segcolor.train.loop import Batches, Record, Step, Task
from segcolor.train.profile_classifier import classifier_card, confusion_report
from segcolor.train.routed import RoutedSplit, color_profiles, pooled_cache_features
from segcolor.train.run import write_metrics
from segcolor.train.sources import data_split

log = logging.getLogger(__name__)

LBFGS_ITERATIONS = 500


def _weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    return (F.cross_entropy(logits, labels, reduction="none") * weight).sum() / weight.sum()


class FeatureClassifierTask(Task):
    name = "profile_features"

    @property
    def epochs(self) -> int:
        return 1  # one exact solve

    def prepare(self) -> None:
        split = data_split(self.cfg)
        assert isinstance(split, RoutedSplit)  # the config's validation pairs arch and routing
        self.split = split

    def build(self, device: torch.device, state: dict[str, Any] | None) -> None:
        self.started = time.perf_counter()
        cfg, split = self.cfg, self.split
        cache, category = split.cache, split.category
        if category is None:
            raise SegcolorError("a profile classifier learns one category's profiles", cache.root)
        profiles_file = resolve_profiles_file(cfg["profiles"])
        self.profiles = load_profiles(profiles_file)
        self.names = names = self.profiles.names
        self.labels = labels = color_profiles(cache, profiles_file, category)
        share = cache.mean_weights()[:, cache.categories.index(category)].astype(np.float32)
        self.train = np.array([i for i in split.train if labels[i] >= 0], dtype=np.int64)
        self.val = np.array([i for i in split.val if labels[i] >= 0], dtype=np.int64)
        if len(self.train) < len(names):
            raise SegcolorError(f"too few photos with {category!r} pixels to learn", cache.root)
        model_cfg = {k: v for k, v in cfg["model"].items() if k not in ("arch", "head", "init")}
        model_cfg.setdefault("feature_channels", int(cache.array("features").shape[1]))
        model = create_profile_classifier(len(names), arch=cfg["model"]["arch"], **model_cfg)
        assert isinstance(model, FeatureProfileClassifier)
        self.model = model
        self.pooled = torch.from_numpy(pooled_cache_features(cache, category, model.context))
        self.y = torch.from_numpy(labels.astype(np.int64))
        self.weight = torch.from_numpy(share)
        with torch.no_grad():
            model.mean.copy_(self.pooled[self.train].mean(0))
            model.std.copy_(self.pooled[self.train].std(0) + 1e-4)
        self.optimizer = torch.optim.LBFGS(
            model.parameters(), max_iter=LBFGS_ITERATIONS, line_search_fn="strong_wolfe"
        )

    def schedule(self) -> str | None:
        return None  # L-BFGS's line search picks its steps

    def start_epoch(self, epoch: int) -> Batches:
        return [self.train]

    def train_step(self, rows: np.ndarray) -> Step:
        model, decay = self.model, float(self.cfg["optim"]["weight_decay"])
        x, y, w = self.pooled[rows], self.y[rows], self.weight[rows]

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad()
            loss = _weighted_cross_entropy(model.logits_from_pooled(x), y, w)
            loss = loss + decay * model.fc.weight.pow(2).sum()
            loss.backward()
            return loss

        self.optimizer.step(closure)
        with torch.no_grad():  # the data term alone, at the solution
            loss = _weighted_cross_entropy(model.logits_from_pooled(x), y, w)
        return [loss], 1

    @torch.no_grad()
    def validate(self) -> Record:
        val, y, weight = self.val, self.y, self.weight
        if not len(val):
            return {}
        logits = self.model.logits_from_pooled(self.pooled[val])
        prior = torch.bincount(y[self.train], minlength=len(self.names)).float().clamp_min(1)
        frequencies = prior.log().expand(len(val), -1)
        confusion = np.zeros((len(self.names), len(self.names)), np.int64)
        np.add.at(confusion, (self.labels[val], logits.argmax(1).numpy()), 1)
        report = confusion_report(confusion, self.names)
        return {
            "val_loss": float(_weighted_cross_entropy(logits, y[val], weight[val])),
            "val_loss_prior": float(_weighted_cross_entropy(frequencies, y[val], weight[val])),
            "val_accuracy": report["accuracy"],
            "val_balanced_accuracy": report["balanced_accuracy"],
            "val_recall": report["recall"],
            "val_confusion": report["confusion"],
        }

    def record(self, epoch: int, train: Record, val: Record) -> Record:
        solver = f"L-BFGS, {LBFGS_ITERATIONS} iterations"
        record = {"epoch": 1, "solver": solver, "train_loss": train["train_loss"], **val}
        return {**record, "seconds": round(time.perf_counter() - self.started, 1)}

    def save_epoch(self, history: list[Record], improved: bool) -> None:
        category, split = self.split.category, self.split
        data = {
            **split.summary(),
            "labelled_train": int(len(self.train)),
            "labelled_val": int(len(self.val)),
        }
        card = classifier_card(self.cfg, self.profiles, data, history)
        card.pop("input_size", None)
        card["input"] = (
            f"the router's segmenter features pooled over the {category!r} routing weights "
            f"(+ {self.model.context} everywhere), standardised"
        )
        card["labels"] = "each photo's own dominant colors over those pixels, nearest profile"
        save_classifier(self.model, self.out / CLASSIFIER, card)
        save_classifier(self.model, self.out / BEST, card)
        write_metrics(self.out, history)

    def checkpoint(self, epoch: int, history: list[Record], best: dict[str, Any]) -> None:
        return None  # solved again in seconds

    def epoch_line(self, record: Record) -> str:
        return (
            f"profile classifier {self.cfg['name']}: {len(self.train)} train / {len(self.val)} "
            f"held-out photos; held-out log-loss {record.get('val_loss', float('nan')):.3f} "
            f"(profile frequencies alone: {record.get('val_loss_prior', float('nan')):.3f}), "
            f"accuracy {record.get('val_accuracy', float('nan')):.3f}; {record['seconds']} s "
            f"-> {self.out / CLASSIFIER}"
        )
