"""How the vivid style chooses: the annealed mean's temperature and the region prior's strength,
chosen on a held-out pick disjoint from every reported one.

The pick: 25 held-out photos of each training folder after the first 50 (`--held-out 0.1
--limit 25 --skip 50` in `segcolor evaluate` terms; bench/quality.py reports on the first 50).
For each option the script prints the set's PSNR, ΔE00, mean colorfulness against the photos'
(set ΔCF), per-photo |ΔCF| and the JS divergence of the set's ab histogram from the photos'.
The rule (written before the run): among options within 1.0 dB of faithful's PSNR, the lowest
JS divergence; ties (within 2 %) go to the higher PSNR. On the round-3 experts no option was
within 1.0 dB (docs/research-log.md), so the bound was relaxed to issue 26's own, 1.5 dB
(``--max-drop 1.5``), before anything was reported.

    python experiments/vivid_choice.py [--per-folder 25] [--pipeline YAML]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import shared  # noqa: E402

from segcolor.color.vivid import VividOptions  # noqa: E402
from segcolor.evaluate.datasets import find_photos  # noqa: E402
from segcolor.evaluate.metrics import (  # noqa: E402
    Comparison,
    GroundTruth,
    ab_histogram,
    colorfulness,
    js_divergence,
    psnr,
)
from segcolor.pipeline import Pipeline  # noqa: E402

FOLDERS = ("people", "birds", "animals", "places")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-folder", type=int, default=25)
    ap.add_argument("--pipeline", type=Path, default=None)
    ap.add_argument("--temperatures", default="0.25,0.38,0.5")
    ap.add_argument("--priors", default="0,0.5,1,2")
    ap.add_argument("--max-drop", type=float, default=1.0, help="dB below faithful allowed")
    ap.add_argument("--choice", type=Path, help="write the chosen options here (JSON)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    roots = [shared() / "data" / "train" / f for f in FOLDERS]
    refs = find_photos(roots, held_out=0.1, limit=args.per_folder, skip=50)
    pipeline = Pipeline.load(args.pipeline)
    temps = [float(t) for t in args.temperatures.split(",")]
    priors = [float(p) for p in args.priors.split(",")]
    grid = itertools.product(temps, priors)
    methods = {"faithful": None} | {
        f"vivid T={t:g} prior={p:g}": VividOptions(t, p) for t, p in grid
    }
    stats = {m: {"psnr": [], "de": [], "cf": [], "hist": 0} for m in methods}
    truth_cf, truth_hist = [], 0
    for i, ref in enumerate(refs):
        rgb = np.asarray(Image.open(ref.path).convert("RGB"))
        truth = GroundTruth.from_rgb(rgb)
        truth_cf.append(colorfulness(rgb))
        truth_hist = truth_hist + ab_histogram(truth.lab)
        lab = pipeline.lab(rgb)
        routing = pipeline.route_semantics(lab, pipeline.segment(lab))
        for name, options in methods.items():
            pipeline.style = "faithful" if options is None else "vivid"
            if options is not None:
                pipeline.vivid_options = options
            out = pipeline.to_rgb(lab, pipeline.predict(lab, routing), np.uint8)
            comparison = Comparison(truth, out)
            s = stats[name]
            s["psnr"].append(psnr(rgb, out, 255))
            s["de"].append(float(comparison.delta_e.mean()))
            s["cf"].append(colorfulness(out))
            s["hist"] = s["hist"] + ab_histogram(comparison.lab)
        print(f"{i + 1}/{len(refs)} {ref.path.name}", file=sys.stderr, end="\r")
    photo_cf = np.array(truth_cf)
    print(f"\n{len(refs)} photos; the photos' mean colorfulness {photo_cf.mean():.1f}\n")
    print("| method | PSNR | ΔE00 | CF | set ΔCF | mean \\|ΔCF\\| | JS ×10³ |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    rows = {}
    for name, s in stats.items():
        cf = np.array(s["cf"])
        rows[name] = (
            float(np.mean(s["psnr"])),
            float(np.mean(s["de"])),
            float(cf.mean()),
            abs(float(cf.mean() - photo_cf.mean())),
            float(np.abs(cf - photo_cf).mean()),
            1e3 * js_divergence(s["hist"], truth_hist),
        )
        cells = [f"{v:.2f}" for v in rows[name][:2]] + [f"{v:.1f}" for v in rows[name][2:]]
        print(f"| {name} | " + " | ".join(cells) + " |")
    floor = rows["faithful"][0] - args.max_drop
    allowed = {n: r for n, r in rows.items() if n != "faithful" and r[0] >= floor}
    if allowed:
        best_js = min(r[5] for r in allowed.values())
        near = {n: r for n, r in allowed.items() if r[5] <= best_js * 1.02}
        chosen = max(near, key=lambda n: near[n][0])
        print(f"\nchosen by the rule: {chosen}")
        if args.choice:
            options = methods[chosen]
            args.choice.write_text(
                json.dumps(
                    {"temperature": options.temperature, "region_prior": options.region_prior}
                )
            )
    else:
        print(f"\nno vivid option within {args.max_drop:g} dB of faithful's PSNR")


if __name__ == "__main__":
    main()
