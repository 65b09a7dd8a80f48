"""Router segmenter quality on grayscale COCO photos: IoU of background/person/bird/animal.

The router only has to tell these four groups apart, on black-and-white input, so the PASCAL VOC
classes are folded into them and the photos are converted to luminance first. IoU is
dataset-level (TP/FP/FN summed over all images, per group), via segmentation-models-pytorch.

    python bench/router_quality.py                # plain port
    python bench/router_quality.py --tta --reference --limit 40
    python bench/router_quality.py --gray-head segcolor/weights/gray_head.safetensors --color
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import segmentation_models_pytorch as smp
import torch
from PIL import Image
from tqdm import tqdm

from segcolor.paths import shared_dir
from segcolor.router import create_segmenter
from segcolor.router.segmenters.base import DEFAULT_TTA

from common import COCO, Timer, shared

GROUPS = ["background", "person", "bird", "animal"]
VOC_TO_GROUP = {"person": 1, "bird": 2, "cat": 3, "dog": 3, "horse": 3, "sheep": 3, "cow": 3}


def default_weights() -> Path | None:
    """The shared dev copy of the weights unless the user points elsewhere."""
    root = shared_dir()
    if os.environ.get("SEGCOLOR_WEIGHTS_DIR") or root is None:
        return None
    return root / "weights" if (root / "weights").is_dir() else None


def group_matrix(classes: list[str]) -> torch.Tensor:
    """(G, C) 0/1 matrix summing class probabilities into group probabilities."""
    m = torch.zeros(len(GROUPS), len(classes))
    for c, name in enumerate(classes):
        m[VOC_TO_GROUP.get(name, 0), c] = 1.0
    return m


def load_samples(
    data: Path, limit: int | None
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, grayscale uint8 HxW, group mask HxW, RGB uint8 HxWx3) for the COCO subsets; photos
    pair with masks through each folder's index.json (``image`` / ``semantic_mask``)."""
    n = 0
    for subset in COCO:
        index = json.loads((data / subset / "index.json").read_text())
        for item in index["images"]:
            if limit is not None and n >= limit:
                return
            rgb = Image.open(data / subset / item["image"]).convert("RGB")
            gray = np.asarray(rgb.convert("L"))
            mask = np.asarray(Image.open(data / subset / item["semantic_mask"]))
            assert gray.shape == mask.shape, item["image"]
            n += 1
            yield f"{subset}/{item['image']}", gray, mask, np.asarray(rgb)


class IoUMeter:
    """Accumulates smp per-image stats; reports dataset-level IoU per group."""

    def __init__(self) -> None:
        self.stats: list[tuple[torch.Tensor, ...]] = []
        self.seconds = 0.0

    def add(self, pred: torch.Tensor, mask: np.ndarray) -> None:
        target = torch.from_numpy(mask.astype(np.int64))[None]
        stats = smp.metrics.get_stats(
            pred[None].long(), target, mode="multiclass", num_classes=len(GROUPS), ignore_index=255
        )
        self.stats.append(stats)

    def iou(self) -> list[float]:
        tp, fp, fn, tn = (torch.cat(s).sum(0, keepdim=True) for s in zip(*self.stats, strict=True))
        return smp.metrics.iou_score(tp, fp, fn, tn, reduction=None)[0].tolist()


def to_input(gray: np.ndarray, device: torch.device) -> torch.Tensor:
    """Luminance replicated to 3 channels, in [0, 1]: what the router sees for a B&W photo."""
    x = torch.from_numpy(np.array(gray, dtype=np.float32)).div(255)
    return x[None, None].expand(1, 3, *gray.shape).to(device)


def tflite_reference(weights: Path) -> Callable[[np.ndarray], torch.Tensor]:
    """The original TFLite model at 513×513 (bilinear resize in, nearest resize out)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(weights), num_threads=os.cpu_count() or 1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def run(gray: np.ndarray) -> torch.Tensor:
        g = np.asarray(Image.fromarray(gray).resize((513, 513), Image.BILINEAR))
        it.set_tensor(inp["index"], np.repeat(g[None, :, :, None], 3, -1))
        it.invoke()
        labels = Image.fromarray(it.get_tensor(out["index"])[0].astype(np.uint8))
        return torch.from_numpy(np.asarray(labels.resize(gray.shape[::-1], Image.NEAREST)).copy())

    return run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="default: $SEGCOLOR_SHARED_DIR/data/eval_masks")
    ap.add_argument("--segmenter", default="deeplabv3_mnv2_voc")
    ap.add_argument(
        "--weights", help="weights file or folder (default: $SEGCOLOR_SHARED_DIR/weights if any)"
    )
    ap.add_argument("--tta", action="store_true", help="also evaluate test-time augmentation")
    ap.add_argument("--tta-scales", type=float, nargs="+", default=list(DEFAULT_TTA["scales"]))
    ap.add_argument("--no-flip", action="store_true", help="TTA without the horizontal flip")
    ap.add_argument("--keep-aspect", action="store_true", help="working size keeps aspect ratio")
    ap.add_argument("--reference", action="store_true", help="also run the TFLite model")
    ap.add_argument("--gray-head", type=Path, help="also evaluate the port with this gray head")
    ap.add_argument(
        "--color", action="store_true", help="also run the port on the color photos (a bound)"
    )
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    args.data = args.data or shared() / "data" / "eval_masks"
    args.weights = args.weights or default_weights()

    device = torch.device(args.device)
    model = create_segmenter(
        args.segmenter, weights=args.weights, device=device, keep_aspect=args.keep_aspect
    )
    to_group = group_matrix(model.classes).to(device)
    class_group = to_group.argmax(0)  # class index -> group index
    tta = {"scales": tuple(args.tta_scales), "flip": not args.no_flip}
    modes: dict[str, tuple[torch.nn.Module, bool | dict]] = {"port": (model, False)}
    if args.tta:
        modes[f"port+TTA {tta['scales']}{'' if tta['flip'] else ' noflip'}"] = (model, tta)
    if args.gray_head:
        headed = create_segmenter(
            args.segmenter, weights=args.weights, device=device, keep_aspect=args.keep_aspect,
            gray_head=args.gray_head,
        )  # fmt: skip
        modes["port + gray head"] = (headed, False)
        if args.tta:
            modes["port + gray head + TTA"] = (headed, tta)
    meters: dict[str, IoUMeter] = {}
    reference = None
    if args.reference:
        from segcolor.router.segmenters.deeplab_mnv2 import SOURCE, VARIANTS
        from segcolor.router.weights import resolve_weights

        v = VARIANTS[args.segmenter]
        reference = tflite_reference(resolve_weights(v.tflite, v.sha256, args.weights, SOURCE))
        meters["TFLite reference 513"] = IoUMeter()

    n = 0
    samples = load_samples(args.data, args.limit)
    for _, gray, mask, rgb in tqdm(samples, desc="images", unit="img", leave=False):
        n += 1
        x = to_input(gray, device)
        color = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None].to(device)
        runs = [(mode, net, cfg, x) for mode, (net, cfg) in modes.items()]
        if args.color:
            runs.append(("port on the color photo (bound)", model, False, color))
        for mode, net, cfg, inp in runs:
            with Timer(device) as timer:
                prob = net.predict_proba(inp, tta=cfg)[0]
            # Two decision rules: the group of the best VOC class, or the best summed group.
            for rule, pred in (
                ("argmax", class_group[prob.argmax(0)]),
                ("group-sum", torch.einsum("gc,chw->ghw", to_group, prob).argmax(0)),
            ):
                meter = meters.setdefault(f"{mode} [{rule}]", IoUMeter())
                meter.add(pred.cpu(), mask)
                meter.seconds += timer.seconds
        if reference is not None:
            with Timer() as timer:
                pred = class_group.cpu()[reference(gray).long()]
            meters["TFLite reference 513"].seconds += timer.seconds
            meters["TFLite reference 513"].add(pred, mask)

    print(f"{n} images from {args.data} (grayscale), segmenter {args.segmenter}, device {device}")
    header = f"{'mode':<48}" + "".join(f"{g:>11}" for g in GROUPS) + f"{'mIoU':>8}{'img/s':>8}"
    print(header)
    print("-" * len(header))
    for mode, meter in meters.items():
        ious = meter.iou()
        row = "".join(f"{v:>11.3f}" for v in ious)
        print(f"{mode:<48}{row}{np.mean(ious):>8.3f}{n / max(meter.seconds, 1e-9):>8.2f}")


if __name__ == "__main__":
    main()
