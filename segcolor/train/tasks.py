"""The registry of training tasks: the one place a config's task is chosen, by ``segcolor
train`` and ``engine.main`` alike. A new task is a module with a ``Task`` subclass
(``segcolor.train.loop``) and an entry here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segcolor.config import load_yaml
from segcolor.train.distributed import DistInfo
from segcolor.train.expert import ExpertTask
from segcolor.train.gray_head import GrayHeadTask
from segcolor.train.loop import Task
from segcolor.train.profile_classifier import ProfileClassifierTask
from segcolor.train.profile_features import FeatureClassifierTask

TASKS: dict[str, type[Task]] = {
    "expert": ExpertTask,
    "profile_classifier": ProfileClassifierTask,
    "profile_features": FeatureClassifierTask,  # task profile_classifier on the routed cache
    "gray_head": GrayHeadTask,
}


def task_name(cfg: dict[str, Any]) -> str:
    """A loaded config's entry in ``TASKS``: its ``task``, except that a profile classifier
    reading the routed cache's features (validated to go with ``data.routing``) is solved."""
    name = cfg.get("task") or "expert"
    if name == "profile_classifier" and cfg["data"].get("routing"):
        return "profile_features"
    return name


def load(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[type[Task], dict[str, Any]]:
    """The task that the config at ``path`` describes, and the config as that task reads it
    (each task checks its own keys; an unknown ``task:`` is the expert schema's error)."""
    path = Path(path)
    declared = load_yaml(path).get("task")
    reader = TASKS.get(declared, ExpertTask) if isinstance(declared, str) else ExpertTask
    cfg = reader.load_config(path, overrides or {})
    return TASKS[task_name(cfg)], cfg


def create(path: str | Path, overrides: dict[str, Any], info: DistInfo) -> Task:
    task, cfg = load(path, overrides)
    return task(cfg, info)
