"""How visible are the seams where two experts meet? Hard masks vs feathered weights.

    SEGCOLOR_WEIGHTS_DIR=../shared/weights python bench/merge_seams.py [--pipeline YAML]

For each eval photo (COCO images of data/eval_masks) where the router finds at least two
categories, every present expert colors the whole photo, then the ab are composited:

- hard: each pixel takes its arg-max category's expert (a hard mask);
- soft: the router's soft weights, unblurred;
- feathered: soft weights blurred with a Gaussian (sigma = feather x short side), renormalised;
- pipeline: what ``Pipeline`` does (feathered, experts run on crops of their regions).

The measure is the mean ab jump (Euclidean, Lab units) between neighbouring pixels on either
side of a region border; the mean jump between neighbours inside regions is shown for scale.

Two kinds of experts (``--experts``):

- ``cast``: stand-ins that know the photo's true colors but each adds its own color cast
  (about 20 Lab units apart), the typical disagreement of good experts; the jump at a hard
  border is then the cast difference, and a seam-free merge approaches the photo's own texture;
- ``random``: random-init experts (or the YAML's, with ``--pipeline``) run for real; they disagree
  wildly, so absolute numbers are large and only the ratios between methods mean much. This mode
  also scores the real pipeline (experts on crops).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import COCO, random_pipeline_yaml, shared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", type=Path, help="pipeline YAML (default: random experts)")
    parser.add_argument("--limit", type=int, default=40, help="photos with >= 2 categories")
    parser.add_argument("--working-size", type=int, default=256)
    parser.add_argument(
        "--feathers",
        default="0.01,0.02,0.04",
        help="feather values to compare (fraction of the short side)",
    )
    parser.add_argument("--experts", choices=("cast", "random", "both"), default="both")
    args = parser.parse_args()
    root = shared()
    photos = sorted(p for d in COCO for p in (root / "data/eval_masks" / d).glob("*.jpg"))
    if not photos:
        print(f"no eval photos under {root} (set SEGCOLOR_SHARED_DIR)", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    from segcolor.color.lab import normalize_l
    from segcolor.io.images import load_image
    from segcolor.merge import (
        boundary_jump,
        composite,
        feather_sigma,
        full_patches,
        interior_gradient,
        one_hot,
    )
    from segcolor.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        yaml_path = args.pipeline or random_pipeline_yaml(Path(tmp), args.working_size)
        pipeline = Pipeline.from_config(yaml_path, working_size=args.working_size)
    feathers = [float(f) for f in args.feathers.split(",")]
    modes = ("cast", "random") if args.experts == "both" else (args.experts,)
    rows = {mode: {} for mode in modes}
    used = 0
    for photo in photos:
        if used >= args.limit:
            break
        image = load_image(photo)
        lab = pipeline.lab(image.rgb)
        routing = pipeline.route_lab(lab)
        if len(routing.experts) < 2:
            continue
        used += 1
        weights = routing.expert_weights_small
        labels = weights.argmax(0)  # the expert each pixel mostly belongs to
        size = tuple(labels.shape)
        for mode in modes:
            if mode == "cast":
                full = true_ab(image.rgb, size)[None] + CASTS[: len(routing.experts), :, None, None]
            else:
                l_norm = normalize_l(lab.l_small)
                full = torch.stack([pipeline.run_expert(n, l_norm)[0] for n in routing.experts])
            patches = full_patches(full)
            out = rows[mode]
            hard, _ = composite(one_hot(labels, len(routing.experts)), patches)
            out.setdefault("hard", []).append(boundary_jump(hard, labels))
            soft, _ = composite(weights, patches)
            out.setdefault("soft", []).append(boundary_jump(soft, labels))
            for f in feathers:
                ab, _ = composite(weights, patches, feather_sigma(f, size))
                out.setdefault(f"feathered {f:g}", []).append(boundary_jump(ab, labels))
            if mode == "random":
                ab = pipeline.merge_routed(lab, routing)[0][0]
                out.setdefault("pipeline", []).append(boundary_jump(ab, labels))
            else:  # the photo's own color change across the same borders: no seam at all
                truth = true_ab(image.rgb, size)
                out.setdefault("true colors", []).append(boundary_jump(truth, labels))
            out.setdefault("interior", []).append(interior_gradient(hard, labels))
    if not used:
        print("no photo with two or more categories found", file=sys.stderr)
        return 1
    print(
        f"{used} eval photos with >= 2 categories; working size {args.working_size}; "
        f"pipeline feather {pipeline.merge.feather:g}"
    )
    for mode in modes:
        what = (
            "experts = true colors + a cast per expert"
            if mode == "cast"
            else f"experts: {args.pipeline or 'random-init'}"
        )
        print(f"\n[{mode}] {what}")
        print("mean ab jump across region borders (Lab units; lower = less visible seam)")
        hard = statistics.mean(rows[mode]["hard"])
        for key, values in rows[mode].items():
            if key == "interior":
                continue
            mean = statistics.mean(values)
            print(
                f"  {key:>16}: {mean:7.2f}  ({mean / hard:6.1%} of hard; median "
                f"{np.median(values):.2f})"
            )
        print(
            f"  {'inside regions':>16}: {statistics.mean(rows[mode]['interior']):7.2f}"
            "  (neighbour jump within regions, for scale)"
        )
    return 0


# Casts in Lab ab units: pairwise about 20 apart, like experts trained on different data.
CASTS = torch.tensor([[12.0, 6.0], [-8.0, 14.0], [-6.0, -10.0], [10.0, -12.0], [0.0, 0.0]])


def true_ab(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The photo's own ab at the working size."""
    import torch.nn.functional as F

    from segcolor.color.lab import rgb_to_lab

    lab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())
    return F.interpolate(lab[:, 1:], size=size, mode="area")[0]


if __name__ == "__main__":
    sys.exit(main())
