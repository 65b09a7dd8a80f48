"""What matching the photos' colorfulness costs in PSNR and ΔE00, by re-rendering the outputs.

Colors each held-out photo of ``data/train`` once with the merge and with the general model,
then renders each answer again with its ab scaled by chroma gains (0.5-2.0) and measures, per
photo and gain, the output's colorfulness (Hasler-Süsstrunk), PSNR and ΔE00 against the photo.
It prints, per method, the frontier between the issue's two aims, |ΔCF| (colorfulness gap to
the photo) and PSNR:

- one gain for every photo (what a saturation knob does);
- a gain that depends on the output's own colorfulness, a + b * CF, fitted on these very
  answers: the best PSNR it reaches under each |ΔCF| cap (an in-sample bound for any
  recalibration that reads only the model's output);
- per-photo gains learned from whole-photo features (the segmenter's pooled features, the
  routing's shares, lightness and the output's chroma statistics; a ridge regression fitted on
  other held-out photos, ``--skip``-style after the reported ones): one predicting each photo's
  best-PSNR gain, one predicting its colorfulness;
- per-photo oracles that know each photo's true colorfulness and error: the gain matching the
  photo's colorfulness, the gain with the best PSNR, and the best trade of the two.

Why: experiments/colorfulness_gap.py bounds the gap from stored numbers; this says what each step
toward the photos' colorfulness costs, and whether a model could know which photos are vivid,
which is what decides whether the bar can be met without losing PSNR.

    SEGCOLOR_SHARED_DIR=../shared python experiments/colorfulness_tradeoff.py --threads 1  # ~10 min
    python experiments/colorfulness_tradeoff.py --load out/colorfulness_tradeoff          # reprint
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from tqdm import tqdm

from segcolor.evaluate.datasets import find_photos
from segcolor.evaluate.harness import MIN_CHROMA
from segcolor.evaluate.methods import Methods
from segcolor.evaluate.metrics import GroundTruth, colorfulness, psnr
from segcolor.io import load_image
from segcolor.pipeline import Pipeline, to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import CATEGORIES, HELD_OUT, REPO, shared, table_header  # noqa: E402

METHODS = ("general", "merged")
GAINS = np.round(np.arange(0.5, 2.01, 0.1), 2)
CAPS = (13.0, 12.0, 11.0, 10.0)
CF, PSNR, DE = range(3)


def photo_features(pipeline: Pipeline, lab, outputs: dict[str, torch.Tensor]) -> np.ndarray:
    """What a per-photo vividness predictor could read from the gray photo: the segmenter's
    pooled semantic features, the routing's category shares, lightness statistics, and each
    method's own chroma statistics."""
    routing = pipeline.route_lab(lab)
    pooled = routing.features.mean(dim=(-1, -2)).flatten().cpu().numpy()
    shares = [routing.shares.get(c, 0.0) / 100 for c in CATEGORIES]
    lightness = lab.l_small.flatten().cpu().numpy()
    stats = [lightness.mean(), lightness.std(), *np.percentile(lightness, [5, 95])]
    for ab in outputs.values():
        chroma = ab.norm(dim=1).flatten().cpu().numpy()
        stats += [chroma.mean(), chroma.std(), np.percentile(chroma, 90)]
    return np.concatenate([pooled, shares, stats])


def collect(args: argparse.Namespace, skip: int, limit: int) -> dict[str, np.ndarray]:
    """Per method (photos, gains, [CF, PSNR, ΔE00]); per photo its colorfulness, folder and
    features. The photos: ``--held-out 0.1 --limit LIMIT --skip SKIP`` of each folder."""
    torch.set_num_threads(args.threads)
    data = args.shared / "data" / "train"
    refs = find_photos([data / c for c in CATEGORIES], held_out=HELD_OUT, limit=limit, skip=skip)
    pipeline = Pipeline.load(args.pipeline, device=args.device, require_router=True)
    general = Pipeline.from_expert(
        args.general, device=pipeline.device, working_size=pipeline.working_size
    )
    methods = Methods(pipeline, METHODS, general)
    table: dict[str, list] = {m: [] for m in METHODS}
    photo_cf, dataset, features = [], [], []
    for ref in tqdm(refs, desc="photos", unit="photo", file=sys.stderr):
        image = load_image(ref.path)
        truth = GroundTruth.from_rgb(to_uint8(image.rgb))
        if truth.mean_chroma < MIN_CHROMA:
            continue  # black and white: no color to compare to (as segcolor evaluate)
        lab = pipeline.lab(image.rgb)
        outputs = methods.run(lab, None)
        for method, ab in outputs.items():
            rows = []
            for gain in GAINS:
                rgb = to_uint8(Pipeline.to_rgb(lab, ab * float(gain)))
                delta_e = deltaE_ciede2000(truth.lab, rgb2lab(rgb)).mean()
                rows.append((colorfulness(rgb.reshape(-1, 3)), psnr(truth.rgb, rgb, 255), delta_e))
            table[method].append(rows)
        features.append(photo_features(pipeline, lab, outputs))
        photo_cf.append(colorfulness(truth.rgb.reshape(-1, 3)))
        dataset.append(ref.dataset)
    result = {m: np.array(rows, dtype=np.float64) for m, rows in table.items()}
    result["photo_cf"] = np.array(photo_cf)
    result["dataset"] = np.array(dataset)
    result["features"] = np.array(features)
    return result


def ridge(x: np.ndarray, y: np.ndarray, strength: float = 1000.0):
    """A standardised ridge regression (the features outnumber nothing but the noise: 400
    photos, 270 features); returns the fitted predictor."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    w = np.linalg.solve(z.T @ z + strength * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return lambda new: ((new - mean) / scale) @ w + y.mean()


def pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(photos, 3): each photo's row at its own gain index."""
    return values[np.arange(len(values)), index]


def row(name: str, chosen: np.ndarray, photo_cf: np.ndarray, gain: str) -> str:
    gap = np.abs(chosen[:, CF] - photo_cf).mean()
    return (
        f"| {name} | {gain} | {chosen[:, PSNR].mean():.2f} | {chosen[:, DE].mean():.2f} "
        f"| {gap:.1f} |"
    )


def calibrated(values: np.ndarray, photo_cf: np.ndarray) -> dict[float, np.ndarray]:
    """Best PSNR under each cap for gain = a + b * (CF_out - 27) / 10, fitted on the answers."""
    out_cf = values[:, np.argmin(np.abs(GAINS - 1.0)), CF]
    best: dict[float, tuple[float, np.ndarray]] = {}
    for a in np.arange(0.6, 2.0, 0.05):
        for b in np.arange(-0.5, 0.81, 0.05):
            gain = np.clip(a + b * (out_cf - 27.0) / 10.0, GAINS[0], GAINS[-1])
            chosen = pick(values, np.argmin(np.abs(GAINS[None] - gain[:, None]), axis=1))
            gap, score = np.abs(chosen[:, CF] - photo_cf).mean(), chosen[:, PSNR].mean()
            for cap in CAPS:
                if gap <= cap and score > best.get(cap, (-np.inf, None))[0]:
                    best[cap] = (score, chosen)
    return {cap: chosen for cap, (_, chosen) in best.items()}


def learned(fit: dict[str, np.ndarray], test: dict[str, np.ndarray], method: str) -> list[str]:
    """Rows for two per-photo gains learned on the fitting photos from whole-photo features:
    one predicting the photo's best-PSNR gain, one predicting its colorfulness (gain = that
    over the output's own). Also each prediction's correlation with its target on the test."""
    one = int(np.argmin(np.abs(GAINS - 1.0)))
    values, photo_cf = test[method], test["photo_cf"]
    best_gain = lambda d: np.log(GAINS[d[method][:, :, PSNR].argmax(axis=1)])  # noqa: E731
    predicted = ridge(fit["features"], best_gain(fit))(test["features"])
    corr = np.corrcoef(predicted, best_gain(test))[0, 1]
    index = np.argmin(np.abs(GAINS[None] - np.exp(predicted)[:, None]), axis=1)
    rows = [row(method, pick(values, index), photo_cf, f"learned: best-PSNR gain (r = {corr:.2f})")]
    predicted_cf = np.exp(ridge(fit["features"], np.log1p(fit["photo_cf"]))(test["features"])) - 1
    corr = np.corrcoef(predicted_cf, photo_cf)[0, 1]
    gain = predicted_cf / np.maximum(values[:, one, CF], 1.0)
    index = np.argmin(np.abs(GAINS[None] - gain[:, None]), axis=1)
    rows.append(row(method, pick(values, index), photo_cf, f"learned: photo's CF (r = {corr:.2f})"))
    return rows


def summarize(result: dict[str, np.ndarray], fit: dict[str, np.ndarray] | None = None) -> None:
    """The frontier table; with ``fit`` (other photos), the learned per-photo gains too."""
    photo_cf = result["photo_cf"]
    one = int(np.argmin(np.abs(GAINS - 1.0)))
    print(f"{len(photo_cf)} held-out photos; their own colorfulness {photo_cf.mean():.1f}\n")
    print(table_header(["method", "chroma gain", "PSNR dB ↑", "ΔE00 ↓", "\\|ΔCF\\| ↓"], "llrrr"))
    for method in METHODS:
        values = result[method]
        print(row(method, values[:, one], photo_cf, "1 (as shipped)"))
        best = int(np.argmax(values[:, :, PSNR].mean(axis=0)))
        print(row(method, values[:, best], photo_cf, f"×{GAINS[best]:.1f}, best PSNR of one gain"))
        for gain in (1.2, 1.5):
            j = int(np.argmin(np.abs(GAINS - gain)))
            print(row(method, values[:, j], photo_cf, f"×{gain:.1f}"))
        fitted = calibrated(values, photo_cf)
        for cap in CAPS:
            label = f"a + b·CF_out, fitted on the answers, \\|ΔCF\\| ≤ {cap:.0f}"
            if cap in fitted:
                print(row(method, fitted[cap], photo_cf, label))
            else:
                print(f"| {method} | {label} | unreachable | | |")
        if fit is not None:
            print("\n".join(learned(fit, result, method)))
        gaps = np.abs(values[:, :, CF] - photo_cf[:, None])
        print(row(method, pick(values, gaps.argmin(axis=1)), photo_cf, "oracle: photo's CF"))
        best_psnr = values[:, :, PSNR].argmax(axis=1)
        print(row(method, pick(values, best_psnr), photo_cf, "oracle: best PSNR"))
        for weight in (0.05, 0.1):  # PSNR dB traded per point of |ΔCF|, each photo on its own
            index = (values[:, :, PSNR] - weight * gaps).argmax(axis=1)
            print(row(method, pick(values, index), photo_cf, f"oracle: PSNR − {weight}·\\|ΔCF\\|"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=None, help="default: $SEGCOLOR_SHARED_DIR")
    ap.add_argument("--pipeline", default=None, help="pipeline YAML (default: shipped)")
    ap.add_argument("--general", type=Path, default=REPO / "segcolor/weights/general.safetensors")
    ap.add_argument("--per-category", type=int, default=50, help="reported photos per folder")
    ap.add_argument(
        "--fit-per-category",
        type=int,
        default=100,
        help="photos per folder, after the reported ones, to fit the learned gains on (0: none)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--save", type=Path, default=REPO / "out/colorfulness_tradeoff")
    ap.add_argument("--load", type=Path, default=None, help="reprint a run saved by --save")
    args = ap.parse_args(argv)
    if args.load is not None:
        runs = {}
        for name in ("reported", "fit"):
            if (args.load / f"{name}.npz").is_file():
                with np.load(args.load / f"{name}.npz") as saved:
                    runs[name] = dict(saved)
        if "reported" not in runs:
            print(f"error: {args.load}/reported.npz: not found", file=sys.stderr)
            return 2
        summarize(runs["reported"], runs.get("fit"))
        return 0
    args.shared = args.shared or shared()
    if not (args.shared / "data" / "train").is_dir():
        print(
            f"error: {args.shared}/data/train: not found (set SEGCOLOR_SHARED_DIR)", file=sys.stderr
        )
        return 2
    args.save.mkdir(parents=True, exist_ok=True)
    reported = collect(args, skip=0, limit=args.per_category)
    np.savez(args.save / "reported.npz", **reported)
    fit = None
    if args.fit_per_category:
        fit = collect(args, skip=args.per_category, limit=args.fit_per_category)
        np.savez(args.save / "fit.npz", **fit)
    summarize(reported, fit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
