"""How visible the seams are: the mean ab jump between neighbouring pixels across region borders.

A hard mask switches expert from one pixel to the next, so the jump there is the full difference
between two experts' colors; feathering spreads it, so it should approach the ordinary
pixel-to-pixel change inside regions (reported alongside for scale).
"""

from __future__ import annotations

import torch


def _pairs(ab: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ab differences (Euclidean, Lab units) and 'crosses a border' flags of 4-neighbour pairs."""
    dx = (ab[:, :, 1:] - ab[:, :, :-1]).norm(dim=0).flatten()
    dy = (ab[:, 1:, :] - ab[:, :-1, :]).norm(dim=0).flatten()
    bx = (labels[:, 1:] != labels[:, :-1]).flatten()
    by = (labels[1:, :] != labels[:-1, :]).flatten()
    return torch.cat([dx, dy]), torch.cat([bx, by])


def boundary_jump(ab: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean |delta ab| over neighbouring pixel pairs on different sides of a region border."""
    diff, border = _pairs(ab.float(), labels)
    return float(diff[border].mean()) if bool(border.any()) else 0.0


def interior_gradient(ab: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean |delta ab| over neighbouring pixel pairs inside one region (the baseline texture)."""
    diff, border = _pairs(ab.float(), labels)
    return float(diff[~border].mean()) if bool((~border).any()) else 0.0
