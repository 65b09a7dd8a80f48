"""The training loop: ``train_one_epoch``, ``evaluate`` and ``main``, with checkpoint and resume.

Reproducibility is by construction: the data order and augmentation are functions of
(seed, epoch, index) (see ``segcolor.train.data``), the learning rate is a function of the
epoch, and everything else that changes during training (weights, optimizer, AMP scaler, RNG
states, metrics, the ab prior) is in the checkpoint. So a run resumed from the checkpoint of
epoch k ends with exactly the weights of an uninterrupted run (on CPU; CUDA kernels may differ
in the last bits).

Files in the output folder, written by rank 0 after every epoch (outputs first, checkpoint
last, so a kill at any moment leaves nothing that disagrees with the checkpoint):
``metrics.jsonl`` (one line per epoch), ``expert.safetensors`` (the expert after the latest
epoch, with its card), ``best.safetensors`` (lowest validation loss), ``checkpoint.pt``
(everything needed to resume), and ``config.yaml`` (the resolved config, for people).
A ``.lock`` file keeps a second run from writing into the same folder at the same time.

Without ``--resume`` a folder that already holds a checkpoint is refused; ``--resume`` continues
from the last completed epoch with the run's own saved config (flags given now override it, e.g.
``--epochs`` to train longer), and starts afresh, saying so, when there is no checkpoint yet.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import pickle
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segcolor.color.bins import NUM_BINS
from segcolor.color.lab import denormalize_ab, denormalize_l
from segcolor.color.recombine import recombine
from segcolor.config import set_dotted
from segcolor.device import preferred_memory_format, select_device
from segcolor.errors import CheckpointError, ConfigError, SegcolorError
from segcolor.experts import Expert, create_expert, default_cfg, load_expert, save_expert
from segcolor.io.atomic import atomic_write
from segcolor.paths import resolve_data_path
from segcolor.train import distributed
from segcolor.train.cache import (
    RoutedPhotos,
    RoutedSplit,
    build_cache,
    cached_ab_prior,
    reads_features,
    routed_split,
)
from segcolor.train.config import changed_keys, load_config, validate
from segcolor.train.data import (
    EpochSampler,
    ImageFolderRGB,
    ShardSampler,
    Split,
    compute_ab_prior,
    filter_split,
    init_worker,
    split_folder,
    to_lab_batch,
)
from segcolor.train.distributed import DistInfo
from segcolor.train.lock import training_lock
from segcolor.train.losses import create_loss, needs_prior

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
EXPERT = "expert.safetensors"
BEST = "best.safetensors"
METRICS = "metrics.jsonl"
CHECKPOINT_FORMAT = "segcolor-train/1"
DATA_NOTE = "the weights inherit the licences of the training photos"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training; ``str()`` says what was saved and how to go on."""


def interrupted(epoch: int, saved: int, out: Path) -> TrainingInterrupted:
    """What Ctrl-C in epoch ``epoch`` (0-based) leaves: ``saved`` epochs checkpointed in ``out``."""
    what = (
        f"the checkpoint of epoch {saved} is in {out / CHECKPOINT}: rerun with --resume to continue"
        if saved
        else "no epoch was completed, nothing is saved"
    )
    return TrainingInterrupted(f"interrupted in epoch {epoch + 1}; {what}")


class RawOutput(nn.Module):
    """``expert.forward_padded`` as ``forward``, so DDP sees (and syncs) the training call."""

    def __init__(self, expert: Expert) -> None:
        super().__init__()
        self.expert = expert

    def forward(self, l_norm: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return self.expert.forward_padded(l_norm, features)


# ----------------------------------------------------------------------------- setup helpers


def training_device(name: str, info: DistInfo) -> torch.device:
    """``select_device``, plus this process's own GPU under ``torchrun``."""
    device = select_device(name)
    if info.enabled and name == "auto" and device.type == "mps":
        device = torch.device("cpu")  # no DDP backend for MPS
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
    if info.enabled and device.type not in ("cuda", "cpu"):
        raise ConfigError(f"distributed training runs on CUDA or the CPU, not {device.type}")
    return device


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for float32. Mixed precision is used on CUDA only."""
    if mode == "off" or device.type != "cuda":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def lr_factor(epoch: float, optim_cfg: dict[str, Any], epochs: int) -> float:
    """Learning-rate multiplier at ``epoch`` (0-based, fractional within an epoch): a pure
    function, nothing to save. The cosine decays every step, so a one-epoch fine-tune still
    ends annealed; ``warmup`` (a share of all steps) ramps up first, for a fresh optimizer
    that starts from trained weights."""
    warmup = optim_cfg.get("warmup", 0.0) or 0.0
    ramp = min(1.0, epoch / (warmup * epochs)) if warmup > 0 else 1.0
    if optim_cfg["scheduler"] == "cosine":
        return ramp * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    return ramp * optim_cfg["gamma"] ** (int(epoch) // optim_cfg["step_size"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG's state, as tensors and numbers (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss,
        },
        "loader": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_state(path: Path) -> Any:
    """A torch file loaded safely (tensors and plain data only); unreadable bytes are a one-line
    ``CheckpointError``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # junk bytes fail in the unpickler in many ways (KeyError, ...)
        readable = (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError)
        message = str(err).splitlines()[0] if str(err) else ""
        reason = message if message and isinstance(err, readable) else type(err).__name__
        raise CheckpointError(f"not a readable training checkpoint ({reason})", path) from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """An expert's training checkpoint (``read_state``, then its format checked)."""
    state = read_state(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"not a segcolor training checkpoint (expected format {CHECKPOINT_FORMAT})", path
        )
    return state


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (a scheduler or ``kill``) stop training like Ctrl-C: cleanly, with a message."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- the loop


Batch = dict[str, torch.Tensor]


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
) -> torch.Tensor:
    """One optimisation step on a batch already on the device; returns the loss."""
    rgb = batch["rgb"]
    l_norm, target = to_lab_batch(rgb, boost)
    autocast = (
        torch.autocast(rgb.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
    )
    with autocast:
        raw = net(
            l_norm.contiguous(memory_format=preferred_memory_format(l_norm.device)),
            batch.get("features"),
        )
    loss = criterion(raw, target, batch.get("weight"))  # in float32, outside autocast
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def train_one_epoch(
    net: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loader: DataLoader,
    device: torch.device,
    epoch: int,
    cfg: dict[str, Any],
    amp: torch.dtype | None,
    info: DistInfo,
) -> dict[str, float]:
    """Train for one epoch; returns the mean loss over all processes and the speed."""
    net.train()
    boost = cfg["data"]["saturation_boost"]
    total = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, images
    start = time.perf_counter()
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{cfg['train']['epochs']}",
        unit="batch",
        leave=False,
        dynamic_ncols=True,
        disable=not info.is_main or None,
    )
    base_lr, steps = cfg["optim"]["lr"], max(1, len(loader))
    for step, item in enumerate(bar):
        lr = base_lr * lr_factor(epoch + step / steps, cfg["optim"], cfg["train"]["epochs"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = as_batch(item, device)
        loss = train_step(net, criterion, optimizer, scaler, batch, boost, amp)
        total[0] += loss.double() * len(batch["rgb"])
        total[1] += len(batch["rgb"])
        if step % 10 == 0 or step == len(loader) - 1:
            running = (total[0] / total[1]).item()
            if not math.isfinite(running):
                raise SegcolorError(
                    f"the loss became {running} in epoch {epoch + 1}; lower "
                    "optim.lr (the last checkpoint is intact)"
                )
            bar.set_postfix(loss=f"{running:.4f}")
    seconds = time.perf_counter() - start
    distributed.all_reduce_sum(total, info)
    return {
        "train_loss": (total[0] / total[1]).item(),
        "images_per_s": total[1].item() / seconds,
        "epoch_s": seconds,
    }


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
        autocast = (
            torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
        )
        with autocast:
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


# ----------------------------------------------------------------------------- outputs


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


def write_outputs(
    out: Path, state: dict[str, Any], expert: Expert, split: Split | RoutedSplit, improved: bool
) -> None:
    """Metrics, exports, then the checkpoint (see the module docstring for why this order)."""
    history = state["history"]
    with atomic_write(out / METRICS) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in history))
    card = expert_card(state["config"], split, history)
    save_expert(expert, out / EXPERT, card)
    if improved:
        save_expert(expert, out / BEST, card)
    with atomic_write(out / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def write_config(out: Path, cfg: dict[str, Any]) -> None:
    with atomic_write(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    val = (
        f"  val_loss {record['val_loss']:.5f}  val_psnr {record['val_psnr']:.2f} dB"
        if "val_loss" in record
        else ""
    )
    return (
        f"epoch {record['epoch']}/{epochs}  train_loss {record['train_loss']:.5f}{val}  "
        f"lr {record['lr']:.2e}  {record['epoch_s']:.0f} s ({record['images_per_s']:.1f} "
        "img/s)"
    )


# ----------------------------------------------------------------------------- main


def resumed_config(
    saved: dict[str, Any], fresh: dict[str, Any], overrides: dict[str, Any], path: Path
) -> tuple[dict[str, Any], list[str]]:
    """A resumed run keeps its own config; only flags given now override it.

    Returns the config and the keys whose new values in the YAML file are ignored.
    """
    cfg = copy.deepcopy(saved)
    for dotted, value in overrides.items():
        set_dotted(cfg, dotted, value)
    cfg["out"] = fresh["out"]  # where the checkpoint was found, even if the run was moved
    cfg = validate(cfg, path)  # fills keys added since the run was saved
    return cfg, changed_keys(cfg, fresh)


def refuse_existing_run(out: Path) -> None:
    """A new run never writes over another's checkpoint (``--resume`` continues it)."""
    if (out / CHECKPOINT).exists():
        raise SegcolorError(
            f"already holds a training run ({CHECKPOINT}); pass --resume to continue it, or "
            "choose another --out",
            out,
        )


def check_same_model(saved: dict[str, Any], cfg: dict[str, Any], checkpoint: Path) -> None:
    """Weights only resume into the network they were trained as (``model.init`` aside: it
    only picks a run's starting weights)."""
    changed = [k for k in changed_keys(saved["model"], cfg["model"]) if k != "init"]
    if changed:
        key = changed[0].split(".")[0]
        raise CheckpointError(
            f"was trained with model.{key} {saved['model'].get(key)!r}, not "
            f"{cfg['model'].get(key)!r}; it cannot be resumed with another model (drop the "
            "model.* override, or choose another --out)",
            checkpoint,
        )


def make_loaders(
    split: Split | RoutedSplit,
    cfg: dict[str, Any],
    info: DistInfo,
    device: torch.device,
    generator: torch.Generator,
) -> tuple[DataLoader, DataLoader | None]:
    size, seed = cfg["data"]["size"], cfg["train"]["seed"]
    batch, workers = cfg["train"]["batch_size"], cfg["train"]["workers"]
    common = {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": device.type == "cuda",
        "worker_init_fn": init_worker,
        "generator": generator,
    }
    sampler = EpochSampler(len(split.train), True, seed, info.world_size, info.rank)
    if isinstance(split, RoutedSplit):
        routing = cfg["data"]["routing"]
        arch_cfg = {**default_cfg(cfg["model"]["arch"]), **cfg["model"]}  # no model to build
        features = bool(arch_cfg.get("feature_channels"))
        options = {
            "context_weight": routing["context_weight"],
            "features": features,
            "balance": routing["balance"],
        }
        train_set: Dataset = RoutedPhotos(
            split, split.train, size, True, seed,
            feature_dropout=routing["feature_dropout"], crop_scale=routing["crop_scale"],
            **options,
        )  # fmt: skip
        val_set: Dataset = RoutedPhotos(split, split.val, split.cache.size, False, **options)
    else:
        train_set = ImageFolderRGB(split.train, size, train=True, seed=seed)
        val_set = ImageFolderRGB(split.val, size, train=False)
    train = DataLoader(
        train_set,
        batch_size=batch,
        sampler=sampler,
        drop_last=len(sampler) > batch,
        **common,
    )
    if not split.val:
        return train, None
    val = DataLoader(
        val_set,
        batch_size=batch,
        sampler=ShardSampler(len(split.val), info.world_size, info.rank),
        **common,
    )
    return train, val


def data_split(cfg: dict[str, Any]) -> Split | RoutedSplit:
    data = cfg["data"]
    if data.get("routing"):
        return routed_data_split(cfg)
    root = resolve_data_path(data["root"], cfg["shared_dir"])
    split = split_folder(root, data["val_fraction"], data["max_images"])
    if cfg.get("profile"):  # a profile expert: that profile's photos only, on the same sides
        from segcolor.profiles.data import profile_members

        name = cfg["profile"]["name"]
        members = profile_members(cfg["profile"]["file"], name)
        split = filter_split(split, lambda f: f.name in members, f"profile {name!r}")
    return split


def routed_data_split(cfg: dict[str, Any]) -> RoutedSplit:
    """The routed cache of ``data.root`` (built on first use), and this expert's photos in it."""
    from segcolor.pipeline import DEFAULT_PIPELINE

    data, routing = cfg["data"], cfg["data"]["routing"]
    roots = data["root"] if isinstance(data["root"], list) else [data["root"]]
    folders = [resolve_data_path(r, cfg["shared_dir"]) for r in roots]
    pipeline = Path(routing["pipeline"]) if routing["pipeline"] else DEFAULT_PIPELINE
    cache_root = Path(routing["cache_dir"]).expanduser() if routing["cache_dir"] else None
    cache = build_cache(folders, pipeline, routing["cache_size"], cache_root)
    category = None if routing["category"] == "all" else routing["category"]
    profiles_file = classifier = None
    if routing["profile"] and routing["profile_from"] == "colors":
        from segcolor.profiles.data import resolve_profiles_file

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
    from segcolor.profiles.classifier import load_classifier
    from segcolor.router.categories import load_pipeline_config

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


@contextlib.contextmanager
def exclusive(out: Path, info: DistInfo) -> Iterator[None]:
    """Refuse a second training run writing into the same folder at the same time; a lock
    left by a killed run (or its orphaned data-loader workers) is taken over
    (``segcolor.train.lock``)."""
    if not info.is_main:
        yield
        return
    with training_lock(out):
        yield


def main(
    config_path: str | Path, overrides: dict[str, Any] | None = None, resume: bool = False
) -> list[dict[str, Any]]:
    """Train the expert that ``config_path`` describes; returns the per-epoch metrics."""
    config_path = Path(config_path)
    overrides = overrides or {}
    info = distributed.from_env()
    cfg = load_config(config_path, overrides)
    out = Path(cfg["out"])
    split = data_split(cfg)  # a missing or empty folder fails here, before anything is written
    with exclusive(out, info):
        state = None
        if resume and (out / CHECKPOINT).exists():
            state = load_checkpoint(out / CHECKPOINT)
            cfg, ignored = resumed_config(state["config"], cfg, overrides, config_path)
            check_same_model(state["config"], cfg, out / CHECKPOINT)
            if state["epoch"] >= cfg["train"]["epochs"]:
                if info.is_main:
                    log.info(
                        "%s: the run is already complete (%d/%d epochs); pass --epochs N to "
                        "train longer",
                        out,
                        state["epoch"],
                        cfg["train"]["epochs"],
                    )
                return state["history"]
            split = data_split(cfg)
            if ignored and info.is_main:
                log.warning(
                    "note: resuming with the run's saved config; ignoring the changes to %s in %s",
                    ", ".join(ignored),
                    config_path,
                )
        elif resume:
            if info.is_main:
                log.info("--resume: no checkpoint in %s yet; starting from epoch 1", out)
        else:
            refuse_existing_run(out)
        device = training_device(cfg["train"]["device"], info)
        distributed.init(info, device)
        try:
            with sigterm_as_interrupt():
                return fit(cfg, split, state, info, device)
        finally:
            distributed.cleanup(info)


def color_prior(
    cfg: dict[str, Any], split: Split | RoutedSplit, info: DistInfo, device: torch.device
) -> torch.Tensor | None:
    """The ab prior for a rarity-weighted loss: counted by rank 0, sent to the others."""
    if not needs_prior(cfg["loss"]["kind"]):
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
    differ = [k for k in own if k not in source or source[k].shape != own[k].shape]
    new_head = start.head != expert.head and all("segmentation_head" in k for k in differ)
    if differ and not new_head:
        raise ConfigError(
            f"model.init {path} is a {start.arch} {start.arch_config}, "
            f"not this config's {arch} {arch_cfg}"
        )
    expert.load_state_dict({k: v for k, v in source.items() if k not in differ}, strict=False)
    if differ and info.is_main:
        log.info("model.init: %s's weights under a new %s head", path, expert.head)


def fit(
    cfg: dict[str, Any],
    split: Split | RoutedSplit,
    state: dict[str, Any] | None,
    info: DistInfo,
    device: torch.device,
) -> list[dict[str, Any]]:
    """Build everything from ``cfg`` (and ``state`` when resuming), then run the epochs."""
    if cfg.get("task") == "profile_classifier":
        if isinstance(split, RoutedSplit):  # reads the cached segmenter features
            from segcolor.train.profile_features import fit_feature_classifier

            return fit_feature_classifier(cfg, split) if info.is_main else []
        from segcolor.train.profile_classifier import fit_classifier

        return fit_classifier(cfg, split, state, info, device)
    out, epochs, seed = Path(cfg["out"]), cfg["train"]["epochs"], cfg["train"]["seed"]
    seed_everything(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    arch_cfg = {k: v for k, v in cfg["model"].items() if k not in ("arch", "init")}
    expert = create_expert(cfg["model"]["arch"], **arch_cfg)
    if cfg["model"].get("init") and state is None:  # fine-tune another expert's weights
        init_from(expert, cfg["model"]["init"], cfg["model"]["arch"], arch_cfg, info)
    expert = expert.to(device, memory_format=preferred_memory_format(device))
    optimizer = torch.optim.AdamW(
        expert.parameters(), lr=cfg["optim"]["lr"], weight_decay=cfg["optim"]["weight_decay"]
    )
    amp = amp_dtype(cfg["train"]["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    generator = torch.Generator().manual_seed(seed)

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"val_loss": None, "epoch": None}
    start_epoch = 0
    if state is None:
        prior = color_prior(cfg, split, info, device)
    else:
        expert.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
        prior = state["ab_prior"]
        if info.is_main and state["data"] != split.summary():
            log.warning(
                "note: the data folder changed since the checkpoint (%s, was %s)",
                split.summary(),
                state["data"],
            )
    criterion = create_loss(cfg["loss"], prior).to(device)
    net: nn.Module = RawOutput(expert)
    if info.enabled:
        net = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    train_loader, val_loader = make_loaders(split, cfg, info, device, generator)
    if state is not None:
        set_rng_state(state["rng"], generator)

    if info.is_main:
        write_config(out, cfg)
        params = sum(p.numel() for p in expert.parameters())
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
            epochs,
            f", amp {str(amp).removeprefix('torch.')}" if amp else "",
        )

    epoch = saved = start_epoch
    try:
        for epoch in range(start_epoch, epochs):
            lr = cfg["optim"]["lr"] * lr_factor(epoch, cfg["optim"], epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loader.sampler.set_epoch(epoch)
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
            record.update(
                train_one_epoch(
                    net, criterion, optimizer, scaler, train_loader, device, epoch, cfg, amp, info
                )
            )
            # the per-step schedule (warm-up, cosine) moved it: report where the epoch ended
            record["lr"] = optimizer.param_groups[0]["lr"]
            if val_loader is not None:
                record.update(
                    evaluate(
                        expert,
                        criterion,
                        val_loader,
                        device,
                        cfg["data"]["saturation_boost"],
                        amp,
                        info,
                    )
                )
            history.append(record)
            improved = "val_loss" in record and (
                best["val_loss"] is None or record["val_loss"] < best["val_loss"]
            )
            if improved:
                best = {"val_loss": record["val_loss"], "epoch": epoch + 1}
            if info.is_main:
                checkpoint = {
                    "format": CHECKPOINT_FORMAT,
                    "epoch": epoch + 1,
                    "config": cfg,
                    "model": expert.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng_state(generator),
                    "history": history,
                    "best": best,
                    "ab_prior": prior,
                    "data": split.summary(),
                }
                write_outputs(out, checkpoint, expert, split, improved)
                log.info(epoch_line(record, epochs))
            saved = epoch + 1
    except KeyboardInterrupt:
        raise interrupted(epoch, saved, out) from None
    distributed.barrier(info)
    return history
