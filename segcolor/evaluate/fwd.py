"""Fréchet Wavelet Distance (Veeramacheneni et al., ICLR 2025): how far a set of images is from
another in every frequency band, with no pretrained network.

Each image (RGB in [0, 1], ``FWD_SIZE`` square) is split by a Haar wavelet packet transform of
``FWD_LEVEL`` levels into 4**level packets (frequency bands); for each packet the coefficients
of an image (C x h x w of them) are one sample, the two sets' samples are fitted with Gaussians,
and the Fréchet distance between the fits is taken; FWD is the mean over the packets. These are
``pytorchfwd``'s definition and defaults (Haar, level 4, ``torch.cov``'s unbiased covariance);
``pytorchfwd`` itself pins a scipy that our scikit-image cannot use (docs/research-log.md).

The Haar packets are exact in plain torch (sums and differences of 2 x 2 blocks, orthonormal).
The Fréchet distance needs Tr sqrt(S1 S2), which is computed exactly from singular values
(the nuclear norm of S1^1/2 S2^1/2, or of the centred samples' cross product when there are
fewer images than coefficients) instead of scipy's ``sqrtm`` of a product that is singular
whenever a set has fewer images than a packet has coefficients.

Like FID it is a distance between sets: compare methods on the same photos, in sets of the
same size (with few images the covariances are poor and the distance is biased upwards).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

FWD_SIZE = 128  # px: every image is resized to FWD_SIZE x FWD_SIZE (whole image, RGB)
FWD_LEVEL = 4  # Haar packet levels: pytorchfwd's default; 256 packets of 8 x 8 at 128 px
_PACKET_CHUNK = 16  # packets whose statistics are computed at once (bounds memory)


def fwd_thumbnail(rgb: np.ndarray, size: int = FWD_SIZE) -> np.ndarray:
    """(size, size, 3) uint8: a whole photo as FWD sees it, resized (bilinear, antialiased
    by PIL) and kept 8-bit, as pytorchfwd reads images saved at that size."""
    image = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("RGB")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))


def haar_packets(images: torch.Tensor, level: int = FWD_LEVEL) -> torch.Tensor:
    """(N,C,H,W) -> (N, 4**level, C, H / 2**level, W / 2**level): the Haar wavelet packets in
    PyWavelets' natural order (a, h, v, d at each level, the first level outermost).

    Per 2 x 2 block [[p, q], [r, s]]: a = (p+q+r+s)/2, h = (p+q-r-s)/2, v = (p-q+r-s)/2,
    d = (p-q-r+s)/2, as pywt's ``dwt2`` with 'haar'; an orthonormal transform (energy kept).
    """
    height, width = images.shape[-2:]
    step = 2**level
    if height % step or width % step:
        raise ValueError(f"images of {height} x {width} do not split into {step} x {step} blocks")
    x = images.unsqueeze(1)  # (N, packets, C, H, W)
    for _ in range(level):
        p, q = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
        r, s = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
        top, bottom = p + q, r + s
        left_minus, right_minus = p - q, r - s
        children = (top + bottom, top - bottom, left_minus + right_minus, left_minus - right_minus)
        x = torch.stack(children, dim=2).flatten(1, 2) * 0.5
    return x


def _psd_sqrt(matrices: torch.Tensor) -> torch.Tensor:
    """Symmetric square roots of (..., D, D) positive semi-definite matrices."""
    values, vectors = torch.linalg.eigh(matrices)
    return (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)


def frechet_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(P,) Fréchet distances between Gaussian fits of the samples x (P, n1, D) and
    y (P, n2, D), P problems at once:
    |mu1 - mu2|^2 + Tr S1 + Tr S2 - 2 Tr sqrt(S1 S2), S unbiased (n - 1) covariances."""
    x, y = x.double(), y.double()
    n1, n2, dims = x.shape[1], y.shape[1], x.shape[2]
    if n1 < 2 or n2 < 2:
        return torch.full((x.shape[0],), math.nan, dtype=torch.float64)
    a = x - x.mean(1, keepdim=True)
    b = y - y.mean(1, keepdim=True)
    mean_gap = (x.mean(1) - y.mean(1)).pow(2).sum(-1)
    traces = a.pow(2).sum((1, 2)) / (n1 - 1) + b.pow(2).sum((1, 2)) / (n2 - 1)
    # Tr sqrt(S1 S2): S1 S2 has the eigenvalues of S1^1/2 S2 S1^1/2 (D x D, symmetric) and
    # the squared singular values of a b^T / sqrt((n1-1)(n2-1)) (n1 x n2); the smaller is used
    if dims <= min(n1, n2):
        root = _psd_sqrt(a.transpose(1, 2) @ a / (n1 - 1))
        middle = root @ (b.transpose(1, 2) @ b / (n2 - 1)) @ root
        cross = torch.linalg.eigvalsh(middle).clamp_min(0.0).sqrt().sum(-1)
    else:
        cross = torch.linalg.svdvals(a @ b.transpose(1, 2)).sum(-1) / math.sqrt((n1 - 1) * (n2 - 1))
    return (mean_gap + traces - 2.0 * cross).clamp_min(0.0)


def _as_batch(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W,3) (or a list of (H,W,3)) -> float64 (N,3,H,W) in [0, 1]."""
    array = np.stack(list(images)) if not isinstance(images, np.ndarray) else images
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected RGB images (N,H,W,3), got {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).double() / 255.0


def wavelet_distances(
    images: Sequence[np.ndarray] | np.ndarray,
    reference: Sequence[np.ndarray] | np.ndarray,
    level: int = FWD_LEVEL,
) -> torch.Tensor:
    """(4**level,) the Fréchet distance of each packet between two sets of uint8 RGB images
    of one size (``fwd_thumbnail``s), in pywt's natural packet order."""
    x, y = _as_batch(images), _as_batch(reference)
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"images {tuple(x.shape[1:])} and {tuple(y.shape[1:])} differ in size")
    # (P, N, C*h*w): each packet's coefficients of an image are one sample
    px = haar_packets(x, level).transpose(0, 1).flatten(2)
    py = haar_packets(y, level).transpose(0, 1).flatten(2)
    chunks = [
        frechet_distances(px[i : i + _PACKET_CHUNK], py[i : i + _PACKET_CHUNK])
        for i in range(0, px.shape[0], _PACKET_CHUNK)
    ]
    return torch.cat(chunks)


def frechet_wavelet_distance(
    images: Sequence[np.ndarray] | np.ndarray,
    reference: Sequence[np.ndarray] | np.ndarray,
    level: int = FWD_LEVEL,
) -> float:
    """FWD between two sets of uint8 RGB images of one size: the mean over Haar packets of the
    Fréchet distance of their Gaussian fits (0: the same statistics); nan under 2 images."""
    if len(images) < 2 or len(reference) < 2:
        return math.nan
    with torch.inference_mode():
        return float(wavelet_distances(images, reference, level).mean())
