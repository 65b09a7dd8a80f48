"""Teach the router's segmenter to see gray photos: distil its color answers into a gray head.

The segmenter was trained on color photos; on the same photos in gray it misses many people,
birds and animals (``segcolor.router.segmenters.gray_head``). Training photos are in color, so
each one gives a free lesson: the segmenter's class logits on the color photo (the teacher)
and its features on the photo's gray version (what the router will have at inference). The
head learns to turn the gray features into the teacher's answer (soft cross-entropy on the
network's grid); the backbone stays frozen, so the features the experts read do not change.

Pairs are computed once per photo into a memory-mapped cache (resumable, keyed by the
segmenter and the photos' bytes); the head then trains in seconds per epoch. A YAML with
``task: gray_head`` (configs/router/gray_head.yaml) drives it through ``segcolor train``, in
the one training loop (``segcolor.train.loop``); its checkpoint keeps its own small format.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from segcolor.config import check_keys, deep_merge, load_yaml, set_dotted
from segcolor.errors import CheckpointError, ConfigError, SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.io.images import find_images
from segcolor.paths import resolve_data_path
from segcolor.pipeline import DEFAULT_PIPELINE, LabImage, Pipeline
from segcolor.pipeline_config import load_pipeline_config
from segcolor.router.segmenters import create_segmenter
from segcolor.router.segmenters.gray_head import GrayHead
from segcolor.splits import split_score
from segcolor.train.cache import default_cache_root, read_photos
from segcolor.train.loop import Record, Step, Task
from segcolor.train.run import CHECKPOINT, read_state

log = logging.getLogger(__name__)

TASK = "gray_head"
CACHE_FORMAT = "segcolor-gray-head-pairs/1"
HEAD_FILE = "gray_head.safetensors"

DEFAULTS: dict[str, Any] = {
    "name": None,  # defaults to the config file's stem
    "task": TASK,
    "shared_dir": None,  # else $SEGCOLOR_SHARED_DIR; relative data roots are looked up there
    "pipeline": None,  # whose segmenter, working size and categories (default: the shipped one)
    "out": None,  # defaults to runs/<name>
    "data": {
        "root": None,  # color photo folder(s)
        "val_fraction": 0.1,  # the experts' held-out photos (by file name) are never used
        "per_folder": 800,  # photos per folder (a stable, unbiased subset of the training side)
        "check_every": 10,  # every Nth photo checks the head (its own validation)
        "cache_dir": None,  # default $SEGCOLOR_CACHE_DIR, else ~/.cache/segcolor/train
    },
    "model": {"hidden": 64},
    "optim": {"lr": 1e-3, "weight_decay": 1e-4, "warmup": 0.05},
    "train": {"epochs": 12, "batch_size": 32, "seed": 0},
}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    path = Path(path)
    user = load_yaml(path)
    for dotted, value in (overrides or {}).items():  # flags are checked like the YAML's keys
        set_dotted(user, dotted, value)
    check_keys(user, DEFAULTS, "", path)
    for section in ("data", "model", "optim", "train"):
        if section in user:
            if not isinstance(user[section], dict):
                raise ConfigError(f"{section!r} must be a mapping", path)
            check_keys(user[section], DEFAULTS[section], f"{section}.", path)
    cfg = deep_merge(DEFAULTS, user)
    cfg["name"] = cfg["name"] or path.stem
    cfg["out"] = cfg["out"] or f"runs/{cfg['name']}"
    if not cfg["data"]["root"]:
        raise ConfigError("data.root: give the color photo folder(s) to learn from", path)
    for key, low in (("train.epochs", 1), ("train.batch_size", 1), ("data.per_folder", 1)):
        section, name = key.split(".")
        value = cfg[section][name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}", path)
    if not 0 <= float(cfg["data"]["val_fraction"]) < 1:
        raise ConfigError("data.val_fraction must be in [0, 1)", path)
    return cfg


# ----------------------------------------------------------------------------- the photos


def pick_photos(folders: list[Path], val_fraction: float, per_folder: int) -> list[Path]:
    """Per folder, the ``per_folder`` training-side photos with the smallest split hashes: a
    stable, unbiased subset that never includes a photo held out of the experts."""
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise SegcolorError("data folder not found", folder)
        side = sorted(
            (split_score(f), f) for f in find_images(folder) if split_score(f) >= val_fraction
        )
        if not side:
            raise SegcolorError("no training photos in the data folder", folder)
        files += [f for _, f in side[:per_folder]]
    return files


def color_and_gray(rgb: np.ndarray, working_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The photo at the pipeline's working resolution, in color and as the router sees it."""
    lab = LabImage.from_rgb(rgb, working_size, torch.device("cpu"))
    gray = Pipeline.gray_rgb(lab)
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    if image.shape[-2:] != gray.shape[-2:]:
        image = F.interpolate(image, size=gray.shape[-2:], mode="bilinear", antialias=True)
    return image.clamp(0, 1), gray


def pair_cache(
    files: list[Path], segmenter: Any, working_size: int, cache_root: Path, signature: str
) -> dict[str, np.ndarray]:
    """Per photo: the teacher's logits (color) and the gray features, on the network's grid,
    memory-mapped; built once, resumably (progress is saved every 64 photos)."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{signature}|{working_size}".encode())
    for f in files:
        digest.update(f"|{f.name}|".encode() + hashlib.sha256(f.read_bytes()).digest())
    root = cache_root / f"gray_head-{digest.hexdigest()[:16]}"
    probe = torch.zeros(1, 3, 64, 64)
    with torch.inference_mode():
        logits, features = segmenter.grid_outputs(probe)
    shapes = {
        "teacher": (len(files), *logits.shape[1:]),
        "features": (len(files), *features.shape[1:]),
    }
    progress_path = root / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {}
    start, ok = int(progress.get("done", 0)), list(progress.get("ok", []))
    root.mkdir(parents=True, exist_ok=True)
    mode = "r+" if start else "w+"
    arrays = {
        name: np.lib.format.open_memmap(root / f"{name}.npy", mode, np.float16, shape)
        for name, shape in shapes.items()
    }

    def save(done: int) -> None:
        for array in arrays.values():
            array.flush()
        with atomic_write(progress_path) as tmp:
            tmp.write_text(json.dumps({"done": done, "ok": ok[:done]}))

    with torch.inference_mode():
        for i, rgb, error in read_photos(files, start, "segmenter on color + gray"):
            if rgb is None:
                log.warning("skipping unreadable photo: %s", error)
                ok.append(False)
            else:
                color, gray = color_and_gray(rgb, working_size)
                teacher, _ = segmenter.grid_outputs(color)
                _, features = segmenter.grid_outputs(gray)
                if teacher.shape[1:] != shapes["teacher"][1:]:
                    raise SegcolorError(
                        "the segmenter's grid depends on the photo's shape; a gray head "
                        "learns from segmenters with a fixed working size",
                        files[i],
                    )
                arrays["teacher"][i] = teacher[0].half().numpy()
                arrays["features"][i] = features[0].half().numpy()
                ok.append(True)
            if (i + 1) % 64 == 0:
                save(i + 1)
    save(len(files))
    keep = np.flatnonzero(np.array(ok, dtype=bool))
    return {name: np.load(root / f"{name}.npy", mmap_mode="r") for name in arrays} | {"ok": keep}


# ----------------------------------------------------------------------------- the head


def category_masks(classes: list[str], groups: dict[str, list[str]]) -> torch.Tensor:
    """(G+1, C) 0/1: which classes make each category (row 0: everything else)."""
    masks = torch.zeros(len(groups) + 1, len(classes))
    for g, members in enumerate(groups.values(), 1):
        for cls in members:
            masks[g, classes.index(cls)] = 1.0
    masks[0] = 1.0 - masks[1:].sum(0).clamp(max=1)
    return masks


def agreement(
    student: torch.Tensor, teacher: torch.Tensor, masks: torch.Tensor, names: list[str]
) -> dict[str, float]:
    """IoU of each category's arg-max cells, student vs teacher, and the soft cross-entropy."""
    s = torch.einsum("bchw,gc->bghw", student.softmax(1), masks).argmax(1)
    t = torch.einsum("bchw,gc->bghw", teacher.softmax(1), masks).argmax(1)
    out = {}
    for g, name in enumerate(names, 1):
        union = ((s == g) | (t == g)).sum().item()
        out[f"iou_{name}"] = round(((s == g) & (t == g)).sum().item() / union, 4) if union else 1.0
    out["cross_entropy"] = round(soft_cross_entropy(student, teacher).item(), 5)
    return out


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return -(teacher.softmax(1) * student.log_softmax(1)).sum(1).mean()


def evaluate_head(
    head: GrayHead | None,
    base: Any,
    features: np.ndarray,
    teacher: np.ndarray,
    rows: np.ndarray,
    masks: torch.Tensor,
    names: list[str],
) -> dict[str, float]:
    f = torch.from_numpy(np.asarray(features[rows], dtype=np.float32))
    t = torch.from_numpy(np.asarray(teacher[rows], dtype=np.float32))
    with torch.no_grad():
        student = base(f) if head is None else base(f) + head.eval()(f)
    return agreement(student, t, masks, names)


class PairBatches:
    """One epoch over ``rows`` of the pair cache, in an order (and flips) fixed by seed and
    epoch, so a resumed run repeats an uninterrupted one exactly; the last partial batch is
    left out."""

    def __init__(
        self, pairs: dict[str, np.ndarray], rows: np.ndarray, epoch: int, seed: int, size: int
    ) -> None:
        self.pairs, self.rows, self.epoch, self.seed, self.size = pairs, rows, epoch, seed, size

    def __len__(self) -> int:
        return len(self.rows) // self.size or 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = self.rows[torch.randperm(len(self.rows), generator=gen).numpy()]
        for k in range(len(self)):
            idx = np.sort(order[k * self.size : (k + 1) * self.size])
            f = torch.from_numpy(np.asarray(self.pairs["features"][idx], dtype=np.float32))
            t = torch.from_numpy(np.asarray(self.pairs["teacher"][idx], dtype=np.float32))
            if torch.rand((), generator=gen) < 0.5:  # mirror: the same lesson, another layout
                f, t = f.flip(-1), t.flip(-1)
            yield f, t


class GrayHeadTask(Task):
    """The segmenter's frozen backbone and classifier; the head learns on the CPU."""

    name = TASK

    @classmethod
    def load_config(cls, path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
        return load_config(path, overrides)

    @classmethod
    def read_checkpoint(cls, path: Path) -> dict[str, Any]:
        state = read_state(path)
        try:
            history = json.loads(state["records"])
            return {**state, "epoch": int(state["epoch"]), "history": history}
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"not a gray-head training checkpoint ({type(err).__name__})", path
            ) from None

    def resumed_config(
        self, state: dict[str, Any], overrides: dict[str, Any], path: Path
    ) -> tuple[dict[str, Any], list[str]]:
        return self.cfg, []  # the checkpoint keeps no config: today's is the run's

    @property
    def device_name(self) -> str:
        return "cpu"

    def prepare(self) -> None:
        cfg = self.cfg
        pipeline = Path(cfg["pipeline"]) if cfg["pipeline"] else DEFAULT_PIPELINE
        self.config = config = load_pipeline_config(pipeline)
        self.segmenter = create_segmenter(config.segmenter, weights=config.segmenter_weights)
        if not self.segmenter.feature_channels:
            raise SegcolorError(f"segmenter {config.segmenter} gives no features to learn from")
        data = cfg["data"]
        roots = data["root"] if isinstance(data["root"], list) else [data["root"]]
        folders = [resolve_data_path(r, cfg["shared_dir"]) for r in roots]
        files = pick_photos(folders, float(data["val_fraction"]), data["per_folder"])
        cache_root = (
            Path(data["cache_dir"]).expanduser() if data["cache_dir"] else default_cache_root()
        )
        signature = f"{config.segmenter}|{config.segmenter_weights}"
        self.pairs = pair_cache(files, self.segmenter, config.working_size, cache_root, signature)
        usable = self.pairs["ok"]
        every = max(2, int(data["check_every"]))
        self.check, self.train_rows = usable[::every], np.setdiff1d(usable, usable[::every])
        if len(self.train_rows) == 0:
            raise SegcolorError("too few readable photos to learn a gray head from")
        groups = {c.name: list(c.classes) for c in config.categories if c.name != config.fallback}
        self.masks = category_masks(self.segmenter.classes, groups)
        self.names = list(groups)

    def build(self, device: torch.device, state: dict[str, Any] | None) -> None:
        segmenter, optim = self.segmenter, self.cfg["optim"]
        self.head = GrayHead(
            segmenter.feature_channels, segmenter.classes, int(self.cfg["model"]["hidden"])
        )
        self.optimizer = torch.optim.AdamW(
            self.head.parameters(), lr=float(optim["lr"]), weight_decay=optim["weight_decay"]
        )
        self.base = segmenter.class_logits
        for p in segmenter.parameters():
            p.requires_grad_(False)
        if state is not None:
            try:
                self.head.load_state_dict(state["head"])
                self.optimizer.load_state_dict(state["optimizer"])
            except (KeyError, TypeError, ValueError, RuntimeError) as err:
                raise CheckpointError(
                    f"not a gray-head training checkpoint ({type(err).__name__})",
                    self.out / CHECKPOINT,
                ) from None
        self.before = self.scores(None)

    def scores(self, head: GrayHead | None) -> dict[str, float]:
        features, teacher = self.pairs["features"], self.pairs["teacher"]
        return evaluate_head(head, self.base, features, teacher, self.check, self.masks, self.names)

    def begin(self, start_epoch: int) -> None:
        log.info(
            "gray head: %d photos to learn from, %d to check", len(self.train_rows), len(self.check)
        )

    def schedule(self) -> str | None:
        return "warmup_cosine"

    def start_epoch(self, epoch: int) -> PairBatches:
        self.head.train()
        size = int(self.cfg["train"]["batch_size"])
        return PairBatches(self.pairs, self.train_rows, epoch, self.seed, size)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> Step:
        features, teacher = batch
        with torch.no_grad():
            prior = self.base(features)
        loss = soft_cross_entropy(prior + self.head(features), teacher)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return [loss.detach()], 1  # the mean loss of the epoch's batches

    def validate(self) -> Record:
        return self.scores(self.head)

    def record(self, epoch: int, train: Record, val: Record) -> Record:
        return {"epoch": epoch + 1, "train_loss": round(train["train_loss"], 5), **val}

    def checkpoint(self, epoch: int, history: list[Record], best: dict[str, Any]) -> dict[str, Any]:
        return {
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": epoch,
            "records": json.dumps(history),
        }

    def epoch_line(self, record: Record) -> str:
        scores = "  ".join(f"{k} {v}" for k, v in record.items() if k != "epoch")
        return f"gray head epoch {record['epoch']}/{self.epochs}  {scores}"

    def finish(self, history: list[Record]) -> None:
        meta = self.head.metadata(self.config.segmenter)
        with atomic_write(self.out / HEAD_FILE) as tmp:
            state = {k: v.contiguous() for k, v in self.head.state_dict().items()}
            save_file(state, str(tmp), meta)
        card = {
            "task": TASK,
            "segmenter": self.config.segmenter,
            "photos": {"learn": len(self.train_rows), "check": len(self.check)},
            "before": self.before,
            "after": history[-1] if history else None,
            "config": self.cfg,
        }
        with atomic_write(self.out / "gray_head.card.json") as tmp:
            tmp.write_text(json.dumps(card, indent=2, default=str))
