"""Reproduce the README's quality tables in one command.

Runs ``segcolor evaluate`` twice and prints each run's results.md:

1. COCO photos with masks (``data/eval_masks/coco128`` + ``coco_taming_train100``, 141 photos,
   the black-and-white ones skipped): whole images and per category region, with the oracle.
2. The held-out split of ``data/train`` (``--held-out 0.1``: photos no expert nor the general
   model trained on), at most ``--per-category`` photos per category folder (default 50, a fixed
   pseudo-random subset by file name) to bound CPU time; whole images per category folder.

Each run's exact command line is printed before its tables, so any row can be re-run alone.

3. The style comparison of issue 26, on the same two sets of photos: ``gray``, ``faithful`` (the
   pipeline as shipped), ``faithful`` times the chroma gain that matches vivid's mean
   colorfulness (found by bisection on the set's mean CF; the same answers ``--vividness GAIN``
   gives), and ``vivid`` (``--style vivid``): PSNR, ΔE00, CF, the set's ΔCF (|mean CF - the
   photos' mean CF|, as DDColor reports it), the per-photo mean |ΔCF|, the ab-histogram JS
   divergence and FWD; per category region on COCO, per category folder on the held-out
   photos. Written to ``out/styles/`` (each set's results.md/csv, styles.md, styles.csv).
   With experts that have no 313-bin head, vivid answers as faithful and the gain is 1.

    SEGCOLOR_SHARED_DIR=../shared SEGCOLOR_WEIGHTS_DIR=../shared/weights python bench/quality.py
    python bench/quality.py --per-category 20 --threads 1    # quicker, on a busy machine
    python bench/quality.py --limit 4 --only styles          # a quick check of the style tables

Defaults: the shipped pipeline and general model (segcolor/weights). On a 2-core CPU shared with
other jobs, ``--threads 1`` is much faster (torch's threads spin-wait when cores are shared).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import sys
from pathlib import Path

import numpy as np

from segcolor.cli import main as segcolor

from common import (
    ALL,
    CATEGORIES,
    COCO,
    HELD_OUT,
    REPO,
    Scores,
    paired_bootstrap,
    read_scores,
    shared,
    table_header,
    table_row,
)


def runs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(title, argv of ``segcolor``) for each evaluation."""
    options: list[str] = []
    for flag, value in (
        ("--pipeline", args.pipeline),
        ("--general", args.general),
        ("--device", args.device),
        ("--threads", args.threads),
    ):
        if value is not None:
            options += [flag, str(value)]
    coco, train = photo_folders(args)
    coco_limit = [] if args.limit is None else ["--limit", str(args.limit)]
    held = ["--held-out", str(HELD_OUT), "--limit", str(per_category(args))]
    return [
        (
            "COCO photos with category masks",
            ["evaluate", *coco, "-o", str(args.out / "coco"), *coco_limit, *options],
        ),
        (
            f"held-out photos of data/train (at most {per_category(args)} per category)",
            [
                "evaluate",
                *train,
                "-o",
                str(args.out / "held_out"),
                "--baselines",
                "gray,general,experts,merged",
                *held,
                *options,
            ],
        ),
    ]


def photo_folders(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The COCO folders with masks and the training folders (held-out photos are taken)."""
    data = (args.shared or shared()) / "data"
    coco = [str(data / "eval_masks" / name) for name in COCO]
    train = [str(data / "train" / name) for name in CATEGORIES]
    return coco, train


def per_category(args: argparse.Namespace) -> int:
    """Held-out photos per category folder: ``--per-category``, at most ``--limit``."""
    return args.per_category if args.limit is None else min(args.per_category, args.limit)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, help="the shared data folder ($SEGCOLOR_SHARED_DIR)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "quality", help="results folder")
    ap.add_argument("--per-category", type=int, default=50, help="held-out photos per category")
    ap.add_argument("--pipeline", help="pipeline YAML (default: the shipped one)")
    ap.add_argument("--general", help="general-model checkpoint (default: the shipped one)")
    ap.add_argument("--device", help="cuda, mps, cpu or auto")
    ap.add_argument("--threads", type=int, help="CPU threads for inference")
    ap.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="at most N photos per folder (COCO folder, held-out category): a quick check",
    )
    ap.add_argument(
        "--only",
        choices=("methods", "styles"),
        help="run only the method comparison (the two segcolor evaluate runs) or only the "
        "style comparison",
    )
    ap.add_argument(
        "--summary-only", action="store_true", help="print the summary of existing results only"
    )
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be at least 1, got {args.limit}")

    if args.summary_only:
        print(summary(args.out))
        return 0
    status = 0
    if args.only != "styles":
        status = run_methods(args)
    if args.only != "methods":
        from segcolor.errors import SegcolorError

        try:
            compare_styles(args, args.out / "styles")
        except SegcolorError as err:  # e.g. a pipeline YAML that cannot be loaded: one line
            print(f"quality.py: error: {err}", file=sys.stderr, flush=True)
            status = 2
    print(summary(args.out), flush=True)
    return status


def run_methods(args: argparse.Namespace) -> int:
    """The two ``segcolor evaluate`` runs, each printed with its command and results.md."""
    status = 0
    for title, command in runs(args):
        print(f"## {title}\n\n    {shlex.join(['segcolor', *command])}\n", flush=True)
        code = segcolor(command)
        status = max(status, code)
        results = Path(command[command.index("-o") + 1]) / "results.md"
        if results.is_file():
            print(results.read_text(encoding="utf-8"), flush=True)
        else:
            print(f"(no results: segcolor exited with {code})\n", flush=True)
    return status


# --- the README's two compact tables, with the merged - general difference and its 95 % CI


Table = dict[tuple[str, str], dict[str, float]]  # (method, metric) -> {photo: value}


def _cells(table: Table, methods: list[str | None], metric: str) -> str:
    values = []
    for method in methods:
        got = list(table.get((method, metric), {}).values()) if method else []
        values.append(f"{np.mean(got):.2f}" if got else "–")
    return " / ".join(values)


def _difference(table: Table, metric: str) -> str:
    merged, general = table.get(("merged", metric), {}), table.get(("general", metric), {})
    photos = sorted(set(merged) & set(general))
    return str(paired_bootstrap([merged[p] for p in photos], [general[p] for p in photos]))


def _table(groups: dict[str, Table], expert_of: dict[str, str]) -> list[str]:
    lines = [
        table_header(
            [
                "set (photos)",
                "PSNR dB ↑ gray / general / expert alone / merged",
                "ΔE00 ↓ gray / general / expert alone / merged",
                "merged − general: PSNR, ΔE00 [95 % CI]",
                "\\|ΔCF\\| ↓ general / merged",
            ],
            "lrrrr",
        )
    ]
    for name, table in groups.items():
        methods = ["gray", "general", expert_of.get(name), "merged"]
        photos = len(table.get(("merged", "psnr_rgb"), {}))
        lines.append(
            table_row(
                [
                    f"{name} ({photos})",
                    _cells(table, methods, "psnr_rgb"),
                    _cells(table, methods, "delta_e2000"),
                    f"{_difference(table, 'psnr_rgb')}, {_difference(table, 'delta_e2000')}",
                    _cells(table, ["general", "merged"], "colorfulness_diff"),
                ]
            )
        )
    return lines


def _group(scores: Scores, group: str, rated_only: bool = False) -> Table:
    """One group's scores; ``rated_only``: of each method only the photos it has a PSNR for
    (a region a photo lacks has nan scores)."""
    table = {(m, metric): v for (m, g, metric), v in scores.items() if g == group}
    if rated_only:
        for method in {m for m, _ in table}:
            rated = table.get((method, "psnr_rgb"), {})
            keep = {p for p, v in rated.items() if not math.isnan(v)}
            for key in [k for k in table if k[0] == method]:
                table[key] = {p: v for p, v in table[key].items() if p in keep}
    return {k: v for k, v in table.items() if v}


def summary(out: Path) -> str:
    """Both evaluations in two compact tables (photo means), each set's merged - general
    difference with a paired bootstrap 95 % interval: which gaps are more than noise."""
    lines: list[str] = []
    coco = read_scores(out / "coco" / "results.csv")
    if coco is not None:
        groups = {}
        for region, name in (("image", "COCO whole images"),) + tuple(
            (c, f"COCO {c} regions") for c in CATEGORIES
        ):
            table = _group(coco, region, rated_only=True)
            if table:
                groups[name] = table
        experts = {f"COCO {c} regions": f"expert:{c}" for c in CATEGORIES}
        lines += ["**COCO**, whole images and ground-truth regions:", ""]
        lines += _table(groups, experts) + [""]
    held = read_scores(out / "held_out" / "per_photo.csv")
    if held is not None:
        groups = {"held-out, all": _group(held, ALL)}
        for c in CATEGORIES:
            groups[f"held-out {c}"] = _group(held, c)
        experts = {f"held-out {c}": f"expert:{c}" for c in CATEGORIES}
        lines += ["**Held-out training photos**, whole photos:", ""]
        lines += _table(groups, experts) + [""]
    lines += distribution(out)
    lines += style_tables(out / "styles")[0]
    return "\n".join(lines)


def distribution(out: Path) -> list[str]:
    """The realism measures of both evaluations: how far each method's colors over the whole
    set are from the photos' (JS divergence of ab histograms, x1000; 0 = the same), and the
    Fréchet Wavelet Distance of its whole outputs from the photos."""
    rows = []
    for name, folder in (("COCO", "coco"), ("held-out", "held_out")):
        spread = _read_spread(out / folder / "distribution.csv")
        for (method, region), (js, fwd) in spread.items():
            rows.append((f"{name} {'whole' if region == IMAGE else region}", method, 1e3 * js))
            if region == IMAGE and not math.isnan(fwd):
                rows.append((f"{name} FWD (whole images)", method, fwd))
    if not rows:
        return []
    methods = list(dict.fromkeys(method for _, method, _ in rows))
    sets = list(dict.fromkeys(label for label, _, _ in rows))
    sets = [s for s in sets if "FWD" not in s] + [s for s in sets if "FWD" in s]
    values = {(label, method): v for label, method, v in rows}
    lines = [
        "**Color distribution over the set** (JS divergence of ab histograms to the photos', "
        "x1000; 0 = the photos' own) and the **Fréchet Wavelet Distance** of whole images "
        "(0 = the photos' own statistics):",
        "",
        table_header(["set", *methods], "l" + "r" * len(methods)),
    ]
    for label in sets:
        cells = [values.get((label, m), math.nan) for m in methods]
        form = "{:.3f}" if "FWD" in label else "{:.1f}"
        lines.append(table_row([label, *("–" if math.isnan(v) else form.format(v) for v in cells)]))
    return [*lines, ""]


# --- the style comparison (issue 26): gray, faithful, faithful x matched gain, vivid

STYLE_SETS = (("COCO", "coco"), ("held-out", "held_out"))
MATCHED = "faithful_matched"  # faithful x the chroma gain that matches vivid's mean CF
STYLE_METHODS = ("gray", "faithful", MATCHED, "vivid")
TRUTH = "truth"  # segcolor.evaluate.harness.TRUTH: the photos' own colorfulness
IMAGE = "image"  # segcolor.evaluate.harness.IMAGE: the whole-image "region"
CF_TOLERANCE = 0.02  # the matched gain's set mean CF is this close to vivid's (CF units)
GAIN_TOLERANCE = 1e-4  # or the bisection's interval is this narrow, relative to the gain
MAX_GAIN = 8.0
# metric -> (column header, format, scale); set_cf_diff: |the set's mean CF - the photos'|
# (DDColor's ΔCF); colorfulness_diff: the per-photo mean of |CF - the photo's CF|
STYLE_COLUMNS = {
    "psnr_rgb": ("PSNR dB ↑", "{:.2f}", 1.0),
    "delta_e2000": ("ΔE00 ↓", "{:.2f}", 1.0),
    "colorfulness": ("CF", "{:.1f}", 1.0),
    "set_cf_diff": ("set ΔCF ↓", "{:.1f}", 1.0),
    "colorfulness_diff": ("per-photo \\|ΔCF\\| ↓", "{:.1f}", 1.0),
    "ab_js_divergence": ("JS ×10³ ↓", "{:.1f}", 1e3),
    "fwd": ("FWD ↓", "{:.3f}", 1.0),
}


class Styles:
    """gray, faithful and vivid on one converted photo, both styles from one routing; keeps
    each photo's faithful answer, from which the matched gain's answer is made."""

    def __init__(self, faithful, vivid) -> None:
        self.names = ["gray", "faithful", "vivid"]
        self.pipeline = faithful
        self.vivid = vivid
        # experts without the 313-bin head answer faithfully in either style: no second run
        self.chooses = any(m.has_bins for group in vivid.experts.values() for m in group)
        self.last_routing = ""
        self.kept: list = []  # (LabImage, faithful ab) per photo, in evaluation order

    def run(self, lab, mask):
        import torch

        with torch.inference_mode():
            routing = self.pipeline.route_lab(lab)
            self.last_routing = routing.summary()
            faithful = self.pipeline.merge_routed(lab, routing)[0]
            vivid = self.vivid.merge_routed(lab, routing)[0] if self.chooses else faithful
        self.kept.append((lab, faithful))
        return {"gray": torch.zeros_like(faithful), "faithful": faithful, "vivid": vivid}


class Gained:
    """faithful x ``gain`` from the answers ``Styles`` kept: what ``--vividness GAIN`` gives
    (the merge's answer times the gain), on the same photos in the same order."""

    def __init__(self, pipeline, kept: list, gain: float) -> None:
        self.names = [MATCHED]
        self.pipeline = pipeline
        self.last_routing = ""
        self.gain = gain
        self._kept = iter(kept)

    def run(self, lab, mask):
        import torch

        kept_lab, ab = next(self._kept)
        if not torch.equal(kept_lab.l_small, lab.l_small):
            raise RuntimeError("the photos came in another order than in the first pass")
        return {MATCHED: ab * self.gain}


def mean_colorfulness(kept: list, gain: float) -> float:
    """The set's mean colorfulness of faithful x ``gain``, each photo's 8-bit output as the
    evaluation measures it."""
    from segcolor.evaluate import colorfulness
    from segcolor.pipeline import Pipeline, to_uint8

    values = [colorfulness(to_uint8(Pipeline.to_rgb(lab, ab * gain))) for lab, ab in kept]
    return float(np.mean(values))


def matched_gain(kept: list, target: float) -> float:
    """The chroma gain at which faithful's set mean CF is ``target`` (vivid's), by bisection:
    the mean CF grows with the gain. 1 when faithful is already there (vivid == faithful)."""
    seen: dict[float, float] = {}

    def cf(gain: float) -> float:
        if gain not in seen:
            seen[gain] = mean_colorfulness(kept, gain)
        return seen[gain]

    if abs(cf(1.0) - target) <= CF_TOLERANCE:
        return 1.0
    low, high = (1.0, 2.0) if cf(1.0) < target else (0.0, 1.0)
    while cf(high) < target and high < MAX_GAIN:
        low, high = high, 2.0 * high
    while high - low > GAIN_TOLERANCE * high:
        middle = 0.5 * (low + high)
        value = cf(middle)
        if abs(value - target) <= CF_TOLERANCE:
            return middle
        low, high = (middle, high) if value < target else (low, middle)
    return 0.5 * (low + high)


def compare_styles(args: argparse.Namespace, out: Path) -> None:
    """Both sets' style comparison, written to ``out``: each set's results (results.md with
    every metric, distribution.csv), styles.md and styles.csv (the summary prints them)."""
    import torch

    from segcolor.evaluate import evaluate, find_photos, write_results
    from segcolor.pipeline import Pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    load = dict(device=args.device, require_router=True)
    faithful = Pipeline.load(args.pipeline, style="faithful", **load)
    vivid = Pipeline.load(args.pipeline, style="vivid", **load)
    coco, train = photo_folders(args)
    photos = {
        "coco": find_photos(coco, limit=args.limit),
        "held_out": find_photos(train, held_out=HELD_OUT, limit=per_category(args)),
    }
    print("## The styles compared: gray, faithful, faithful × matched gain, vivid\n", flush=True)
    for label, folder in STYLE_SETS:
        styles = Styles(faithful, vivid)
        results = evaluate(photos[folder], styles)
        if not results.photos:
            print(f"(no {label} photos could be evaluated)\n", flush=True)
            continue
        target = float(
            np.mean(
                [
                    r.value
                    for r in results.records
                    if (r.method, r.region, r.metric) == ("vivid", IMAGE, "colorfulness")
                ]
            )
        )
        gain = matched_gain(styles.kept, target)
        results.merge(evaluate(photos[folder], Gained(faithful, styles.kept, gain), progress=False))
        results.methods = [m for m in STYLE_METHODS if m in results.methods]
        note = "" if styles.chooses else " (no 313-bin heads: vivid = faithful)"
        del styles  # the kept answers
        context = [
            f"style comparison on the {label} photos of `python bench/quality.py`{note}",
            f"{MATCHED}: faithful × {gain:.3f}, the gain whose set mean colorfulness matches "
            f"vivid's ({target:.2f})",
        ]
        write_results(results, out / folder, context)
        info = {"gain": gain, "vivid_cf": target, "vivid_chooses": not note}
        (out / folder / "styles.json").write_text(json.dumps(info, indent=1) + "\n")
    lines, rows = style_tables(out)
    (out / "styles.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (out / "styles.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["set", "group", "method", "metric", "value"])
        writer.writerows(rows)
    print(f"style comparison: {out / 'styles.md'}, {out / 'styles.csv'}\n", flush=True)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def style_metrics(
    scores: Scores,
    spread: dict[tuple[str, str], tuple[float, float]],
    method: str,
    region: str,
    photos: set[str] | None = None,
) -> dict[str, float]:
    """STYLE_COLUMNS of ``method`` over ``region`` of ``photos`` (None: all). The set's ΔCF
    compares the mean CF with the photos' own over the same photos."""

    def values(who: str, metric: str) -> dict[str, float]:
        got = scores.get((who, region, metric), {})
        return {p: v for p, v in got.items() if photos is None or p in photos}

    cf = values(method, "colorfulness")
    truth = values(TRUTH, "colorfulness")
    if method == TRUTH:
        return {"colorfulness": _mean(list(truth.values()))}
    shared_photos = [p for p in cf if p in truth]
    js, fwd = spread.get((method, region), (math.nan, math.nan))
    return {
        "psnr_rgb": _mean(list(values(method, "psnr_rgb").values())),
        "delta_e2000": _mean(list(values(method, "delta_e2000").values())),
        "colorfulness": _mean(list(cf.values())),
        "set_cf_diff": abs(
            _mean([cf[p] for p in shared_photos]) - _mean([truth[p] for p in shared_photos])
        ),
        "colorfulness_diff": _mean(list(values(method, "colorfulness_diff").values())),
        "ab_js_divergence": js if photos is None else math.nan,  # a set measure: whole set only
        "fwd": fwd if photos is None and region == IMAGE else math.nan,
    }


def _read_spread(path: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """distribution.csv: (method, region) -> (JS divergence, FWD)."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {
            (r["method"], r["region"]): (float(r["ab_js_divergence"]), float(r.get("fwd", "nan")))
            for r in csv.DictReader(f)
        }


def style_tables(out: Path) -> tuple[list[str], list[list[str]]]:
    """The style comparison's markdown tables and CSV rows (set, group, method, metric, value)
    from the results in ``out``: whole images, then per category region (COCO) or folder."""
    lines: list[str] = []
    rows: list[list[str]] = []
    for label, folder in STYLE_SETS:
        path = out / folder
        scores = read_scores(path / "results.csv")
        if scores is None or not (path / "styles.json").is_file():
            continue
        info = json.loads((path / "styles.json").read_text())
        spread = _read_spread(path / "distribution.csv")
        names = {MATCHED: f"faithful ×{info['gain']:.2f}"}
        methods = [m for m in STYLE_METHODS if (m, IMAGE, "psnr_rgb") in scores]
        groups: list[tuple[str, str, set[str] | None]] = [("whole images", IMAGE, None)]
        groups += [
            (f"{c} regions", c, None) for c in CATEGORIES if ("faithful", c, "psnr_rgb") in scores
        ]
        per_photo = path / "per_photo.csv"
        if len(groups) == 1 and per_photo.is_file():  # no masks: per category folder
            with per_photo.open(newline="", encoding="utf-8") as f:
                dataset = {r["photo"]: r["dataset"] for r in csv.DictReader(f)}
            for c in CATEGORIES:
                chosen = {p for p, d in dataset.items() if d == c}
                if chosen:
                    groups.append((f"{c} folder", IMAGE, chosen))
        count = len(scores.get((TRUTH, IMAGE, "colorfulness"), {}))
        vivid = (
            ""
            if info["vivid_chooses"]
            else "; the experts have no 313-bin head, so vivid = faithful"
        )
        lines += [
            f"**Styles, {label}** ({count} photos; faithful ×{info['gain']:.3f} matches vivid's "
            f"mean CF {info['vivid_cf']:.2f}{vivid}):",
            "",
        ]
        rows.append([label, "whole images", MATCHED, "gain", f"{info['gain']:.6g}"])
        for group, region, photos in groups:
            truths = scores.get((TRUTH, region, "colorfulness"), {})
            size = len([p for p in truths if photos is None or p in photos])
            rows.append([label, group, TRUTH, "photos", str(size)])
            title = f"{group} ({size} photo{'' if size == 1 else 's'})"
            table = {m: style_metrics(scores, spread, m, region, photos) for m in methods}
            table[TRUTH] = style_metrics(scores, spread, TRUTH, region, photos)
            columns = [c for c in STYLE_COLUMNS if any(
                not math.isnan(v.get(c, math.nan)) for v in table.values()
            )]  # fmt: skip
            header = [title, *(STYLE_COLUMNS[c][0] for c in columns)]
            lines += [table_header(header, "l" + "r" * len(columns))]
            for method, values in table.items():
                cells = [names.get(method, "photos" if method == TRUTH else method)]
                for column in columns:
                    value = values.get(column, math.nan)
                    _, form, scale = STYLE_COLUMNS[column]
                    cells.append("–" if math.isnan(value) else form.format(scale * value))
                    if not math.isnan(value):
                        rows.append([label, group, method, column, f"{value:.6g}"])
                lines.append(table_row(cells))
            lines.append("")
    return lines, rows


if __name__ == "__main__":
    sys.exit(main())
