"""Time the routed pipeline against (segmenter + one expert over the whole image).

    SEGCOLOR_WEIGHTS_DIR=../shared/weights python bench/pipeline_speed.py

Default photo: a COCO image with a person on a horse in a street (its mask: person + animal),
converted to grayscale and resized to 512x512, so three categories (people, animals, places)
are present. Experts are random-init ones (their speed is that of trained ones) unless a pipeline
YAML is given. Rounds are interleaved (pipeline, baseline, pipeline, ...) so load from other
processes hits both alike; wall-clock medians and process CPU time are reported. Target ratio:
<= 1.5, reached by running only present experts, each on its regions' boxes plus a margin.

"End to end" compares ``Pipeline.colorize`` with (segmenter + a one-expert ``colorize``): both
include the Lab conversion and the full-size gamut-safe recombination they share. "Models only"
leaves those out, comparing segmenter + router + cropped experts + merge with segmenter + one
expert forward pass, which is the harder bound. On a loaded machine use ``--threads 1``:
torch's intra-op threads spin-wait badly when the cores are shared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import Timer, random_pipeline_yaml, shared

DEFAULT_PHOTO = "data/eval_masks/coco_taming_train100/000000010321.jpg"  # in the shared folder


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    with Timer() as timer:
        fn()
    return timer.seconds, timer.cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, help=f"default: $SEGCOLOR_SHARED_DIR/{DEFAULT_PHOTO}")
    parser.add_argument("--size", type=int, default=512, help="photo resized to SIZE x SIZE")
    parser.add_argument("--pipeline", type=Path, help="pipeline YAML (default: random experts)")
    parser.add_argument(
        "--compare",
        type=Path,
        help="a second pipeline YAML (e.g. an earlier release's) timed in the same rounds",
    )
    parser.add_argument("--working-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    args.photo = args.photo or shared() / DEFAULT_PHOTO
    if not args.photo.is_file():
        print(
            f"photo {args.photo} not found (set SEGCOLOR_SHARED_DIR or pass --photo)",
            file=sys.stderr,
        )
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)

    from segcolor.color.lab import lab_to_rgb, normalize_l
    from segcolor.merge import plan_crops
    from segcolor.merge.crops import area
    from segcolor.pipeline import Pipeline

    gray = np.asarray(
        Image.open(args.photo).convert("L").resize((args.size, args.size), Image.Resampling.BICUBIC)
    )
    with tempfile.TemporaryDirectory() as tmp:
        yaml_path = args.pipeline or random_pipeline_yaml(Path(tmp), args.working_size)
        pipeline = Pipeline.from_config(
            yaml_path, device=args.device, working_size=args.working_size
        )
    assert pipeline.router is not None and pipeline.router.segmenter is not None
    segmenter = pipeline.router.segmenter
    fallback = pipeline.router.fallback
    single = Pipeline(
        pipeline.experts[fallback][0], device=args.device, working_size=args.working_size
    )

    def segment() -> None:
        lab = single.lab(gray)
        zeros = torch.zeros_like(lab.l_small)
        with torch.inference_mode():
            segmenter.predict_proba(lab_to_rgb(torch.cat([lab.l_small, zeros, zeros], 1)))

    def baseline() -> None:
        segment()
        single.colorize(gray)

    # the same without the shared Lab conversion and gamut-safe recombination at full size
    lab = pipeline.lab(gray)
    zeros = torch.zeros_like(lab.l_small)
    gray_small = lab_to_rgb(torch.cat([lab.l_small, zeros, zeros], 1))
    l_norm = normalize_l(lab.l_small)

    @torch.inference_mode()
    def models_pipeline() -> None:
        pipeline.merge_routed(lab, pipeline.route_lab(lab))

    @torch.inference_mode()
    def models_baseline() -> None:
        segmenter.predict_proba(gray_small)
        single.expert(l_norm)

    routing = pipeline.route(gray)
    size = routing.working_size
    margin = pipeline.margin(size)
    crops = 0
    for name in routing.experts:
        multiple = max(m.size_multiple for m in pipeline.experts[name])
        for batch in plan_crops(routing.expert_boxes_small[name], size, margin, multiple):
            crops += sum(area(b) for b in batch)
    print(
        f"photo: {args.photo.name} as {args.size}x{args.size} gray, working {size[1]}x{size[0]},"
        f" device {pipeline.device}, torch threads {torch.get_num_threads()}"
    )
    print(f"routing: {routing.summary()}")
    print(
        f"experts run: {', '.join(routing.experts)}; crop area {crops / (size[0] * size[1]):.2f}"
        f" x the image (margin {margin} px)"
    )
    if len(routing.experts) < 3:
        print("warning: fewer than three experts run on this photo", file=sys.stderr)

    pipeline.colorize(gray)  # warm-up (allocator, lazy inits)
    baseline()
    jobs: dict[str, Callable[[], object]] = {
        "pipeline": lambda: pipeline.colorize(gray),
        "baseline": baseline,
        "segmenter": segment,
        "expert": lambda: single.colorize(gray),
        "models_pipeline": models_pipeline,
        "models_baseline": models_baseline,
    }
    if args.compare:
        other = Pipeline.from_config(
            args.compare, device=args.device, working_size=args.working_size
        )
        other.colorize(gray)
        jobs["compare"] = lambda: other.colorize(gray)
    results: dict[str, list[tuple[float, float]]] = {key: [] for key in jobs}
    for _ in range(args.rounds):
        for key, job in jobs.items():
            results[key].append(timed(job))

    def med(key: str, index: int) -> float:
        return statistics.median(r[index] for r in results[key])

    labels = {
        "segmenter": "segmenter alone",
        "expert": "one-expert colorize",
        "baseline": "segmenter + one expert",
        "pipeline": "full pipeline",
        "models_baseline": "models: segmenter + expert",
        "models_pipeline": "models: routed pipeline",
    }
    for key, label in labels.items():
        print(
            f"{label:>28}: {med(key, 0) * 1000:7.0f} ms wall (median of {args.rounds}), "
            f"{med(key, 1) * 1000:7.0f} ms CPU"
        )
    for top, bottom, what in (
        ("pipeline", "baseline", "end to end (image in, image out)"),
        ("models_pipeline", "models_baseline", "models only (no Lab conversion / recombination)"),
    ):
        wall = med(top, 0) / med(bottom, 0)
        cpu = med(top, 1) / med(bottom, 1)
        print(f"ratio pipeline / (segmenter + one expert), {what}: {wall:.2f} wall, {cpu:.2f} CPU")
    print("target: <= 1.5 end to end")
    if args.compare:
        print(
            f"{'--compare pipeline':>28}: {med('compare', 0) * 1000:7.0f} ms wall, "
            f"{med('compare', 1) * 1000:7.0f} ms CPU ({args.compare})"
        )
        print(
            f"ratio pipeline / --compare pipeline: {med('pipeline', 0) / med('compare', 0):.2f} "
            f"wall, {med('pipeline', 1) / med('compare', 1):.2f} CPU (target: <= 1.5)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
