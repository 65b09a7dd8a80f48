"""Profile experts routed by the profile classifier vs the single places expert, on held-out
places photos: CIEDE2000, PSNR, colorfulness and |Δ colorfulness| against the ground truth.

The photos are the places photos every expert held out (``is_held_out(path, 0.1)``, by file
name); each is converted to grayscale (its L) and colorized whole by:
- single experts (``--experts``): the places expert (``runs/places/expert.safetensors``,
  configs/experts/places.yaml), and e.g. the control for fine-tuned profile experts;
- each set of profile experts (``--sets``): mixed by the classifier's P(profile | photo) as the
  router does (variants below ``--min-probability`` dropped, the rest renormalised), the
  classifier's top-1 variant alone, the variant of the photo's true profile (its own dominant
  colors: an upper bound on routing), and the plain mean of the variants (no classifier).
Places photos hold no people or animals, so the segmenter would give every pixel to places:
the comparison is between the experts themselves. Metrics are those of ``segcolor evaluate``
(``segcolor.evaluate.metrics``: scikit-image's CIEDE2000 and PSNR, Hasler-Suesstrunk
colorfulness), on the 8-bit output against the 8-bit ground truth.

    python experiments/profile_experts.py               # the shipped files, all held-out photos
    python experiments/profile_experts.py --limit 50    # a quick look
    python experiments/profile_experts.py \\
        --experts "places expert=segcolor/weights/places.safetensors" \\
                  "places expert + 3 epochs=runs/profiles/places_all_finetune/expert.safetensors" \\
        --sets "fine-tuned profile experts=segcolor/weights/places_{name}.safetensors"

The last form is the README's table: the control (configs/profiles/places_all_finetune.yaml,
trained beside the variants) continues the places expert on all places photos for as long as
the variants continue on their profile, so any gain of the variants is not just more training.

Set OMP_WAIT_POLICY=PASSIVE on a shared CPU (as ``segcolor train`` does).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab

from segcolor.evaluate.metrics import GroundTruth, colorfulness, psnr
from segcolor.io.images import find_images, load_image
from segcolor.paths import resolve_data_path
from segcolor.pipeline import Pipeline, to_uint8
from segcolor.profiles import load_profiles
from segcolor.profiles.classifier import load_classifier, predict_proba
from segcolor.router.gates import mix_weights

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import HELD_OUT, Timer, held_out_photos, table_header  # noqa: E402

METRICS = ("delta_e2000", "psnr_rgb", "colorfulness", "colorfulness_diff")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/train/places")
    parser.add_argument("--val-fraction", type=float, default=HELD_OUT)
    parser.add_argument("--profiles", default="configs/profiles/places.yaml")
    parser.add_argument(
        "--experts",
        nargs="+",
        default=["places expert=segcolor/weights/places.safetensors"],
        metavar="LABEL=CKPT",
        help="single experts to compare (the first is the baseline)",
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        default=["shipped profile experts=segcolor/weights/places_{name}.safetensors"],
        metavar="LABEL=PATTERN",
        help="sets of profile experts; {name} in the pattern is the profile name",
    )
    parser.add_argument("--classifier", default="segcolor/weights/places_classifier.safetensors")
    parser.add_argument(
        "--min-probability",
        type=float,
        nargs="+",
        default=[0.1, 0.3],
        help="variants below this P are not mixed; one row per value (the shipped pipeline's: 0.3)",
    )
    parser.add_argument("--working-size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None, help="first N held-out photos only")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        label, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected LABEL=PATH, got {item!r}")
        out.append((label, value))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profiles = load_profiles(args.profiles)
    names = profiles.names
    truth_of = profiles.labels()
    held_out = held_out_photos(find_images(resolve_data_path(args.data)), args.val_fraction)
    photos = [f for f in held_out if f.name in truth_of][: args.limit]
    size = args.working_size

    def pipeline(path: str) -> Pipeline:
        return Pipeline.from_expert(path, device=args.device, working_size=size)

    singles = {label: pipeline(path) for label, path in _pairs(args.experts)}
    sets = {}
    for label, pattern in _pairs(args.sets):
        paths = {n: pattern.format(name=n) for n in names}
        missing = [p for p in paths.values() if not Path(p).is_file()]
        if missing:
            print(f"(skipping {label}: {missing[0]} not found)", file=sys.stderr)
            continue
        sets[label] = {n: pipeline(p) for n, p in paths.items()}
    classifier = load_classifier(args.classifier, args.device)
    assert classifier.profiles == names, (classifier.profiles, names)
    reads_features = getattr(classifier, "inputs", "lightness") == "features"
    segmenter = Pipeline.default(args.device, size, require_router=True) if reads_features else None

    def feature_source(lab):
        return segmenter.segment(lab).features

    mixes = [f"classifier mix (P ≥ {t:g})" for t in args.min_probability]
    kinds = (*mixes, "classifier top-1", "true profile (oracle)", "mean of variants")
    methods = list(singles) + [f"{label}: {kind}" for label in sets for kind in kinds]
    scores: dict[str, list[dict[str, float]]] = defaultdict(list)
    by_profile: dict[tuple[str, str], list[float]] = defaultdict(list)
    truth_cf: list[float] = []
    correct = 0
    with Timer() as timer:
        for i, path in enumerate(photos):
            rgb = load_image(path).rgb
            truth = GroundTruth.from_rgb(to_uint8(rgb))
            truth_cf.append(colorfulness(truth.rgb))
            lab = next(iter(singles.values())).lab(rgb)  # only L is used
            # a features classifier pools the segmenter's over the whole photo (places photos: all
            # places pixels); a lightness classifier reads L
            features = feature_source(lab) if reads_features else None
            probs = predict_proba(classifier, lab.l_small, features)[0].cpu().tolist()
            probabilities = dict(zip(names, probs, strict=True))
            weights = [mix_weights(probabilities, names, t) for t in args.min_probability]
            top = names[int(np.argmax(probs))]
            true = names[truth_of[path.name]]
            correct += top == true
            outputs = {label: p.predict_ab(lab) for label, p in singles.items()}
            for label, variants in sets.items():
                ab = {n: variants[n].predict_ab(lab) for n in names}
                for kind, mix in zip(mixes, weights, strict=True):
                    outputs[f"{label}: {kind}"] = sum(w * ab[n] for n, w in mix.items())
                outputs[f"{label}: classifier top-1"] = ab[top]
                outputs[f"{label}: true profile (oracle)"] = ab[true]
                outputs[f"{label}: mean of variants"] = sum(ab.values()) / len(ab)
            for method, ab in outputs.items():
                result = measure(truth, to_uint8(Pipeline.to_rgb(lab, ab)))
                scores[method].append(result)
                by_profile[(method, true)].append(result["delta_e2000"])
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{len(photos)} photos", file=sys.stderr)
    seconds = timer.seconds

    print(
        f"# Profile experts vs the single places expert: {len(photos)} held-out places photos "
        f"(val_fraction {args.val_fraction}), working size {size}, {args.device}; "
        f"{seconds:.0f} s\n"
    )
    print(
        f"classifier {args.classifier}: top-1 accuracy {correct / max(len(photos), 1):.3f} on "
        "these photos\n"
    )
    print(table_header(["method", "ΔE2000 ↓", "PSNR dB ↑", "colorfulness", "\\|ΔCF\\| ↓"]))
    for method in methods:
        mean = {k: _mean([r[k] for r in scores[method]]) for k in METRICS}
        print(
            f"| {method} | {mean['delta_e2000']:.2f} | {mean['psnr_rgb']:.2f} | "
            f"{mean['colorfulness']:.1f} | {mean['colorfulness_diff']:.1f} |"
        )
    print(f"| ground truth | 0 | ∞ | {_mean(truth_cf):.1f} | 0 |\n")
    counts = {n: sum(1 for p in photos if names[truth_of[p.name]] == n) for n in names}
    print("ΔE2000 by true profile (photos):\n")
    print(table_header(["method", *(f"{n} ({counts[n]})" for n in names)]))
    for method in methods:
        cells = " | ".join(f"{_mean(by_profile[(method, n)]):.2f}" for n in names)
        print(f"| {method} | {cells} |")
    print("\nTraining photos (epochs):")
    for label, path in _pairs(args.experts):
        print(f"- {label}: {_trained(path)}")
    for label, pattern in _pairs(args.sets):
        if label in sets:
            cells = ", ".join(f"{n} {_trained(pattern.format(name=n))}" for n in names)
            print(f"- {label}: {cells}")
    return 0


def measure(truth: GroundTruth, output: np.ndarray) -> dict[str, float]:
    """``segcolor evaluate``'s whole-image metrics that this table shows (SSIM and AuC left out
    to keep the run short)."""
    cf = colorfulness(output)
    return {
        "delta_e2000": float(deltaE_ciede2000(truth.lab, rgb2lab(output)).mean()),
        "psnr_rgb": psnr(truth.rgb, output, 255),
        "colorfulness": cf,
        "colorfulness_diff": abs(cf - colorfulness(truth.rgb)),
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _trained(checkpoint: str) -> str:
    """``3334 (5)``: training photos and epochs, from the checkpoint's card."""
    from segcolor.experts import read_card

    try:
        card = read_card(checkpoint)
        return f"{card['data']['train_images']} ({card['epochs_trained']})"
    except (KeyError, OSError, ValueError):
        return "?"


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
