"""What ``segcolor inspect`` writes for a photo: an overlay with a legend, each expert's
images, routing.json and one HTML page (not ``segcolor.evaluate.report``: that one scores
methods)."""

from segcolor.inspection.html import data_uri, render_index
from segcolor.inspection.write import write_inspection

__all__ = ["data_uri", "render_index", "write_inspection"]
