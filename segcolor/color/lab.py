"""Exact sRGB (D65) <-> CIE Lab in torch, so conversion runs on the same device as the model.

Matches ``skimage.color.rgb2lab``/``lab2rgb`` (tested to 1e-3). Tensors are channel-first:
``(..., 3, H, W)`` RGB in [0, 1]; Lab with L in [0, 100] and a, b roughly in [-110, 110].
"""

from __future__ import annotations

import torch

# Networks see L/50 - 1 in [-1, 1] and ab/110 in about [-1, 1].
L_SCALE = 50.0
AB_SCALE = 110.0

_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix along the channel dimension (-3)."""
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _white(x: torch.Tensor) -> torch.Tensor:
    return _WHITE_D65.to(device=x.device, dtype=x.dtype).view(3, 1, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (..., 3, H, W) -> Lab of the same shape."""
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _mix(_RGB_TO_XYZ, linear) / _white(rgb)
    f = torch.where(xyz > _EPS, xyz.clamp_min(_EPS) ** (1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab, shape (..., 3, H, W) -> sRGB clipped to [0, 1]."""
    return _lab_to_rgb_unclipped(lab).clamp(0.0, 1.0)


def _lab_to_rgb_unclipped(lab: torch.Tensor) -> torch.Tensor:
    return _encode_srgb(_lab_to_linear(lab))


def _lab_to_linear(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> linear-light RGB, unclipped."""
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    f = torch.stack((fx, fy, fz), dim=-3)
    cube = f**3
    xyz = torch.where(cube > _EPS, cube, (116.0 * f - 16.0) / _KAPPA) * _white(lab)
    return _mix(_XYZ_TO_RGB, xyz)


def _encode_srgb(linear: torch.Tensor) -> torch.Tensor:
    return torch.where(
        linear > 0.0031308, 1.055 * linear.clamp_min(1e-12) ** (1.0 / 2.4) - 0.055, 12.92 * linear
    )


def channels_within(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W): all three channels in [low, high] (NaN is not).
    Six comparisons on the channel planes: several times faster than ``.all`` over dim -3."""
    first, second, third = x.split(1, dim=-3)
    inside = (first >= low) & (first <= high) & (second >= low)
    return inside & (second <= high) & (third >= low) & (third <= high)


def fit_to_gamut(lab: torch.Tensor, steps: int = 10, tol: float = 1e-3) -> torch.Tensor:
    """Shrink the chroma of out-of-gamut pixels until they fit sRGB, keeping L and hue.

    Clipping RGB instead would shift lightness; this keeps the output's L equal to the input's.
    A bisection on the chroma scale per pixel (gray, scale 0, is always in gamut). sRGB's
    [-tol, 1 + tol] is tested in linear light, where it maps to exact bounds (the sRGB curve is
    monotonic), so no step pays for the power function.
    """
    lightness, ab = lab[..., :1, :, :], lab[..., 1:, :, :]
    darkest, brightest = -tol / 12.92, ((1.0 + tol + 0.055) / 1.055) ** 2.4

    def in_gamut(scale: torch.Tensor) -> torch.Tensor:
        linear = _lab_to_linear(torch.cat([lightness, ab * scale], dim=-3))
        return channels_within(linear, darkest, brightest)

    ok = in_gamut(torch.ones_like(lightness))
    if bool(ok.all()):
        return lab
    low, high = torch.zeros_like(lightness), torch.ones_like(lightness)
    for _ in range(steps):
        mid = (low + high) / 2
        fits = in_gamut(mid)
        low = torch.where(fits, mid, low)
        high = torch.where(fits, high, mid)
    scale = torch.where(ok, torch.ones_like(low), low)
    return torch.cat([lightness, ab * scale], dim=-3)


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> [-1, 1], the expert's input."""
    return lightness / L_SCALE - 1.0


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    return (l_norm + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in about [-110, 110] -> about [-1, 1], the expert's regression target."""
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    return ab_norm * AB_SCALE
