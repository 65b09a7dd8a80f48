"""Where a run's photos come from, as its config says: a folder split by file name, one color
profile's photos of it, or the routed cache of one or more folders (built on first use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from segcolor.errors import ConfigError
from segcolor.paths import resolve_data_path
from segcolor.pipeline import DEFAULT_PIPELINE
from segcolor.pipeline_config import load_pipeline_config
from segcolor.profiles.classifier import load_classifier
from segcolor.profiles.data import profile_members, resolve_profiles_file
from segcolor.train.cache import build_cache, reads_features
from segcolor.train.data import Split, filter_split, split_folder
from segcolor.train.routed import RoutedSplit, routed_split


def data_split(cfg: dict[str, Any]) -> Split | RoutedSplit:
    """The photos ``cfg`` trains and validates on; a missing or empty folder is an error."""
    data = cfg["data"]
    if data.get("routing"):
        return routed_data_split(cfg)
    root = resolve_data_path(data["root"], cfg["shared_dir"])
    split = split_folder(root, data["val_fraction"], data["max_images"])
    if cfg.get("profile"):  # a profile expert: that profile's photos only, on the same sides
        name = cfg["profile"]["name"]
        members = profile_members(cfg["profile"]["file"], name)
        split = filter_split(split, lambda f: f.name in members, f"profile {name!r}")
    return split


def routed_data_split(cfg: dict[str, Any]) -> RoutedSplit:
    """The routed cache of ``data.root`` (built on first use), and this expert's photos in it."""
    data, routing = cfg["data"], cfg["data"]["routing"]
    roots = data["root"] if isinstance(data["root"], list) else [data["root"]]
    folders = [resolve_data_path(r, cfg["shared_dir"]) for r in roots]
    pipeline = Path(routing["pipeline"]) if routing["pipeline"] else DEFAULT_PIPELINE
    cache_root = Path(routing["cache_dir"]).expanduser() if routing["cache_dir"] else None
    cache = build_cache(folders, pipeline, routing["cache_size"], cache_root)
    category = None if routing["category"] == "all" else routing["category"]
    profiles_file = classifier = None
    if routing["profile"] and routing["profile_from"] == "colors":
        profiles_file = resolve_profiles_file(routing["profiles"])
    elif routing["profile"]:
        classifier = features_classifier(pipeline, category, routing["classifier"])
    return routed_split(
        cache,
        data["val_fraction"],
        category,
        routing["profile"],
        routing["min_weight"],
        data["max_images"],
        routing["profile_from"],
        profiles_file,
        classifier,
    )


def features_classifier(
    pipeline: Path, category: str | None, checkpoint: str | None = None
) -> torch.nn.Module | None:
    """The profile classifier a variant is weighted by when it reads the segmenter's features
    (its P(profile) is then computed from the cache): ``checkpoint``, else the pipeline's of
    ``category``; None when that one reads lightness (the cache holds its P(profile))."""
    if checkpoint is not None:
        if not reads_features(checkpoint):
            raise ConfigError(
                f"data.routing.classifier {checkpoint} reads lightness; only a features "
                "classifier (profile_features_linear) can be applied to the cache"
            )
        return load_classifier(checkpoint)
    spec = next((c for c in load_pipeline_config(pipeline).categories if c.name == category), None)
    if spec is None or spec.classifier is None or not reads_features(spec.classifier):
        return None
    return load_classifier(spec.classifier)
