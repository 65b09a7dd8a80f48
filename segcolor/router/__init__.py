"""Router: decides which expert colorizes which pixels, from a pretrained segmenter."""

from segcolor.router.segmenters import Segmenter, create_segmenter, list_segmenters
from segcolor.router.weights import resolve_weights

__all__ = ["Segmenter", "create_segmenter", "list_segmenters", "resolve_weights"]
