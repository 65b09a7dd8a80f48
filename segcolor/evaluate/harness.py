"""The evaluation loop: every photo's lightness in, every method's colorization out, measured
against the photo itself, over the whole image and over each ground-truth category region.

A bad photo or mask costs one line and a skip, never the run. Photos without color (the
ground truth is itself black and white) have nothing to compare to and are skipped too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from segcolor.errors import SegcolorError
from segcolor.io.images import load_image
from segcolor.pipeline import Pipeline, to_uint8

from .datasets import REGION_ORDER, PhotoRef, load_mask, region_masks
from .methods import Methods
from .metrics import Comparison, GroundTruth, ab_histogram, js_divergence, truth_colorfulness

IMAGE = "image"  # the region name of whole-image metrics
TRUTH = "truth"  # the "method" under which the ground truth's own colorfulness is recorded
MIN_CHROMA = 1.0  # mean ab chroma below which a photo is black and white: nothing to compare
MIN_REGION_SHARE = 0.002  # regions under 0.2 % of the photo (~90 px at 256 x 170) are too
# small for stable metrics and are left out of the region tables (COCO's birds are 0.3-25 %)
SHEET_COLUMNS = ("gray", "general", "merged")


@dataclass(frozen=True)
class Record:
    """One number of the long-format results: photo, method, region, metric, value."""

    photo: str
    method: str
    region: str
    metric: str
    value: float


@dataclass
class SheetRow:
    """One photo of the contact sheet: column label -> uint8 RGB."""

    name: str
    images: dict[str, np.ndarray]


@dataclass
class PhotoInfo:
    name: str
    dataset: str
    size: tuple[int, int]
    masked: bool
    routing: str = ""


@dataclass
class Results:
    """Everything a report needs, in evaluation order."""

    methods: list[str]
    records: list[Record] = field(default_factory=list)
    photos: list[PhotoInfo] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one-line errors of skipped files
    no_color: list[str] = field(default_factory=list)  # black-and-white ground truths skipped
    sheet: list[SheetRow] = field(default_factory=list)
    seconds: float = 0.0
    # (method or TRUTH, region) -> the set's ab histogram: how colors are distributed over all
    # photos, which per-photo means cannot show (muted answers have the right mean, wrong spread)
    histograms: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def ab_divergence(self, method: str, region: str) -> float:
        """Jensen-Shannon divergence between the set's ab histograms of ``method``'s outputs
        and of the photos, over ``region`` (0: the same distribution of colors)."""
        truth = self.histograms.get((TRUTH, region))
        output = self.histograms.get((method, region))
        if truth is None or output is None:
            return float("nan")
        return js_divergence(output, truth)


def evaluate(
    refs: Sequence[PhotoRef],
    methods: Methods,
    sheet: int = 0,
    sheet_photos: Sequence[str] = (),
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> Results:
    """Evaluate ``methods`` on ``refs``; ``sheet`` photos (the first ones, or those named in
    ``sheet_photos`` by file name or stem) are kept for the contact sheet."""
    warn = warn or (lambda line: tqdm.write(line, file=sys.stderr))
    wanted = set(sheet_photos)
    results = Results(methods=list(methods.names))
    start = time.perf_counter()
    bar = tqdm(refs, desc="evaluate", unit="photo", disable=not progress, file=sys.stderr)
    for ref in bar:
        try:
            image = load_image(ref.path)
            mask = load_mask(ref.path, image.size)
        except SegcolorError as err:
            results.failures.append(str(err))
            warn(f"segcolor: error: {err} (skipped)")
            continue
        truth = GroundTruth.from_rgb(to_uint8(image.rgb))
        if truth.mean_chroma < MIN_CHROMA:
            results.no_color.append(ref.name)
            warn(f"segcolor: note: {ref.path}: black and white, no color to compare to (skipped)")
            continue
        on_sheet = ref.path.name in wanted or ref.path.stem in wanted
        if not wanted:
            on_sheet = len(results.sheet) < sheet
        rows = _evaluate_photo(ref, image.rgb, truth, mask, methods)
        results.records.extend(rows.records)
        for key, counts in rows.histograms.items():
            if key in results.histograms:
                results.histograms[key] += counts
            else:
                results.histograms[key] = counts
        results.photos.append(
            PhotoInfo(ref.name, ref.dataset, image.size, mask is not None, methods.last_routing)
        )
        if on_sheet:
            images = {m: rows.outputs[m] for m in SHEET_COLUMNS if m in rows.outputs}
            images["ground truth"] = truth.rgb
            results.sheet.append(SheetRow(ref.name, images))
    results.seconds = time.perf_counter() - start
    return results


@dataclass
class _PhotoRows:
    records: list[Record]
    outputs: dict[str, np.ndarray]
    histograms: dict[tuple[str, str], np.ndarray]


def _evaluate_photo(
    ref: PhotoRef,
    rgb: np.ndarray,
    truth: GroundTruth,
    mask: np.ndarray | None,
    methods: Methods,
) -> _PhotoRows:
    """All methods on one photo: the input is the photo's lightness (the pipeline keeps only
    L of what it is given), the ground truth the photo itself."""
    methods.last_routing = ""
    lab = methods.pipeline.lab(rgb)
    outputs = {m: to_uint8(Pipeline.to_rgb(lab, ab)) for m, ab in methods.run(lab, mask).items()}
    regions: dict[str, np.ndarray | None] = {IMAGE: None}
    if mask is not None:
        masks = region_masks(mask)
        least = MIN_REGION_SHARE * mask.size
        regions.update((r, masks[r]) for r in REGION_ORDER if masks[r].sum() >= max(least, 1))
    records: list[Record] = []
    histograms: dict[tuple[str, str], np.ndarray] = {}
    for region, sel in regions.items():
        pixels = float(truth.rgb.shape[0] * truth.rgb.shape[1] if sel is None else sel.sum())
        colorfulness = truth_colorfulness(truth, sel)
        records.append(Record(ref.name, TRUTH, region, "colorfulness", colorfulness))
        records.append(Record(ref.name, TRUTH, region, "pixels", pixels))
        histograms[(TRUTH, region)] = ab_histogram(truth.lab, sel)
    for method, output in outputs.items():
        comparison = Comparison(truth, output)
        for region, sel in regions.items():
            for metric, value in comparison.metrics(sel).items():
                records.append(Record(ref.name, method, region, metric, value))
            histograms[(method, region)] = ab_histogram(comparison.lab, sel)
    return _PhotoRows(records, outputs, histograms)
