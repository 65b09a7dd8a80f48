"""The evaluation loop: every photo's lightness in, every method's colorization out, measured
against the photo itself, over the whole image and over each ground-truth category region.

A bad photo or mask costs one line and a skip, never the run. Photos without color (the
ground truth is itself black and white) have nothing to compare to and are skipped too.
Besides the per-photo metrics, each method's set is kept for the set measures: its ab
histograms per region and its whole outputs at FWD's size (for the Fréchet Wavelet Distance).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from segcolor.errors import SegcolorError
from segcolor.io.images import load_image
from segcolor.pipeline import LabImage, Pipeline, to_uint8

from .datasets import REGION_ORDER, PhotoRef, load_mask, region_masks
from .fwd import frechet_wavelet_distance, fwd_thumbnail
from .metrics import Comparison, GroundTruth, ab_histogram, js_divergence, truth_colorfulness

IMAGE = "image"  # the region name of whole-image metrics
TRUTH = "truth"  # the "method" under which the ground truth's own colorfulness is recorded
MIN_CHROMA = 1.0  # mean ab chroma below which a photo is black and white: nothing to compare
MIN_REGION_SHARE = 0.002  # regions under 0.2 % of the photo (~90 px at 256 x 170) are too
# small for stable metrics and are left out of the region tables (COCO's birds are 0.3-25 %)
SHEET_COLUMNS = ("gray", "general", "merged")


class MethodSet(Protocol):
    """What ``evaluate`` runs: ``Methods``, or any set of colorizations of a converted photo
    (``bench/quality.py``'s styles): ``names`` in table order, ``pipeline`` (its ``lab`` turns a
    photo into the input), ``run`` -> each name's ab (1,2,h,w) in Lab units, and
    ``last_routing`` (the photo's routing summary, or "")."""

    names: list[str]
    pipeline: Pipeline
    last_routing: str

    def run(self, lab: LabImage, mask: np.ndarray | None) -> dict[str, torch.Tensor]: ...


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
    # method or TRUTH -> photo -> the whole output at FWD_SIZE (uint8 RGB): the sets that the
    # Fréchet Wavelet Distance compares
    thumbnails: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    _fwd: dict[str, float] = field(default_factory=dict, repr=False)

    def wavelet_distance(self, method: str) -> float:
        """Fréchet Wavelet Distance of ``method``'s whole outputs from the photos they colorize
        (the same photos' ground truths: the oracle's set has only the masked ones); nan
        under 2 photos. Computed once per method."""
        if method not in self._fwd:
            outputs = self.thumbnails.get(method, {})
            truths = self.thumbnails.get(TRUTH, {})
            photos = [p for p in outputs if p in truths]
            self._fwd[method] = (
                frechet_wavelet_distance([outputs[p] for p in photos], [truths[p] for p in photos])
                if len(photos) >= 2
                else math.nan
            )
        return self._fwd[method]

    def merge(self, other: Results) -> None:
        """Add the methods of ``other``, a run over the same photos (its ground-truth records,
        histograms and thumbnails are the same as this run's and are not repeated)."""
        if [p.name for p in other.photos] != [p.name for p in self.photos]:
            raise ValueError("results of different photos cannot be merged")
        clash = set(other.methods) & set(self.methods)
        if clash:
            raise ValueError(f"both results have method {sorted(clash)[0]!r}")
        self.methods += other.methods
        self.records += [r for r in other.records if r.method != TRUTH]
        self.histograms.update((k, v) for k, v in other.histograms.items() if k[0] != TRUTH)
        self.thumbnails.update((k, v) for k, v in other.thumbnails.items() if k != TRUTH)
        self.seconds += other.seconds

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
    methods: MethodSet,
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
        for method, thumbnail in rows.thumbnails.items():
            results.thumbnails.setdefault(method, {})[ref.name] = thumbnail
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
    thumbnails: dict[str, np.ndarray]


def _evaluate_photo(
    ref: PhotoRef,
    rgb: np.ndarray,
    truth: GroundTruth,
    mask: np.ndarray | None,
    methods: MethodSet,
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
    thumbnails = {TRUTH: fwd_thumbnail(truth.rgb)}
    thumbnails.update((method, fwd_thumbnail(output)) for method, output in outputs.items())
    return _PhotoRows(records, outputs, histograms, thumbnails)
