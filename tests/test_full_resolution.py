"""The full-resolution stage: L from decoded pixels, band by band, equal to the whole-image path."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segcolor.color.bands import for_each_band, row_bands, shrink_rows
from segcolor.color.lab import _lab_to_rgb_unclipped, fit_to_gamut, lab_to_rgb, rgb_to_lab
from segcolor.color.lightness import lightness_rows
from segcolor.color.recombine import GAMUT_TOL, recombine_bands, upsample_ab
from segcolor.io.images import float_rgb
from segcolor.pipeline import to_uint8

from .conftest import color_image

CPU = torch.device("cpu")


def whole_image_lightness(pixels: np.ndarray) -> torch.Tensor:
    """L the way the pipeline computed it before bands: float RGB of the whole image, then Lab."""
    return rgb_to_lab(torch.from_numpy(float_rgb(pixels)).permute(2, 0, 1)[None])[:, :1]


def whole_image_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """The recombination before bands: upsample, gamut fit of every pixel, convert."""
    ab_full = upsample_ab(ab, tuple(lightness.shape[-2:]))
    rgb = lab_to_rgb(fit_to_gamut(torch.cat([lightness, ab_full], dim=1)))
    return rgb[0].permute(1, 2, 0).numpy()


# Tolerances of the banded path against the whole-image one, from what the arithmetic allows:
# - off the gamut boundary the two differ only by float32 rounding of the same conversions
#   (upsampling weights, the sRGB curve): 2e-4 in RGB;
# - a pixel whose RGB sits within rounding of the fit's tolerance (GAMUT_TOL outside [0, 1]) can be
#   judged "in gamut" by one path and fitted by the other, and which one wins depends on the CPU's
#   SIMD kernels. Fitted, its chroma shrinks by at most one bisection step (2**-10 of it: < 0.2 ab
#   units for |ab| < 200) and its RGB moves by at most GAMUT_TOL more when clipped, so the two
#   answers differ by less than BOUNDARY_ATOL; such pixels are rare (BOUNDARY_FRACTION).
ROUNDING_ATOL = 2e-4
BOUNDARY_BAND = 1e-4  # RGB distance from the tolerance's edge where rounding can flip the fit
BOUNDARY_ATOL = 5e-3
BOUNDARY_FRACTION = 0.01


def gamut_boundary(lightness: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """(H, W) bool: pixels whose unclipped RGB lies within rounding of the gamut fit's edge."""
    ab_full = upsample_ab(ab, tuple(lightness.shape[-2:]))
    rgb = _lab_to_rgb_unclipped(torch.cat([lightness, ab_full], dim=1))[0]
    excess = torch.maximum(-rgb.amin(0), rgb.amax(0) - 1.0)
    return ((excess - GAMUT_TOL).abs() < BOUNDARY_BAND).numpy()


def assert_same_colors(actual: np.ndarray, expected: np.ndarray, boundary: np.ndarray) -> None:
    """Equal up to rounding off the gamut boundary, within BOUNDARY_ATOL on it."""
    off = ~boundary
    np.testing.assert_allclose(actual[off], expected[off], atol=ROUNDING_ATOL)
    np.testing.assert_allclose(actual[boundary], expected[boundary], atol=BOUNDARY_ATOL)
    assert boundary.mean() <= BOUNDARY_FRACTION, f"{boundary.mean():.2%} of pixels on the edge"


def smooth_ab(height: int, width: int, strength: float = 60.0, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 2, 3, 4, generator=generator) * strength
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def scans() -> dict[str, np.ndarray]:
    rgb = color_image(37, 53)
    gray = rgb.mean(axis=2).round().astype(np.uint8)
    return {
        "gray8": gray,
        "gray16": (gray.astype(np.uint16) * 257 + np.arange(53, dtype=np.uint16)),
        "rgb8": rgb,
        "float": rgb.astype(np.float32) / 255.0,
    }


@pytest.mark.parametrize("kind", ["gray8", "gray16", "rgb8", "float"])
def test_lightness_of_decoded_pixels_equals_the_float_conversion(kind):
    pixels = scans()[kind]
    expected = whole_image_lightness(pixels)[0, 0].numpy()
    by_rows = np.concatenate([lightness_rows(pixels, a, b) for a, b in row_bands(37, 53, 53 * 4)])
    assert by_rows.dtype == np.float32 and by_rows.shape == (37, 53)
    np.testing.assert_allclose(by_rows, expected, atol=1e-4)


def test_sixteen_bit_lightness_has_more_than_256_levels():
    ramp = np.linspace(0, 65535, 3000).astype(np.uint16).reshape(30, 100)
    assert len(np.unique(lightness_rows(ramp, 0, 30))) > 2000


@pytest.mark.parametrize("band_pixels", [53, 53 * 5 + 7, 10**6])
def test_banded_shrink_equals_one_antialiased_resize(band_pixels):
    pixels = scans()["gray8"]
    whole = whole_image_lightness(pixels)
    expected = F.interpolate(
        whole, size=(11, 16), mode="bilinear", antialias=True, align_corners=False
    )
    rows_of = lambda a, b: lightness_rows(pixels, a, b)  # noqa: E731
    got = shrink_rows(rows_of, (37, 53), (11, 16), CPU, band_pixels)
    assert got.shape == (1, 1, 11, 16)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    same = shrink_rows(rows_of, (37, 53), (37, 53), CPU, band_pixels)  # no resize: plain L
    torch.testing.assert_close(same, whole, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["gray8", "gray16", "rgb8"])
@pytest.mark.parametrize("band_pixels", [53, 53 * 3 + 20, 10**6])
def test_banded_recombination_equals_the_whole_image_path(kind, band_pixels):
    pixels = scans()[kind]
    ab = smooth_ab(9, 13)
    lightness = whole_image_lightness(pixels)
    expected = whole_image_rgb(lightness, ab)
    rows_of = lambda a, b: lightness_rows(pixels, a, b)  # noqa: E731
    as_float = recombine_bands(rows_of, ab, np.empty((37, 53, 3), np.float32), band_pixels)
    assert_same_colors(as_float, expected, gamut_boundary(lightness, ab))
    as_uint8 = recombine_bands(rows_of, ab, np.empty((37, 53, 3), np.uint8), band_pixels)
    assert np.abs(as_uint8.astype(int) - to_uint8(expected)).max() <= 1
    assert (as_uint8 != to_uint8(expected)).mean() < 0.01


def test_out_of_gamut_pixels_are_fitted_keeping_lightness_and_hue():
    lightness = torch.linspace(5, 95, 24 * 40).view(1, 1, 24, 40)
    ab = smooth_ab(6, 10, strength=120.0, seed=3)
    ab_full = upsample_ab(ab, (24, 40))
    clipped = rgb_to_lab(lab_to_rgb(torch.cat([lightness, ab_full], dim=1)))
    outside = (clipped[:, 0] - lightness[:, 0]).abs() > 0.5  # plain clipping would move L
    assert outside.float().mean() > 0.2, "the test needs many out-of-gamut pixels"

    rows_of = lambda a, b: lightness[0, 0, a:b].numpy()  # noqa: E731
    out = recombine_bands(rows_of, ab, np.empty((24, 40, 3), np.float32), band_pixels=40 * 5)
    lab = rgb_to_lab(torch.from_numpy(out).permute(2, 0, 1)[None])
    assert (lab[:, 0] - lightness[:, 0]).abs().max() < 0.05  # L kept
    # hue kept: the fitted ab points the way the predicted ab does, with less chroma
    ab_out, ab_in = lab[0, 1:], ab_full[0]
    cosine = (ab_out * ab_in).sum(0) / (ab_out.norm(dim=0) * ab_in.norm(dim=0) + 1e-6)
    chroma = ab_out.norm(dim=0)
    assert (cosine[chroma > 5] > 0.99).all()
    assert (chroma[outside[0]] < ab_in.norm(dim=0)[outside[0]]).all()
    assert_same_colors(out, whole_image_rgb(lightness, ab), gamut_boundary(lightness, ab))


def test_banded_recombination_keeps_no_full_size_float_copy():
    import tracemalloc

    pixels = np.tile(scans()["gray8"], (40, 40))  # 1480 x 2120, 3.1 MP
    ab = smooth_ab(16, 23)
    out = np.empty((*pixels.shape, 3), np.uint8)
    rows_of = lambda a, b: lightness_rows(pixels, a, b)  # noqa: E731
    tracemalloc.start()
    recombine_bands(rows_of, ab, out, band_pixels=1 << 16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < pixels.size  # numpy's share: bands only, far below 4 bytes a pixel


def test_bands_run_side_by_side_single_threaded_and_threads_are_restored():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen: dict[int, tuple[int, int]] = {}

        def work(start: int, stop: int) -> None:
            seen[start] = (stop, torch.get_num_threads())

        for_each_band(work, row_bands(100, 7, 7 * 9), CPU)
        assert sorted(seen) == list(range(0, 100, 9)) and seen[99][0] == 100
        assert {threads for _, threads in seen.values()} == {1}  # one torch thread per band
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
