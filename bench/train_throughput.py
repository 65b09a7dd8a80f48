"""Throughput of the expert archs (training images/s, inference ms per 512x512 image), and of
the training data: photos/s from raw JPEG folders vs from the routed training cache.

Training steps are the real ones (``segcolor.train.expert.train_step``: Lab conversion, the
default rare-color loss, AdamW; AMP on CUDA) on synthetic RGB batches, so data loading is not
measured. Inference is ``expert(L)`` on one 512x512 image in eval mode under ``no_grad``.
Both run in channels-last memory format, as training does (on this CPU about 25 % faster than
the default layout for inference too).

    python bench/train_throughput.py                 # CPU, and CUDA when there is one
    python bench/train_throughput.py --device cuda --steps 20
    python bench/train_throughput.py --data 2000     # + data loading: JPEGs vs the cache

``--data N`` reads N training photos of the shared folders both ways (one loader process, as
the routed configs use) and also times whole epochs' worth of loader + training steps, so the
table shows whether an epoch is bound by decoding or by compute.

``segcolor train`` runs with OMP_WAIT_POLICY=PASSIVE (see ``segcolor/commands/train.py``); set it
here too to compare like with like on a shared CPU. The header shows it and the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Callable

import torch
from safetensors.torch import save

from segcolor.color.bins import NUM_BINS
from segcolor.device import preferred_memory_format
from segcolor.experts import Expert, create_expert
from segcolor.train.expert import RawOutput, train_step
from segcolor.train.losses import create_loss
from segcolor.train.run import amp_dtype

from common import CATEGORIES, Timer, shared

ARCHS = ("resnet18_unet", "resnet18_unet_semantic", "resnet18_unet_deep")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        nargs="+",
        default=None,
        help="devices to measure (default: cpu, plus cuda when available)",
    )
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="training crop, pixels")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps/runs first")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--infer-size", type=int, default=512)
    parser.add_argument("--infer-runs", type=int, default=3, help="timed inference runs")
    parser.add_argument(
        "--data", type=int, default=0, metavar="N", help="also time loading N training photos"
    )
    parser.add_argument("--workers", type=int, default=1, help="loader processes for --data")
    parser.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "bf16", "fp16", "off"),
        help="training autocast on CUDA (as train.amp)",
    )
    return parser.parse_args(argv)


def timed(fn: Callable[[], object], device: torch.device, warmup: int, runs: int) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        with Timer(device) as timer:
            fn()
        times.append(timer.seconds)
    return statistics.median(times)


def fp16_megabytes(expert: Expert) -> float:
    """Size of the expert's safetensors file with fp16 weights (what a release ships)."""
    state = {
        k: (v.half() if v.is_floating_point() else v).contiguous().cpu()
        for k, v in expert.state_dict().items()
    }
    return len(save(state)) / 1e6


def train_images_per_s(arch: str, device: torch.device, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    expert = create_expert(arch).to(device, memory_format=preferred_memory_format(device)).train()
    net = RawOutput(expert)
    optimizer = torch.optim.AdamW(expert.parameters(), lr=1e-3, weight_decay=1e-2)
    uniform = torch.full((NUM_BINS,), 1.0 / NUM_BINS, dtype=torch.float64)
    criterion = create_loss({"kind": "rebalanced"}, uniform).to(device)
    amp = amp_dtype(args.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    batch = {"rgb": torch.rand(args.batch_size, 3, args.size, args.size, device=device)}
    if expert.uses_features:
        grid = args.size // 8
        batch["features"] = torch.rand(
            args.batch_size, expert.feature_channels, grid, grid, device=device
        )
        batch["weight"] = torch.rand(args.batch_size, 1, args.size, args.size, device=device)
    seconds = timed(
        lambda: train_step(net, criterion, optimizer, scaler, batch, 0.0, amp),
        device,
        args.warmup,
        args.steps,
    )
    return args.batch_size / seconds


def infer_ms(expert: Expert, device: torch.device, args: argparse.Namespace) -> float:
    expert = expert.to(device, memory_format=preferred_memory_format(device)).eval()
    size = args.infer_size
    l_norm = (torch.rand(1, 1, size, size, device=device) * 2 - 1).contiguous(
        memory_format=preferred_memory_format(device)
    )
    with torch.no_grad():
        return 1000 * timed(
            lambda: expert(l_norm), device, max(1, args.warmup - 1), args.infer_runs
        )


def machine(devices: list[torch.device]) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"torch {torch.__version__}, python {platform.python_version()}",
        f"cpu: {cpu}, {torch.get_num_threads()} torch threads, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {load:.1f}",
    ]
    lines += [f"gpu: {torch.cuda.get_device_name(d)}" for d in devices if d.type == "cuda"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    devices = [torch.device(name) for name in names]
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    print(machine(devices))
    print(
        f"train: batch {args.batch_size} at {args.size} px, {args.warmup} warm-up + "
        f"{args.steps} timed steps; infer: batch 1 at {args.infer_size} px, median of "
        f"{args.infer_runs}\n"
    )
    header = (
        f"{'arch':<20} {'params':>8} {'fp16 MB':>8} {'device':>7} {'train img/s':>12} "
        f"{'infer ms/img':>13}"
    )
    print(header)
    print("-" * len(header))
    for arch in args.archs:
        expert = create_expert(arch)
        params = sum(p.numel() for p in expert.parameters())
        size_mb = fp16_megabytes(expert)
        for device in devices:
            train_rate = train_images_per_s(arch, device, args)
            infer = infer_ms(expert, device, args)
            amp = amp_dtype(args.amp, device)
            tag = f" ({str(amp).removeprefix('torch.')})" if amp else ""
            print(
                f"{arch:<20} {params / 1e6:>7.2f}M {size_mb:>8.2f} {device.type:>7} "
                f"{train_rate:>12.1f} {infer:>13.1f}{tag}",
                flush=True,
            )
    if args.data:
        print()
        print(data_table(args))
    return 0


def data_table(args: argparse.Namespace) -> str:
    """Photos/s of the two training data paths, loading alone and loading + training steps."""
    from pathlib import Path

    from torch.utils.data import DataLoader

    from segcolor.pipeline import DEFAULT_PIPELINE
    from segcolor.train.cache import build_cache
    from segcolor.train.data import ImageFolderRGB, init_worker
    from segcolor.train.routed import RoutedPhotos, routed_split

    roots = [shared() / "data" / "train" / name for name in CATEGORIES]
    cache = build_cache(roots, DEFAULT_PIPELINE, 112)  # reused when already built
    split = routed_split(cache, 0.1, None)
    picks = split.train[:: max(1, len(split.train) // args.data)][: args.data]
    files = [Path(cache.files[i]) for i in picks]
    jpegs = ImageFolderRGB(files, args.size, train=True)
    cached = RoutedPhotos(split, range(len(picks)), args.size, True)
    cached.indices = picks
    loader_opts = {
        "batch_size": args.batch_size,
        "num_workers": args.workers,
        "worker_init_fn": init_worker,
        "persistent_workers": False,
    }
    lines = [
        f"data: {len(picks)} photos of {', '.join(CATEGORIES)}, crop {args.size}, batch "
        f"{args.batch_size}, {args.workers} loader process(es)",
        "",
        f"{'source':<28} {'load photos/s':>14} {'load+train img/s':>17}",
        "-" * 61,
    ]
    for label, dataset, arch in (
        ("raw JPEG folders", jpegs, "resnet18_unet"),
        ("routed cache (memmap)", cached, "resnet18_unet_semantic"),
    ):
        with Timer() as timer:
            count = sum(
                len(b["rgb"] if isinstance(b, dict) else b)
                for b in DataLoader(dataset, **loader_opts)
            )
        load_rate = count / timer.seconds
        expert = create_expert(arch).train()
        net = RawOutput(expert)
        optimizer = torch.optim.AdamW(expert.parameters(), lr=1e-3)
        uniform = torch.full((NUM_BINS,), 1.0 / NUM_BINS, dtype=torch.float64)
        criterion = create_loss({"kind": "rebalanced"}, uniform)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        count = 0
        with Timer() as timer:
            for i, item in enumerate(DataLoader(dataset, **loader_opts)):
                batch = item if isinstance(item, dict) else {"rgb": item}
                train_step(net, criterion, optimizer, scaler, batch, 0.0, None)
                count += len(batch["rgb"])
                if i + 1 >= max(3, args.steps * 2):
                    break
        both = count / timer.seconds
        lines.append(f"{label:<28} {load_rate:>14.1f} {both:>17.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
