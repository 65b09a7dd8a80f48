"""Evaluation: how close each method's colors come to the photos' own, whole image and per
ground-truth category region, and how realistic the set of outputs is (the ab-histogram
divergence, the Fréchet Wavelet Distance) (``segcolor evaluate``, ``bench/quality.py``).

Sits above the pipeline (it drives it); nothing in the pipeline imports it.
"""

from segcolor.evaluate.datasets import PhotoRef, find_photos, load_mask, region_masks
from segcolor.evaluate.fwd import frechet_wavelet_distance, fwd_thumbnail
from segcolor.evaluate.harness import MethodSet, Record, Results, evaluate
from segcolor.evaluate.methods import DEFAULT_BASELINES, Methods, parse_methods
from segcolor.evaluate.metrics import Comparison, GroundTruth, ab_auc, colorfulness
from segcolor.evaluate.report import markdown, summarize, write_results
from segcolor.evaluate.sheet import contact_sheet, write_contact_sheet

__all__ = [
    "DEFAULT_BASELINES",
    "Comparison",
    "GroundTruth",
    "MethodSet",
    "Methods",
    "PhotoRef",
    "Record",
    "Results",
    "ab_auc",
    "colorfulness",
    "contact_sheet",
    "evaluate",
    "find_photos",
    "frechet_wavelet_distance",
    "fwd_thumbnail",
    "load_mask",
    "markdown",
    "parse_methods",
    "region_masks",
    "summarize",
    "write_contact_sheet",
    "write_results",
]
