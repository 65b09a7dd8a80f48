"""What ``segcolor inspect`` writes: an overlay with a legend, images, JSON and one HTML page."""

from segcolor.report.html import data_uri, render_index
from segcolor.report.inspection import write_inspection
from segcolor.report.overlay import category_colors, render_overlay

__all__ = ["category_colors", "data_uri", "render_index", "render_overlay", "write_inspection"]
