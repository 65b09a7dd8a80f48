"""How a color hint spreads (segcolor.merge.spread): the method (edge-aware diffusion or the
joint bilateral kernel) and its settings, chosen on a held-out pick disjoint from every reported
one (held-out photos of each training folder after the first 50; bench/hints.py reports on
others), for the routed pipeline with hints sampled as bench/hints.py samples them (1, 2, 5, 10,
20 hints). Round 3 chose among the bilateral settings alone (25 photos a folder); round 4 added
the edge-aware method and reran both on 15 a folder (each edge-aware option costs a sparse solve).

The experts' merged answer with the hints is computed once per photo and count with spreading
off; each option then spreads it (the spread is a step after the merge). The rule (written
before the run): the highest mean PSNR gain over no hints, averaged over the counts.

    python experiments/hint_spread_choice.py [--per-folder 15] --choice out/spread.json
    python experiments/hint_spread_choice.py --rings out/spread.json   # stage 2: the ring

Stage 2 keeps stage 1's choice and varies the ring (the band around a hint where the answer
that the residual is measured against is read), by the same rule.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import shared  # noqa: E402
from hints import photo_rng, sample_hints  # noqa: E402

from segcolor.evaluate.datasets import find_photos  # noqa: E402
from segcolor.evaluate.metrics import psnr  # noqa: E402
from segcolor.merge.spread import SpreadOptions, spread_hints  # noqa: E402
from segcolor.pipeline import Pipeline  # noqa: E402
from segcolor.router.edits import RoutingEdits  # noqa: E402
from segcolor.router.hints import hint_masks  # noqa: E402

FOLDERS = ("people", "birds", "animals", "places")
COUNTS = (1, 2, 5, 10, 20)
RINGS = (1, 2, 4, 8, 16)  # working px (of a 256 px short side)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-folder", type=int, default=15)
    ap.add_argument("--pipeline", type=Path)
    ap.add_argument("--choice", type=Path, help="write the chosen options here (JSON)")
    ap.add_argument("--rings", type=Path, help="stage 2: vary the ring of this choice (JSON)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    refs = find_photos(
        [shared() / "data" / "train" / f for f in FOLDERS],
        held_out=0.1,
        limit=args.per_folder,
        skip=50,
    )
    pipeline = Pipeline.load(args.pipeline)
    pipeline.spread_options = SpreadOptions(space=0.0)  # off: each option spreads afterwards
    grid = [
        SpreadOptions(method="bilateral", space=s, lightness=light, reach=r)
        for s, light, r in itertools.product((0.05, 0.1, 0.2, 0.4), (5.0, 10.0, 20.0), (0.01, 0.05))
    ] + [
        SpreadOptions(method="edges", space=s, lightness=light)
        for s, light in itertools.product((1.0, 2.0, 4.0, 8.0), (2.0, 3.0, 5.0))
    ]
    if args.rings:
        chosen = SpreadOptions(**json.loads(args.rings.read_text()))
        grid = [dataclasses.replace(chosen, ring=r) for r in RINGS]
    gains = {o: {c: [] for c in COUNTS} for o in grid}
    raw = {c: [] for c in COUNTS}
    for i, ref in enumerate(refs):
        rgb = np.asarray(Image.open(ref.path).convert("RGB"))
        lab = pipeline.lab(rgb)
        semantics = pipeline.segment(lab)
        base = psnr(
            rgb,
            pipeline.to_rgb(
                lab, pipeline.predict(lab, pipeline.route_semantics(lab, semantics)), np.uint8
            ),
            255,
        )
        sampled = sample_hints(rgb, max(COUNTS), photo_rng(ref.path.name))
        for count in COUNTS:
            edits = RoutingEdits(hints=tuple(h.hint for h in sampled[:count]))
            routing = pipeline.route_semantics(lab, semantics, edits)
            ab, _ = pipeline.merge_routed(lab, routing)
            raw[count].append(psnr(rgb, pipeline.to_rgb(lab, ab, np.uint8), 255) - base)
            masks, colors = hint_masks(edits.hints, lab.size, tuple(lab.l_small.shape[-2:]))
            weights = routing.expert_weights_small
            for option in grid:
                out = spread_hints(ab, lab.l_small, masks, colors, weights, option)
                gains[option][count].append(
                    psnr(rgb, pipeline.to_rgb(lab, out, np.uint8), 255) - base
                )
        print(f"{i + 1}/{len(refs)}", file=sys.stderr, end="\r")
    print(f"\n{len(refs)} photos; PSNR gain over no hints (dB)\n")
    print(
        "| method | space | lightness | ring | reach | "
        + " | ".join(f"{c} hints" for c in COUNTS)
        + " | mean |"
    )
    print("|:--|--:|--:|--:|--:|" + "--:|" * (len(COUNTS) + 1))
    print(
        "| (no spread) | | | | | "
        + " | ".join(f"{np.mean(raw[c]):+.2f}" for c in COUNTS)
        + f" | {np.mean([np.mean(raw[c]) for c in COUNTS]):+.2f} |"
    )
    means = {}
    for option, by_count in gains.items():
        row = [float(np.mean(by_count[c])) for c in COUNTS]
        means[option] = float(np.mean(row))
        print(
            f"| {option.method} | {option.space:g} | {option.lightness:g} | {option.ring} | "
            + (f"{option.reach:g} | " if option.method == "bilateral" else "| ")
            + " | ".join(f"{v:+.2f}" for v in row)
            + f" | {means[option]:+.2f} |"
        )
    best = max(means, key=means.get)
    print(f"\nchosen by the rule: {dataclasses.asdict(best)}")
    if args.choice:
        chosen = dataclasses.asdict(best)
        args.choice.write_text(
            json.dumps({k: chosen[k] for k in ("method", "space", "lightness", "reach", "ring")})
        )


if __name__ == "__main__":
    main()
