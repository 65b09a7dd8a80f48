"""Spread each color hint over what looks like the same thing: near it, of a similar lightness,
in the same routed region.

The experts read hints too (they were trained with them), but a small network fine-tuned for
minutes learns to copy a hint onto its own pixels far better than to carry it across a coat.
So after the merge, each hint's residual — its color minus the answer in a band around it
(``ring``), i.e. what the experts did not carry over — is spread as a correction. Where the
experts already carried a hint, its residual is small and so is the correction. Two ways to
spread (``SpreadOptions.method``):

- ``edges`` (the default): the correction diffuses from pixel to neighbouring pixel, each step
  weighted by how alike the two pixels' lightness is, inside the hint's own routed region (its
  routing weight gates every step), and fades with the number of steps — Levin et al.'s
  colorization by optimization (SIGGRAPH 2004), applied to the residual rather than the color
  and screened so that it fades. It follows a coat around an arm
  and stops at its outline and at the region's border. One sparse solve per photo (~0.3 s at
  256²; larger working sizes are solved on a grid of at most 2 x 256² and the correction
  upsampled).
- ``bilateral``: a closed-form joint bilateral kernel (distance to the hint, lightness
  difference, region overlap), normalised as Shepard's interpolation with a floor (``reach``).
  Fast, but it jumps edges: a wall and the sky of one lightness share a correction.

Plain tensors in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from scipy.ndimage import distance_transform_edt
from scipy.sparse.linalg import splu

METHODS = ("edges", "bilateral")  # pipeline_config.SPREAD_METHODS checks the YAML against these
# the default working size (256 px short side) at any aspect up to 2:1 is solved as it is;
# larger working sizes on a coarser grid
MAX_SOLVE_PIXELS = 2 * 256 * 256
GATE_FLOOR = 1e-3  # a region weight below which a pixel is outside the region


@dataclass(frozen=True)
class SpreadOptions:
    """The shipped values (edges, space 8, lightness 2, ring 16) were chosen by
    experiments/hint_spread_choice.py, as the bilateral kernel's (0.4, 20, 0.01, ring 2) were
    in round 3."""

    method: str = "edges"  # or "bilateral" (see the module's docstring)
    space: float = 8.0  # how far a correction reaches, as a share of the short side
    lightness: float = 2.0  # Gaussian sigma of a lightness difference (edges: per pixel step)
    reach: float = 0.01  # bilateral: summed weight below which a correction fades (Shepard)
    # px around a hint (at the working size) where the answer is read to find its residual: the
    # experts pull the pixels next to a hint toward it, so a near band understates what is left
    ring: int = 16


def spread_hints(
    ab: torch.Tensor,
    lightness: torch.Tensor,
    masks: np.ndarray,
    colors: np.ndarray,
    regions: torch.Tensor | None = None,
    options: SpreadOptions | None = None,
) -> torch.Tensor:
    """ab (1,2,h,w) Lab units with each hint's residual spread; ``lightness`` (1,1,h,w) L units,
    ``masks`` (N,h,w) bool and ``colors`` (N,2) a, b of the hints, ``regions`` (E,h,w) the
    routing weights (None: one region). The hints' own pixels keep the answer given."""
    opts = options or SpreadOptions()
    if opts.method not in METHODS:
        raise ValueError(f"unknown spread method {opts.method!r} (one of {', '.join(METHODS)})")
    if len(masks) == 0 or opts.space <= 0:
        return ab
    if opts.method == "edges":
        return _spread_along_edges(ab, lightness, masks, colors, regions, opts)
    height, width = ab.shape[-2:]
    device = ab.device
    light = lightness[0, 0].float()
    sigma = opts.space * min(height, width)
    total = torch.zeros(height, width, device=device)
    weighted = torch.zeros(2, height, width, device=device)
    for covered, color in zip(masks, colors, strict=True):
        mask = torch.from_numpy(covered).to(device)
        residual = _residual(ab, mask, color, opts.ring)
        distance = torch.from_numpy(distance_transform_edt(~covered)).to(device).float()
        weight = torch.exp(-(distance**2) / (2 * sigma**2))
        level = light[mask].mean()
        weight = weight * torch.exp(-((light - level) ** 2) / (2 * opts.lightness**2))
        if regions is not None:
            share = regions[:, mask].float().mean(1)  # the hint's regions
            weight = weight * torch.einsum("e,ehw->hw", share, regions.float()).clamp(0, 1)
        total += weight
        weighted += weight * residual[:, None, None]
    correction = weighted / (total + opts.reach)
    keep = torch.from_numpy(masks.any(0)).to(device)
    return ab + (correction * ~keep).to(ab.dtype)[None]


def _residual(ab: torch.Tensor, mask: torch.Tensor, color: np.ndarray, ring: int) -> torch.Tensor:
    """A hint's color minus the answer in a ``ring`` px band around its pixels (on them if the
    hint covers everything near): what the experts did not carry past the hint, (2,)."""
    size = 2 * ring + 1  # a square dilation, as two 1-D passes: O(ring) a pixel, not O(ring²)
    rows = F.max_pool2d(mask[None, None].float(), (1, size), 1, (0, ring))
    grown = F.max_pool2d(rows, (size, 1), 1, (ring, 0))[0, 0] > 0
    band = grown & ~mask
    around = band if bool(band.any()) else mask
    return torch.as_tensor(color, device=ab.device) - ab[0][:, around].float().mean(1)


def _spread_along_edges(
    ab: torch.Tensor,
    lightness: torch.Tensor,
    masks: np.ndarray,
    colors: np.ndarray,
    regions: torch.Tensor | None,
    opts: SpreadOptions,
) -> torch.Tensor:
    """``spread_hints`` by screened edge-aware diffusion. Each hint belongs to the region that
    holds most of it; each region's hints diffuse inside that region alone (its routing weight
    gates every step), and the region's correction counts at each pixel by the pixel's weight
    in it, as the merge counts the region's expert. Solved on a grid of at most
    ``MAX_SOLVE_PIXELS`` (the correction upsampled bilinearly to ``ab``'s size)."""
    height, width = ab.shape[-2:]
    residuals = torch.stack(
        [
            _residual(ab, torch.from_numpy(covered).to(ab.device), color, opts.ring)
            for covered, color in zip(masks, colors, strict=True)
        ]
    )
    factor = max(1, int(np.ceil(np.sqrt(height * width / MAX_SOLVE_PIXELS))))
    light = lightness[0].double().cpu()
    covers = torch.from_numpy(masks)
    shares = None if regions is None else regions.double().cpu()
    if factor > 1:  # average lightness and regions; a hint covers a coarse pixel it touches
        light = F.avg_pool2d(light[None], factor, ceil_mode=True)[0]
        covers = F.max_pool2d(covers[None].float(), factor, ceil_mode=True)[0] > 0
        if shares is not None:
            shares = F.avg_pool2d(shares[None], factor, ceil_mode=True)[0]
    light_np, covers_np = light[0].numpy(), covers.numpy()
    values = residuals.double().cpu().numpy()
    if shares is None:
        correction = diffuse(light_np, covers_np, values, None, opts.space, opts.lightness)
    else:
        owner = torch.stack([shares[:, c].mean(1) for c in covers]).argmax(1).tolist()
        correction = np.zeros((2, *light_np.shape))
        for region in sorted(set(owner)):
            mine = [k for k, o in enumerate(owner) if o == region]
            gate = shares[region].numpy()
            part = diffuse(
                light_np, covers_np[mine], values[mine], gate, opts.space, opts.lightness
            )
            correction += gate * part
    out = torch.from_numpy(correction).to(ab.device, ab.dtype)[None]
    if factor > 1:
        out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False)
    keep = torch.from_numpy(masks.any(0)).to(ab.device)
    return ab + out * ~keep


def diffuse(
    light: np.ndarray,
    covers: np.ndarray,
    values: np.ndarray,
    gate: np.ndarray | None,
    space: float,
    sigma: float,
) -> np.ndarray:
    """The (C,h,w) field x that minimises  sum over 8-neighbours w_pq |x_p - x_q|^2 + lam
    sum_p |x_p|^2  with x = ``values[k]`` (C,) on hint k's pixels ``covers[k]`` (a later hint
    wins where they overlap): w_pq = exp(-(L_p - L_q)^2 / 2 sigma^2) (diagonal steps / sqrt 2),
    times min(gate_p, gate_q) when a ``gate`` (h,w) in [0,1] is given (outside it, x = 0), and
    lam = 1 / (space * short side)^2: on a flat photo a value fades over ``space`` of the side."""
    height, width = light.shape
    n = height * width
    fixed = np.zeros((height, width), bool)
    target = np.zeros((values.shape[1], height, width))
    for covered, value in zip(covers, values, strict=True):
        target[:, covered] = value[:, None]
        fixed |= covered
    index = np.arange(n).reshape(height, width)
    rows, cols, weights = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each neighbouring pair once
        src = (slice(0, height - dy), slice(max(0, -dx), width - max(0, dx)))
        dst = (slice(dy, height), slice(max(0, dx), width - max(0, -dx)))
        step = np.exp(-((light[src] - light[dst]) ** 2) / (2 * sigma**2))
        if dx and dy:
            step = step / np.sqrt(2)
        if gate is not None:
            step = step * np.minimum(gate[src], gate[dst])
        rows.append(index[src].ravel())
        cols.append(index[dst].ravel())
        weights.append(step.ravel())
    w = np.concatenate(weights)
    adjacency = sparse.coo_matrix(
        (w, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).tocsr()
    adjacency = adjacency + adjacency.T
    screen = 1.0 / (space * min(height, width)) ** 2
    system = sparse.diags(np.asarray(adjacency.sum(1)).ravel() + screen) - adjacency
    # unknown: the pixels no hint covers, inside the gate (outside it nothing reaches them)
    free = ~fixed.ravel() if gate is None else ~fixed.ravel() & (gate.ravel() > GATE_FLOOR)
    known = fixed.ravel()
    field = np.where(known, target.reshape(len(target), n), 0.0)
    if free.any():  # A_ff x_f = -A_fk x_k
        inner = system[free][:, free].tocsc()
        coupling = system[free][:, known]
        # a symmetric fill-reducing ordering: on a 256² grid it factors 2-3x faster than the
        # default (COLAMD)
        solve = splu(inner, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}).solve
        for channel in field:
            channel[free] = solve(-(coupling @ channel[known]))
    return field.reshape(target.shape)
