"""Where each expert runs: region boxes grown by a context margin, merged and batched.

An expert only needs to see its regions plus enough context for its receptive field, so it runs
on crops instead of the whole image. Crop corners sit on the expert's stride grid
(``multiple``), so inside the margin a crop's output matches a whole-image run.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[int, int, int, int]  # x0, y0, x1, y1; x1 and y1 exclusive


def area(box: Box) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def expand_box(box: Box, margin: int, size: tuple[int, int], multiple: int = 1) -> Box:
    """Grow by ``margin`` on every side, snap outwards to ``multiple``, clip to ``size`` (H, W)."""
    height, width = size
    x0 = max(0, box[0] - margin) // multiple * multiple
    y0 = max(0, box[1] - margin) // multiple * multiple
    x1 = min(width, -(-(box[2] + margin) // multiple) * multiple)
    y1 = min(height, -(-(box[3] + margin) // multiple) * multiple)
    return (x0, y0, x1, y1)


def merge_boxes(boxes: Sequence[Box], slack: float = 1.0) -> list[Box]:
    """Replace pairs of boxes by their union while that costs at most ``slack`` x their summed
    area (overlapping or touching boxes), so no pixel is computed twice for nothing."""
    out = [b for b in boxes if area(b) > 0]
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                joint = union(out[i], out[j])
                if area(joint) <= slack * (area(out[i]) + area(out[j])):
                    out[i] = joint
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(out)


def _grow_to(box: Box, height: int, width: int, size: tuple[int, int], multiple: int) -> Box | None:
    """``box`` (corner on the stride grid) grown to height x width inside the image, its corner
    kept on the grid; None when no such crop contains it."""
    img_h, img_w = size

    def start(lo: int, hi: int, span: int, limit: int) -> int:
        extra = span - (hi - lo)
        first = lo - (extra // 2) // multiple * multiple
        return max(0, min(first, (limit - span) // multiple * multiple))

    x0 = start(box[0], box[2], width, img_w)
    y0 = start(box[1], box[3], height, img_h)
    grown = (x0, y0, x0 + width, y0 + height)
    fits = grown[0] <= box[0] and grown[1] <= box[1] and grown[2] >= box[2] and grown[3] >= box[3]
    return grown if fits and grown[2] <= img_w and grown[3] <= img_h else None


def plan_crops(
    boxes: Sequence[Box],
    size: tuple[int, int],
    margin: int,
    multiple: int = 1,
    batch_slack: float = 1.25,
) -> list[list[Box]]:
    """Batches of equally sized crops covering ``boxes`` with ``margin`` px of context.

    Several crops become one batch (grown to a common size) when that adds at most
    ``batch_slack`` x their area; a batch of one costs nothing to form, so the choice is only
    between one forward pass and several smaller ones.
    """
    crops = merge_boxes([expand_box(b, margin, size, multiple) for b in boxes])
    if len(crops) < 2:
        return [crops] if crops else []
    height = max(b[3] - b[1] for b in crops)
    width = max(b[2] - b[0] for b in crops)
    if len(crops) * height * width <= batch_slack * sum(area(b) for b in crops):
        grown = [_grow_to(b, height, width, size, multiple) for b in crops]
        if all(g is not None for g in grown):
            return [grown]  # type: ignore[list-item]
    return [[b] for b in crops]
