"""Colorization quality metrics of one output against its ground truth, whole image or region.

Everything is measured on the 8-bit RGB a user gets (the saved output), against the 8-bit
ground truth. The per-pixel maps (SSIM, CIEDE2000, ab error) are computed once per image and
then averaged over any region, so region metrics cost almost nothing and use only the
region's pixels. Standard parts come from scikit-image; colorfulness and AuC are defined here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

PSNR_CAP = 100.0  # dB: identical images (MSE 0) score this, not infinity, so means stay finite
AB_RANGE = 220.0  # data range of a and b for PSNR-ab: [-110, 110], the experts' AB_SCALE
AUC_MAX = 150  # ab-error thresholds 0, 1, ..., 150 (Zhang et al. 2016)
AB_BIN = 10.0  # ab histogram bins of 10 Lab units over [-110, 110]: Zhang et al.'s grid
AB_EDGES = np.arange(-110.0, 110.0 + AB_BIN, AB_BIN)
DELTA_E_GOOD = 10.0  # share of pixels with CIEDE2000 below this
SSIM_SIGMA = 1.5  # Wang et al. 2004: Gaussian window, sigma 1.5, population covariance
SSIM_WINDOW = 11  # the Gaussian window's size at that sigma; smaller images get no SSIM

# metric names, in table order; "pixels" is the region's size
METRICS = (
    "psnr_rgb",
    "psnr_ab",
    "ssim",
    "delta_e2000",
    "delta_e_lt10",
    "colorfulness",
    "colorfulness_diff",
    "auc_ab",
)


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colorfulness of RGB pixels (..., 3) on the 0-255 scale.

    rg = R - G, yb = (R + G) / 2 - B; M = sqrt(var rg + var yb) + 0.3 sqrt(mean rg^2 + mean yb^2)
    (population statistics). Any gray image scores 0.
    """
    pixels = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    if pixels.size == 0:
        return math.nan
    red, green, blue = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = math.sqrt(rg.var() + yb.var())
    mean = math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return spread + 0.3 * mean


def ab_auc(errors: np.ndarray, max_threshold: int = AUC_MAX) -> float:
    """Area under the CDF of per-pixel ab errors over thresholds 0..max (Zhang et al. 2016),
    normalised to [0, 1]: the mean over thresholds t of the share of pixels with error <= t.

    A pixel with error e counts for every threshold t >= e, i.e. ``max - ceil(e) + 1`` of the
    ``max + 1`` thresholds, so this is exact without building the curve.
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        return math.nan
    hits = np.clip(max_threshold + 1 - np.ceil(errors), 0, max_threshold + 1)
    return float(hits.mean() / (max_threshold + 1))


def psnr(truth: np.ndarray, output: np.ndarray, data_range: float) -> float:
    """scikit-image's PSNR, capped at ``PSNR_CAP`` (identical inputs would give infinity)."""
    if truth.size == 0:
        return math.nan
    with np.errstate(divide="ignore"):
        value = peak_signal_noise_ratio(truth, output, data_range=data_range)
    return float(min(value, PSNR_CAP))


@dataclass
class GroundTruth:
    """A ground-truth photo, converted once and shared by every method's comparison."""

    rgb: np.ndarray  # (H,W,3) uint8
    lab: np.ndarray  # (H,W,3) float64, scikit-image Lab (D65)

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> GroundTruth:
        rgb = np.asarray(rgb, dtype=np.uint8)
        return cls(rgb=rgb, lab=rgb2lab(rgb))

    @property
    def mean_chroma(self) -> float:
        """Mean sqrt(a^2 + b^2): about 0 for a black-and-white photo (no color to compare to)."""
        return float(np.hypot(self.lab[..., 1], self.lab[..., 2]).mean())


class Comparison:
    """One output against its ground truth: per-pixel maps, then metrics over any region."""

    def __init__(self, truth: GroundTruth, output: np.ndarray) -> None:
        output = np.asarray(output, dtype=np.uint8)
        if output.shape != truth.rgb.shape:
            raise ValueError(f"output {output.shape} and ground truth {truth.rgb.shape} differ")
        self.truth = truth
        self.rgb = output
        self.lab = rgb2lab(output)
        self.delta_e = deltaE_ciede2000(truth.lab, self.lab)
        self.ab_error = np.linalg.norm(truth.lab[..., 1:] - self.lab[..., 1:], axis=-1)
        self.ssim_map, self.ssim_valid = self._ssim()

    def _ssim(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per-pixel SSIM (mean over RGB) and where it is valid: scikit-image's mean SSIM
        leaves out a border of half a window, where the filter saw padding."""
        height, width = self.rgb.shape[:2]
        if min(height, width) < SSIM_WINDOW:
            return None, None
        _, full = structural_similarity(
            self.truth.rgb,
            self.rgb,
            channel_axis=2,
            data_range=255,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            full=True,
        )
        pad = (SSIM_WINDOW - 1) // 2
        valid = np.zeros((height, width), dtype=bool)
        valid[pad : height - pad, pad : width - pad] = True
        return full.mean(axis=2), valid

    def metrics(self, region: np.ndarray | None = None) -> dict[str, float]:
        """All of ``METRICS`` (and ``pixels``) over ``region`` (bool H x W), or the whole image."""

        def pick(a: np.ndarray) -> np.ndarray:
            """The region's pixels; for the whole image a view, not a copy."""
            return a.reshape(-1, *a.shape[2:]) if region is None else a[region]

        truth_rgb, out_rgb = pick(self.truth.rgb), pick(self.rgb)
        truth_cf, out_cf = colorfulness(truth_rgb), colorfulness(out_rgb)
        delta_e = pick(self.delta_e)
        empty = delta_e.size == 0
        return {
            "psnr_rgb": psnr(truth_rgb, out_rgb, 255),
            "psnr_ab": psnr(pick(self.truth.lab)[:, 1:], pick(self.lab)[:, 1:], AB_RANGE),
            "ssim": self._region_ssim(region),
            "delta_e2000": math.nan if empty else float(delta_e.mean()),
            "delta_e_lt10": math.nan if empty else float((delta_e < DELTA_E_GOOD).mean()),
            "colorfulness": out_cf,
            "colorfulness_diff": abs(out_cf - truth_cf),
            "auc_ab": ab_auc(pick(self.ab_error)),
            "pixels": float(delta_e.size),
        }

    def _region_ssim(self, region: np.ndarray | None) -> float:
        """Mean of the SSIM map over the region's pixels away from the border (all of the
        region's pixels when it lies entirely in the border); the whole image: skimage's mean."""
        if self.ssim_map is None or (region is not None and not region.any()):
            return math.nan
        if region is None:
            return float(self.ssim_map[self.ssim_valid].mean())
        inner = region & self.ssim_valid
        return float(self.ssim_map[inner if inner.any() else region].mean())


def ab_histogram(lab: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Counts of the pixels' (a, b) on a 22 x 22 grid of 10-unit bins (values outside
    [-110, 110] go to the edge bins): the color distribution of a photo or region."""
    ab = lab[..., 1:].reshape(-1, 2) if region is None else lab[region][:, 1:]
    ab = np.clip(ab, AB_EDGES[0], AB_EDGES[-1] - 1e-6)
    counts, _, _ = np.histogram2d(ab[:, 0], ab[:, 1], bins=(AB_EDGES, AB_EDGES))
    return counts


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, so in [0, ln 2]) of two histograms of the same
    shape, each normalised to sum to 1; nan if either is empty."""
    p_sum, q_sum = float(p.sum()), float(q.sum())
    if p_sum <= 0 or q_sum <= 0:
        return math.nan
    p, q = p.ravel() / p_sum, q.ravel() / q_sum
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log(a[nz] / m[nz])).sum())

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def truth_colorfulness(truth: GroundTruth, region: np.ndarray | None = None) -> float:
    """The ground truth's own colorfulness, the target that ``colorfulness`` is read against."""
    return colorfulness(truth.rgb if region is None else truth.rgb[region])
