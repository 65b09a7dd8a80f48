"""Task ``profile_classifier``: grayscale photo -> its color profile.

The same loop as the experts (``segcolor.train.loop``): YAML config, deterministic data order
and augmentation, per-epoch checkpoints with exact ``--resume``, DDP. Labels come from the
profiles file (``profiles:``); the held-out photos are the experts' (by file name), so the
accuracy is measured on photos neither the classifier nor any expert trained on.

Outputs per epoch: ``classifier.safetensors`` (fp16 weights + card with the profiles, held-out
accuracy and confusion matrix), ``best.safetensors`` (lowest validation loss),
``metrics.jsonl``, ``checkpoint.pt``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from segcolor.device import preferred_memory_format
from segcolor.errors import BadImageError, SegcolorError
from segcolor.experts.checkpoint import portable_card
from segcolor.io.images import load_image
from segcolor.paths import CLASSIFIER, shared_dir
from segcolor.profiles.classifier import create_profile_classifier, save_classifier
from segcolor.profiles.data import profile_labels
from segcolor.profiles.store import ProfileSet
from segcolor.profiles.warm_start import init_trunk_from_expert
from segcolor.train import distributed
from segcolor.train.data import (
    MAX_BAD_IN_A_ROW,
    EpochSampler,
    ImageFolderRGB,
    ShardSampler,
    to_lab_batch,
)
from segcolor.train.distributed import DistInfo
from segcolor.train.loop import Batches, LoaderTask, Record, Step
from segcolor.train.run import DATA_NOTE, autocast
from segcolor.train.sources import data_split

log = logging.getLogger(__name__)


class LabelledImages(ImageFolderRGB):
    """``ImageFolderRGB`` that also returns each image's profile index (an unreadable image is
    replaced by the next readable one together with that one's label)."""

    def __init__(
        self, files: Sequence[Path], labels: Sequence[int], size: int, train: bool, seed: int = 0
    ) -> None:
        super().__init__(files, size, train, seed)
        self.labels = list(labels)

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[torch.Tensor, int]:  # type: ignore[override]
        epoch, index = key if isinstance(key, tuple) else (0, key)
        for attempt in range(min(MAX_BAD_IN_A_ROW, len(self.files))):
            i = (index + attempt) % len(self.files)
            try:
                rgb = load_image(self.files[i]).rgb
            except BadImageError as err:
                if self.files[i] not in self._reported:
                    self._reported.add(self.files[i])
                    log.warning("skipping unreadable training image: %s", err)
                continue
            image = torch.from_numpy(rgb).permute(2, 0, 1)
            image = self._augment(image, epoch, index) if self.train else self._center(image)
            return image, self.labels[i]
        raise SegcolorError(f"{MAX_BAD_IN_A_ROW} unreadable images in a row", self.files[index])


def labelled(files: Sequence[Path], labels: dict[str, int]) -> tuple[list[Path], list[int]]:
    """The files that belong to a profile, and their profile indices."""
    kept = [f for f in files if f.name in labels]
    return kept, [labels[f.name] for f in kept]


def confusion_report(confusion: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy and per-profile recall from a (true x predicted) matrix."""
    total = confusion.sum()
    recall = np.diag(confusion) / np.maximum(confusion.sum(1), 1)
    return {
        "accuracy": float(np.trace(confusion) / max(total, 1)),
        "balanced_accuracy": float(recall[confusion.sum(1) > 0].mean()) if total else 0.0,
        "recall": {n: round(float(r), 4) for n, r in zip(names, recall, strict=True)},
        "confusion": confusion.astype(int).tolist(),
    }


def confusion_markdown(confusion: Sequence[Sequence[int]], names: Sequence[str]) -> str:
    """Rows: the true profile; columns: the predicted one."""
    lines = [
        "| true \\ predicted | " + " | ".join(names) + " | recall |",
        "|---" * (len(names) + 2) + "|",
    ]
    for name, row in zip(names, confusion, strict=True):
        recall = row[names.index(name)] / max(sum(row), 1)
        lines.append(f"| {name} | " + " | ".join(map(str, row)) + f" | {recall:.2f} |")
    return "\n".join(lines)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    amp: torch.dtype | None,
    info: DistInfo,
    num_profiles: int,
) -> tuple[float, np.ndarray]:
    """Mean validation loss and the confusion matrix (rows: true profile)."""
    model.eval()
    distributed.broadcast_buffers(model, info)
    loss_sum = torch.zeros(2, dtype=torch.float64, device=device)
    confusion = torch.zeros(num_profiles * num_profiles, dtype=torch.float64, device=device)
    for rgb, label in loader:
        rgb, label = rgb.to(device, non_blocking=True), label.to(device, non_blocking=True)
        l_norm = to_lab_batch(rgb)[0].contiguous(memory_format=preferred_memory_format(device))
        with autocast(device, amp):
            logits = model(l_norm)
        loss_sum[0] += F.cross_entropy(logits.float(), label, reduction="sum").double()
        loss_sum[1] += len(label)
        pairs = label * num_profiles + logits.argmax(1)
        confusion += torch.bincount(pairs, minlength=num_profiles**2).double()
    distributed.all_reduce_sum(loss_sum, info)
    distributed.all_reduce_sum(confusion, info)
    loss = (loss_sum[0] / loss_sum[1].clamp_min(1)).item()
    return loss, confusion.view(num_profiles, num_profiles).cpu().numpy().astype(np.int64)


def classifier_card(
    cfg: dict[str, Any], profiles: ProfileSet, data: dict[str, Any], history: list[dict[str, Any]]
) -> dict[str, Any]:
    last = history[-1] if history else {}
    shared = shared_dir(cfg.get("shared_dir"))
    card = {
        "name": cfg["name"],
        "category": cfg["category"],
        "task": "profile_classifier",
        "profiles_file": cfg["profiles"],
        "profiles": [
            {
                "name": p.name,
                "members": p.size,
                "colors": [
                    {"hex": h, "percent": round(float(s) * 100, 1)}
                    for h, s in zip(p.centroid.hex(), p.centroid.percents, strict=True)
                ],
            }
            for p in profiles.profiles
        ],
        "input_size": cfg["data"]["size"],
        "input": "L/50 - 1 of the grayscale photo, resized so the short side is input_size",
        "data": {**data, "note": DATA_NOTE},
        "training": cfg,
        "epochs_trained": len(history),
        "held_out": {
            k: last.get(k)
            for k in ("val_accuracy", "val_balanced_accuracy", "val_recall", "val_confusion")
        },
        "metrics": [
            {k: r.get(k) for k in ("epoch", "train_loss", "val_loss", "val_accuracy")}
            for r in history
        ],
    }
    return portable_card(card, shared.resolve() if shared else None)  # no machine paths


class ProfileClassifierTask(LoaderTask):
    name = "profile_classifier"
    weights_file = CLASSIFIER
    lr_every_step = False
    metric_names = ("loss", "accuracy")

    def prepare(self) -> None:
        self.split = data_split(self.cfg)

    def build(self, device: torch.device, state: dict[str, Any] | None) -> None:
        cfg, info, split = self.cfg, self.info, self.split
        size, batch = cfg["data"]["size"], cfg["train"]["batch_size"]
        self.profiles, labels = profile_labels(cfg["profiles"])
        self.names = self.profiles.names
        train_files, self.train_labels = labelled(split.train, labels)
        val_files, val_labels = labelled(split.val, labels)
        if not train_files:
            raise SegcolorError(
                f"none of the photos in this folder is a member of a profile in {cfg['profiles']}",
                split.root,
            )
        self.data = {
            "root": str(split.root),
            "train_images": len(train_files),
            "val_images": len(val_files),
            "left_out": len(split.train) + len(split.val) - len(train_files) - len(val_files),
        }
        model_cfg = {k: v for k, v in cfg["model"].items() if k not in ("head", "init")}
        model = create_profile_classifier(len(self.names), **model_cfg)
        if cfg["model"].get("init") and state is None:
            copied = init_trunk_from_expert(model, cfg["model"]["init"])
            if info.is_main:
                log.info("trunk: %d tensors from %s", copied, cfg["model"]["init"])
        model = model.to(device, memory_format=preferred_memory_format(device))
        self.setup_training(model, device, state)
        self.net = self.parallel(model)
        self.sampler = EpochSampler(len(train_files), True, self.seed, info.world_size, info.rank)
        self.train_loader = DataLoader(
            LabelledImages(train_files, self.train_labels, size, train=True, seed=self.seed),
            batch_size=batch,
            sampler=self.sampler,
            drop_last=len(self.sampler) > batch,
            **self.loader_options(),
        )
        self.val_loader = None
        if val_files:
            self.val_loader = DataLoader(
                LabelledImages(val_files, val_labels, size, train=False),
                batch_size=batch,
                sampler=ShardSampler(len(val_files), info.world_size, info.rank),
                **self.loader_options(),
            )
        self.restore_rng(state)

    def begin(self, start_epoch: int) -> None:
        super().begin(start_epoch)
        counts = np.bincount(self.train_labels, minlength=len(self.names))
        log.info(
            "training profile classifier %s (%s, %.2f M parameters, %.1f MB fp16) on %s: "
            "%d train / %d held-out photos at %d px (%s), epoch %d to %d",
            self.cfg["name"],
            self.cfg["model"]["arch"],
            sum(p.numel() for p in self.model.parameters()) / 1e6,
            sum(t.numel() * 2 for t in self.model.state_dict().values()) / 1e6,
            self.device,
            self.data["train_images"],
            self.data["val_images"],
            self.cfg["data"]["size"],
            ", ".join(f"{n} {c}" for n, c in zip(self.names, counts, strict=True)),
            start_epoch + 1,
            self.epochs,
        )

    def start_epoch(self, epoch: int) -> Batches:
        self.sampler.set_epoch(epoch)
        self.net.train()
        return self.train_loader

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> Step:
        device = self.device
        rgb, label = (t.to(device, non_blocking=True) for t in batch)
        l_norm = to_lab_batch(rgb)[0].contiguous(memory_format=preferred_memory_format(device))
        with autocast(device, self.amp):
            logits = self.net(l_norm)
        loss = F.cross_entropy(logits.float(), label)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        correct = (logits.argmax(1) == label).sum()
        return [loss.detach().double() * len(label), correct], len(label)

    def validate(self) -> Record:
        if self.val_loader is None:
            return {}
        loss, confusion = evaluate(
            self.model, self.val_loader, self.device, self.amp, self.info, len(self.names)
        )
        report = confusion_report(confusion, self.names)
        return {
            "val_loss": loss,
            "val_accuracy": report["accuracy"],
            "val_balanced_accuracy": report["balanced_accuracy"],
            "val_recall": report["recall"],
            "val_confusion": report["confusion"],
        }

    def card(self, history: list[Record]) -> dict[str, Any]:
        return classifier_card(self.cfg, self.profiles, self.data, history)

    def export(self, path: Path, card: dict[str, Any]) -> None:
        save_classifier(self.model, path, card)

    def checkpoint(self, epoch: int, history: list[Record], best: dict[str, Any]) -> dict[str, Any]:
        state = self.training_state(epoch, history, best)
        head = {"format": state.pop("format"), "task": self.name}
        return {**head, **state, "data": self.split.summary()}

    def epoch_line(self, record: Record) -> str:
        val = (
            f"  val_loss {record['val_loss']:.4f}  val_acc {record['val_accuracy']:.3f}"
            f" (balanced {record['val_balanced_accuracy']:.3f})"
            if "val_loss" in record
            else ""
        )
        return (
            f"epoch {record['epoch']}/{self.epochs}  train_loss {record['train_loss']:.4f}  "
            f"train_acc {record['train_accuracy']:.3f}{val}  lr {record['lr']:.2e}  "
            f"{record['epoch_s']:.0f} s ({record['images_per_s']:.1f} img/s)"
        )

    def finish(self, history: list[Record]) -> None:
        if history and "val_confusion" in history[-1]:
            log.info(
                "held-out confusion (rows: true profile):\n%s",
                confusion_markdown(history[-1]["val_confusion"], self.names),
            )
