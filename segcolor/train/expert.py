"""Task ``expert``: a colorization expert, L in, ab out, from a photo folder or the routed cache.

Files in the output folder (``segcolor.train.loop`` writes them in this order after every
epoch): ``metrics.jsonl``, ``expert.safetensors`` (the expert after the latest epoch, with its
card), ``best.safetensors`` (lowest validation loss), ``checkpoint.pt``; and ``config.yaml``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segcolor.color.bins import NUM_BINS
from segcolor.color.lab import denormalize_ab, denormalize_l
from segcolor.color.recombine import recombine
from segcolor.device import preferred_memory_format
from segcolor.errors import ConfigError
from segcolor.experts import Expert, create_expert, default_cfg, load_expert, save_expert
from segcolor.paths import EXPERT
from segcolor.train import distributed
from segcolor.train.data import (
    EpochSampler,
    ImageFolderRGB,
    ShardSampler,
    Split,
    compute_ab_prior,
    to_lab_batch,
)
from segcolor.train.distributed import DistInfo
from segcolor.train.hints import HintSampler
from segcolor.train.loop import Batches, LoaderTask, Record, Step
from segcolor.train.losses import BinsLoss, create_loss, needs_prior
from segcolor.train.routed import RoutedPhotos, RoutedSplit, cached_ab_prior, routed_split
from segcolor.train.run import DATA_NOTE, autocast
from segcolor.train.sources import data_split

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
MODEL_KEYS = ("arch", "init", "graft", "trainable")  # model.* keys that are not arch options
NEW_MODULES = ("hints.", "bins.")  # an expert fine-tuned from one without them starts them fresh


class RawOutput(nn.Module):
    """``expert.forward_padded`` as ``forward``, so DDP sees (and syncs) the training call."""

    def __init__(self, expert: Expert) -> None:
        super().__init__()
        self.expert = expert

    def forward(
        self,
        l_norm: torch.Tensor,
        features: torch.Tensor | None = None,
        hints: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.expert.forward_padded_heads(l_norm, features, hints)


def as_batch(item: torch.Tensor | Batch, device: torch.device) -> Batch:
    """A loader's item on the device: plain folders give RGB tensors, the routed cache gives
    dicts with ``rgb``, a per-pixel loss ``weight`` and the router's ``features``."""
    batch = item if isinstance(item, dict) else {"rgb": item}
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_step(
    net: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: Batch,
    boost: float,
    amp: torch.dtype | None,
    hints: HintSampler | None = None,
    bins_loss: BinsLoss | None = None,
) -> torch.Tensor:
    """One optimisation step on a batch already on the device; returns the loss. ``hints``
    draws color hints from the targets (experts that take hints); ``bins_loss`` trains the
    vivid style's 313-bin head beside the faithful answer."""
    rgb = batch["rgb"]
    l_norm, target = to_lab_batch(rgb, boost)
    given = hints(target) if hints is not None else None
    with autocast(rgb.device, amp):
        raw, logits = net(
            l_norm.contiguous(memory_format=preferred_memory_format(l_norm.device)),
            batch.get("features"),
            given,
        )
    loss = criterion(raw, target, batch.get("weight"))  # in float32, outside autocast
    if bins_loss is not None and logits is not None:
        loss = loss + bins_loss(logits, target, batch.get("weight"))
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


@torch.no_grad()
def evaluate(
    expert: Expert,
    criterion: nn.Module,
    loader: DataLoader,
    device: torch.device,
    boost: float,
    amp: torch.dtype | None,
    info: DistInfo,
) -> dict[str, float]:
    """Validation loss (on the training target) and PSNR of the colorized RGB.

    PSNR compares the true RGB with RGB recombined from the true L and the predicted ab
    (the way the expert is used), averaged per image, at the training size.
    """
    expert.eval()
    distributed.broadcast_buffers(expert, info)
    total = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, PSNR sum, images
    for item in loader:
        batch = as_batch(item, device)
        rgb = batch["rgb"]
        l_norm, target = to_lab_batch(rgb, boost)
        with autocast(device, amp):
            l_norm = l_norm.contiguous(memory_format=preferred_memory_format(device))
            raw = expert.forward_padded(l_norm, batch.get("features"))
        loss = criterion(raw, target, batch.get("weight"))
        colorized = recombine(
            denormalize_l(l_norm.float()), denormalize_ab(expert.decode(raw).float())
        )
        mse = ((colorized - rgb.float()) ** 2).flatten(1).mean(dim=1).clamp_min(1e-10)
        total[0] += loss.double() * len(rgb)
        total[1] += (-10.0 * torch.log10(mse)).double().sum()
        total[2] += len(rgb)
    distributed.all_reduce_sum(total, info)
    count = total[2].clamp_min(1.0)
    return {"val_loss": (total[0] / count).item(), "val_psnr": (total[1] / count).item()}


def expert_card(
    cfg: dict[str, Any], split: Split | RoutedSplit, history: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": cfg["name"],
        "category": cfg["category"],
        "profile": cfg.get("profile"),
        "data": {
            **split.summary(),
            "size": cfg["data"]["size"],
            "saturation_boost": cfg["data"]["saturation_boost"],
            "note": DATA_NOTE,
        },
        "training": cfg,
        "epochs_trained": len(history),
        "metrics": [
            {k: r.get(k) for k in ("epoch", "train_loss", "val_loss", "val_psnr")} for r in history
        ],
        "val_psnr_on": "RGB from true L + predicted ab, at the training size",
    }


def color_prior(
    cfg: dict[str, Any], split: Split | RoutedSplit, info: DistInfo, device: torch.device
) -> torch.Tensor | None:
    """The ab prior for a rarity-weighted loss: counted by rank 0, sent to the others."""
    if not needs_prior(cfg["loss"]["kind"]) and not cfg["loss"]["bins_weight"]:
        return None
    prior = torch.zeros(NUM_BINS, dtype=torch.float64)
    if info.is_main:
        log.info(
            "counting colors of %d training images for the %s loss ...",
            min(cfg["loss"]["hist_images"], len(split.train)),
            cfg["loss"]["kind"],
        )
        if isinstance(split, RoutedSplit):
            if cfg["loss"]["prior"] == "all":  # every pixel of every photo, as a general model
                split = routed_split(split.cache, cfg["data"]["val_fraction"], None)
            prior = cached_ab_prior(split, cfg["loss"]["hist_images"])
        else:
            prior = compute_ab_prior(split.train, cfg["loss"]["hist_images"], device)
    return distributed.broadcast(prior.to(device), info).cpu()


def init_from(
    expert: Expert, path: str, arch: str, arch_cfg: dict[str, Any], info: DistInfo
) -> None:
    """Start from another expert's weights. Between heads (a regression expert's trunk and
    decoder under a new 313-bin classification head, or the reverse) everything but the output
    layer is copied; any other difference in shapes is an error."""
    start = load_expert(path)
    source, own = start.state_dict(), expert.state_dict()
    # modules the source has not got (hint inputs, the 313-bin head) keep their own init
    added = [k for k in own if k not in source and k.startswith(NEW_MODULES)]
    differ = [
        k for k in own if k not in added and (k not in source or source[k].shape != own[k].shape)
    ]
    new_head = start.head != expert.head and all("segmentation_head" in k for k in differ)
    if differ and not new_head:
        raise ConfigError(
            f"model.init {path} is a {start.arch} {start.arch_config}, "
            f"not this config's {arch} {arch_cfg}"
        )
    expert.load_state_dict({k: v for k, v in source.items() if k not in differ}, strict=False)
    if differ and info.is_main:
        log.info("model.init: %s's weights under a new %s head", path, expert.head)
    if added and info.is_main:
        new = sorted({k.split(".")[0] for k in added})
        log.info("model.init: %s's weights, new modules %s from their init", path, new)


def graft_modules(expert: Expert, path: str, modules: list[str], info: DistInfo) -> None:
    """Copy whole modules (e.g. the hint inputs and the 313-bin head) from another expert of
    the same arch: an expert gains what a sibling learned, its own weights untouched."""
    source = load_expert(path).state_dict()
    prefixes = tuple(f"{m}." for m in modules)
    picked = {k: v for k, v in source.items() if k.startswith(prefixes)}
    own = expert.state_dict()
    wrong = [k for k in picked if k not in own or own[k].shape != picked[k].shape]
    if wrong or not picked:
        raise ConfigError(f"model.graft: {path} has no matching {', '.join(modules)} ({wrong[:1]})")
    expert.load_state_dict(picked, strict=False)
    if info.is_main:
        log.info("model.graft: %s from %s", ", ".join(modules), path)


def datasets(split: Split | RoutedSplit, cfg: dict[str, Any]) -> tuple[Dataset, Dataset]:
    """Training samples (augmented from (seed, epoch, index)) and validation samples."""
    size, seed = cfg["data"]["size"], cfg["train"]["seed"]
    if not isinstance(split, RoutedSplit):
        train = ImageFolderRGB(split.train, size, train=True, seed=seed)
        return train, ImageFolderRGB(split.val, size, train=False)
    routing = cfg["data"]["routing"]
    arch_cfg = {**default_cfg(cfg["model"]["arch"]), **cfg["model"]}  # no model to build
    options = {
        "context_weight": routing["context_weight"],
        "features": bool(arch_cfg.get("feature_channels")),
        "balance": routing["balance"],
    }
    train = RoutedPhotos(
        split, split.train, size, True, seed,
        feature_dropout=routing["feature_dropout"], crop_scale=routing["crop_scale"],
        **options,
    )  # fmt: skip
    return train, RoutedPhotos(split, split.val, split.cache.size, False, **options)


class ExpertTask(LoaderTask):
    name = "expert"
    weights_file = EXPERT

    def prepare(self) -> None:
        self.split = data_split(self.cfg)

    def build(self, device: torch.device, state: dict[str, Any] | None) -> None:
        cfg, info, split = self.cfg, self.info, self.split
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")
        arch_cfg = {k: v for k, v in cfg["model"].items() if k not in MODEL_KEYS}
        expert = create_expert(cfg["model"]["arch"], **arch_cfg)
        if cfg["model"].get("init") and state is None:  # fine-tune another expert's weights
            init_from(expert, cfg["model"]["init"], cfg["model"]["arch"], arch_cfg, info)
        graft = cfg["model"].get("graft")
        if graft and state is None:  # some modules from a third expert
            graft_modules(expert, graft["from"], graft["modules"], info)
        self.trainable = cfg["model"].get("trainable")
        if self.trainable:  # the rest keeps its weights and its batch-norm statistics
            prefixes = tuple(f"{m}." for m in self.trainable)
            for name, param in expert.named_parameters():
                param.requires_grad_(name.startswith(prefixes))
        self.expert = expert.to(device, memory_format=preferred_memory_format(device))
        self.setup_training(self.expert, device, state)
        if state is None:
            self.prior = color_prior(cfg, split, info, device)
        else:
            self.prior = state["ab_prior"]
            if info.is_main and state["data"] != split.summary():
                log.warning(
                    "note: the data folder changed since the checkpoint (%s, was %s)",
                    split.summary(),
                    state["data"],
                )
        self.criterion = create_loss(cfg["loss"], self.prior).to(device)
        self.bins_loss = None
        if cfg["loss"]["bins_weight"]:
            if not self.expert.has_bins:
                raise ConfigError(
                    f"loss.bins_weight needs an expert with the 313-bin head (model "
                    f"{cfg['model']['arch']} has none; try resnet18_unet_hints)"
                )
            self.bins_loss = BinsLoss(self.prior, cfg["loss"]["bins_weight"], cfg["loss"]["lam"])
            self.bins_loss.to(device)
        self.hints = None
        if self.expert.takes_hints:
            self.hints = HintSampler(cfg["data"]["hints"], self.seed, info.rank)
        self.net = self.parallel(RawOutput(self.expert))
        train_set, val_set = datasets(split, cfg)
        batch = cfg["train"]["batch_size"]
        self.sampler = EpochSampler(len(split.train), True, self.seed, info.world_size, info.rank)
        self.train_loader = DataLoader(
            train_set,
            batch_size=batch,
            sampler=self.sampler,
            drop_last=len(self.sampler) > batch,
            **self.loader_options(),
        )
        self.val_loader = None
        if split.val:
            self.val_loader = DataLoader(
                val_set,
                batch_size=batch,
                sampler=ShardSampler(len(split.val), info.world_size, info.rank),
                **self.loader_options(),
            )
        self.restore_rng(state)

    def begin(self, start_epoch: int) -> None:
        super().begin(start_epoch)
        cfg, device, info, split = self.cfg, self.device, self.info, self.split
        params = sum(p.numel() for p in self.expert.parameters())
        where = f"{device} x {info.world_size} processes" if info.enabled else str(device)
        if device.type == "cpu":
            threads = torch.get_num_threads()
            where += f", {threads} thread{'s' if threads > 1 else ''}"
        log.info(
            "training %s (%s, %.2f M parameters, %s loss) on %s: %d train / %d val images "
            "from %s at %d px, batch %d, epoch %d to %d%s",
            cfg["name"],
            cfg["model"]["arch"],
            params / 1e6,
            cfg["loss"]["kind"],
            where,
            len(split.train),
            len(split.val),
            split.root,
            cfg["data"]["size"],
            cfg["train"]["batch_size"],
            start_epoch + 1,
            self.epochs,
            f", amp {str(self.amp).removeprefix('torch.')}" if self.amp else "",
        )

    def start_epoch(self, epoch: int) -> Batches:
        self.sampler.set_epoch(epoch)
        self.net.train()
        if self.trainable:
            self.expert.eval()
            for name in self.trainable:
                getattr(self.expert, name).train()
        if self.hints is not None:
            self.hints.set_epoch(epoch)
        return self.train_loader

    def train_step(self, item: torch.Tensor | Batch) -> Step:
        batch = as_batch(item, self.device)
        boost = self.cfg["data"]["saturation_boost"]
        loss = train_step(
            self.net, self.criterion, self.optimizer, self.scaler, batch, boost, self.amp,
            self.hints, self.bins_loss,
        )  # fmt: skip
        count = len(batch["rgb"])
        return [loss.double() * count], count

    def validate(self) -> Record:
        if self.val_loader is None:
            return {}
        boost = self.cfg["data"]["saturation_boost"]
        return evaluate(
            self.expert, self.criterion, self.val_loader, self.device, boost, self.amp, self.info
        )

    def card(self, history: list[Record]) -> dict[str, Any]:
        return expert_card(self.cfg, self.split, history)

    def export(self, path: Path, card: dict[str, Any]) -> None:
        save_expert(self.expert, path, card)

    def checkpoint(self, epoch: int, history: list[Record], best: dict[str, Any]) -> dict[str, Any]:
        state = self.training_state(epoch, history, best)
        return {**state, "ab_prior": self.prior, "data": self.split.summary()}

    def epoch_line(self, record: Record) -> str:
        val = (
            f"  val_loss {record['val_loss']:.5f}  val_psnr {record['val_psnr']:.2f} dB"
            if "val_loss" in record
            else ""
        )
        return (
            f"epoch {record['epoch']}/{self.epochs}  train_loss {record['train_loss']:.5f}{val}"
            f"  lr {record['lr']:.2e}  {record['epoch_s']:.0f} s "
            f"({record['images_per_s']:.1f} img/s)"
        )
