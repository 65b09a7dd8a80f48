"""The training config: defaults, YAML over defaults, command-line flags over YAML, validation.

A config is a plain nested dict (so it can be stored in checkpoints and expert cards as is).
Every problem is a one-line ``ConfigError`` naming the file and the dotted key.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from segcolor.config import check_keys, deep_merge, load_yaml, set_dotted
from segcolor.errors import CheckpointError, ConfigError

DEFAULTS: dict[str, Any] = {
    "name": None,  # defaults to the config file's stem
    "category": None,  # defaults to the name
    "shared_dir": None,  # else $SEGCOLOR_SHARED_DIR; relative data roots are looked up there
    "out": None,  # defaults to runs/<name>
    "task": "expert",  # expert | profile_classifier (predicts a photo's color profile)
    "profile": None,  # expert: {file: PROFILES.yaml, name: NAME} trains on that profile's photos
    "profiles": None,  # profile_classifier: the PROFILES.yaml whose profiles it learns
    "data": {
        "root": None,  # image folder, searched recursively
        "val_fraction": 0.1,  # by a stable hash of each file's relative path
        "size": 128,  # training crop, pixels
        "saturation_boost": 0.0,  # targets' chroma *= 1 + boost (seed 001)
        "max_images": None,  # cap on the photos (a stable hash-picked subset), for quick runs
        "routing": None,  # train as the router routes: see ROUTING_DEFAULTS
        # experts that take color hints (resnet18_unet_hints): how hints are drawn from the
        # photo (segcolor.train.hints.HINT_DEFAULTS); null: those defaults
        "hints": None,
    },
    "model": {"arch": "resnet18_unet", "head": "regression"},  # + the arch's options, init
    "loss": {
        "kind": "rebalanced",  # l2 | l1 | rebalanced | classification
        "l2_weight": 0.65,  # rebalanced: share of the plain L2 (seed 003)
        "eps": 1e-3,  # rebalanced: weights ~ 1 / sqrt(p + eps)
        "lam": 0.5,  # classification: Zhang's lambda
        "hist_images": 500,  # images sampled for the ab histogram
        # whose colors the rarity weights come from: "own" (the photos/pixels this model trains
        # on) or "all" (routed training: every pixel of every photo, as the general model, so an
        # expert's loss differs from the general model's only by the routing weights)
        "prior": "own",
        # the vivid style's 313-bin head (resnet18_unet_hints): its rebalanced cross-entropy
        # (Zhang's, with lam) added at this weight; 0: the head is not trained
        "bins_weight": 0.0,
    },
    "optim": {
        "lr": 1e-3,  # AdamW
        "weight_decay": 1e-2,
        "scheduler": "cosine",  # cosine | step, stepped per epoch
        "step_size": 10,  # step: epochs between decays
        "gamma": 0.1,  # step: decay factor
        "warmup": 0.0,  # share of all steps with a linear ramp-up (fine-tunes: a fresh optimizer)
    },
    "train": {
        "epochs": 25,
        "batch_size": 32,  # per process
        "workers": 2,  # DataLoader processes per training process
        "seed": 0,
        "amp": "auto",  # auto | bf16 | fp16 | off; CUDA only (auto: bf16 where supported)
        "device": "auto",  # auto (cuda > mps > cpu) | cpu | cuda | cuda:1 | mps
    },
}

# data.routing: the expert learns from every photo of ``data.root`` (one folder or a list) in
# which the router gives its category pixels, each pixel's loss weighted by that routing weight
ROUTING_DEFAULTS: dict[str, Any] = {
    "pipeline": None,  # the pipeline YAML whose router labels the photos (default: shipped)
    "category": None,  # whose weights; default: the config's category; "all": every pixel 1
    "profile": None,  # a profile variant: weights also times its profile's weight of the photo
    "profile_from": "classifier",  # classifier: P(profile | photo), as routed at inference
    # profile_from classifier: a features profile classifier checkpoint to take P(profile) from
    # (trained by the same recipe, before the variants); default: the pipeline's classifier
    "classifier": None,
    # colors: 1 if the photo's own colors (DCD of the category's pixels) belong to the profile
    "profiles": None,  # profile_from colors: the profiles file (configs/profiles/places.yaml)
    "context_weight": 0.1,  # loss weight of the pixels routed elsewhere (context still seen)
    # pixel: the loss averages over all pixels of a batch (a close-up outweighs a small figure);
    # photo: each crop's weights rescaled to mean 1, so every photo counts once, as regions do
    # in the evaluation (a small figure in a street as much as a portrait)
    "balance": "pixel",
    "min_weight": 0.02,  # photos giving the category less (mean weight) are not used
    "feature_dropout": 0.1,  # share of samples trained without features (no-router fallback)
    "crop_scale": None,  # [low, high]: crops cut from windows of that share of the cached
    # square's side (multiples of 8 px) and resized to data.size: scale jitter; None: plain;
    # above 1 (up to 1.5) the square sits in a larger, mirrored window weighted 0 (zoom out)
    "cache_size": 112,  # the cache's square photos; data.size crops them
    "cache_dir": None,  # default $SEGCOLOR_CACHE_DIR, else ~/.cache/segcolor/train
}

# data.hints: color hints drawn from each training photo for experts that take them, as
# Zhang et al. (SIGGRAPH 2017) do (segcolor.train.hints)
HINT_DEFAULTS: dict[str, Any] = {
    "none": 0.5,  # share of samples with no hint, so the answer without hints stays as good
    "p": 0.125,  # the number of hints is Geometric(p) (1, 2, ...) otherwise: mean 1 / p
    "max_points": 50,
    "max_patch": 9,  # patch sides are drawn from 1..max_patch px
}

# command-line flag -> dotted config key
FLAG_KEYS = {
    "data": "data.root",
    "epochs": "train.epochs",
    "size": "data.size",
    "batch_size": "train.batch_size",
    "out": "out",
    "device": "train.device",
    "seed": "train.seed",
    "workers": "train.workers",
}

LOSS_KINDS = ("l2", "l1", "rebalanced", "classification")
TASKS = ("expert", "profile_classifier")
CLASSIFIER_LOSS_KINDS = ("cross_entropy",)
SCHEDULERS = ("cosine", "step")
PRIORS = ("own", "all")
BALANCES = ("pixel", "photo")
HEADS = ("regression", "classification")
AMP_MODES = ("auto", "bf16", "fp16", "off")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults <- YAML <- ``overrides`` (dotted keys), validated and with names filled in."""
    path = Path(path)
    user = load_yaml(path)
    _check_sections(user, path)
    for dotted, value in (overrides or {}).items():  # flags get the checks the YAML's keys get
        _check_sections(apply_overrides({}, {dotted: value}), Path(f"--set {dotted}"))
    cfg = deep_merge(DEFAULTS, apply_overrides(user, overrides or {}))
    if cfg["name"] is None:
        cfg["name"] = path.stem
    return validate(cfg, path)


def apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set each dotted key of ``overrides`` in ``cfg`` (in place); returns ``cfg``."""
    for dotted, value in overrides.items():
        set_dotted(cfg, dotted, value)
    return cfg


def _check_sections(user: dict[str, Any], path: Path) -> None:
    check_keys(user, DEFAULTS, "", path)
    for section, allowed in DEFAULTS.items():
        value = user.get(section)
        if isinstance(allowed, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{section!r} must be a mapping, not {type(value).__name__}", path
                )
            if section != "model":  # the arch's own options are checked by create_expert
                check_keys(value, allowed, f"{section}.", path)


def _number(
    cfg: dict[str, Any],
    dotted: str,
    kind: type,
    path: Path,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    optional: bool = False,
) -> None:
    """Check (and coerce: YAML reads ``1e-3`` as a string) a numeric key in place."""
    *parents, leaf = dotted.split(".")
    node = cfg
    for key in parents:
        node = node[key]
    value = node[leaf]
    if value is None and optional:
        return
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value) if kind is float else int(str(value), 10)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{dotted} must be {'a number' if kind is float else 'an integer'}, not {value!r}", path
        ) from None
    if kind is float and not math.isfinite(number):
        raise ConfigError(f"{dotted} must be finite, not {value!r}", path)
    too_low = low is not None and (number <= low if low_open else number < low)
    if too_low or (high is not None and number > high):
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"<= {high}"
        raise ConfigError(
            f"{dotted} must be {' and '.join(filter(None, (lo, hi)))}, not {value!r}", path
        )
    node[leaf] = number


def _choice(value: Any, choices: tuple[str, ...], dotted: str, path: Path) -> None:
    if value not in choices:
        raise ConfigError(f"{dotted} must be one of {', '.join(choices)}, not {value!r}", path)


def validate(cfg: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Type- and range-check a merged config; returns it (numbers coerced in place)."""
    path = Path(path)
    cfg = copy.deepcopy(cfg)
    for key in ("name", "category", "shared_dir", "out"):
        if cfg[key] is not None and not isinstance(cfg[key], str | int | float):
            raise ConfigError(f"{key} must be a string, not {cfg[key]!r}", path)
    cfg["name"] = str(cfg["name"])
    cfg["category"] = str(cfg["category"] if cfg["category"] is not None else cfg["name"])
    for key in ("task", "profile", "profiles"):  # configs saved before these keys existed
        cfg.setdefault(key, DEFAULTS[key])
    _choice(cfg["task"], TASKS, "task", path)
    _check_profile_keys(cfg, path)
    if cfg["data"]["root"] is None:
        raise ConfigError("data.root is not set (add it to the config or pass --data DIR)", path)
    _check_routing(cfg, path)
    if cfg["task"] == "profile_classifier":
        reads_features = cfg["model"].get("arch") == "profile_features_linear"
        if reads_features != bool(cfg["data"]["routing"]):
            raise ConfigError(
                "model.arch profile_features_linear reads the routed training cache and needs "
                "data.routing; profile_resnet18 reads photos from data.root without it",
                path,
            )
    _number(cfg, "data.val_fraction", float, path, 0.0, 0.9)
    _number(cfg, "data.size", int, path, 16, 4096)
    _number(cfg, "data.saturation_boost", float, path, 0.0, 2.0)
    _number(cfg, "data.max_images", int, path, 2, optional=True)
    arch = cfg["model"].get("arch")
    if not isinstance(arch, str):
        raise ConfigError(f"model.arch must be an arch name, not {arch!r}", path)
    init = cfg["model"].get("init")  # start from these weights (an expert checkpoint)
    if init is not None and not (isinstance(init, str) and init):
        raise ConfigError(f"model.init must be a checkpoint path, not {init!r}", path)
    _check_graft(cfg["model"], path)
    _choice(cfg["model"].get("head", "regression"), HEADS, "model.head", path)
    loss = cfg["loss"]
    expert = cfg["task"] == "expert"
    _choice(loss["kind"], LOSS_KINDS if expert else CLASSIFIER_LOSS_KINDS, "loss.kind", path)
    classify = cfg["model"].get("head") == "classification"
    if expert and classify != (loss["kind"] == "classification"):
        raise ConfigError(
            "model.head 'classification' goes with loss.kind 'classification' and only with it "
            f"(got head {cfg['model'].get('head')!r}, loss {loss['kind']!r})",
            path,
        )
    _number(cfg, "loss.l2_weight", float, path, 0.0, 1.0)
    _number(cfg, "loss.eps", float, path, 0.0, low_open=True)
    _number(cfg, "loss.lam", float, path, 0.0, 1.0, low_open=True)
    _number(cfg, "loss.hist_images", int, path, 1)
    loss.setdefault("prior", "own")  # runs saved before the key existed
    loss.setdefault("bins_weight", 0.0)
    _number(cfg, "loss.bins_weight", float, path, 0.0)
    cfg["data"].setdefault("hints", None)
    _check_hints(cfg, path)
    _choice(loss["prior"], PRIORS, "loss.prior", path)
    if loss["prior"] == "all" and not cfg["data"].get("routing"):
        raise ConfigError("loss.prior 'all' needs data.routing (the cache holds every photo)", path)
    _number(cfg, "optim.lr", float, path, 0.0, low_open=True)
    _number(cfg, "optim.weight_decay", float, path, 0.0)
    _choice(cfg["optim"]["scheduler"], SCHEDULERS, "optim.scheduler", path)
    _number(cfg, "optim.step_size", int, path, 1)
    _number(cfg, "optim.gamma", float, path, 0.0, 1.0, low_open=True)
    cfg["optim"].setdefault("warmup", 0.0)  # runs saved before the key existed
    _number(cfg, "optim.warmup", float, path, 0.0, 0.5)
    train = cfg["train"]
    _number(cfg, "train.epochs", int, path, 1)
    _number(cfg, "train.batch_size", int, path, 1)
    _number(cfg, "train.workers", int, path, 0, 64)
    _number(cfg, "train.seed", int, path, 0, 2**63 - 1)
    if train["amp"] is True:
        train["amp"] = "auto"
    elif train["amp"] is False or train["amp"] is None:
        train["amp"] = "off"
    _choice(train["amp"], AMP_MODES, "train.amp", path)
    if not isinstance(train["device"], str):
        raise ConfigError(f"train.device must be a string, not {train['device']!r}", path)
    if cfg["out"] is None:
        cfg["out"] = str(Path("runs") / cfg["name"])
    cfg["out"] = str(cfg["out"])
    return cfg


def _check_routing(cfg: dict[str, Any], path: Path) -> None:
    """``data.routing`` filled with its defaults and checked; ``data.root`` may then be a list."""
    data = cfg["data"]
    routing = data.get("routing")
    if routing is None or routing is False:
        data["routing"] = None
        if not isinstance(data["root"], str | Path):
            raise ConfigError("data.root must be one folder (a list needs data.routing)", path)
        return
    if routing is True:
        routing = {}
    if not isinstance(routing, dict):
        raise ConfigError(f"data.routing must be a mapping, not {routing!r}", path)
    check_keys(routing, ROUTING_DEFAULTS, "data.routing.", path)
    data["routing"] = {**ROUTING_DEFAULTS, **routing}
    if data["routing"]["category"] is None:
        data["routing"]["category"] = cfg["category"]
    roots = data["root"] if isinstance(data["root"], list) else [data["root"]]
    if not roots or not all(isinstance(r, str) and r for r in roots):
        raise ConfigError(f"data.root must be a folder or a list of folders, not {roots!r}", path)
    _number(cfg, "data.routing.context_weight", float, path, 0.0, 1.0)
    _number(cfg, "data.routing.min_weight", float, path, 0.0, 1.0)
    _number(cfg, "data.routing.feature_dropout", float, path, 0.0, 1.0)
    _number(cfg, "data.routing.cache_size", int, path, 16, 1024)
    if data["routing"]["cache_size"] % 8:
        raise ConfigError("data.routing.cache_size must be a multiple of 8", path)
    _choice(data["routing"]["balance"], BALANCES, "data.routing.balance", path)
    scale = data["routing"]["crop_scale"]
    if scale is not None and not (
        isinstance(scale, list | tuple)
        and len(scale) == 2
        and all(isinstance(v, int | float) for v in scale)
        and 0.0 < scale[0] <= scale[1] <= 1.5
    ):
        raise ConfigError(
            "data.routing.crop_scale must be [low, high] with 0 < low <= high <= 1.5, "
            f"not {scale!r}",
            path,
        )
    classifier = data["routing"]["classifier"]
    if classifier is not None and not (isinstance(classifier, str) and classifier):
        raise ConfigError(
            f"data.routing.classifier must be a profile classifier checkpoint, not {classifier!r}",
            path,
        )
    source = data["routing"]["profile_from"]
    if source not in ("classifier", "colors"):
        raise ConfigError(
            f"data.routing.profile_from must be classifier or colors, not {source!r}", path
        )
    if source == "colors" and data["routing"]["profile"] and not data["routing"]["profiles"]:
        raise ConfigError(
            "data.routing.profile_from colors needs data.routing.profiles: the profiles file "
            "(e.g. configs/profiles/places.yaml, written by `segcolor profiles fit`)",
            path,
        )


def _check_profile_keys(cfg: dict[str, Any], path: Path) -> None:
    """``profile`` (one profile, for an expert) and ``profiles`` (all, for the classifier)."""
    profile, profiles = cfg["profile"], cfg["profiles"]
    if cfg["task"] == "profile_classifier":
        if not isinstance(profiles, str) or not profiles:
            raise ConfigError(
                "task profile_classifier needs `profiles:` naming the profiles file "
                "(e.g. configs/profiles/places.yaml, written by `segcolor profiles fit`)",
                path,
            )
        if profile is not None:
            raise ConfigError(
                "`profile:` selects one profile for an expert; a profile_classifier learns "
                "every profile of `profiles:`",
                path,
            )
        return
    if profiles is not None:
        raise ConfigError(
            "`profiles:` is for task profile_classifier; an expert trained on one profile "
            "takes `profile: {file: PROFILES.yaml, name: NAME}`",
            path,
        )
    if profile is not None and (
        not isinstance(profile, dict)
        or set(profile) != {"file", "name"}
        or not all(isinstance(profile[k], str) and profile[k] for k in ("file", "name"))
    ):
        raise ConfigError(
            f"profile must be {{file: PROFILES.yaml, name: NAME}}, not {profile!r}", path
        )


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs (to say what a resume ignores)."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def resumed_config(
    saved: dict[str, Any], fresh: dict[str, Any], overrides: dict[str, Any], path: Path
) -> tuple[dict[str, Any], list[str]]:
    """A resumed run keeps its own config; only flags given now override it.

    Returns the config and the keys whose new values in the YAML file are ignored.
    """
    cfg = apply_overrides(copy.deepcopy(saved), overrides)
    cfg["out"] = fresh["out"]  # where the checkpoint was found, even if the run was moved
    cfg = validate(cfg, path)  # fills keys added since the run was saved
    return cfg, changed_keys(cfg, fresh)


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


def _check_hints(cfg: dict[str, Any], path: Path) -> None:
    """``data.hints``: null, or a mapping over ``HINT_DEFAULTS`` with numbers in range."""
    hints = cfg["data"]["hints"]
    if hints is None:
        return
    if not isinstance(hints, dict):
        raise ConfigError(f"data.hints must be a mapping, not {type(hints).__name__}", path)
    check_keys(hints, HINT_DEFAULTS, "data.hints.", path)
    cfg["data"]["hints"] = {**HINT_DEFAULTS, **hints}
    _number(cfg, "data.hints.none", float, path, 0.0, 1.0)
    _number(cfg, "data.hints.p", float, path, 0.0, 1.0, low_open=True)
    _number(cfg, "data.hints.max_points", int, path, 1, 1000)
    _number(cfg, "data.hints.max_patch", int, path, 1, 64)


def _check_graft(model: dict[str, Any], path: Path) -> None:
    """``model.graft`` {from: CHECKPOINT, modules: [NAME, ...]}: modules copied from another
    expert after ``model.init``; ``model.trainable`` [NAME, ...]: only these modules train (the
    rest keeps its weights and batch-norm statistics)."""
    graft = model.get("graft")
    if graft is not None:
        ok = isinstance(graft, dict) and set(graft) == {"from", "modules"}
        ok = ok and isinstance(graft["from"], str) and bool(graft["from"])
        ok = ok and isinstance(graft["modules"], list) and bool(graft["modules"])
        if not ok or not all(isinstance(m, str) and m for m in graft["modules"]):
            raise ConfigError("model.graft must be {from: CHECKPOINT, modules: [NAME, ...]}", path)
    trainable = model.get("trainable")
    if trainable is not None and (
        not isinstance(trainable, list)
        or not trainable
        or not all(isinstance(m, str) and m for m in trainable)
    ):
        raise ConfigError(
            "model.trainable must be a list of module names, e.g. [hints, bins]", path
        )
