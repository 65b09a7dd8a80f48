"""Re-routing latency of the routing studio: a photo's first analysis, then edits applied to it
(a region reassigned, a profile pinned), as ``segcolor serve`` does them (segmenter output and
unchanged experts' colors cached).

    python bench/studio_latency.py PHOTO [--size 512] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from PIL import Image

from segcolor.io.images import load_image
from segcolor.pipeline import Pipeline
from segcolor.router.edits import RoutingEdits
from segcolor.studio.session import PhotoSession

from common import Timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--size", type=int, default=512, help="photo resized to SIZE x SIZE")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pixels = load_image(args.photo).pixels
    image = Image.fromarray(pixels).resize((args.size, args.size), Image.BICUBIC)
    pixels = np.asarray(image)
    pipeline = Pipeline.default(device="cpu", require_router=True)
    pipeline.colorize(pixels)  # warm-up
    with Timer() as first:
        session = PhotoSession.open(pipeline, pixels, id="bench", name="bench")
    regions = session.base.regions
    print(f"{args.size}x{args.size}: {session.routing.summary()}")
    print(f"first analysis (segmenter + all experts + merge): {first.seconds * 1000:.0f} ms")
    print("regions:", ", ".join(f"{i}:{r.category}" for i, r in enumerate(regions)))
    subject = next((i for i, r in enumerate(regions) if r.category != "places"), 0)
    others = [c for c in pipeline.router.categories if c != regions[subject].category]
    cases = {
        f"region {subject} -> {c}": {"reassign": [{"region": subject, "category": c}]}
        for c in others
    }
    for name, variants in pipeline.router.variants.items():
        cases[f"pin {name} {variants[-1]}"] = {"profiles": {name: variants[-1]}}
    for label, data in cases.items():
        edits = RoutingEdits.from_dict(data)
        times = []
        for _ in range(args.repeat):
            session.render(RoutingEdits())  # back to the unedited result (cached)
            times.append(session.render(edits))
        with Timer() as fresh:
            pipeline.colorize(pixels, edits)
        print(
            f"{label}: first {times[0]:.0f} ms, cached median "
            f"{statistics.median(times[1:] or times):.0f} ms "
            f"(no cache: {fresh.seconds * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
