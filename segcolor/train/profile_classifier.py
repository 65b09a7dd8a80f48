"""Training task ``profile_classifier``: grayscale photo -> its color profile.

The same machinery as the experts (``segcolor.train.engine``): YAML config, deterministic data
order and augmentation, per-epoch checkpoints with exact ``--resume``, DDP. Labels come from the
profiles file (``profiles:``); the held-out photos are the experts' (by file name), so the
accuracy is measured on photos neither the classifier nor any expert trained on.

Outputs per epoch: ``classifier.safetensors`` (fp16 weights + card with the profiles, held-out
accuracy and confusion matrix), ``best.safetensors`` (lowest validation loss),
``metrics.jsonl``, ``checkpoint.pt``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from segcolor.device import preferred_memory_format
from segcolor.errors import BadImageError, SegcolorError
from segcolor.io.atomic import atomic_write
from segcolor.io.images import load_image
from segcolor.profiles.classifier import (
    create_profile_classifier,
    init_trunk_from_expert,
    save_classifier,
)
from segcolor.profiles.data import profile_labels
from segcolor.profiles.store import ProfileSet
from segcolor.train import distributed
from segcolor.train.data import (
    MAX_BAD_IN_A_ROW,
    EpochSampler,
    ImageFolderRGB,
    ShardSampler,
    Split,
    init_worker,
    to_lab_batch,
)
from segcolor.train.distributed import DistInfo

log = logging.getLogger(__name__)

CLASSIFIER = "classifier.safetensors"
BEST = "best.safetensors"


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


def _autocast(device: torch.device, amp: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()


def train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loader: DataLoader,
    device: torch.device,
    amp: torch.dtype | None,
    info: DistInfo,
    desc: str,
) -> dict[str, float]:
    net.train()
    total = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, images
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not info.is_main or None)
    for rgb, label in bar:
        rgb, label = rgb.to(device, non_blocking=True), label.to(device, non_blocking=True)
        l_norm = to_lab_batch(rgb)[0].contiguous(memory_format=preferred_memory_format(device))
        with _autocast(device, amp):
            logits = net(l_norm)
        loss = F.cross_entropy(logits.float(), label)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if not math.isfinite(loss.item()):
            raise SegcolorError("the loss became non-finite; lower optim.lr")
        total += torch.stack(
            [
                loss.detach().double() * len(label),
                (logits.argmax(1) == label).sum().double(),
                torch.tensor(float(len(label)), dtype=torch.float64, device=device),
            ]
        )
        bar.set_postfix(loss=f"{(total[0] / total[2]).item():.3f}")
    seconds = time.perf_counter() - start
    distributed.all_reduce_sum(total, info)
    return {
        "train_loss": (total[0] / total[2]).item(),
        "train_accuracy": (total[1] / total[2]).item(),
        "images_per_s": total[2].item() / seconds,
        "epoch_s": seconds,
    }


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
        with _autocast(device, amp):
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
    from segcolor.experts.checkpoint import portable_card
    from segcolor.paths import shared_dir
    from segcolor.train.engine import DATA_NOTE

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


def fit_classifier(
    cfg: dict[str, Any],
    split: Split,
    state: dict[str, Any] | None,
    info: DistInfo,
    device: torch.device,
) -> list[dict[str, Any]]:
    """Train the profile classifier ``cfg`` describes (called by ``engine.fit``)."""
    from segcolor.train.engine import (
        CHECKPOINT,
        CHECKPOINT_FORMAT,
        METRICS,
        amp_dtype,
        interrupted,
        lr_factor,
        rng_state,
        seed_everything,
        set_rng_state,
        write_config,
    )

    out, epochs, seed = Path(cfg["out"]), cfg["train"]["epochs"], cfg["train"]["seed"]
    size, batch, workers = cfg["data"]["size"], cfg["train"]["batch_size"], cfg["train"]["workers"]
    seed_everything(seed)
    profiles, labels = profile_labels(cfg["profiles"])
    names = profiles.names
    train_files, train_labels = labelled(split.train, labels)
    val_files, val_labels = labelled(split.val, labels)
    if not train_files:
        raise SegcolorError(
            f"none of the photos in this folder is a member of a profile in {cfg['profiles']}",
            split.root,
        )
    data = {
        "root": str(split.root),
        "train_images": len(train_files),
        "val_images": len(val_files),
        "left_out": len(split.train) + len(split.val) - len(train_files) - len(val_files),
    }
    model_cfg = {k: v for k, v in cfg["model"].items() if k not in ("head", "init")}
    model = create_profile_classifier(len(names), **model_cfg)
    if cfg["model"].get("init") and state is None:
        copied = init_trunk_from_expert(model, cfg["model"]["init"])
        if info.is_main:
            log.info("trunk: %d tensors from %s", copied, cfg["model"]["init"])
    model = model.to(device, memory_format=preferred_memory_format(device))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg["optim"]["lr"], weight_decay=cfg["optim"]["weight_decay"]
    )
    amp = amp_dtype(cfg["train"]["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"val_loss": None, "epoch": None}
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
    net: nn.Module = model
    if info.enabled:
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    common = {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": device.type == "cuda",
        "worker_init_fn": init_worker,
        "generator": generator,
    }
    sampler = EpochSampler(len(train_files), True, seed, info.world_size, info.rank)
    train_loader = DataLoader(
        LabelledImages(train_files, train_labels, size, train=True, seed=seed),
        batch_size=batch,
        sampler=sampler,
        drop_last=len(sampler) > batch,
        **common,
    )
    val_loader = (
        DataLoader(
            LabelledImages(val_files, val_labels, size, train=False),
            batch_size=batch,
            sampler=ShardSampler(len(val_files), info.world_size, info.rank),
            **common,
        )
        if val_files
        else None
    )
    if state is not None:
        set_rng_state(state["rng"], generator)
    if info.is_main:
        write_config(out, cfg)
        counts = np.bincount(train_labels, minlength=len(names))
        log.info(
            "training profile classifier %s (%s, %.2f M parameters, %.1f MB fp16) on %s: "
            "%d train / %d held-out photos at %d px (%s), epoch %d to %d",
            cfg["name"],
            cfg["model"]["arch"],
            sum(p.numel() for p in model.parameters()) / 1e6,
            sum(t.numel() * 2 for t in model.state_dict().values()) / 1e6,
            device,
            len(train_files),
            len(val_files),
            size,
            ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True)),
            start_epoch + 1,
            epochs,
        )

    epoch = saved = start_epoch
    try:
        for epoch in range(start_epoch, epochs):
            lr = cfg["optim"]["lr"] * lr_factor(epoch, cfg["optim"], epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            sampler.set_epoch(epoch)
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
            record.update(
                train_epoch(
                    net,
                    optimizer,
                    scaler,
                    train_loader,
                    device,
                    amp,
                    info,
                    f"epoch {epoch + 1}/{epochs}",
                )
            )
            if val_loader is not None:
                val_loss, confusion = evaluate(model, val_loader, device, amp, info, len(names))
                report = confusion_report(confusion, names)
                record.update(
                    val_loss=val_loss,
                    val_accuracy=report["accuracy"],
                    val_balanced_accuracy=report["balanced_accuracy"],
                    val_recall=report["recall"],
                    val_confusion=report["confusion"],
                )
            history.append(record)
            improved = "val_loss" in record and (
                best["val_loss"] is None or record["val_loss"] < best["val_loss"]
            )
            if improved:
                best = {"val_loss": record["val_loss"], "epoch": epoch + 1}
            if info.is_main:
                card = classifier_card(cfg, profiles, data, history)
                with atomic_write(out / METRICS) as tmp:
                    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in history))
                save_classifier(model, out / CLASSIFIER, card)
                if improved:
                    save_classifier(model, out / BEST, card)
                checkpoint = {
                    "format": CHECKPOINT_FORMAT,
                    "task": "profile_classifier",
                    "epoch": epoch + 1,
                    "config": cfg,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng_state(generator),
                    "history": history,
                    "best": best,
                    "data": split.summary(),
                }
                with atomic_write(out / CHECKPOINT) as tmp:
                    torch.save(checkpoint, tmp)
                log.info(_epoch_line(record, epochs))
            saved = epoch + 1
    except KeyboardInterrupt:
        raise interrupted(epoch, saved, out) from None
    distributed.barrier(info)
    if info.is_main and history and "val_confusion" in history[-1]:
        log.info(
            "held-out confusion (rows: true profile):\n%s",
            confusion_markdown(history[-1]["val_confusion"], names),
        )
    return history


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    val = (
        f"  val_loss {record['val_loss']:.4f}  val_acc {record['val_accuracy']:.3f}"
        f" (balanced {record['val_balanced_accuracy']:.3f})"
        if "val_loss" in record
        else ""
    )
    return (
        f"epoch {record['epoch']}/{epochs}  train_loss {record['train_loss']:.4f}  "
        f"train_acc {record['train_accuracy']:.3f}{val}  lr {record['lr']:.2e}  "
        f"{record['epoch_s']:.0f} s ({record['images_per_s']:.1f} img/s)"
    )
