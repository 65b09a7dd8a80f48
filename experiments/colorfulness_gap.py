"""How far recalibrating colorfulness could close the |ΔCF| gap, from an evaluation's photos.

Reads the per_photo.csv of a ``segcolor evaluate`` run (e.g. ``out/quality/held_out`` written
by ``bench/quality.py``) and prints, per method, the mean |ΔCF| (Hasler-Süsstrunk colorfulness
of the output minus the photo's own) as evaluated, then after the best single chroma gain for
the whole set (what a "saturation" knob could do), then after the best affine map of each
output's colorfulness onto the photo's, fitted on the answers (a bound no calibration can
beat, since it uses the photos' true colorfulness), and the correlation between the two.

Why: the gap is per photo. If a method's colorfulness barely tracks the photos', no global
rescaling brings the mean |ΔCF| near zero; it takes a model that knows *which* photos are vivid.

    python experiments/colorfulness_gap.py out/quality/held_out/per_photo.csv

The gain's effect is computed from the stored numbers, taking colorfulness as proportional to a
chroma gain (exact in the opponent channels it is defined on, approximate through Lab -> sRGB
and gamut clipping), not by re-rendering the photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import ALL, read_scores, table_header  # noqa: E402


def read(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """method -> (output colorfulness, photo colorfulness), one entry per photo."""
    scores = read_scores(path) or {}

    def per_method(metric: str) -> dict[str, np.ndarray]:
        return {
            m: np.array([*v.values()]) for (m, g, k), v in scores.items() if (g, k) == (ALL, metric)
        }

    out, diff = per_method("colorfulness"), per_method("colorfulness_diff")
    if "gray" not in out:
        raise SystemExit(f"{path}: no gray rows (evaluate with --baselines including gray)")
    # colorfulness_diff is |out - photo|; the gray output (CF ~ 0) recovers each photo's own
    # colorfulness, which the other rows then take
    truth = out["gray"] + diff["gray"]
    return {method: (cf, truth) for method, cf in out.items() if len(cf) == len(truth)}


def best_gain(out: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    gains = np.linspace(0.5, 3.0, 251)
    gaps = [np.abs(g * out - truth).mean() for g in gains]
    i = int(np.argmin(gaps))
    return float(gains[i]), float(gaps[i])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("per_photo", type=Path, help="per_photo.csv of a segcolor evaluate run")
    args = ap.parse_args(argv)
    if not args.per_photo.is_file():
        print(f"error: {args.per_photo}: not found", file=sys.stderr)
        return 2
    data = read(args.per_photo)
    columns = [
        "method",
        "photos",
        "CF output / photos",
        "\\|ΔCF\\|",
        "best gain: \\|ΔCF\\|",
        "oracle affine: \\|ΔCF\\|",
        "corr(CF output, CF photo)",
    ]
    print(table_header(columns, "lrrrrrr"))
    for method, (out, truth) in data.items():
        if method == "gray":
            continue
        gain, gap = best_gain(out, truth)
        slope, offset = np.polyfit(out, truth, 1)
        affine = np.abs(offset + slope * out - truth).mean()
        corr = np.corrcoef(out, truth)[0, 1]
        print(
            f"| {method} | {len(out)} | {out.mean():.1f} / {truth.mean():.1f} "
            f"| {np.abs(out - truth).mean():.1f} | ×{gain:.2f}: {gap:.1f} | {affine:.1f} "
            f"| {corr:.2f} |"
        )
    truth = next(iter(data.values()))[1]
    constant = np.abs(np.median(truth) - truth).mean()
    print(f"\nthe same colorfulness for every photo (their median): |ΔCF| {constant:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
