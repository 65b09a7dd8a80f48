"""Results on disk: ``results.md`` (tables a person reads), ``results.csv`` (long format, every
number), ``per_photo.csv`` (one row per photo and method, whole-image metrics).

Tables are photo means: each photo counts once, however large. Region tables use the photos
where the region exists (at least ``MIN_REGION_SHARE`` of the photo). Files are written
atomically and contain nothing that changes between identical runs (no timings, no dates).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segcolor.io.atomic import atomic_write

from .datasets import REGION_ORDER
from .fwd import FWD_LEVEL, FWD_SIZE
from .harness import IMAGE, MIN_REGION_SHARE, TRUTH, Results
from .metrics import AUC_MAX, DELTA_E_GOOD, METRICS, PSNR_CAP

# metric -> (column header, format of the mean)
COLUMNS = {
    "psnr_rgb": ("PSNR dB ↑", "{:.2f}"),
    "psnr_ab": ("PSNR-ab dB ↑", "{:.2f}"),
    "ssim": ("SSIM ↑", "{:.4f}"),
    "delta_e2000": ("ΔE00 ↓", "{:.2f}"),
    "delta_e_lt10": ("ΔE00<10 % ↑", "{:.1%}"),
    "colorfulness": ("CF", "{:.1f}"),
    "colorfulness_diff": ("\\|ΔCF\\| ↓", "{:.1f}"),
    "auc_ab": ("AuC ↑", "{:.4f}"),
}


@dataclass
class Row:
    method: str
    photos: int
    pixels: int
    means: dict[str, float]


def _index(results: Results) -> dict[tuple[str, str, str], dict[str, float]]:
    """(photo, method, region) -> {metric: value}."""
    index: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for r in results.records:
        index[(r.photo, r.method, r.region)][r.metric] = r.value
    return index


def summarize(results: Results, region: str, photos: Sequence[str] | None = None) -> list[Row]:
    """Photo-mean of every metric per method over ``region`` (ground truth's row last)."""
    index = _index(results)
    names = [p.name for p in results.photos] if photos is None else list(photos)
    rows: list[Row] = []
    for method in [*results.methods, TRUTH]:
        entries = [index[k] for p in names if (k := (p, method, region)) in index]
        if not entries:
            continue
        metrics = ["colorfulness"] if method == TRUTH else list(METRICS)
        means = {}
        for metric in metrics:
            values = np.array([e.get(metric, math.nan) for e in entries], dtype=np.float64)
            finite = values[~np.isnan(values)]
            means[metric] = float(finite.mean()) if finite.size else math.nan
        pixels = int(sum(e.get("pixels", 0) for e in entries))
        rows.append(Row(method, len(entries), pixels, means))
    return rows


def markdown_table(rows: Sequence[Row]) -> list[str]:
    header = ["method", "photos", *(COLUMNS[m][0] for m in METRICS)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|:--|" + "--:|" * (len(header) - 1),
    ]
    for row in rows:
        label = "ground truth" if row.method == TRUTH else row.method
        cells = [label, str(row.photos)]
        for metric in METRICS:
            value = row.means.get(metric, math.nan)
            cells.append("–" if math.isnan(value) else COLUMNS[metric][1].format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _count(pixels: int) -> str:
    return f"{pixels / 1e6:.2f} M pixels" if pixels >= 1e6 else f"{pixels:,} pixels"


def markdown(results: Results, context: Sequence[str] = ()) -> str:
    """The whole ``results.md``: whole images, per dataset (several inputs), per region."""
    photos = results.photos
    datasets = list(dict.fromkeys(p.dataset for p in photos))
    masked = sum(p.masked for p in photos)
    lines = ["# segcolor evaluation", ""]
    lines += [f"- {c}" for c in context]
    lines.append(
        f"- {len(photos)} photos evaluated ({masked} with category masks) from "
        f"{', '.join(datasets) or 'no dataset'}; {len(results.no_color)} black-and-white "
        f"skipped; {len(results.failures)} unreadable skipped"
    )
    lines.append("")
    whole = summarize(results, IMAGE)
    pixels = whole[-1].pixels if whole else 0
    lines += [f"## Whole images ({len(photos)} photos, {_count(pixels)})", ""]
    lines += markdown_table(whole) + [""]
    if len(datasets) > 1:
        lines += ["## Whole images by dataset", ""]
        for dataset in datasets:
            names = [p.name for p in photos if p.dataset == dataset]
            rows = summarize(results, IMAGE, names)
            size = rows[-1].pixels if rows else 0
            lines += [f"### {dataset} ({len(names)} photos, {_count(size)})", ""]
            lines += markdown_table(rows) + [""]
    if masked:
        lines += [
            "## Category regions (ground-truth masks)",
            "",
            f"Each region's own pixels only; a photo counts where its region covers at least "
            f"{MIN_REGION_SHARE:.1%} of it. Ignored (crowd) pixels are in no region.",
            "",
        ]
        for region in REGION_ORDER:
            rows = summarize(results, region)
            if not rows:
                continue
            truth = rows[-1]  # the ground truth's row: every photo with the region
            lines += [f"### {region} ({truth.photos} photos, {_count(truth.pixels)})", ""]
            lines += markdown_table(rows) + [""]
    lines += distribution_table(results)
    lines += [
        "Photo means. PSNR on 8-bit RGB (capped at "
        f"{PSNR_CAP:g} dB) and on Lab ab (range 220); SSIM: Gaussian window, sigma 1.5, mean "
        f"over RGB; ΔE00: mean CIEDE2000; ΔE00<10: share of pixels under {DELTA_E_GOOD:g}; "
        "CF: Hasler & Süsstrunk colorfulness of the output (the ground truth's in its own row); "
        f"|ΔCF|: its distance to the ground truth's; AuC: area under the ab-error CDF over "
        f"thresholds 0-{AUC_MAX}, normalised to [0, 1]. oracle: the experts merged by the "
        "ground-truth masks (a perfect router).",
        "",
    ]
    return "\n".join(lines)


def distribution_rows(results: Results) -> list[tuple[str, str, float]]:
    """(method, region, JS divergence of the set's ab histogram to the photos'), in table
    order: whole images first, then each category region present."""
    regions = [IMAGE, *(r for r in REGION_ORDER if (TRUTH, r) in results.histograms)]
    return [
        (method, region, results.ab_divergence(method, region))
        for region in regions
        for method in results.methods
        if (method, region) in results.histograms
    ]


def distribution_table(results: Results) -> list[str]:
    """results.md's section on how the set's outputs are distributed (realism measures): the
    ab-histogram divergence per region and the Fréchet Wavelet Distance of whole images."""
    rows = distribution_rows(results)
    if not rows:
        return []
    regions = list(dict.fromkeys(region for _, region, _ in rows))
    values = {(m, r): v for m, r, v in rows}
    lines = [
        "## Color distribution over the set",
        "",
        "Jensen–Shannon divergence (×10³; 0 = the photos' own distribution, at most 693) between "
        "the ab histogram (10-unit bins) of every output pixel of the set and that of the "
        "photos, per region. Per-photo means cannot show this: muted answers have about the "
        "right mean color and too narrow a spread. FWD: the Fréchet Wavelet Distance "
        f"(Veeramacheneni et al. 2025; Haar packets of level {FWD_LEVEL}, whole images at "
        f"{FWD_SIZE} × {FWD_SIZE} RGB) between the outputs and the same photos (0 = the same "
        "statistics in every frequency band); a set measure, comparable between methods on the "
        "same photos only.",
        "",
        "| method | "
        + " | ".join(f"JS {'whole' if r == IMAGE else r}" for r in regions)
        + " | FWD ↓ |",
        "|---|" + "--:|" * (len(regions) + 1),
    ]
    for method in results.methods:
        cells = [values.get((method, r), math.nan) for r in regions]
        fwd = results.wavelet_distance(method)
        lines.append(
            f"| {method} | "
            + " | ".join("–" if math.isnan(v) else f"{1e3 * v:.1f}" for v in cells)
            + f" | {'–' if math.isnan(fwd) else f'{fwd:.3f}'} |"
        )
    return [*lines, ""]


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def write_results(results: Results, folder: Path, context: Sequence[str] = ()) -> dict[str, Path]:
    """results.md, results.csv, per_photo.csv and distribution.csv (the set measures: the
    ab-histogram divergence per method and region, FWD per method on whole images) in
    ``folder`` (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "markdown": folder / "results.md",
        "csv": folder / "results.csv",
        "per_photo": folder / "per_photo.csv",
        "distribution": folder / "distribution.csv",
    }
    with atomic_write(files["markdown"]) as tmp:
        tmp.write_text(markdown(results, context), encoding="utf-8")
    with atomic_write(files["csv"]) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["photo", "method", "region", "metric", "value"])
        for r in results.records:
            writer.writerow([r.photo, r.method, r.region, r.metric, _fmt(r.value)])
    with atomic_write(files["distribution"]) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "region", "ab_js_divergence", "fwd"])
        for method, region, value in distribution_rows(results):
            fwd = results.wavelet_distance(method) if region == IMAGE else math.nan
            writer.writerow([method, region, _fmt(value), _fmt(fwd)])
    index = _index(results)
    with atomic_write(files["per_photo"]) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["photo", "dataset", "width", "height", "method", *METRICS, "routing"])
        for photo in results.photos:
            height, width = photo.size
            for method in results.methods:
                values = index.get((photo.name, method, IMAGE))
                if values is None:
                    continue
                routing = photo.routing if method == "merged" else ""
                metrics = [_fmt(values[m]) for m in METRICS]
                writer.writerow(
                    [photo.name, photo.dataset, width, height, method, *metrics, routing]
                )
    return files
