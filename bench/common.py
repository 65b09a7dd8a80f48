"""What the benchmark scripts share: paths, ``segcolor evaluate``'s result files, the paired
bootstrap, the held-out photos, a timer, markdown tables and random-init experts.

The scripts run as ``python bench/NAME.py``, so this folder is ``sys.path[0]`` and they
``from common import ...``; the studies in ``experiments/`` put this folder on ``sys.path`` first.
"""

from __future__ import annotations

import csv
import shlex
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from segcolor.paths import SHARED_ENV, shared_dir

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ("people", "birds", "animals", "places")  # the training folders, the experts
COCO = ("coco128", "coco_taming_train100")  # data/eval_masks: COCO photos with category masks
HELD_OUT = 0.1  # the val_fraction of configs/experts/*.yaml: photos no model trained on


# ------------------------------------------------------------------ paths


def shared() -> Path:
    """The shared data folder (photos, weights): ``segcolor.paths.shared_dir()``, i.e.
    ``$SEGCOLOR_SHARED_DIR``. Exits with a message (status 2) when it is unset or no folder."""
    folder = shared_dir()
    if folder is None:
        problem = f"{SHARED_ENV} is not set"
    elif not folder.is_dir():
        problem = f"{SHARED_ENV}={folder} is not a folder"
    else:
        return folder
    print(
        f"{Path(sys.argv[0]).name}: {problem}; it names the shared data folder (photos, "
        f"weights), e.g. {SHARED_ENV}=../shared python {shlex.join(sys.argv)}",
        file=sys.stderr,
    )
    raise SystemExit(2)


def held_out_photos(paths: Iterable[str | Path], fraction: float = HELD_OUT) -> list[Path]:
    """The photos of ``paths`` (in their order) that training with ``val_fraction: fraction``
    never used: the split is keyed on the file name (``segcolor evaluate --held-out`` picks
    the same ones)."""
    from segcolor.splits import is_held_out

    return [p for p in map(Path, paths) if is_held_out(p, fraction)]


# ------------------------------------------------------------------ segcolor evaluate's results

ALL = "all"  # per_photo.csv: the group every photo counts in, besides its dataset's
Scores = dict[tuple[str, str, str], dict[str, float]]
# (method, group, metric) -> {photo: value}, photos in file order. The group is the region in
# results.csv ("image" for whole photos, or a category), and in per_photo.csv (whole photos)
# the photo's dataset (its input folder's name) and ALL.
_NOT_METRICS = {"photo", "dataset", "width", "height", "method", "routing"}


def read_scores(path: Path) -> Scores | None:
    """A ``segcolor evaluate`` result file, ``results.csv`` (long format: photo, method,
    region, metric, value) or ``per_photo.csv`` (a row per photo and method, whole-image
    metrics), as Scores; None when there is no such file. "nan" and empty cells read as nan."""
    if not path.is_file():
        return None
    scores: Scores = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or ())
        long = "metric" in columns
        metrics = [c for c in columns if c not in _NOT_METRICS]
        for row in reader:
            if long:
                entries = [(row["region"], row["metric"], row["value"])]
            else:
                entries = [(g, m, row[m]) for g in (row["dataset"], ALL) for m in metrics]
            for group, metric, value in entries:
                number = float(value) if value else float("nan")
                scores.setdefault((row["method"], group, metric), {})[row["photo"]] = number
    return scores


# ------------------------------------------------------------------ statistics


class Difference(NamedTuple):
    """A mean difference and its 95 % interval; prints as ``+0.12 [-0.03, +0.27]``."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
) -> Difference:
    """Mean of ``a - b`` (paired: one value of each per photo) and its 95 % bootstrap interval:
    the photos resampled with replacement ``resamples`` times, by a generator seeded ``seed``."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Difference(float(diff.mean()), float(low), float(high))


# ------------------------------------------------------------------ timing


class Timer:
    """``with Timer() as t: work()``, then ``t.seconds`` (wall clock, ``time.perf_counter``)
    and ``t.cpu`` (this process's CPU seconds). Given a CUDA ``device``, it synchronises the
    device on entry and exit, so queued GPU work lands on the right side of the clock."""

    def __init__(self, device: object = None) -> None:
        self.device = device
        self.seconds = 0.0
        self.cpu = 0.0

    def _sync(self) -> None:
        if getattr(self.device, "type", self.device) == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def __enter__(self) -> Timer:
        self._sync()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


# ------------------------------------------------------------------ markdown tables

_ALIGN = {"l": ":--", "r": "--:", "-": "---"}


def table_header(columns: Sequence[str], align: str = "") -> str:
    """A markdown table's header row and alignment row (two lines); ``align`` has a letter per
    column: ``l`` (``:--``), ``r`` (``--:``) or ``-`` (``---``, the default)."""
    marks = [_ALIGN[a] for a in align.ljust(len(columns), "-")]
    return table_row(columns) + "\n|" + "|".join(marks) + "|"


def table_row(cells: Iterable[object]) -> str:
    """A markdown table row: ``| a | b |``."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


# ------------------------------------------------------------------ models

EXPERT_CLASSES = {  # category -> the segmenter classes routed to it, as the shipped pipeline
    "people": ["person"],
    "birds": ["bird"],
    "animals": ["cat", "dog", "horse", "sheep", "cow"],
    "places": ["background"],
}


def random_pipeline_yaml(folder: Path, working_size: int, arch: str = "resnet18_unet") -> Path:
    """A pipeline YAML in ``folder`` with random-init experts (the same arch and cost as the
    trained ones): for timing, and for seams where the experts' colors do not matter.
    ``arch="resnet18_unet_hints"``: experts with the 313-bin head, whose vivid style differs."""
    import torch

    from segcolor.experts import create_expert, save_expert

    lines = [f"working_size: {working_size}", "fallback: places", "categories:"]
    for i, (name, classes) in enumerate(EXPERT_CLASSES.items()):
        torch.manual_seed(i)
        save_expert(
            create_expert(arch), folder / f"{name}.safetensors", {"name": name, "category": name}
        )
        lines += [
            f"  {name}:",
            f"    classes: [{', '.join(classes)}]",
            f"    expert: {name}.safetensors",
        ]
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
