"""The Fréchet Wavelet Distance: the Haar packets (exact, orthonormal, pywt's), the Fréchet
distance (scipy's sqrtm formula, known shifts), and FWD on known cases: a set against itself 0,
gray, half chroma and a 1.6x chroma gain all farther, gray farthest."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg
from skimage.color import lab2rgb, rgb2lab

from segcolor.evaluate.fwd import (
    FWD_SIZE,
    frechet_distances,
    frechet_wavelet_distance,
    fwd_thumbnail,
    haar_packets,
    wavelet_distances,
)

from .conftest import color_image

pytestmark = pytest.mark.usefixtures("one_thread")


def test_haar_packets_are_orthonormal_and_exact_on_known_blocks() -> None:
    images = torch.rand(3, 2, 16, 24, dtype=torch.float64)
    for level in (1, 2, 3):
        packets = haar_packets(images, level)
        assert packets.shape == (3, 4**level, 2, 16 // 2**level, 24 // 2**level)
        assert packets.pow(2).sum().item() == pytest.approx(images.pow(2).sum().item(), rel=1e-12)
    # a constant image: everything in the approximation packet, c * 2**level per coefficient
    flat = haar_packets(torch.full((1, 1, 8, 8), 0.25, dtype=torch.float64), 2)
    assert torch.allclose(flat[0, 0], torch.full((1, 2, 2), 0.25 * 4, dtype=torch.float64))
    assert flat[0, 1:].abs().max().item() < 1e-15
    # one 2 x 2 block [[p, q], [r, s]]: a, h, v, d
    block = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.float64)[None, None]
    a, h, v, d = haar_packets(block, 1)[0, :, 0, 0, 0].tolist()
    assert (a, h, v, d) == (5.5, -2.5, -1.5, 0.5)
    with pytest.raises(ValueError, match="blocks"):
        haar_packets(torch.zeros(1, 3, 12, 12), 3)


def test_haar_packets_match_pywavelets() -> None:
    pywt = pytest.importorskip("pywt")
    image = np.random.default_rng(0).random((32, 48))
    ours = haar_packets(torch.from_numpy(image)[None, None], 3)[0, :, 0].numpy()
    packets = pywt.WaveletPacket2D(image, "haar", mode="symmetric", maxlevel=3)
    theirs = np.stack([node.data for node in packets.get_level(3, order="natural")])
    assert np.allclose(ours, theirs, atol=1e-12)


def _scipy_frechet(x: np.ndarray, y: np.ndarray) -> float:
    """pytorch-fid's / pytorchfwd's formula, with scipy's sqrtm."""
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


@pytest.mark.parametrize(
    ("n1", "n2", "dims"),
    [(50, 60, 8), (40, 40, 40), (10, 12, 30), (5, 7, 6)],  # fewer samples than dims: low rank
)
def test_frechet_distance_is_scipys_formula(n1: int, n2: int, dims: int) -> None:
    rng = np.random.default_rng(n1 + dims)
    x = rng.normal(size=(n1, dims))
    y = rng.normal(size=(n2, dims)) @ rng.normal(size=(dims, dims)) * 0.5 + 0.3
    ours = frechet_distances(torch.from_numpy(x)[None], torch.from_numpy(y)[None])[0].item()
    assert ours == pytest.approx(_scipy_frechet(x, y), rel=1e-6)


@pytest.mark.parametrize("n", [6, 40])  # samples below and above the dimension (12)
def test_frechet_distance_of_a_shifted_set_is_the_shift_squared(n: int) -> None:
    x = torch.randn(2, n, 12, dtype=torch.float64)
    shift = torch.linspace(-1, 1, 12, dtype=torch.float64)
    distances = frechet_distances(x, x + shift)
    assert torch.allclose(distances, shift.pow(2).sum().expand(2), atol=1e-9)
    assert torch.allclose(frechet_distances(x, x), torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert math.isnan(frechet_distances(x[:, :1], x)[0].item())


def _rendered(lab: np.ndarray, gain: float) -> np.ndarray:
    """The photo with its chroma scaled by ``gain`` (0: gray), as an 8-bit output would be."""
    scaled = lab.copy()
    scaled[..., 1:] *= gain
    return (np.clip(lab2rgb(scaled), 0, 1) * 255).round().astype(np.uint8)


def _chroma_variants(photos: list[np.ndarray], size: int) -> dict[str, list[np.ndarray]]:
    labs = [rgb2lab(p) for p in photos]
    variants = {"photos": [fwd_thumbnail(p, size) for p in photos]}
    for name, gain in (("same", 1.0), ("gray", 0.0), ("half", 0.5), ("louder", 1.6)):
        variants[name] = [fwd_thumbnail(_rendered(lab, gain), size) for lab in labs]
    return variants


def test_fwd_known_cases_on_generated_photos() -> None:
    photos = [color_image(40, 56, seed=s) for s in range(12)]
    sets = _chroma_variants(photos, 32)
    fwd = {k: frechet_wavelet_distance(v, sets["photos"], level=2) for k, v in sets.items()}
    assert fwd["photos"] < 1e-9 and fwd["same"] < 1e-3  # 8-bit round trip only
    assert fwd["gray"] > fwd["half"] > 1e-3 and fwd["louder"] > 1e-3
    assert math.isnan(frechet_wavelet_distance(sets["photos"][:1], sets["photos"]))
    per_packet = wavelet_distances(sets["gray"], sets["photos"], level=2)
    assert per_packet.shape == (16,) and per_packet.mean().item() == pytest.approx(fwd["gray"])
    with pytest.raises(ValueError, match="differ in size"):
        frechet_wavelet_distance(sets["photos"], [fwd_thumbnail(p, 16) for p in photos])


def test_fwd_thumbnail_is_the_whole_photo_square() -> None:
    photo = color_image(40, 90)
    thumb = fwd_thumbnail(photo)
    assert thumb.shape == (FWD_SIZE, FWD_SIZE, 3) and thumb.dtype == np.uint8
    # left and right ends of the photo land at the thumbnail's left and right ends
    assert np.abs(thumb[:, :4].astype(int).mean((0, 1)) - photo[:, :3].mean((0, 1))).max() < 8
    assert np.abs(thumb[:, -4:].astype(int).mean((0, 1)) - photo[:, -3:].mean((0, 1))).max() < 8


def test_fwd_known_cases_on_shared_photos(shared_dir: Path) -> None:
    """On 24 real photos at the defaults (128 px, level 4): the ordering of issue 26's
    measurement with pytorchfwd (200 photos: gray 1.52 > half chroma 0.38 > 0)."""
    from segcolor.evaluate.datasets import find_photos

    folders = [shared_dir / "data" / "train" / c for c in ("people", "birds", "animals", "places")]
    if not all(f.is_dir() for f in folders):
        pytest.skip(f"no training photos under {shared_dir}/data/train")
    from PIL import Image

    refs = find_photos(folders, held_out=0.1, limit=6)
    photos = [np.asarray(Image.open(r.path).convert("RGB")) for r in refs]
    sets = _chroma_variants(photos, FWD_SIZE)
    fwd = {k: frechet_wavelet_distance(v, sets["photos"]) for k, v in sets.items()}
    assert fwd["photos"] < 1e-9 and fwd["same"] < 0.01
    assert fwd["gray"] > fwd["half"] > 0.05 and fwd["louder"] > 0.05
