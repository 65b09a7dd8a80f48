"""The routed-experts ablation: what each change buys, each row against its own general model.

Rows (each a pipeline + the general model trained on the same data, steps and inputs):

1. ``shipped-v0.1``: the experts shipped before routed training (taken from git, commit
   ``--before``): folder-trained experts, places profile variants, folder-trained general model.
2. ``+routed``: the routed recipe (configs/routed) without semantic features, short schedule
   (1 epoch per stage: general, general_ft, then the experts and general_ft2 from it), places as
   one expert; general_ft2 is the row's general model.
3. ``+features``: the same with the router's semantic features fused into every model.
4. ``+longer``: 5 stage-1 epochs, places profile variants, every stage with the rebalanced loss
   (the weights shipped at commit ``--longer``, from git); ``+longer-no-profiles``: the same
   experts with places as one expert.
5. ``+own-pixel-l2``: stage 3 fine-tunes every expert and the general model with plain L2, each
   expert for about as many optimizer steps as the general model (387; weights at git ``--l2``).
6. ``+longer-stage-3``: the same with twice the stage-3 steps (774) for every model (weights at
   git ``--stage3``).
7. ``+longer-variants``: the same with three epochs instead of one for each places profile
   variant (120-880 steps; weights at git ``--variants``).
8. ``+animals-8``: the same with the animals expert trained 8 epochs instead of 4 (weights at
   git ``--animals8``).
9. ``+zoom-jitter``: stage 3 and 4 again, every model but the animals expert (the general one
   too) trained on crops cut from 56-112 px windows of the cached squares and resized to 96 px
   (weights at git ``--zoom-jitter``).
10. ``+zoom-out``: the shipped recipe (configs/routed as committed): the people expert
   retrained with windows of 56-168 px (zoom out: the square in a mirrored, zero-weighted rim)
   and every photo counted once (``data.routing.balance: photo``); the general model is the
   ``+zoom-jitter`` one (given the same change it was worse: README), i.e. segcolor/weights
   today.

    python experiments/ablation.py train     # trains rows 2 and 3 (resumable; the others are
                                             # recipes of configs/routed: see general.yaml)
    python experiments/ablation.py evaluate  # evaluates every row (bench/quality.py's sets) and
                                             # prints one table

The table: for each evaluation set, merged vs general PSNR and ΔE2000 (photo means), and the
colorfulness gap |ΔCF| of the merged output. Every number comes from `segcolor evaluate`
runs whose folders (out/ablation/ROW/...) keep the full results.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from segcolor.cli import main as segcolor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import quality  # noqa: E402  (bench/quality.py: the evaluation sets)
from common import ALL, CATEGORIES, REPO, read_scores, shared, table_header  # noqa: E402

BEFORE = "4ec42cb"  # the last commit before routed training
LONGER = "33844b9"  # the last commit shipping the rebalanced stage 3 (row +longer)
L2 = "ebdbea0"  # the commit shipping the 387-step L2 stage 3 (row +own-pixel-l2)
STAGE3 = "273cc9a"  # the commit shipping the 774-step stage 3 (row +longer-stage-3)
VARIANTS = "bc7b246"  # the commit shipping the three-epoch places variants (+longer-variants)
ANIMALS8 = "bd4db70"  # the commit shipping the 8-epoch animals expert (row +animals-8)
ZOOM_JITTER = "10bd13b"  # the last commit shipping the zoom-in-only recipe (row +zoom-jitter)
# rows whose weights come from git: row -> the command-line option naming the commit
GIT_ROWS = {
    "shipped-v0.1": "before",
    "+longer": "longer",
    "+own-pixel-l2": "l2",
    "+longer-stage-3": "stage3",
    "+longer-variants": "variants",
    "+animals-8": "animals8",
    "+zoom-jitter": "zoom_jitter",
}
ROUTED = REPO / "configs" / "routed"
STAGES = ("general", "general_ft", "general_ft2", "people", "birds", "animals", "places")
SHORT = {"stage1": 1, "stage2": 1}
METRICS = ("psnr_rgb", "delta_e2000", "colorfulness_diff")
ROWS = {
    "+routed": {"model.arch": "resnet18_unet"},
    "+features": {"model.arch": "resnet18_unet_semantic"},
}


def run_dir(row: str) -> Path:
    return REPO / "runs" / "ablation" / row.strip("+")


def train(row: str) -> int:
    """Stage 1 and stage 2 of the routed recipe with this row's overrides, resumable."""
    runs = run_dir(row)
    for name in STAGES:
        sets = dict(ROWS[row])
        sets["out"] = str(runs / name)
        sets["train.epochs"] = SHORT["stage1" if name == "general" else "stage2"]
        if name != "general":
            start = "general" if name == "general_ft" else "general_ft"
            sets["model.init"] = str(runs / start / "expert.safetensors")
        argv = ["train", str(ROUTED / f"{name}.yaml"), "--resume"]
        for key, value in sets.items():
            argv += ["--set", f"{key}={value}"]
        print(shlex.join(["segcolor", *argv]), flush=True)
        code = segcolor(argv)
        if code:
            return code
    return 0


def write_pipeline(row: str) -> tuple[Path, Path]:
    """A pipeline YAML for a trained row (the shipped one's router, its own experts)."""
    runs = run_dir(row)
    text = (REPO / "segcolor" / "weights" / "pipeline.yaml").read_text()
    head = text.split("categories:")[0]
    tail = "fallback:" + text.split("fallback:", 1)[1]
    experts = "".join(
        f"  {name}:\n    classes: [{classes}]\n    expert: {name}/expert.safetensors\n"
        for name, classes in (
            ("people", "person"),
            ("birds", "bird"),
            ("animals", "cat, dog, horse, sheep, cow"),
            ("places", "background"),
        )
    )
    path = runs / "pipeline.yaml"
    path.write_text(head + "categories:\n" + experts + "\n" + tail)
    return path, runs / "general_ft2" / "expert.safetensors"


def before_weights(commit: str, row: str = "shipped-v0.1") -> tuple[Path, Path]:
    """The shipped pipeline of ``commit``, extracted from git."""
    folder = REPO / "out" / "ablation" / f"{row.strip('+')}-weights"
    if not (folder / "segcolor" / "weights" / "pipeline.yaml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", commit, "segcolor/weights"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    weights = folder / "segcolor" / "weights"
    return weights / "pipeline.yaml", weights / "general.safetensors"


def row_models(row: str, args: argparse.Namespace) -> tuple[Path, Path]:
    if row in GIT_ROWS:  # a recipe shipped at an earlier commit
        return before_weights(getattr(args, GIT_ROWS[row]), row)
    if row == "+zoom-out":
        weights = REPO / "segcolor" / "weights"
        return weights / "pipeline.yaml", weights / "general.safetensors"
    if row == "+longer-no-profiles":  # the same experts, places as one expert (no variants)
        weights = before_weights(args.longer, "+longer")[0].parent
        text = (weights / "pipeline.yaml").read_text()
        head, rest = text.split("  places:\n", 1)
        tail = rest[rest.index("\nfallback:") :]
        path = REPO / "out" / "ablation" / "no-profiles-pipeline.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        # paths relative to the YAML's folder, as a pipeline reads them: no machine paths
        folder = os.path.relpath(weights, path.parent)
        head = re.sub(r"^(\s+expert: )", rf"\g<1>{folder}/", head, flags=re.M)
        places = f"  places:\n    classes: [background]\n    expert: {folder}/places.safetensors\n"
        path.write_text(head + places + tail)
        return path, weights / "general.safetensors"
    return write_pipeline(row)


def evaluate(row: str, args: argparse.Namespace) -> Path:
    pipeline, general = row_models(row, args)
    out = REPO / "out" / "ablation" / row.strip("+")
    argv = [
        "--out", str(out), "--per-category", str(args.per_category),
        "--pipeline", str(pipeline), "--general", str(general),
    ]  # fmt: skip
    if args.threads:
        argv += ["--threads", str(args.threads)]
    print(f"## {row}\n", flush=True)
    quality.main(argv)
    return out


def read_means(folder: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(set, method) -> metric means: whole images per dataset, and per region."""
    sums: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name in ("coco", "held_out"):  # whole images: COCO all together, held-out per folder
        scores = read_scores(folder / name / "per_photo.csv") or {}
        for (method, group, metric), values in scores.items():
            if metric in METRICS and (group == ALL) == (name == "coco"):
                key = "COCO whole" if name == "coco" else f"held-out {group}"
                sums[(key, method)][metric] += values.values()
    regions = read_scores(folder / "coco" / "results.csv") or {}
    for (method, region, metric), values in regions.items():
        if region in CATEGORIES and metric in METRICS:
            finite = [v for v in values.values() if not math.isnan(v)]
            sums[(f"COCO {region} regions", method)][metric] += finite
    return {k: {m: sum(v) / len(v) for m, v in d.items() if v} for k, d in sums.items()}


def table(rows: list[str]) -> str:
    means = {row: read_means(REPO / "out" / "ablation" / row.strip("+")) for row in rows}
    sets = sorted({s for m in means.values() for s, _ in m}, key=_set_order)
    columns = ["set", "row", "PSNR merged / general / gray", "ΔE00 merged / general / gray"]
    lines = [table_header([*columns, "\\|ΔCF\\| merged"], "llrrr")]
    for name in sets:
        for row in rows:
            m = means[row]
            if (name, "merged") not in m:
                continue

            def cell(metric: str, m=m, name=name) -> str:
                values = [
                    m.get((name, meth), {}).get(metric) for meth in ("merged", "general", "gray")
                ]
                return " / ".join("–" if v is None else f"{v:.2f}" for v in values)

            gap = m[(name, "merged")].get("colorfulness_diff", math.nan)
            lines.append(
                f"| {name} | {row} | {cell('psnr_rgb')} | {cell('delta_e2000')} | {gap:.1f} |"
            )
    return "\n".join(lines)


def _set_order(name: str) -> tuple[int, str]:
    order = ("COCO whole", "COCO people", "COCO birds", "COCO animals", "COCO places", "held-out")
    return next((i for i, o in enumerate(order) if name.startswith(o)), len(order)), name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("train", "evaluate", "table"))
    ap.add_argument(
        "--rows",
        default="shipped-v0.1,+routed,+features,+longer,+longer-no-profiles,+own-pixel-l2,"
        "+longer-stage-3,+longer-variants,+animals-8,+zoom-jitter,+zoom-out",
    )
    ap.add_argument("--before", default=BEFORE, help="git commit of the shipped-v0.1 weights")
    ap.add_argument("--longer", default=LONGER, help="git commit of the +longer weights")
    ap.add_argument("--l2", default=L2, help="git commit of the +own-pixel-l2 weights")
    ap.add_argument("--stage3", default=STAGE3, help="git commit of the +longer-stage-3 weights")
    ap.add_argument("--variants", default=VARIANTS, help="git commit of +longer-variants weights")
    ap.add_argument("--animals8", default=ANIMALS8, help="git commit of the +animals-8 weights")
    ap.add_argument("--zoom-jitter", default=ZOOM_JITTER, help="git commit of +zoom-jitter weights")
    ap.add_argument("--per-category", type=int, default=50, help="held-out photos per folder")
    ap.add_argument("--threads", type=int, help="CPU threads for inference")
    args = ap.parse_args(argv)
    if args.action != "table":
        shared()  # train and evaluate read the shared photos: say so now if they are missing
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if args.action == "train":
        for row in rows:
            if row in ROWS and train(row):
                return 1
        return 0
    if args.action == "evaluate":
        for row in rows:
            evaluate(row, args)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
